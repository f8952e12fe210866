"""Adding K items writes them in one insert at commit, not K."""
import pytest
import transaction

from tests import container_models as models
from zmongo import container

WRITES = ('insert', 'update', 'delete')


@pytest.fixture(params=[True, False], ids=['cache', 'no-cache'])
def cache_setting(request, monkeypatch):
    monkeypatch.setattr(container, 'USE_CONTAINER_CACHE', request.param)
    return request.param


@pytest.mark.parametrize('kind', [models.People, models.IdPeople])
def test_adding_k_items_is_one_insert(datamanager, mongo, cache_setting,
                                      kind):
    def add(k, prefix):
        c = datamanager.root['c']
        mongo.commands.reset()
        for i in range(k):
            c['%s%d' % (prefix, i)] = models.Person('%s%d' % (prefix, i))
        transaction.commit()
        # Commands on the items' collection: the name map gets its entry
        # once per class and collection, outside this count.
        on_items = [name for name, _, cmd in mongo.commands.commands
                    if cmd.get(name) == 'person']
        return [n for n in on_items if n in WRITES], on_items.count('find')

    datamanager.root['c'] = kind()
    transaction.commit()
    small_writes, small_finds = add(5, 'a')
    large_writes, large_finds = add(40, 'b')
    assert small_writes == large_writes == ['insert']
    # zope.container's setitem asks whether each name is free.  With the
    # cache, the first few ask the server (one keyed, index-served query
    # each), then one query reads all names and the rest cost nothing;
    # without it every name is one query.
    if cache_setting:
        misses = container.NAME_SNAPSHOT_AFTER_MISSES
        assert small_finds == large_finds == misses + 1
    else:
        assert large_finds - small_finds == 35
    assert len(datamanager.root['c']) == 45


def _adding(datamanager, mongo, names):
    c = datamanager.root['c']
    for name in names:
        c[name] = models.Person(name)
    return c


@pytest.mark.parametrize('kind', [models.People, models.IdPeople])
def test_names_read_at_once_still_know_the_stored_items(datamanager, mongo,
                                                       kind):
    datamanager.root['c'] = kind()
    transaction.commit()
    c = datamanager.root['c']
    c['old1'] = models.Person('old1')
    c['old2'] = models.Person('old2')
    transaction.commit()
    misses = container.NAME_SNAPSHOT_AFTER_MISSES
    c = _adding(datamanager, mongo, ['n%d' % i for i in range(misses + 2)])
    mongo.commands.reset()
    assert 'old1' in c and 'n0' in c
    assert 'absent' not in c
    assert c.get('absent') is None
    # One query, for old1 (its object); none for the names read at once.
    assert mongo.commands.names == ['find']
    with pytest.raises(KeyError):
        c['old2'] = models.Person('again')
    transaction.commit()
    assert sorted(datamanager.root['c'].keys()) == sorted(
        ['old1', 'old2'] + ['n%d' % i for i in range(misses + 2)])


def test_names_read_at_once_include_items_flushed_since(datamanager, mongo):
    datamanager.root['c'] = models.People()
    transaction.commit()
    misses = container.NAME_SNAPSHOT_AFTER_MISSES
    c = _adding(datamanager, mongo, ['n%d' % i for i in range(misses)])
    datamanager.flush()                 # now stored, no longer pending
    c['later'] = models.Person('later')
    list(c.find({'name': 'x'}))         # a query: flushes 'later' too
    assert 'n0' in c and 'later' in c
    assert sorted(c.keys()) == sorted(['later'] + ['n%d' % i
                                                   for i in range(misses)])
    with pytest.raises(KeyError):
        c['later'] = models.Person('again')


def test_large_containers_keep_asking_per_name(datamanager, mongo,
                                              monkeypatch):
    monkeypatch.setattr(container, 'NAME_SNAPSHOT_LIMIT', 2)
    datamanager.root['c'] = models.People()
    transaction.commit()
    _adding(datamanager, mongo, ['a', 'b', 'c'])
    transaction.commit()
    mongo.commands.reset()
    _adding(datamanager, mongo, ['n%d' % i for i in range(6)])
    finds = [name for name, _, cmd in mongo.commands.commands
             if name == 'find' and cmd.get(name) == 'person']
    # One per name, and the one query that found too many names to keep.
    assert len(finds) == 6 + 1
    transaction.commit()
    assert len(datamanager.root['c']) == 9


def test_duplicate_name_is_still_refused_before_the_flush(datamanager,
                                                         cache_setting):
    datamanager.root['c'] = c = models.People()
    transaction.commit()
    c = datamanager.root['c']
    c['x'] = models.Person('X')
    with pytest.raises(KeyError):
        c['x'] = models.Person('Other X')
    assert c['x'].__name__ == 'x'
