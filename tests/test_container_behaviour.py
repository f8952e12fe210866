"""What every container class does: add, look up, list, remove, commit."""
import pytest
import transaction
from zope.container.contained import ContainedProxy
from zope.container.interfaces import IContainer
from zope.interface.verify import verifyObject

from tests import container_models as models
from tests.container_support import KINDS, Home
from tests.container_support import container_cache  # noqa: F401
from tests.container_support import events, registry  # noqa: F401
from zmongo import container
from zmongo import interfaces


@pytest.mark.parametrize('kind', KINDS)
def test_items_are_visible_before_and_after_commit(
        kind, datamanager, container_cache):
    home = Home(kind, datamanager)
    c = home.get()
    stephan = models.Item('Stephan')
    c['stephan'] = stephan
    assert c['stephan'] is stephan
    assert c.keys() == ['stephan']
    assert 'stephan' in c
    assert len(c) == 1
    assert c.get('stephan') is stephan
    assert c.items() == [('stephan', stephan)]
    assert c.values() == [stephan]
    assert list(c) == ['stephan']
    assert stephan.__name__ == 'stephan'
    assert stephan.__parent__ is c
    transaction.commit()

    c = home.get()
    loaded = c['stephan']
    # The same object (identity is kept across transactions, as in ZODB),
    # its state reloaded from the committed document.
    assert loaded is stephan
    assert loaded.name == 'Stephan'
    assert loaded.__name__ == 'stephan'
    assert loaded.__parent__ is c
    assert c.keys() == ['stephan']
    assert c.get('roy') is None
    assert c.get('roy', 42) == 42
    assert 'roy' not in c
    with pytest.raises(KeyError):
        c['roy']


@pytest.mark.parametrize('kind', KINDS)
def test_deleting_is_visible_at_once_and_stays(
        kind, datamanager, container_cache):
    home = Home(kind, datamanager)
    c = home.get()
    c['roy'] = models.Item('Roy')
    c['adam'] = models.Item('Adam')
    transaction.commit()
    c = home.get()
    roy = c['roy']
    del c['roy']
    assert roy.__parent__ is None and roy.__name__ is None
    assert 'roy' not in c
    assert c.keys() == ['adam']
    assert len(c) == 1
    with pytest.raises(KeyError):
        c['roy']
    with pytest.raises(KeyError):
        del c['roy']
    transaction.commit()
    assert home.get().keys() == ['adam']


@pytest.mark.parametrize('kind', KINDS)
def test_abort_forgets_additions_and_removals(
        kind, datamanager, container_cache):
    home = Home(kind, datamanager)
    home.get()['keep'] = models.Item('Keep')
    transaction.commit()
    c = home.get()
    c['new'] = models.Item('New')
    del c['keep']
    assert c.keys() == ['new']
    transaction.abort()
    assert home.get().keys() == ['keep']
    assert home.get()['keep'].name == 'Keep'


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('path', ['key', 'none', 'add'])
def test_every_way_of_adding(kind, path, datamanager, container_cache):
    home = Home(kind, datamanager)
    c = home.get()
    item = models.Item('Stephan', key='stephan')
    if path == 'key':
        c['stephan'] = item
    elif path == 'none':
        c[None] = item
    else:
        c.add(item)
    name = item.__name__
    if kind == 'simple' and path != 'key':
        assert name == 'Item'        # chosen by zope.container's NameChooser
    elif kind == 'idnames' and path != 'key':
        assert name == str(item._p_oid.id)
    else:
        assert name == 'stephan'
    assert c[name] is item
    assert item.__parent__ is c
    transaction.commit()
    c = home.get()
    assert c.keys() == [name]
    assert c[name].name == 'Stephan'


@pytest.mark.parametrize('kind', KINDS)
def test_clear_removes_everything(kind, datamanager, container_cache):
    home = Home(kind, datamanager)
    c = home.get()
    for name in 'abc':
        c[name] = models.Item(name)
    transaction.commit()
    c = home.get()
    c.clear()
    assert c.keys() == [] and len(c) == 0
    transaction.commit()
    assert home.get().keys() == []
    assert len(home.get()) == 0


@pytest.mark.parametrize('kind', KINDS)
def test_values_that_are_not_persistent_objects(
        kind, datamanager, container_cache):
    home = Home(kind, datamanager)
    c = home.get()
    thing = models.Thing('thing')
    c['foo'] = 'FOO'
    c['one'] = 1
    c['thing'] = thing
    assert c['foo'] == 'FOO'
    assert isinstance(c['foo'], ContainedProxy)
    assert c['foo'].__parent__ is c and c['foo'].__name__ == 'foo'
    assert c['foo'] is c['foo']
    transaction.commit()
    c = home.get()
    assert sorted(c.keys()) == ['foo', 'one', 'thing']
    assert c['foo'] == 'FOO' and c['one'] == 1
    assert c['thing'].name == 'thing'
    assert c['one'].__parent__ is c and c['one'].__name__ == 'one'
    del c['foo']
    transaction.commit()
    assert sorted(home.get().keys()) == ['one', 'thing']


@pytest.mark.parametrize('kind', KINDS)
def test_containers_provide_their_interfaces(kind, datamanager):
    c = Home(kind, datamanager).get()
    assert verifyObject(IContainer, c)
    if kind != 'simple':
        assert verifyObject(interfaces.IMongoContainer, c)


@pytest.mark.parametrize('kind', KINDS)
def test_loading_items_never_marks_them_changed(
        kind, datamanager, container_cache, mongo):
    home = Home(kind, datamanager)
    c = home.get()
    for name in ('a', 'b'):
        c[name] = models.Item(name)
    transaction.commit()
    c = home.get()
    assert [item._p_changed for item in c.values()] == [False, False]
    assert c['a']._p_changed is False
    if kind != 'simple':      # the one class without find()
        assert [item._p_changed for item in c.find()] == [False, False]
    mongo.commands.reset()
    transaction.commit()
    writes = {'insert', 'update', 'delete'}
    assert not writes & set(mongo.commands.names)


def test_constructor_options():
    c = container.MongoContainer('person', database='testdb',
                                 mapping_key='name', parent_key='site')
    assert (c._m_collection, c._m_database, c._m_mapping_key,
            c._m_parent_key) == ('person', 'testdb', 'name', 'site')
    assert c._m_remove_documents is True
    c = container.MongoContainer()
    assert (c._m_collection, c._m_database, c._m_mapping_key,
            c._m_parent_key) == (None, None, 'key', 'parent')
    ids = container.IdNamesMongoContainer('person', 'db', parent_key='p')
    assert (ids._m_collection, ids._m_database, ids._m_mapping_key,
            ids._m_parent_key) == ('person', 'db', None, 'p')
    assert container.AllItemsMongoContainer('x')._m_parent_key is None


def test_a_container_needs_a_collection(datamanager):
    c = container.MongoContainer()
    datamanager.insert(c)
    with pytest.raises(ValueError, match='_m_collection'):
        c.keys()


def test_custom_mapping_and_parent_keys(datamanager, mongo, container_cache):
    c = container.MongoContainer('person', mapping_key='nick',
                                 parent_key='folder')
    datamanager.insert(c)
    with pytest.raises(ValueError, match="no 'nick' attribute"):
        c[None] = models.Item('Stephan', key='ignored')
    with pytest.raises(ValueError, match="no 'nick' attribute"):
        c.add(models.Item('Roy'))
    item = models.Item('Roy')
    item.nick = 'roy'
    c.add(item)
    transaction.commit()
    doc = mongo.db.person.find_one({'nick': 'roy'})
    assert doc['folder'] == c._p_oid and 'parent' not in doc
    assert sorted(datamanager.load(c._p_oid).keys()) == ['roy']


def test_stored_document_format(datamanager, mongo):
    c = models.People()
    ref = datamanager.insert(c)
    c['stephan'] = models.Person('Stephan')
    transaction.commit()
    doc = mongo.db.person.find_one()
    assert {k: v for k, v in doc.items() if k != '_id'} == {
        'name': 'Stephan', 'key': 'stephan', 'parent': ref}


def test_keeping_documents_removes_only_key_and_parent(datamanager, mongo):
    c = models.KeepingPeople()
    datamanager.insert(c)
    c['stephan'] = models.Person('Stephan')
    transaction.commit()
    del c['stephan']
    assert c.keys() == []
    transaction.commit()
    doc = mongo.db.person.find_one()
    assert doc['name'] == 'Stephan'
    assert 'key' not in doc and 'parent' not in doc


def test_containers_sharing_a_collection(datamanager, container_cache):
    friends, family = models.People(), models.People()
    datamanager.insert(friends)
    datamanager.insert(family)
    everybody = models.AllPeople()
    datamanager.insert(everybody)
    friends['roy'] = models.Person('Roy')
    friends['roger'] = models.Person('Roger')
    family['anton'] = models.Person('Anton')
    family['roy'] = models.Person('Roy the cousin')
    assert sorted(friends.keys()) == ['roger', 'roy']
    assert sorted(family.keys()) == ['anton', 'roy']
    assert friends['roy'].name == 'Roy'
    assert family['roy'].name == 'Roy the cousin'
    assert 'anton' not in friends
    assert len(everybody) == 4
    assert sorted(everybody.keys()) == ['anton', 'roger', 'roy', 'roy']
    transaction.commit()
    friends = datamanager.load(friends._p_oid)
    assert sorted(friends.keys()) == ['roger', 'roy']
    assert len(datamanager.load(everybody._p_oid).items()) == 4


def test_moving_an_item_between_containers(datamanager, container_cache):
    a, b = models.People(), models.People()
    datamanager.insert(a)
    datamanager.insert(b)
    a['x'] = x = models.Person('X')
    assert a.keys() == ['x'] and len(a.items()) == 1
    b['y'] = x
    assert a.keys() == [] and len(a) == 0
    # Until the move's second step the old name is taken, as in a
    # BTreeContainer: lookups give the moved object, where it is now.
    assert 'x' in a and a['x'] is x
    assert b['y'] is x and x.__parent__ is b and x.__name__ == 'y'
    del a['x']
    assert 'x' not in a and x.__parent__ is b
    transaction.commit()
    assert datamanager.load(a._p_oid).keys() == []
    assert datamanager.load(b._p_oid).keys() == ['y']


def test_readding_the_same_item_changes_nothing(datamanager, events):
    c = models.People()
    datamanager.insert(c)
    c['x'] = x = models.Person('X')
    del events[:]
    c['x'] = x
    assert events == []
    assert c.keys() == ['x']


def test_an_item_stored_elsewhere_is_refused(datamanager, mongo):
    c = models.People()
    datamanager.insert(c)
    other = models.Item('other')       # lives in its own collection
    datamanager.insert(other)
    with pytest.raises(ValueError, match='keeps its items in'):
        c['other'] = other
    assert other.__parent__ is None
    assert c.keys() == []


def test_new_items_go_to_the_container_collection(datamanager, mongo):
    c = container.MongoContainer('things')
    datamanager.insert(c)
    c['x'] = models.Item('X')     # its class would store it elsewhere
    transaction.commit()
    assert mongo.db.things.find_one()['name'] == 'X'
    c = datamanager.load(c._p_oid)
    assert c['x'].name == 'X' and type(c['x']) is models.Item


def test_container_inside_a_container(datamanager, container_cache):
    campaigns = models.Campaigns()
    datamanager.insert(campaigns)
    campaigns['one'] = one = models.Campaign('One')
    campaigns['two'] = two = models.Campaign('Two')
    one['stephan'] = models.Person('Stephan')
    one['roy'] = models.Person('Roy')
    two['adam'] = models.Person('Adam')
    assert sorted(one.keys()) == ['roy', 'stephan']
    transaction.commit()
    campaigns = datamanager.load(campaigns._p_oid)
    assert sorted(campaigns.keys()) == ['one', 'two']
    one = campaigns['one']
    assert one.__parent__ is campaigns and one.__name__ == 'one'
    assert sorted(one.keys()) == ['roy', 'stephan']
    assert campaigns['two'].keys() == ['adam']
    assert one['roy'].__parent__ is one
