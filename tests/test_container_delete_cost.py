"""Deleting K items: at most one lookup per item not loaded yet, and one
``delete`` at commit -- never a flush before each lookup.

A removal through a container is answered for by the containers until it is
written: a keyed lookup that finds the document of a removed item leaves it
out.  What zope.container defines (events, ``in`` after a delete, adding a
name again) is checked against a ``BTreeContainer`` run of the same steps.
"""
import pytest
import transaction
from zope.container.btree import BTreeContainer
from zope.lifecycleevent import ObjectRemovedEvent

from tests import container_models as models
from tests.container_support import COLLECTION_KINDS, Home
from tests.container_support import container_cache  # noqa: F401
from tests.container_support import events, registry  # noqa: F401
from zmongo import container

K = 12


def fill(kind, datamanager, count, collection='person'):
    home = Home(kind, datamanager, collection)
    c = home.get()
    for i in range(count):
        c.add(models.Item('item %d' % i), None if kind == 'idnames'
              else 'k%d' % i)
    transaction.commit()
    names = sorted(home.get().keys())
    transaction.commit()
    return home, names


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_deleting_k_items_not_loaded_is_k_lookups_and_one_delete(
        kind, datamanager, mongo, container_cache):
    home, names = fill(kind, datamanager, 2 * K)
    c = home.loaded()
    commands = mongo.commands
    commands.reset()
    for name in names[:K]:
        del c[name]
    # One keyed lookup each (the removal events need the object), no write.
    assert commands.names == ['find'] * K
    transaction.commit()
    assert commands.count() <= K + 3
    assert commands.count('delete') == 1
    assert sorted(home.get().keys()) == names[K:]
    transaction.commit()


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_deleting_k_loaded_items_sends_only_the_delete(
        kind, datamanager, mongo):
    home, names = fill(kind, datamanager, 2 * K)
    c = home.loaded()
    c.items()
    commands = mongo.commands
    commands.reset()
    for name in names[:K]:
        del c[name]
    transaction.commit()
    assert commands.count() <= 3
    assert commands.count('delete') == 1
    assert sorted(home.get().keys()) == names[K:]
    transaction.commit()


def test_the_cost_holds_through_the_container_cache_off(datamanager, mongo):
    """With ``USE_CONTAINER_CACHE`` off the container remembers no name:
    each delete of a loaded item looks its name up again (one query), still
    with no write before it."""
    home, names = fill('mongo', datamanager, 2 * K)
    old = container.USE_CONTAINER_CACHE
    container.USE_CONTAINER_CACHE = False
    try:
        c = home.loaded()
        c.items()
        mongo.commands.reset()
        for name in names[:K]:
            del c[name]
        assert mongo.commands.names == ['find'] * K
    finally:
        container.USE_CONTAINER_CACHE = old
    transaction.commit()
    assert sorted(home.get().keys()) == names[K:]
    transaction.commit()


# -- what zope.container defines, against the reference ----------------------

def _steps(c, names, add):
    """Delete two items, look at what is left, add one name back; the
    observable outcome."""
    seen = []
    del c[names[0]]
    del c[names[1]]
    seen.append(('in after del', names[0] in c, names[1] in c,
                 names[2] in c))
    seen.append(('get after del', c.get(names[0]), c.get(names[1])))
    try:
        c[names[0]]
    except KeyError:
        seen.append(('getitem after del', 'KeyError'))
    added = add(c, names[0])
    seen.append(('in after add', names[0] in c, c[names[0]] is added,
                 names[1] in c))
    seen.append(('keys', sorted(c.keys())))
    return seen


def _btree_outcome(names):
    c = BTreeContainer()
    for name in names:
        c[name] = models.Item(name)

    def add(c, name):
        item = c[name] = models.Item('again')
        return item
    return _steps(c, names, add)


@pytest.mark.parametrize('kind', ['mongo', 'allitems', 'subdocument'])
def test_in_get_and_adding_again_after_a_delete_are_zope_containers(
        kind, datamanager, mongo, container_cache):
    home, names = fill(kind, datamanager, 5)
    c = home.loaded()

    def add(c, name):
        item = c[name] = models.Item('again')
        return item
    got = _steps(c, names, add)
    assert got == _btree_outcome(names)
    transaction.commit()
    c = home.get()
    assert sorted(c.keys()) == sorted([names[0]] + names[2:])
    assert c[names[0]].name == 'again'
    transaction.commit()


def test_an_id_named_item_added_again_under_its_id_is_found(
        datamanager, mongo, container_cache):
    """Deleted, then a new item added under the same ``_id``: found again,
    before and after its insert is written."""
    home, names = fill('idnames', datamanager, 3)
    c = home.loaded()
    del c[names[0]]
    assert names[0] not in c
    c[names[0]] = models.Item('again')
    assert c[names[0]].name == 'again'
    datamanager.flush()
    assert names[0] in c
    assert c[names[0]].name == 'again'
    transaction.commit()
    assert home.get()[names[0]].name == 'again'
    transaction.commit()


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_deleting_fires_the_removal_events(
        kind, datamanager, mongo, events):
    home, names = fill(kind, datamanager, 6)
    c = home.loaded()
    del events[:]
    for name in names[:3]:
        del c[name]
    removed = [(e.oldName, e.oldParent is c) for e in events
               if isinstance(e, ObjectRemovedEvent)]
    assert removed == [(name, True) for name in names[:3]]
    transaction.commit()


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_a_query_after_deletes_does_not_find_them(
        kind, datamanager, mongo, container_cache):
    home, names = fill(kind, datamanager, 6)
    c = home.loaded()
    for name in names[:3]:
        del c[name]
    assert sorted(item.__name__ for item in c.find()) == names[3:]
    assert sorted(item.__name__ for item in
                  c.find({'name': {'$in': ['item %d' % i
                                           for i in range(6)]}})) == names[3:]
    assert len(c) == 3
    transaction.abort()
    assert sorted(home.get().keys()) == names
    transaction.commit()


def test_an_all_items_container_finds_another_item_of_a_deleted_name(
        datamanager, mongo, container_cache):
    """Names repeat across the parents an all-items container sees: after
    one ``a`` is deleted through its own container, the other ``a`` is
    still there."""
    first = Home('mongo', datamanager).get()
    second = Home('mongo', datamanager).get()
    everything = container.AllItemsMongoContainer('person')
    datamanager.root['all'] = everything
    first['a'] = models.Item('first a')
    second['a'] = models.Item('second a')
    transaction.commit()
    del first['a']
    assert 'a' not in first
    assert 'a' in everything
    assert everything['a'].name == 'second a'
    transaction.commit()
    assert [item.name for item in everything.values()] == ['second a']
    transaction.commit()


def test_another_container_over_the_collection_does_not_see_a_deleted_item(
        datamanager, mongo, container_cache):
    home, names = fill('mongo', datamanager, 4)
    c = home.loaded()
    everything = container.AllItemsMongoContainer('person')
    datamanager.root['all'] = everything
    transaction.commit()
    c = home.loaded()
    del c[names[0]]
    # (Its names may repeat: finding the deleted document, it asks the
    # server again once the delete is written.)
    assert names[0] not in everything
    assert names[1] in everything
    assert sorted(everything.keys()) == names[1:]
    transaction.commit()


def test_a_savepoint_rollback_brings_a_deleted_item_back(
        datamanager, mongo, container_cache):
    home, names = fill('mongo', datamanager, 4)
    c = home.loaded()
    savepoint = transaction.savepoint()
    del c[names[0]]
    assert names[0] not in c
    savepoint.rollback()
    c = home.loaded()
    assert names[0] in c
    assert c[names[0]].name == 'item 0'
    transaction.commit()
    assert sorted(home.get().keys()) == names
    transaction.commit()
