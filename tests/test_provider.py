"""MongoDataManagerProvider: one client, a data manager per thread and
transaction."""
import threading

import pytest
import transaction
from zope.interface.verify import verifyObject

from tests import container_models as models
from zmongo import interfaces
from zmongo import testing
from zmongo.datamanager import MongoDataManager
from zmongo.provider import MongoDataManagerProvider


@pytest.fixture(params=['transactions', 'standalone'])
def provider(request, mongo):
    provider = MongoDataManagerProvider(
        testing.get_test_uri(),
        client_options={'timeoutMS': testing.DEFAULT_TIMEOUT_MS},
        default_database=mongo.db_name, root_database=mongo.db_name,
        transactions=request.param == 'transactions')
    yield provider
    transaction.abort()
    provider.close()


def test_it_provides_the_interface(provider):
    assert verifyObject(interfaces.IMongoDataManagerProvider, provider)


def test_the_client_is_made_on_first_use_and_shared(provider):
    assert provider._client is None
    dm = provider.get()
    assert isinstance(dm, MongoDataManager)
    assert dm._conn is provider.client
    seen = []
    thread = threading.Thread(target=lambda: seen.append(provider.client))
    thread.start()
    thread.join()
    assert seen == [provider.client]


def test_one_data_manager_per_transaction(provider):
    dm = provider.get()
    assert provider.get() is dm
    dm.root['x'] = models.Person('X')
    assert provider.get() is dm
    transaction.commit()
    after_commit = provider.get()
    assert after_commit is not dm
    assert after_commit.root['x'].name == 'X'
    transaction.abort()
    after_abort = provider.get()
    assert after_abort is not after_commit
    transaction.begin()
    assert provider.get() is not after_abort


def test_options_reach_every_data_manager(mongo):
    provider = MongoDataManagerProvider(
        client=mongo.client, default_database=mongo.db_name,
        root_database='roots', transactions=False)
    dm = provider.get()
    assert dm.default_database == mongo.db_name
    assert dm.root.database == 'roots'
    assert dm.uses_transactions is False
    transaction.commit()
    other = provider.get()
    assert other is not dm
    # One collection -> class map for all of them.
    assert dm._name_map.name_map is other._name_map.name_map is \
        provider.name_map


def test_unknown_options_fail_at_once():
    with pytest.raises(TypeError):
        MongoDataManagerProvider('mongodb://127.0.0.1:9/', no_such_option=1)


def test_a_given_client_is_not_closed(mongo):
    provider = MongoDataManagerProvider(client=mongo.client,
                                        default_database=mongo.db_name)
    provider.close()
    assert provider.client is mongo.client
    assert mongo.client.admin.command('ping')['ok'] == 1


def test_closing_an_own_client(provider):
    dm = provider.get()
    first = provider.client
    provider.close()
    assert provider._client is None
    # Even within the same transaction: a new client, a new data manager.
    assert provider.get() is not dm
    assert provider.client is not first
    assert provider.get()._conn is provider.client


def test_repr_hides_the_uri():
    provider = MongoDataManagerProvider('mongodb://user:secret@h:9/',
                                        default_database='site')
    assert 'secret' not in repr(provider)
    assert 'site' in repr(provider)


def test_threads_never_share_data_managers_or_objects(provider, mongo):
    setup = provider.get()
    setup.root['people'] = models.People()
    setup.root['people'].keys()
    transaction.commit()
    threads, count = [], 4
    barrier = threading.Barrier(count, timeout=20)
    results, errors = {}, []

    def work(i):
        try:
            for attempt in transaction.manager.attempts(5):
                with attempt:
                    dm = provider.get()
                    people = dm.root['people']
                    people['t%d' % i] = models.Person('Thread %d' % i)
                    mine = people['t%d' % i]
                    barrier.wait()   # every thread has its transaction open
                    results[i] = (dm, people, mine, provider.get())
                    barrier.wait()
        except Exception as err:     # reported in the main thread
            errors.append(err)
            barrier.abort()

    for i in range(count):
        threads.append(threading.Thread(target=work, args=(i,)))
        threads[-1].start()
    for thread in threads:
        thread.join()
    assert errors == []
    dms = [results[i][0] for i in range(count)]
    assert len({id(dm) for dm in dms}) == count
    for i in range(count):
        dm, people, mine, again = results[i]
        assert again is dm
        assert people._p_jar is dm and mine._p_jar is dm
        assert mine.__parent__ is people and mine.name == 'Thread %d' % i
        assert all(results[j][1] is not people for j in range(count) if j != i)
    check = provider.get()
    assert sorted(check.root['people'].keys()) == [
        't%d' % i for i in range(count)]
