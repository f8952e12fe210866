"""Rename, move, copy and removal, as the Zope Toolkit does them.

Every scenario runs on the reference -- ``BTreeContainer``s in a
``zope.site.folder.Folder`` in a real ZODB -- and on zmongo containers of
each kind, in one parametrized test, through the ZTK's own code
(``IContainerItemRenamer``, ``IObjectMover``, ``IObjectCopier``,
``zope.copy``, ``INameChooser``), with the configuration of a Zope site
(zope.container's, zope.copypastemove's and zmongo's ZCML).  Compared: the
events in order, names, ``getPath``/``traverse``, ``ISized``, and, read
with raw pymongo, the documents (no orphan, no duplicate, the right
``parent`` and ``key``).
"""
import bson
import pytest
import transaction
import zope.component
import zope.interface
from ZODB import DB
from ZODB.MappingStorage import MappingStorage
from zope.configuration import xmlconfig
from zope.container.btree import BTreeContainer
from zope.container.interfaces import INameChooser
from zope.container.interfaces import IReadContainer
from zope.copy import copy as zope_copy
from zope.copypastemove.interfaces import IContainerItemRenamer
from zope.copypastemove.interfaces import IObjectCopier
from zope.copypastemove.interfaces import IObjectMover
from zope.interface import Invalid
from zope.interface.interfaces import IObjectEvent
from zope.lifecycleevent.interfaces import IObjectMovedEvent
from zope.location.interfaces import IRoot
from zope.site.folder import Folder
from zope.size.interfaces import ISized
from zope.traversing.api import getPath, traverse

from tests import container_models as models
from tests.container_support import container_cache  # noqa: F401
from tests.container_support import make, registry  # noqa: F401
from zmongo import container
from zmongo import interfaces

ZCML = '''
<configure xmlns="http://namespaces.zope.org/zope" i18n_domain="zmongo">
  <include package="zope.component" file="meta.zcml" />
  <include package="zope.security" file="meta.zcml" />
  <include package="zope.component" />
  <include package="zope.location" />
  <include package="zope.traversing" />
  <include package="zope.container" />
  <include package="zope.copypastemove" />
  <include package="zmongo" />
</configure>
'''

#: The kinds that can hold items moved in from another container.
MOVE_KINDS = ('mongo', 'idnames', 'subdocument', 'simple')
#: The collection of the items of simple containers (their class's).
ITEM_COLLECTION = 'tests.container_models.Item'


@pytest.fixture
def events(registry):
    """A configured Zope site's components; the object events, in order."""
    xmlconfig.string(ZCML)
    log = []

    @zope.component.adapter(IObjectEvent)
    def record(event):
        log.append(event)

    zope.component.provideHandler(record)
    return log


# --------------------------------------------------------------------------
# The worlds: the reference in ZODB, zmongo in MongoDB
# --------------------------------------------------------------------------

class Reference:
    """site (a Folder, IRoot) / a, b (BTreeContainers), in ZODB."""

    kinds = ('btree', 'btree')

    def __init__(self, names=('ada', 'bob')):
        self.db = DB(MappingStorage())
        self.conn = self.db.open()
        site = Folder()
        zope.interface.alsoProvides(site, IRoot)
        self.conn.root()['site'] = site
        site['a'], site['b'] = BTreeContainer(), BTreeContainer()
        for name in names:
            site['a'][name] = models.SimplePerson(name.title())
        transaction.commit()

    def site(self):
        return self.conn.root()['site']

    def check_documents(self):
        pass

    def close(self):
        transaction.abort()
        self.conn.close()
        self.db.close()


class Mongo:
    """site (a SimpleMongoContainer, IRoot) / a, b (of the kinds given),
    in MongoDB; the items are ``models.Item``s."""

    def __init__(self, dm, mongo, kinds, names=('ada', 'bob'),
                 item=models.Item):
        self.dm, self.mongo, self.kinds = dm, mongo, kinds
        dm.root['site'] = site = models.Site()
        site['a'], site['b'] = make(kinds[0]), make(kinds[1])
        transaction.commit()
        site = self.site()
        for name in names:
            site['a'][None if kinds[0] == 'idnames' else name] = \
                item(name.title())
        transaction.commit()

    def site(self):
        return self.dm.root['site']

    def collection_of(self, name):
        kind = self.kinds['ab'.index(name)]
        return ITEM_COLLECTION if kind == 'simple' else 'person'

    def raw_names(self, name):
        """The names of container ``name``'s items, read with pymongo."""
        box = self.site()[name]
        db = self.mongo.db
        if isinstance(box, container.SimpleMongoContainer):
            doc = db[box._p_oid.collection].find_one({'_id': box._p_oid.id})
            return sorted(doc['data'])
        if isinstance(box, container.SubDocumentMongoContainer):
            parent = box._m_container_id
        else:
            parent = box._p_oid
        docs = list(db['person'].find({'parent': parent}))
        if isinstance(box, container.IdNamesMongoContainer):
            return sorted(str(doc['_id']) for doc in docs)
        return sorted(doc['key'] for doc in docs)

    def check_documents(self):
        """No orphan, no duplicate: every item document of the test is an
        item of exactly one container, under the name it is listed by."""
        site = self.site()
        listed = []
        for name in ('a', 'b'):
            assert self.raw_names(name) == sorted(site[name].keys())
            for key, item in site[name].items():
                assert getPath(item) == '/%s/%s' % (name, key)
                assert traverse(site, '%s/%s' % (name, key)) is item
                listed.append(item._p_oid)
        assert len(listed) == len(set(listed))
        stored = {(c, doc['_id']) for c in {'person', ITEM_COLLECTION}
                  for doc in self.mongo.db[c].find()}
        assert stored == {(ref.collection, ref.id) for ref in listed}

    def close(self):
        transaction.abort()


@pytest.fixture
def worlds(request, datamanager, mongo, events, container_cache):
    """The reference and zmongo over the kinds of the test's ``kinds``."""
    opened = []

    def open_(kinds=None, item=None, **kw):
        if kinds is None:
            world = Reference(**kw)
        elif item is None:
            world = Mongo(datamanager, mongo, kinds, **kw)
        else:
            world = Mongo(datamanager, mongo, kinds, item=item, **kw)
        opened.append(world)
        del events[:]
        return world

    yield open_
    for world in opened:
        world.close()


def describe(events, site):
    """The events as comparable rows, objects by their paths in ``site``
    (names, so the reference and zmongo compare)."""
    def where(obj):
        if obj is None:
            return None
        if obj is site:
            return '/'
        for name in ('a', 'b'):
            if obj is site.get(name):
                return '/' + name
        if IReadContainer.providedBy(obj):
            return 'a container'
        return getattr(obj, 'name', type(obj).__name__)
    rows = []
    for event in events:
        row = (type(event).__name__, where(event.object))
        if IObjectMovedEvent.providedBy(event):
            row += (where(event.oldParent), event.oldName,
                    where(event.newParent), event.newName)
        rows.append(row)
    return rows


def sizes(site):
    return {name: ISized(site[name]).sizeForSorting() for name in ('a', 'b')}


# --------------------------------------------------------------------------
# Rename
# --------------------------------------------------------------------------

def rename(world):
    site = world.site()
    IContainerItemRenamer(site['a']).renameItem('bob', 'robert')
    return site


@pytest.mark.parametrize('kind', ['mongo', 'subdocument', 'simple'])
def test_rename(kind, worlds, events):
    ref = worlds()
    site = rename(ref)
    expected = describe(events, site)
    assert expected == [
        ('ObjectMovedEvent', 'Bob', '/a', 'bob', '/a', 'robert'),
        ('ContainerModifiedEvent', '/a'), ('ContainerModifiedEvent', '/a')]
    transaction.commit()
    expected_keys = sorted(ref.site()['a'].keys())
    expected_sizes = sizes(ref.site())

    world = worlds((kind, kind))
    site = rename(world)
    assert describe(events, site) == expected
    assert 'bob' not in site['a'] and site['a']['robert'].name == 'Bob'
    transaction.commit()
    site = world.site()
    assert sorted(site['a'].keys()) == expected_keys == ['ada', 'robert']
    assert getPath(site['a']['robert']) == '/a/robert'
    assert sizes(site) == expected_sizes
    world.check_documents()


def test_renaming_an_id_named_item_is_refused(worlds, events, mongo):
    world = worlds(('idnames', 'idnames'))
    site = world.site()
    name = sorted(site['a'].keys())[0]
    before = list(mongo.db.person.find())
    with pytest.raises(interfaces.RefusedItemError) as info:
        IContainerItemRenamer(site['a']).renameItem(name, 'robert')
    assert name in str(info.value) and 'robert' in str(info.value)
    assert events == []
    assert not IObjectMover(site['a'][name]).moveableTo(site['a'], 'robert')
    transaction.commit()
    assert list(mongo.db.person.find()) == before


# --------------------------------------------------------------------------
# Move
# --------------------------------------------------------------------------

def move(world):
    site = world.site()
    item = site['a'][sorted(site['a'].keys())[0]]
    mover = IObjectMover(item)
    if not mover.moveableTo(site['b']):
        return site, None
    return site, mover.moveTo(site['b'])


def movable(source, target):
    """Whether zmongo can move an item between the kinds (one collection,
    or into a simple container, which refers to documents anywhere)."""
    if target == 'simple':
        return True
    return source != 'simple'


@pytest.mark.parametrize('source', MOVE_KINDS)
@pytest.mark.parametrize('target', MOVE_KINDS)
def test_move(source, target, worlds, events, mongo, commands):
    ref = worlds()
    site, name = move(ref)
    expected = describe(events, site)
    assert expected == [
        ('ObjectMovedEvent', 'Ada', '/a', 'ada', '/b', 'ada'),
        ('ContainerModifiedEvent', '/b'), ('ContainerModifiedEvent', '/a')]
    transaction.commit()
    expected_sizes = sizes(ref.site())

    world = worlds((source, target))
    ada_ref = world.site()['a'][sorted(world.site()['a'].keys())[0]]._p_oid
    transaction.commit()
    del events[:]
    commands.reset()
    site, name = move(world)
    if not movable(source, target):
        # Refused where Zope asks first: nothing was offered or changed.
        assert name is None and events == []
        with pytest.raises(Invalid):
            IObjectMover(site['a'][sorted(site['a'].keys())[0]]).moveTo(
                site['b'])
        assert events == []
        transaction.commit()
        assert len(world.site()['a']) == 2 and len(world.site()['b']) == 0
        world.check_documents()
        return
    old_name = 'ada' if source != 'idnames' else str(ada_ref.id)
    new_name = old_name if target != 'idnames' else str(ada_ref.id)
    assert name == new_name
    assert describe(events, site) == [
        tuple(new_name if v == 'ada' and i == 5 else
              old_name if v == 'ada' else v for i, v in enumerate(row))
        for row in expected]
    assert site['b'][new_name] is site['b'].values()[0]
    assert old_name not in site['a']
    transaction.commit()
    if source != 'simple' and target != 'simple':
        # One write re-parents the document; nothing is deleted.
        writes = [n for n in commands.names
                  if n in ('insert', 'update', 'delete')]
        assert writes == ['update']
    site = world.site()
    assert site['b'][new_name]._p_oid == ada_ref
    assert getPath(site['b'][new_name]) == '/b/' + new_name
    assert sizes(site) == expected_sizes
    world.check_documents()


def test_moving_to_another_collection_is_refused(worlds, events, mongo):
    world = worlds(('mongo', 'mongo'))
    site = world.site()
    site['other'] = container.MongoContainer('elsewhere')
    transaction.commit()
    del events[:]
    site = world.site()
    ada = site['a']['ada']
    assert not IObjectMover(ada).moveableTo(site['other'])
    with pytest.raises(interfaces.RefusedItemError) as info:
        site['other']['ada'] = ada
    assert 'elsewhere' in str(info.value) and 'person' in str(info.value)
    assert events == []
    # A copy made by hand is a new object: welcome anywhere.
    site['other']['ada'] = zope_copy(ada)
    transaction.commit()
    assert mongo.db.elsewhere.count_documents({}) == 1
    world.check_documents()


def first_item(site):
    return site['a'][sorted(site['a'].keys())[0]]


@pytest.mark.parametrize('kind', MOVE_KINDS)
def test_copying_to_another_collection(kind, worlds, events, mongo):
    """IObjectCopier copies into a container over another collection (a
    new document there); moving there stays refused where Zope asks."""
    ref = worlds()
    site = ref.site()
    site['other'] = BTreeContainer()
    transaction.commit()
    del events[:]
    site = ref.site()
    copier = IObjectCopier(site['a']['ada'])
    assert copier.copyableTo(site['other'])
    ref_name = copier.copyTo(site['other'])
    expected = describe(events, site)
    assert ref_name == 'ada' and expected == [
        ('ObjectCopiedEvent', 'Ada'),
        ('ObjectAddedEvent', 'Ada', None, None, 'a container', 'ada'),
        ('ContainerModifiedEvent', 'a container')]
    transaction.commit()

    world = worlds((kind, kind))
    site = world.site()
    site['other'] = container.MongoContainer('elsewhere')
    transaction.commit()
    del events[:]
    site = world.site()
    ada = first_item(site)
    old_name, ada_ref = ada.__name__, ada._p_oid
    assert not IObjectMover(ada).moveableTo(site['other'])
    with pytest.raises(interfaces.RefusedItemError):
        IObjectMover(ada).moveTo(site['other'])
    assert events == []
    copier = IObjectCopier(ada)
    assert copier.copyableTo(site['other'])
    name = copier.copyTo(site['other'])
    # Named as the original was (an id-named source: its _id string).
    assert name == old_name
    assert describe(events, site) == [
        row[:5] + (name,) if len(row) > 5 else row for row in expected]
    transaction.commit()
    site = world.site()
    copy = site['other'][name]
    assert copy.name == 'Ada' and copy._p_oid != ada_ref
    assert getPath(copy) == '/other/' + name
    docs = list(mongo.db.elsewhere.find())
    assert [(d['_id'], d['key'], d['parent']) for d in docs] == \
        [(copy._p_oid.id, name, site['other']._p_oid)]
    assert old_name in site['a'] and len(site['a']) == 2
    world.check_documents()


#: The kinds whose items may be plain ``Contained`` objects: such an item
#: stores its ``__parent__``, and a SubDocumentMongoContainer, stored
#: inside another document, would be stored again inside the item's.
PLAIN_ITEM_KINDS = ('mongo', 'idnames', 'simple')


@pytest.mark.parametrize('source', PLAIN_ITEM_KINDS)
@pytest.mark.parametrize('into', ['a', 'b'])
def test_copying_plain_contained_items_into_id_names(
        source, into, worlds, events, mongo):
    """Plain zope.container items (``Contained`` subclasses storing
    ``__parent__``) copied into an id-named container over their own
    collection get a fresh ``_id`` as their name."""
    ref = worlds()
    site = ref.site()
    ref_name = IObjectCopier(site['a']['ada']).copyTo(site[into])
    expected = describe(events, site)
    transaction.commit()
    expected_sizes = sizes(ref.site())

    kinds = ('idnames', 'idnames') if into == 'a' else (source, 'idnames')
    world = worlds(kinds, item=models.SimplePerson)
    site = world.site()
    ada = first_item(site)
    assert IObjectCopier(ada).copyableTo(site[into])
    name = IObjectCopier(ada).copyTo(site[into])
    assert bson.ObjectId.is_valid(name) and name != ada.__name__
    assert describe(events, site) == [
        row[:5] + (name,) if len(row) > 5 else row for row in expected]
    assert site[into][name] is not ada
    transaction.commit()
    site = world.site()
    copy = site[into][name]
    assert copy._p_oid.id == bson.ObjectId(name) and copy.name == 'Ada'
    assert copy.__parent__ is site[into] and copy.__name__ == name
    assert getPath(copy) == '/%s/%s' % (into, name)
    assert sizes(site) == expected_sizes
    assert ref_name in ('ada', 'ada-2')
    world.check_documents()


# --------------------------------------------------------------------------
# Mongo-stored items and containers in ZODB
# --------------------------------------------------------------------------

@pytest.fixture
def zodb():
    """A ZODB (the same transaction manager as the data manager's)."""
    db = DB(MappingStorage())
    conn = db.open()
    try:
        yield conn
    finally:
        transaction.abort()
        conn.close()
        db.close()


#: Containers whose items ZODB pickles: they cannot hold a Mongo object.
ZODB_TARGETS = {
    'btree': BTreeContainer,
    'folder': Folder,
    'simple-in-zodb': container.SimpleMongoContainer,
}


@pytest.mark.parametrize('kind, item', [
    (kind, 'mongo-contained') for kind in MOVE_KINDS] + [
    (kind, 'contained') for kind in PLAIN_ITEM_KINDS])
@pytest.mark.parametrize('target', sorted(ZODB_TARGETS))
def test_moving_into_zodb_is_refused_copying_works(
        kind, item, target, worlds, events, zodb, mongo):
    """A Mongo-stored item cannot move into a container ZODB stores (ZODB
    cannot refer to another database's object): Zope's ``moveableTo()``
    says so and ``moveTo()`` refuses before anything changes; a copy, a
    new object, is stored by ZODB.  The reference: a ZODB item moves."""
    ref = worlds()
    box = ref.conn.root()['box'] = ZODB_TARGETS[target]()
    transaction.commit()
    del events[:]
    mover = IObjectMover(ref.site()['a']['ada'])
    assert mover.moveableTo(box)
    assert mover.moveTo(box) == 'ada'
    transaction.commit()
    assert list(ref.conn.root()['box'].keys()) == ['ada']

    item_class = models.Item if item == 'mongo-contained' \
        else models.SimplePerson
    world = worlds((kind, kind), item=item_class)
    box = zodb.root()['box'] = ZODB_TARGETS[target]()
    transaction.commit()
    del events[:]
    site = world.site()
    ada = first_item(site)
    name = ada.__name__
    assert not IObjectMover(ada).moveableTo(box)
    with pytest.raises(interfaces.RefusedItemError) as info:
        IObjectMover(ada).moveTo(box)
    message = str(info.value)
    assert repr(ada) in message and repr(box) in message
    assert 'copy it there instead' in message
    assert events == []
    # A copy is a new object: ZODB stores it.
    assert IObjectCopier(ada).copyableTo(box)
    assert IObjectCopier(ada).copyTo(box) == name
    transaction.commit()
    box = zodb.root()['box']
    assert box[name].name == 'Ada' and box[name]._p_jar is zodb
    site = world.site()
    assert name in site['a'] and len(site['a']) == 2
    world.check_documents()


def test_moving_into_a_mongo_stored_simple_container_works(
        worlds, events, mongo):
    """The refusal is about where the target stores its items: a simple
    container stored in MongoDB holds references to documents."""
    world = worlds(('mongo', 'mongo'))
    site = world.site()
    site['box'] = container.SimpleMongoContainer()
    transaction.commit()
    site = world.site()
    ada = site['a']['ada']
    assert IObjectMover(ada).moveableTo(site['box'])
    assert IObjectMover(ada).moveTo(site['box']) == 'ada'
    transaction.commit()
    assert world.site()['box']['ada'].name == 'Ada'
    assert 'ada' not in world.site()['a']


@pytest.mark.parametrize('kind', MOVE_KINDS)
def test_by_hand_move_and_back(kind, worlds, events):
    """``b[new] = a[old]; del a[old]``, then back again, then commit."""
    world = worlds((kind, kind))
    site = world.site()
    name = sorted(site['a'].keys())[0]
    site['b'][name] = site['a'][name]
    del site['a'][name]
    site['a'][name] = site['b'][name]
    del site['b'][name]
    transaction.commit()
    site = world.site()
    assert name in site['a'] and len(site['b']) == 0
    world.check_documents()


# --------------------------------------------------------------------------
# Copy
# --------------------------------------------------------------------------

@pytest.mark.parametrize('kind', MOVE_KINDS)
@pytest.mark.parametrize('into', ['a', 'b'])
def test_copy(kind, into, worlds, events, mongo):
    ref = worlds()
    site = ref.site()
    ref_name = IObjectCopier(site['a']['ada']).copyTo(site[into])
    expected = describe(events, site)
    transaction.commit()
    assert ref_name == ('ada-2' if into == 'a' else 'ada')
    expected_sizes = sizes(ref.site())

    world = worlds((kind, kind))
    site = world.site()
    ada = site['a'][sorted(site['a'].keys())[0]]
    name = IObjectCopier(ada).copyTo(site[into])
    copied = site[into][name]
    assert copied is not ada and copied.name == 'Ada'
    assert expected == [
        ('ObjectCopiedEvent', 'Ada'),
        ('ObjectAddedEvent', 'Ada', None, None, '/' + into, ref_name),
        ('ContainerModifiedEvent', '/' + into)]
    # The same events; an id-named container names the copy by its _id.
    assert describe(events, site) == [
        row[:5] + (name,) if len(row) > 5 else row for row in expected]
    if kind == 'idnames':
        assert bson.ObjectId.is_valid(name) and name != ada.__name__
    else:
        assert name == ref_name
    transaction.commit()
    site = world.site()
    assert site[into][name]._p_oid != ada._p_oid
    assert sizes(site) == expected_sizes
    world.check_documents()


def test_copy_by_hand_uses_the_name_chooser(worlds, events):
    world = worlds(('idnames', 'mongo'))
    site = world.site()
    ada = site['a'].values()[0]
    for target in (site['a'], site['b']):
        new = zope_copy(ada)
        name = INameChooser(target).chooseName(ada.__name__, new)
        target[name] = new
        assert target[name] is new
    assert len(site['a']) == 3 and site['b'].keys() == [ada.__name__]
    transaction.commit()
    world.check_documents()


@pytest.mark.parametrize('kind', ['mongo', 'idnames', 'subdocument',
                                  'simple'])
def test_copying_a_container_copies_its_items(kind, worlds, events, mongo):
    ref = worlds()
    site = ref.site()
    IObjectCopier(site['a']).copyTo(site, 'c')
    expected = describe(events, site)
    transaction.commit()
    site = ref.site()
    assert sorted(site['c'].keys()) == ['ada', 'bob']
    assert getPath(site['c']['ada']) == '/c/ada'

    world = worlds((kind, kind))
    site = world.site()
    before = sorted(site['a'].keys())
    name = IObjectCopier(site['a']).copyTo(site, 'c')
    assert name == 'c'
    assert describe(events, site) == expected
    assert sorted(item.name for item in site['c'].values()) == ['Ada', 'Bob']
    transaction.commit()
    site = world.site()
    copy = site['c']
    assert sorted(site['a'].keys()) == before
    assert sorted(item.name for item in copy.values()) == ['Ada', 'Bob']
    for key, item in copy.items():
        assert getPath(item) == '/c/' + key
        assert item._p_oid not in [i._p_oid for i in site['a'].values()]
    assert ISized(copy).sizeForSorting() == ('item', 2)
    coll = ITEM_COLLECTION if kind == 'simple' else 'person'
    assert mongo.db[coll].count_documents({}) == 4


# --------------------------------------------------------------------------
# Removing a container
# --------------------------------------------------------------------------

@pytest.mark.parametrize('kind', ['mongo', 'idnames', 'subdocument',
                                  'simple'])
def test_removing_a_container_removes_its_items(
        kind, worlds, events, mongo, commands):
    ref = worlds()
    del ref.site()['a']
    expected = describe(events, ref.site())
    transaction.commit()

    world = worlds((kind, kind))
    coll = ITEM_COLLECTION if kind == 'simple' else 'person'
    site = world.site()
    site['all'] = container.AllItemsMongoContainer(coll)
    transaction.commit()
    del events[:]
    site = world.site()
    del site['a']
    assert describe(events, site) == expected
    transaction.abort()
    assert mongo.db[coll].count_documents({}) == 2
    site = world.site()
    del site['a']
    commands.reset()
    transaction.commit()
    # One bulk delete for the items (and one for the container's own
    # document, where it has one).
    assert [cmd['delete'] for name, _, cmd in commands.commands
            if name == 'delete' and cmd['delete'] == coll] == [coll]
    assert [len(cmd['deletes']) for name, _, cmd in commands.commands
            if name == 'delete' and cmd['delete'] == coll] == [2]
    assert mongo.db[coll].count_documents({}) == 0
    assert world.site()['all'].keys() == []


def test_keeping_documents(worlds, events, mongo):
    world = worlds(('mongo', 'mongo'))
    site = world.site()
    site['keep'] = models.KeepingPeople()
    transaction.commit()
    world.site()['keep']['x'] = models.Item('X')
    transaction.commit()
    del world.site()['keep']
    transaction.commit()
    assert mongo.db.person.count_documents({'key': 'x'}) == 1


# --------------------------------------------------------------------------
# Reads never write; lookups see what other containers added
# --------------------------------------------------------------------------

@pytest.mark.parametrize('kind', MOVE_KINDS)
def test_reading_dublin_core_writes_nothing(kind, worlds, mongo, commands):
    from zope.dublincore.interfaces import IZopeDublinCore
    zope.interface.classImplements(
        models.Item, __import__('zmongo.annotation').annotation.
        IMongoAttributeAnnotatable)
    world = worlds((kind, kind))
    site = world.site()
    commands.reset()
    for item in site['a'].values():
        dc = IZopeDublinCore(item)
        assert dc.title == '' and dc.created is None
    assert ISized(site['a']).sizeForSorting() == ('item', 2)
    transaction.commit()
    assert not [n for n in commands.names
                if n in ('insert', 'update', 'delete', 'findAndModify')]
    item = world.site()['a'].values()[0]
    # Read before the commit: a volatile name does not outlive it.
    name = item.__name__
    IZopeDublinCore(item).title = 'Hello'
    transaction.commit()
    coll = ITEM_COLLECTION if kind == 'simple' else 'person'
    assert mongo.db[coll].count_documents({'dc': {'$exists': True}}) == 1
    assert IZopeDublinCore(world.site()['a'][name]).title == 'Hello'


def test_keyed_lookups_see_other_containers_pending_adds(
        datamanager, container_cache):
    datamanager.root['site'] = site = models.Site()
    site['box'] = models.People()
    site['all'] = models.AllPeople()
    transaction.commit()
    site = datamanager.root['site']
    everything = site['all']
    assert 'ada' not in everything
    site['box']['ada'] = models.Person('Ada')
    assert 'ada' in everything
    assert everything['ada'].name == 'Ada'
    assert everything.get('ada') is site['box']['ada']
    assert everything.keys() == ['ada']


def test_a_subdocument_container_held_as_an_attribute(
        datamanager, events, container_cache):
    from tests.traversal_models import Project
    datamanager.root['site'] = site = models.Site()
    site['projects'] = models.Campaigns('projects')
    transaction.commit()
    project = Project('P')
    project.tasks = container.SubDocumentMongoContainer('tasks')
    datamanager.root['site']['projects']['p'] = project
    transaction.commit()
    datamanager.root['site']['projects']['p'].tasks['t'] = models.Item('T')
    transaction.commit()
    tasks = datamanager.root['site']['projects']['p'].tasks
    assert tasks.__name__ == 'tasks'
    assert tasks.__parent__ is datamanager.root['site']['projects']['p']
    assert getPath(tasks['t']) == '/projects/p/tasks/t'
