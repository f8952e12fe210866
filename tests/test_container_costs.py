"""The cost contract, counted in MongoDB commands."""
import pytest
import transaction

from tests import container_models as models
from tests.container_support import COLLECTION_KINDS, Home
from tests.container_support import container_cache  # noqa: F401
from zmongo import container


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


def name_field(kind):
    return '_id' if kind == 'idnames' else 'key'


def winning_plan(mongo, command):
    """How the server answers the filter of a ``find`` command we sent."""
    explained = mongo.db.command(
        'explain', {'find': command['find'], 'filter': command['filter']},
        verbosity='queryPlanner')
    return str(explained['queryPlanner']['winningPlan'])


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_lookup_is_one_command_served_by_an_index(
        kind, datamanager, mongo, container_cache):
    home, names = fill(kind, datamanager, 20)
    c = home.loaded()
    commands = mongo.commands
    commands.reset()
    item = c[names[7]]
    assert item.name.startswith('item ')
    assert commands.names == ['find']
    assert 'IXSCAN' in winning_plan(mongo, commands.commands[0][2])
    commands.reset()
    assert c[names[7]] is item
    assert commands.count() == (0 if container_cache else 1)


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_contains_is_one_command_served_by_an_index(
        kind, datamanager, mongo, container_cache):
    home, names = fill(kind, datamanager, 20)
    c = home.loaded()
    commands = mongo.commands
    commands.reset()
    assert names[3] in c
    assert commands.names == ['find']
    assert 'IXSCAN' in winning_plan(mongo, commands.commands[0][2])
    commands.reset()
    assert 'no-such-name' not in c
    assert commands.names == ['find']
    assert 'IXSCAN' in winning_plan(mongo, commands.commands[0][2])


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
@pytest.mark.parametrize('method', ['keys', 'items', 'values', 'len'])
def test_listing_is_one_command(
        kind, method, datamanager, mongo, container_cache):
    home, names = fill(kind, datamanager, 30)
    c = home.loaded()
    commands = mongo.commands
    commands.reset()
    result = len(c) if method == 'len' else getattr(c, method)()
    assert commands.count() == 1
    if method == 'len':
        assert result == 30
    else:
        assert len(result) == 30


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_items_loads_objects_without_further_commands(
        kind, datamanager, mongo, container_cache):
    home, names = fill(kind, datamanager, 25)
    c = home.loaded()
    commands = mongo.commands
    commands.reset()
    items = c.items()
    assert sorted(item.name for _, item in items) == sorted(
        'item %d' % i for i in range(25))
    assert all(item.__parent__ is c and item.__name__ == name
               for name, item in items)
    assert all(item._p_changed is False for _, item in items)
    assert commands.count() == 1
    # What items() has read, lookups and listings need not read again.
    commands.reset()
    assert [c[name] for name, _ in items] == [item for _, item in items]
    assert sorted(c.keys()) == names
    assert len(c) == 25
    if container_cache:
        assert commands.count() == 0
    else:
        assert commands.count() == 25 + 2


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_deleting_read_items_loads_nothing_again(
        kind, datamanager, mongo, container_cache):
    home, names = fill(kind, datamanager, 10)
    c = home.loaded()
    commands = mongo.commands
    c.items()
    commands.reset()
    for name in names[:6]:
        del c[name]
    # With the cache, the names are known.  Without it, each deletion looks
    # its name up (one query; the deletions before it are not written
    # first: the lookups leave their documents out) and loads nothing more.
    if container_cache:
        assert commands.count() == 0
    else:
        assert commands.names == ['find'] * 6
        assert all(cmd['filter'].get(name_field(kind)) is not None
                   for name, _, cmd in commands.commands if name == 'find')
    transaction.commit()
    assert sorted(home.get().keys()) == names[6:]


def _commit_cost(kind, datamanager, mongo, count):
    home, names = fill(kind, datamanager, count)
    c = home.loaded()
    c.clear()
    mongo.commands.reset()
    transaction.commit()
    cost = mongo.commands.count()
    assert home.get().keys() == []
    transaction.commit()
    return cost


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_clearing_and_committing_cost_does_not_grow_with_the_items(
        kind, datamanager, mongo, container_cache):
    home, names = fill(kind, datamanager, 12)
    c = home.loaded()
    mongo.commands.reset()
    c.clear()
    assert mongo.commands.names == ['find']
    transaction.commit()
    assert _commit_cost(kind, datamanager, mongo, 3) == \
        _commit_cost(kind, datamanager, mongo, 15)


def test_many_items_cost_one_query_plus_cursor_batches(
        datamanager, mongo, container_cache):
    home, names = fill('mongo', datamanager, 150)
    c = home.loaded()
    mongo.commands.reset()
    assert len(c.items()) == 150
    assert [n for n in mongo.commands.names if n != 'getMore'] == ['find']


def test_a_simple_container_answers_from_its_document(datamanager, mongo):
    home, names = fill('simple', datamanager, 10)
    c = home.loaded()
    mongo.commands.reset()
    assert sorted(c.keys()) == names
    assert len(c) == 10 and names[0] in c
    assert c.get('nothing') is None
    assert mongo.commands.count() == 0


def test_the_cache_setting_is_read_at_call_time(datamanager, mongo):
    home, names = fill('mongo', datamanager, 5)
    c = home.loaded()
    old = container.USE_CONTAINER_CACHE
    try:
        container.USE_CONTAINER_CACHE = True
        c.items()
        mongo.commands.reset()
        c.keys()
        assert mongo.commands.count() == 0
        container.USE_CONTAINER_CACHE = False
        c.keys()
        assert mongo.commands.count() == 1
    finally:
        container.USE_CONTAINER_CACHE = old
