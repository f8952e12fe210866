"""Adversarial review of issue 14: the Zope Toolkit's own operations.

Each test runs the scenario on the reference (``BTreeContainer``s in a
``zope.site`` ``Folder`` in ZODB) and on zmongo's containers, through the
ZTK's own adapters (``IContainerItemRenamer``, ``IObjectMover``,
``IObjectCopier``, ``zope.copy``, ``INameChooser``), and compares events,
names, paths and, read with raw pymongo, the documents.

Tests whose docstring describes a zmongo behaviour that differs from the
``BTreeContainer``'s fail now: each pins one problem found by the review
(what happens, what a ``BTreeContainer`` does).  Tests whose docstring
starts with "Held" are attacks that held.
"""
import bson
import pytest
import transaction
import zope.component
import zope.interface
from zope.container.btree import BTreeContainer
from zope.container.interfaces import INameChooser
from zope.copy import copy as zope_copy
from zope.copypastemove.interfaces import IContainerItemRenamer
from zope.copypastemove.interfaces import IObjectCopier
from zope.copypastemove.interfaces import IObjectMover
from zope.size.interfaces import ISized
from zope.traversing.api import getPath, traverse

from tests import container_models as models
from tests.container_support import container_cache  # noqa: F401
from tests.container_support import make, registry  # noqa: F401
from tests.test_container_moves import ITEM_COLLECTION
from tests.test_container_moves import MOVE_KINDS
from tests.test_container_moves import describe
from tests.test_container_moves import events  # noqa: F401
from tests.test_container_moves import sizes
from tests.test_container_moves import worlds  # noqa: F401
from zmongo import container

WRITES = ('insert', 'update', 'delete', 'findAndModify', 'createIndexes')


def raw_docs(mongo):
    """Every document of the item collections, comparable."""
    return {c: sorted(mongo.db[c].find(), key=lambda d: str(d['_id']))
            for c in ('person', ITEM_COLLECTION, 'site', 'campaigns')}


def check_documents(world):
    """``world.check_documents()``, reading simple containers' names also
    when their ``data`` is stored as ``dict_data`` (keys with '.' or '$')."""
    raw_names = world.raw_names

    def names(name):
        box = world.site()[name]
        if isinstance(box, container.SimpleMongoContainer):
            doc = world.mongo.db[box._p_oid.collection].find_one(
                {'_id': box._p_oid.id})
            data = doc['data']
            if list(data) == ['dict_data']:
                return sorted(k for k, _ in data['dict_data'])
        return raw_names(name)

    world.raw_names = names
    try:
        world.check_documents()
    finally:
        del world.raw_names


def first_name(box):
    return sorted(box.keys())[0]


# --------------------------------------------------------------------------
# Rename
# --------------------------------------------------------------------------

@pytest.mark.parametrize('kind', ['mongo', 'subdocument', 'simple'])
def test_rename_to_an_existing_name(kind, worlds, events):
    """Held: DuplicationError, no event, nothing changed (as BTree)."""
    from zope.exceptions import DuplicationError
    ref = worlds()
    with pytest.raises(DuplicationError):
        IContainerItemRenamer(ref.site()['a']).renameItem('bob', 'ada')
    assert events == []
    world = worlds((kind, kind))
    site = world.site()
    with pytest.raises(DuplicationError):
        IContainerItemRenamer(site['a']).renameItem('bob', 'ada')
    assert events == []
    # By hand, as for a BTreeContainer: a KeyError for the taken name.
    with pytest.raises(KeyError):
        site['a']['ada'] = site['a']['bob']
    assert events == []
    transaction.commit()
    site = world.site()
    assert sorted(site['a'].keys()) == ['ada', 'bob']
    assert site['a']['ada'].name == 'Ada' and site['a']['bob'].name == 'Bob'
    check_documents(world)


@pytest.mark.parametrize('kind', ['mongo', 'subdocument', 'simple'])
def test_rename_to_the_same_name(kind, worlds, events, mongo, commands):
    """Held: DuplicationError (zope.copypastemove's renamer checks the new
    name first), no event, no write (as BTree); moving to the same place
    with the mover is a no-op."""
    from zope.exceptions import DuplicationError
    ref = worlds()
    with pytest.raises(DuplicationError):
        IContainerItemRenamer(ref.site()['a']).renameItem('bob', 'bob')
    assert IObjectMover(ref.site()['a']['bob']).moveTo(
        ref.site()['a'], 'bob') is None
    assert events == []
    world = worlds((kind, kind))
    before = raw_docs(mongo)
    commands.reset()
    site = world.site()
    with pytest.raises(DuplicationError):
        IContainerItemRenamer(site['a']).renameItem('bob', 'bob')
    assert IObjectMover(site['a']['bob']).moveTo(site['a'], 'bob') is None
    assert events == []
    transaction.commit()
    assert not [n for n in commands.names if n in WRITES]
    assert raw_docs(mongo) == before


@pytest.mark.parametrize('kind', ['mongo', 'subdocument', 'simple'])
def test_rename_then_abort(kind, worlds, events, mongo):
    """Held: abort puts back the database and the objects."""
    world = worlds((kind, kind))
    before = raw_docs(mongo)
    site = world.site()
    bob = site['a']['bob']
    IContainerItemRenamer(site['a']).renameItem('bob', 'robert')
    # A query flushes the rename first (standalone: written, then undone).
    assert sorted(site['a'].keys()) == ['ada', 'robert']
    transaction.abort()
    assert raw_docs(mongo) == before
    site = world.site()
    assert sorted(site['a'].keys()) == ['ada', 'bob']
    assert 'robert' not in site['a']
    assert site['a']['bob'] is bob or site['a']['bob']._p_oid == bob._p_oid
    assert getPath(site['a']['bob']) == '/a/bob'
    check_documents(world)


NAMES = ['price$', 'a.b', 'index.html', '{"$ne": null}', 'caf\xe9 \u2603',
         '\U0001F600', 'x' * 3000, 'with space', '...']


@pytest.mark.parametrize('kind', ['mongo', 'subdocument', 'simple'])
@pytest.mark.parametrize('name', NAMES, ids=lambda n: repr(n)[:20])
def test_rename_to_odd_names(kind, name, worlds, events):
    """Held for every name: renamed, found after commit, exactly."""
    ref = worlds()
    IContainerItemRenamer(ref.site()['a']).renameItem('bob', name)
    transaction.commit()
    assert name in ref.site()['a']
    world = worlds((kind, kind))
    site = world.site()
    IContainerItemRenamer(site['a']).renameItem('bob', name)
    transaction.commit()
    site = world.site()
    assert sorted(site['a'].keys()) == sorted(['ada', name])
    assert site['a'][name].name == 'Bob'
    assert getPath(site['a'][name]) == '/a/' + name
    check_documents(world)


# --------------------------------------------------------------------------
# Moves in one transaction
# --------------------------------------------------------------------------

@pytest.mark.parametrize('kind', ['mongo', 'subdocument', 'simple'])
def test_move_then_rename_in_one_transaction(kind, worlds, events):
    ref = worlds()
    site = ref.site()
    IObjectMover(site['a']['ada']).moveTo(site['b'])
    IContainerItemRenamer(site['b']).renameItem('ada', 'adele')
    expected = describe(events, site)
    transaction.commit()

    world = worlds((kind, kind))
    site = world.site()
    IObjectMover(site['a']['ada']).moveTo(site['b'])
    IContainerItemRenamer(site['b']).renameItem('ada', 'adele')
    assert describe(events, site) == expected
    transaction.commit()
    site = world.site()
    assert site['a'].keys() == ['bob'] and site['b'].keys() == ['adele']
    check_documents(world)


@pytest.mark.parametrize('kind', ['mongo', 'subdocument', 'simple'])
def test_move_there_and_back_with_the_mover(kind, worlds, events):
    ref = worlds()
    site = ref.site()
    IObjectMover(site['a']['ada']).moveTo(site['b'])
    IObjectMover(site['b']['ada']).moveTo(site['a'])
    expected = describe(events, site)
    transaction.commit()
    world = worlds((kind, kind))
    site = world.site()
    IObjectMover(site['a']['ada']).moveTo(site['b'])
    IObjectMover(site['b']['ada']).moveTo(site['a'])
    assert describe(events, site) == expected
    transaction.commit()
    site = world.site()
    assert sorted(site['a'].keys()) == ['ada', 'bob'] and \
        site['b'].keys() == []
    check_documents(world)


@pytest.mark.parametrize('kind', ['mongo', 'subdocument'])
def test_move_into_a_container_holding_that_name(kind, worlds, events):
    """Held: the name chooser picks ``ada-2`` (unique index respected)."""
    ref = worlds()
    site = ref.site()
    site['b']['ada'] = models.SimplePerson('Other')
    assert IObjectMover(site['a']['ada']).moveTo(site['b']) == 'ada-2'
    world = worlds((kind, kind))
    site = world.site()
    site['b']['ada'] = models.Item('Other')
    assert IObjectMover(site['a']['ada']).moveTo(site['b']) == 'ada-2'
    transaction.commit()
    site = world.site()
    assert sorted(site['b'].keys()) == ['ada', 'ada-2']
    check_documents(world)


@pytest.mark.parametrize('kind', ['mongo', 'subdocument'])
def test_old_name_is_taken_between_the_two_steps_of_a_move(
        kind, worlds, events):
    """``b['ada'] = a['ada']`` and, before ``del a['ada']``, a new
    ``a['ada'] = ...``.  BTreeContainer: the old name is still taken
    (``KeyError``) until ``del a['ada']``.  zmongo: the new item is
    accepted, and the following ``del a['ada']`` (meant for the moved
    item) lets go of it silently, so ``a['ada']`` is the *new* item
    after a del that should have emptied the name."""
    ref = worlds()
    site = ref.site()
    site['b']['ada'] = site['a']['ada']
    with pytest.raises(KeyError):
        site['a']['ada'] = models.SimplePerson('New')

    world = worlds((kind, kind))
    site = world.site()
    site['b']['ada'] = site['a']['ada']
    with pytest.raises(KeyError):
        site['a']['ada'] = models.Item('New')


# --------------------------------------------------------------------------
# Copies
# --------------------------------------------------------------------------

@pytest.mark.parametrize('kind', MOVE_KINDS)
def test_copy_then_delete_the_original(kind, worlds, events):
    ref = worlds()
    site = ref.site()
    IObjectCopier(site['a']['bob']).copyTo(site['b'])
    del site['a']['bob']
    transaction.commit()
    world = worlds((kind, kind))
    site = world.site()
    bob = site['a'][first_name(site['a']) if kind == 'idnames' else 'bob']
    bob_name = bob.name
    name = IObjectCopier(bob).copyTo(site['b'])
    del site['a'][bob.__name__]
    transaction.commit()
    site = world.site()
    assert len(site['a']) == 1 and site['b'][name].name == bob_name
    check_documents(world)


@pytest.mark.parametrize('target', ['simple'])
@pytest.mark.parametrize('source', ['mongo', 'subdocument'])
def test_copy_by_hand_into_a_simple_container(source, target, worlds, events):
    """Held: ``new = zope.copy.copy(item); simple[name] = new`` (copies by
    ``zope.copy.copy`` get new documents): the copy is an item of the
    target only, although ``zope.copy`` copied the source's ``key`` /
    ``parent`` fields -- no duplicate in the source container, no
    ``DuplicateKeyError`` from the unique ``(parent, key)`` index."""
    ref = worlds()
    site = ref.site()
    new = zope_copy(site['a']['ada'])
    site['b'][INameChooser(site['b']).chooseName('ada', new)] = new
    transaction.commit()
    assert sorted(ref.site()['a'].keys()) == ['ada', 'bob']

    world = worlds((source, target))
    site = world.site()
    new = zope_copy(site['a']['ada'])
    site['b'][INameChooser(site['b']).chooseName('ada', new)] = new
    transaction.commit()
    site = world.site()
    assert sorted(site['a'].keys()) == ['ada', 'bob']
    assert site['b'].keys() == ['ada']
    check_documents(world)


def deep_world(datamanager):
    """site / camps (Campaigns) / c1 (a Campaign, itself a container) /
    x, y (Items)."""
    datamanager.root['site'] = site = models.Site()
    site['camps'] = models.Campaigns()
    transaction.commit()
    site = datamanager.root['site']
    site['camps']['c1'] = models.Campaign('C1')
    transaction.commit()
    site = datamanager.root['site']
    site['camps']['c1']['x'] = models.Item('X')
    site['camps']['c1']['y'] = models.Item('Y')
    transaction.commit()
    return datamanager.root['site']


def reference_deep():
    from tests.test_container_moves import Reference
    ref = Reference(names=())
    site = ref.site()
    site['camps'] = BTreeContainer()
    site['camps']['c1'] = BTreeContainer()
    site['camps']['c1']['x'] = models.SimplePerson('X')
    site['camps']['c1']['y'] = models.SimplePerson('Y')
    transaction.commit()
    return ref


def test_deep_copy_of_a_container_holding_containers(
        datamanager, mongo, events, container_cache):
    """``IObjectCopier(camps).copyTo(site, 'copy')`` where ``camps`` (a
    Mongo container) holds ``c1`` (a Mongo container, item of ``camps``)
    holding ``x`` and ``y``.  BTreeContainer: ``copy/c1`` has copies of
    ``x`` and ``y``.  zmongo: ``copy/c1`` is empty, before and after
    commit -- the copies of ``c1``'s items wait in ``c1``'s copy
    (``_v_m_copied_items``) for an ``ObjectAddedEvent`` that never reaches
    it: zope.container's ``dispatchToSublocations`` lists ``copy``'s items
    before zmongo's ``adopt_copied_items`` has stored them (see
    ``test_copied_items_get_their_added_event``).  Silent data loss in the
    copy; deleting the original afterwards loses ``x`` and ``y`` for
    good."""
    ref = reference_deep()
    site = ref.site()
    IObjectCopier(site['camps']).copyTo(site, 'copy')
    transaction.commit()
    site = ref.site()
    assert sorted(site['copy']['c1'].keys()) == ['x', 'y']
    ref.close()

    site = deep_world(datamanager)
    IObjectCopier(site['camps']).copyTo(site, 'copy')
    assert sorted(site['copy']['c1'].keys()) == ['x', 'y']
    transaction.commit()
    site = datamanager.root['site']
    assert site['copy'].keys() == ['c1']
    assert sorted(site['copy']['c1'].keys()) == ['x', 'y']
    assert getPath(site['copy']['c1']['x']) == '/copy/c1/x'
    assert site['copy']['c1']._p_oid != site['camps']['c1']._p_oid
    assert mongo.db.person.count_documents({}) == 4
    assert mongo.db.campaigns.count_documents({}) == 2
    # Then delete the original tree: the copy stays whole.
    del site['camps']
    transaction.commit()
    site = datamanager.root['site']
    assert sorted(site['copy']['c1'].keys()) == ['x', 'y']
    assert mongo.db.person.count_documents({}) == 2
    assert mongo.db.campaigns.count_documents({}) == 1


def test_deep_removal_removes_grandchildren(datamanager, mongo, events,
                                            container_cache):
    """Held: removing ``camps`` deletes ``c1`` and its items' documents;
    abort first undoes it."""
    site = deep_world(datamanager)
    before = raw_docs(mongo)
    del site['camps']
    assert datamanager.root['site'].keys() == []
    transaction.abort()
    assert raw_docs(mongo) == before
    site = datamanager.root['site']
    del site['camps']
    transaction.commit()
    assert mongo.db.person.count_documents({}) == 0
    assert mongo.db.campaigns.count_documents({}) == 0


# --------------------------------------------------------------------------
# Values that are not persistent (ContainedProxy)
# --------------------------------------------------------------------------

@pytest.mark.parametrize('kind', ['mongo', 'subdocument', 'simple'])
def test_renaming_a_plain_value(kind, worlds, events, mongo):
    """Renaming an item that is a plain value (``a['s'] = 'FOO'``, handed
    out in a ``ContainedProxy``) with ``IContainerItemRenamer``.
    BTreeContainer: ObjectMovedEvent, ContainerModifiedEvent x2 (the
    proxy moves; nothing is removed).  zmongo: the Mongo container stores
    the value in a *new* ``ContainedValue`` document for the new name and
    ``del a['s']`` then treats the old document as a plain removal: it
    re-locates the shared proxy back to ``('a', 's')`` and fires an
    ``ObjectRemovedEvent`` for the value that was only renamed."""
    ref = worlds()
    site = ref.site()
    site['a']['s'] = 'FOO'
    transaction.commit()
    site = ref.site()
    del events[:]
    IContainerItemRenamer(site['a']).renameItem('s', 't')
    expected = describe(events, site)
    transaction.commit()
    assert ref.site()['a']['t'] == 'FOO'

    world = worlds((kind, kind))
    site = world.site()
    site['a']['s'] = 'FOO'
    transaction.commit()
    site = world.site()
    del events[:]
    IContainerItemRenamer(site['a']).renameItem('s', 't')
    assert describe(events, site) == expected
    proxy = site['a']['t']
    assert proxy == 'FOO' and proxy.__name__ == 't'
    transaction.commit()
    site = world.site()
    assert site['a']['t'] == 'FOO' and 's' not in site['a']


# --------------------------------------------------------------------------
# Savepoints
# --------------------------------------------------------------------------

@pytest.mark.parametrize('kind', ['mongo', 'subdocument', 'simple'])
def test_savepoint_rollback_of_a_move(kind, worlds, events):
    """Move ``a/ada`` to ``b`` inside a savepoint, roll back, then look.
    BTreeContainer: ``ada`` is back in ``a``, ``b`` is empty."""
    ref = worlds()
    site = ref.site()
    sp = transaction.savepoint()
    IObjectMover(site['a']['ada']).moveTo(site['b'])
    sp.rollback()
    assert sorted(site['a'].keys()) == ['ada', 'bob'] and \
        list(site['b'].keys()) == []
    assert 'ada' in site['a'] and 'ada' not in site['b']
    transaction.commit()

    world = worlds((kind, kind))
    site = world.site()
    site['a'].items()   # the container has seen its items
    sp = transaction.savepoint()
    IObjectMover(site['a']['ada']).moveTo(site['b'])
    sp.rollback()
    assert 'ada' in site['a'] and 'ada' not in site['b']
    assert sorted(site['a'].keys()) == ['ada', 'bob']
    assert site['b'].keys() == []
    assert getPath(site['a']['ada']) == '/a/ada'
    transaction.commit()
    site = world.site()
    assert sorted(site['a'].keys()) == ['ada', 'bob']
    check_documents(world)


@pytest.mark.parametrize('kind', ['mongo', 'subdocument', 'simple'])
def test_savepoint_rollback_of_a_rename(kind, worlds, events):
    """Rename ``bob`` to ``robert`` in a savepoint, roll back.
    BTreeContainer: ``bob`` is back, ``robert`` is gone."""
    world = worlds((kind, kind))
    site = world.site()
    site['a'].items()
    sp = transaction.savepoint()
    IContainerItemRenamer(site['a']).renameItem('bob', 'robert')
    sp.rollback()
    assert 'bob' in site['a'] and 'robert' not in site['a']
    assert sorted(site['a'].keys()) == ['ada', 'bob']
    assert site['a']['bob'].name == 'Bob'
    transaction.commit()
    site = world.site()
    assert sorted(site['a'].keys()) == ['ada', 'bob']
    check_documents(world)


@pytest.mark.parametrize('kind', ['mongo', 'subdocument', 'simple'])
def test_savepoint_rollback_of_a_copy(kind, worlds, events):
    """Copy ``a/ada`` into ``b`` in a savepoint, roll back.
    BTreeContainer: ``b`` is empty again, nothing is stored."""
    world = worlds((kind, kind))
    site = world.site()
    site['b'].items()
    sp = transaction.savepoint()
    IObjectCopier(site['a']['ada']).copyTo(site['b'])
    sp.rollback()
    assert 'ada' not in site['b'] and site['b'].keys() == []
    assert len(site['b']) == 0
    transaction.commit()
    site = world.site()
    assert site['b'].keys() == []
    check_documents(world)


# --------------------------------------------------------------------------
# Abort after each operation
# --------------------------------------------------------------------------

def _op_rename(site):
    IContainerItemRenamer(site['a']).renameItem('bob', 'robert')


def _op_move(site):
    IObjectMover(site['a']['ada']).moveTo(site['b'])


def _op_copy(site):
    IObjectCopier(site['a']['ada']).copyTo(site['a'])


def _op_copy_container(site):
    IObjectCopier(site['a']).copyTo(site, 'c')


def _op_remove_container(site):
    del site['a']


OPS = {'rename': _op_rename, 'move': _op_move, 'copy': _op_copy,
       'copy_container': _op_copy_container,
       'remove_container': _op_remove_container}


@pytest.mark.parametrize('kind', ['mongo', 'subdocument', 'simple'])
@pytest.mark.parametrize('op', sorted(OPS))
def test_abort_after_each_operation(kind, op, worlds, events, mongo):
    """Held: after the operation and a flushing query, abort leaves the
    database exactly as before and the objects as they were."""
    world = worlds((kind, kind))
    before = raw_docs(mongo)
    site = world.site()
    OPS[op](site)
    # Make the data manager write (standalone: written, then undone).
    mongo_box = site.get('b')
    if mongo_box is not None:
        len(mongo_box)
    if 'a' in site:
        len(site['a'])
    transaction.abort()
    assert raw_docs(mongo) == before
    site = world.site()
    assert sorted(site.keys()) == ['a', 'b']
    assert sorted(site['a'].keys()) == ['ada', 'bob']
    assert site['b'].keys() == []
    check_documents(world)


@pytest.mark.parametrize('kind', ['mongo', 'subdocument'])
def test_removing_a_big_container_is_one_delete_undone_by_abort(
        kind, worlds, events, mongo, commands):
    names = ['n%03d' % i for i in range(150)]
    world = worlds((kind, kind), names=names)
    site = world.site()
    site['all'] = container.AllItemsMongoContainer('person')
    transaction.commit()
    before = raw_docs(mongo)
    site = world.site()
    del site['a']
    # A query: the deletes are written (standalone: undone at abort).
    assert len(world.site()['all']) == 0
    transaction.abort()
    assert raw_docs(mongo) == before
    assert len(world.site()['all']) == 150
    transaction.commit()
    site = world.site()
    del site['a']
    commands.reset()
    transaction.commit()
    deletes = [cmd for name, _, cmd in commands.commands
               if name == 'delete' and cmd['delete'] == 'person']
    assert len(deletes) == 1 and len(deletes[0]['deletes']) == 150
    assert mongo.db.person.count_documents({}) == 0


# --------------------------------------------------------------------------
# Reads never write
# --------------------------------------------------------------------------

@pytest.mark.parametrize('kind', MOVE_KINDS)
def test_reads_never_write(kind, worlds, mongo, commands):
    """Held: listing, sizes, paths, traversal, Dublin Core and annotations
    of items and of the containers themselves write nothing."""
    from zope.annotation.interfaces import IAnnotations
    from zope.dublincore.interfaces import IZopeDublinCore
    from zmongo.annotation import IMongoAttributeAnnotatable
    zope.interface.classImplements(models.Item, IMongoAttributeAnnotatable)
    world = worlds((kind, kind))
    commands.reset()
    site = world.site()
    for box in (site['a'], site['b']):
        ISized(box).sizeForSorting()
        list(box.keys()), len(box)
        for name, item in box.items():
            getPath(item)
            traverse(site, getPath(item))
            dc = IZopeDublinCore(item)
            dc.title, dc.modified, dc.creators
            IAnnotations(item).get('zmongo.test')
            'zmongo.test' in IAnnotations(item)
            INameChooser(box).chooseName(name, item)
            IObjectMover(item).moveableTo(site['b'])
            IObjectCopier(item).copyableTo(site['b'])
    transaction.commit()
    assert [n for n in commands.names if n in WRITES] == []


# --------------------------------------------------------------------------
# A container reached through another path: Zope's "into itself" check
# --------------------------------------------------------------------------

class Node(container.MongoContained, container.MongoContainer):
    """A container that is an item of containers over its own collection."""
    _p_mongo_collection = 'nodes'
    _m_collection = 'nodes'

    def __init__(self, name=''):
        super().__init__()
        self.name = name


class Nodes(container.MongoContainer):
    _m_collection = 'nodes'


class AllNodes(container.AllItemsMongoContainer):
    _m_collection = 'nodes'


def node_world(datamanager):
    datamanager.root['site'] = site = models.Site()
    site['tree'] = Nodes()
    site['all'] = AllNodes()
    transaction.commit()
    site = datamanager.root['site']
    site['tree']['n1'] = Node('N1')
    transaction.commit()
    site = datamanager.root['site']
    site['tree']['n1']['n2'] = Node('N2')
    transaction.commit()
    return datamanager.root['site']


def test_moving_a_container_into_its_own_item_is_refused(
        datamanager, mongo, events, container_cache):
    """Held: ``tree/n1`` cannot move into ``tree/n1/n2`` nor into itself:
    ``TypeError`` from ``moveableTo`` and ``moveTo``, exactly as
    zope.copypastemove does for a BTreeContainer (its ``moveableTo`` only
    catches ``Invalid``)."""
    ref = reference_deep()
    c1 = ref.site()['camps']['c1']
    c1['inner'] = BTreeContainer()
    for target in (c1['inner'], c1):
        with pytest.raises(TypeError):
            IObjectMover(c1).moveableTo(target)
        with pytest.raises(TypeError):
            IObjectMover(c1).moveTo(target)
    ref.close()
    del events[:]
    site = node_world(datamanager)
    del events[:]
    n1 = site['tree']['n1']
    n2 = n1['n2']
    for target in (n2, n1):
        with pytest.raises(TypeError):
            IObjectMover(n1).moveableTo(target)
        with pytest.raises(TypeError):
            IObjectMover(n1).moveTo(target)
    assert events == []


def test_moving_a_container_into_its_item_reached_through_all_items(
        datamanager, mongo, events, container_cache):
    """The ZMI pastes into the container it shows: ``/all/n2`` (an
    ``AllItemsMongoContainer`` over the nodes' collection) is the object
    ``tree/n1/n2``, but reached there its ``__parent__`` is ``all``, so
    Zope's check (``checkObject`` walks the target's ``__parent__`` chain
    looking for the moved object) does not see that ``n1`` would move into
    its own item.  zmongo: ``moveableTo`` says True (the ZMI offers Paste)
    and ``moveTo`` makes ``n1`` a child of ``n2``, a cycle: the
    ``ObjectMovedEvent`` dispatch to sublocations then recurses n1 -> n2
    -> n1 ... until ``RecursionError`` (a 500; had anything caught it and
    committed, both nodes would have vanished from ``tree``).
    BTreeContainer: an item has one parent, and the same paste is refused
    with ``TypeError`` before anything changes."""
    site = node_world(datamanager)
    n1 = site['tree']['n1']
    target = site['all']['n2']      # the same object as n1['n2']
    with pytest.raises(TypeError):
        IObjectMover(n1).moveableTo(target)
    with pytest.raises(TypeError):
        IObjectMover(n1).moveTo(target)
    transaction.commit()
    site = datamanager.root['site']
    assert site['tree'].keys() == ['n1']
    assert site['tree']['n1'].keys() == ['n2']


# --------------------------------------------------------------------------
# Copied items get their ObjectAddedEvent
# --------------------------------------------------------------------------

@pytest.mark.parametrize('kind', ['mongo', 'idnames', 'subdocument',
                                  'simple'])
def test_copied_items_get_their_added_event(kind, worlds, events):
    """Copying a container: Zope dispatches the copy's ObjectAddedEvent to
    its items (``dispatchToSublocations``), which is how IntIds, catalogs
    and nested containers learn about them.  BTreeContainer (and
    SimpleMongoContainer): each item copy gets it.  Mongo containers: none
    does -- zope.container's dispatcher lists the copy's items before
    zmongo's ``adopt_copied_items`` (a later subscriber of the same event)
    has stored them, so the list is empty; the items are then stored with
    no event at all (and a nested container's copied items never are)."""
    from zope.lifecycleevent.interfaces import IObjectAddedEvent
    from zope.location.interfaces import ILocation
    seen = []

    @zope.component.adapter(ILocation, IObjectAddedEvent)
    def handler(obj, event):
        if obj is not event.object:
            seen.append(getattr(obj, 'name', obj))

    zope.component.provideHandler(handler)
    ref = worlds()
    site = ref.site()
    IObjectCopier(site['a']).copyTo(site, 'c')
    expected = sorted(seen)
    assert expected == ['Ada', 'Bob']
    del seen[:]
    world = worlds((kind, kind))
    site = world.site()
    IObjectCopier(site['a']).copyTo(site, 'c')
    assert sorted(seen) == expected


# --------------------------------------------------------------------------
# Concurrent writers
# --------------------------------------------------------------------------

@pytest.fixture
def two(datamanager, mongo, events):
    """A committed site (``a``: ada, bob; ``b`` empty; MongoContainers over
    ``person``), and two writers (transaction manager, data manager) in
    the mode of ``datamanager``."""
    datamanager.root['site'] = site = models.Site()
    site['a'], site['b'] = models.People(), models.People()
    transaction.commit()
    site = datamanager.root['site']
    site['a']['ada'] = models.Item('Ada')
    site['a']['bob'] = models.Item('Bob')
    transaction.commit()
    transaction.abort()
    writers = []
    for _ in range(2):
        tm = transaction.TransactionManager()
        writers.append((tm, mongo.make_datamanager(
            transactions=datamanager._transactions, transaction_manager=tm)))
    yield writers
    for tm, _ in writers:
        tm.abort()


def keys_in_db(mongo, name):
    site = mongo.db.site.find_one()
    ref = site['data'][name]
    return sorted(doc['key'] for doc in mongo.db.person.find({'parent': ref}))


def test_two_writers_add_the_same_name(two, mongo, container_cache):
    """Two transactions add ``carl`` to ``a``.  BTreeContainer: the second
    commit gets a ConflictError (a TransientError, so
    ``transaction.manager.attempts()`` retries, and the retry sees
    ``carl`` taken: a clean ``KeyError`` from ``a['carl'] = ...``).
    zmongo: the unique ``(parent, key)`` index keeps exactly one ``carl``
    (held in both modes); with server transactions the loser gets
    ``ConflictError`` (transient, retried), but on a standalone server it
    gets ``zmongo.interfaces.DuplicateKeyError`` (a ``ValueError``), so
    ``attempts()`` does not retry and the request fails at commit."""
    (tm1, dm1), (tm2, dm2) = two
    dm1.root['site']['a']['carl'] = models.Item('Carl 1')
    dm2.root['site']['a']['carl'] = models.Item('Carl 2')
    tm1.commit()
    with pytest.raises(Exception) as info:
        tm2.commit()
    tm2.abort()
    assert keys_in_db(mongo, 'a') == ['ada', 'bob', 'carl']
    err = info.value
    assert isinstance(err, transaction.interfaces.TransientError), \
        repr(err)


def test_two_writers_rename_the_same_item(two, mongo, container_cache):
    """Two transactions rename ``bob`` (``robert``, ``bobby``).  With the
    default (no check) handler the last writer wins; never two items."""
    (tm1, dm1), (tm2, dm2) = two
    IContainerItemRenamer(dm1.root['site']['a']).renameItem('bob', 'robert')
    IContainerItemRenamer(dm2.root['site']['a']).renameItem('bob', 'bobby')
    tm1.commit()
    try:
        tm2.commit()
    except Exception:
        tm2.abort()
    assert keys_in_db(mongo, 'a') in (['ada', 'bobby'], ['ada', 'robert'])
    assert mongo.db.person.count_documents({}) == 2


def test_rename_and_add_of_the_same_name(two, mongo, container_cache):
    """T1 renames ``bob`` to ``carl``, T2 adds a new ``carl``; one of them
    fails, nothing is half-done."""
    (tm1, dm1), (tm2, dm2) = two
    IContainerItemRenamer(dm1.root['site']['a']).renameItem('bob', 'carl')
    dm2.root['site']['a']['carl'] = models.Item('Carl')
    tm2.commit()
    with pytest.raises(Exception):
        tm1.commit()
    tm1.abort()
    assert keys_in_db(mongo, 'a') == ['ada', 'bob', 'carl']
    assert mongo.db.person.count_documents({}) == 3


def test_move_of_an_item_another_writer_deleted(two, mongo,
                                                container_cache):
    """T2 deletes ``ada`` and commits; T1 (which loaded it before) moves
    it to ``b`` and commits.  BTreeContainer: ConflictError for T1.
    zmongo (no-check handler): T1's re-parenting update must not bring
    the deleted document back half-made or fail silently with ``b``
    listing nothing it claimed to hold."""
    (tm1, dm1), (tm2, dm2) = two
    site1 = dm1.root['site']
    ada = site1['a']['ada']
    ada.name    # loaded
    del dm2.root['site']['a']['ada']
    tm2.commit()
    try:
        IObjectMover(ada).moveTo(site1['b'])
        tm1.commit()
    except Exception:
        tm1.abort()
    docs = list(mongo.db.person.find())
    # Either the move failed (ada stays deleted) or ada is whole in b.
    assert keys_in_db(mongo, 'a') == ['bob']
    assert keys_in_db(mongo, 'b') in ([], ['ada'])
    for doc in docs:
        assert 'name' in doc and 'key' in doc, doc
