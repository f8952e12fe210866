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
    # zope.container's setitem asks whether each name is free: one keyed,
    # index-served query per item and nothing else.
    assert large_finds - small_finds == 35
    assert len(datamanager.root['c']) == 45


def test_duplicate_name_is_still_refused_before_the_flush(datamanager,
                                                         cache_setting):
    datamanager.root['c'] = c = models.People()
    transaction.commit()
    c = datamanager.root['c']
    c['x'] = models.Person('X')
    with pytest.raises(KeyError):
        c['x'] = models.Person('Other X')
    assert c['x'].__name__ == 'x'
