"""A Mongo container living in ZODB: the parent reference, the provider
utility, and one transaction for both databases."""
import pytest
import transaction
import zope.component
from ZODB import DB
from ZODB.MappingStorage import MappingStorage
from zope.container.btree import BTreeContainer

from tests import container_models as models
from tests.container_support import container_cache  # noqa: F401
from tests.container_support import registry  # noqa: F401
from zmongo import container
from zmongo import interfaces
from zmongo.provider import MongoDataManagerProvider


@pytest.fixture(params=['transactions', 'standalone'])
def provider(request, mongo):
    provider = MongoDataManagerProvider(
        client=mongo.client, default_database=mongo.db_name,
        root_database=mongo.db_name,
        transactions=request.param == 'transactions')
    yield provider
    provider.close()


@pytest.fixture
def zodb():
    db = DB(MappingStorage())
    conn = db.open()
    root = conn.root()
    root['app'] = BTreeContainer()
    root['app']['people'] = models.People()
    transaction.commit()
    yield db
    transaction.abort()
    db.close()


def people_in(db):
    return db.open().root()['app']['people']


def test_the_parent_key_value():
    c = models.People()
    with pytest.raises(ValueError, match='_p_jar not found'):
        c._m_get_parent_key_value()
    c._p_jar = object()
    c._p_oid = b'\x00\x00\x00\x00\x00\x00\x00\x01'
    assert c._m_get_parent_key_value() == 'zodb-0000000000000001'


def test_no_data_manager_until_a_provider_is_registered(
        zodb, registry, provider):
    people = people_in(zodb)
    with pytest.raises(zope.component.ComponentLookupError):
        people.keys()
    with pytest.raises(zope.component.ComponentLookupError):
        people['stephan'] = models.Person('Stephan')
    zope.component.provideUtility(provider,
                                  interfaces.IMongoDataManagerProvider)
    assert people.keys() == []


def test_zodb_and_mongo_commit_in_one_transaction(
        zodb, registry, provider, mongo, container_cache):
    zope.component.provideUtility(provider,
                                  interfaces.IMongoDataManagerProvider)
    conn = zodb.open()
    app = conn.root()['app']
    people = app['people']
    people['stephan'] = models.Person('Stephan')
    people.add(models.Person('Roy', key='roy'))
    app.title = 'People'           # a ZODB change in the same transaction
    assert sorted(people.keys()) == ['roy', 'stephan']
    transaction.commit()

    oid = people._p_oid.hex()
    docs = list(mongo.db.person.find({}, {'_id': 0}).sort('key'))
    assert docs == [
        {'name': 'Roy', 'key': 'roy', 'parent': 'zodb-' + oid},
        {'name': 'Stephan', 'key': 'stephan', 'parent': 'zodb-' + oid}]
    conn2 = zodb.open()
    assert conn2.root()['app'].title == 'People'
    people = conn2.root()['app']['people']
    assert sorted(people.keys()) == ['roy', 'stephan']
    stephan = people['stephan']
    assert stephan.__name__ == 'stephan' and stephan.__parent__ is people
    assert stephan._p_jar is provider.get()
    conn.close()
    conn2.close()


def test_abort_undoes_both(zodb, registry, provider, mongo, container_cache):
    zope.component.provideUtility(provider,
                                  interfaces.IMongoDataManagerProvider)
    conn = zodb.open()
    app = conn.root()['app']
    app['people']['stephan'] = models.Person('Stephan')
    app.title = 'People'
    assert app['people'].keys() == ['stephan']
    transaction.abort()
    assert mongo.db.person.count_documents({}) == 0
    conn2 = zodb.open()
    assert not hasattr(conn2.root()['app'], 'title')
    assert conn2.root()['app']['people'].keys() == []
    conn.close()
    conn2.close()


def test_a_failing_mongo_commit_rolls_zodb_back(
        zodb, registry, provider, mongo):
    zope.component.provideUtility(provider,
                                  interfaces.IMongoDataManagerProvider)
    conn = zodb.open()
    people = conn.root()['app']['people']
    people['stephan'] = models.Person('Stephan')
    transaction.commit()
    # Another writer takes the name while this transaction adds it too.
    other = conn.root()['app']['people']
    conn.root()['app'].title = 'changed'
    other['roy'] = models.Person('Roy')
    mongo.db.person.insert_one({'name': 'Roy 2', 'key': 'roy',
                                'parent': 'zodb-' + people._p_oid.hex()})
    with pytest.raises((interfaces.DuplicateKeyError,
                        interfaces.ConflictError)):
        transaction.commit()
    transaction.abort()
    conn2 = zodb.open()
    assert not hasattr(conn2.root()['app'], 'title')
    assert mongo.db.person.count_documents({'key': 'roy'}) == 1
    conn.close()
    conn2.close()


def test_each_transaction_gets_its_data_manager(
        zodb, registry, provider, container_cache):
    zope.component.provideUtility(provider,
                                  interfaces.IMongoDataManagerProvider)
    conn = zodb.open()
    people = conn.root()['app']['people']
    people['a'] = models.Person('A')
    first = people['a']
    dm = provider.get()
    assert first._p_jar is dm
    transaction.commit()
    second = people['a']
    assert second is not first
    assert second._p_jar is provider.get() is not dm
    conn.close()


def test_id_and_all_items_containers_in_zodb(
        zodb, registry, provider, mongo):
    zope.component.provideUtility(provider,
                                  interfaces.IMongoDataManagerProvider)
    conn = zodb.open()
    app = conn.root()['app']
    app['ids'] = container.IdNamesMongoContainer('person')
    app['all'] = container.AllItemsMongoContainer('person')
    transaction.commit()
    app['ids'].add(models.Person('X'))
    app['people']['y'] = models.Person('Y')
    transaction.commit()
    ids = zodb.open().root()['app']['ids']
    [name] = ids.keys()
    assert ids[name].name == 'X'
    assert sorted(p.name for p in app['all'].values()) == ['Y']
    conn.close()


# --------------------------------------------------------------------------
# Items that store their own __parent__, in a Mongo container in ZODB
# --------------------------------------------------------------------------

#: Plain IContained items (``Contained`` subclasses): they keep
#: ``__parent__`` in their state, unlike MongoContained items.
PLAIN_ITEMS = {
    'contained': lambda: models.SimplePerson('Ada'),
    'mongo-container': lambda: container.MongoContainer('person'),
    'simple-container': container.SimpleMongoContainer,
}


@pytest.mark.parametrize('item', sorted(PLAIN_ITEMS))
def test_plain_items_of_a_container_in_zodb(
        item, zodb, registry, provider, mongo, container_cache):
    """Such an item's document cannot refer to its ZODB parent: it has no
    ``__parent__`` field (its ``parent`` field names the container), and
    the container gives the parent back when it hands the item out,
    without marking it changed.  A folder stored in MongoDB below a ZODB
    site, as in the ZMI's tests."""
    zope.component.provideUtility(provider,
                                  interfaces.IMongoDataManagerProvider)
    people = people_in(zodb)
    people['x'] = PLAIN_ITEMS[item]()
    transaction.commit()
    [doc] = list(mongo.db.person.find())
    assert doc['key'] == 'x' and '__parent__' not in doc
    assert doc['parent'] == 'zodb-' + people._p_oid.hex()

    people = people_in(zodb)
    x = people['x']
    assert x.__parent__ is people and x.__name__ == 'x'
    assert not x._p_changed
    for key, value in people.items():
        assert value.__parent__ is people
    x.changed = True            # written again: still no __parent__ field
    transaction.commit()
    assert '__parent__' not in mongo.db.person.find_one({'key': 'x'})
    assert people_in(zodb)['x'].changed is True


def test_a_zodb_parent_no_field_names_is_refused(
        zodb, registry, provider, mongo):
    """Only a ``__parent__`` that the document names as its container
    (``'zodb-<hex oid>'``) is left out; any other ZODB object is refused
    as before, with the attribute and the object named."""
    zope.component.provideUtility(provider,
                                  interfaces.IMongoDataManagerProvider)
    people = people_in(zodb)
    dm = provider.get()
    stray = models.SimplePerson('Stray')
    stray.__parent__ = people          # but no parent field naming it
    dm.insert(stray)
    with pytest.raises(interfaces.SerializationError) as info:
        transaction.commit()
    assert '__parent__' in str(info.value)
    assert 'another data manager' in str(info.value)
    transaction.abort()
    assert mongo.db.person.count_documents({}) == 0
