"""The commit protocol across data managers and server transactions
(issue 15).

* Data managers of one ``MongoClient`` joined to one transaction (two
  ``MongoDataManager``\\ s, or two providers with one client) share one
  session and one server transaction: exactly one ``commitTransaction``,
  sent after every one of them has written everything, and nothing of
  any of them committed when one fails.
* Reads that meet a lost server transaction (expired after the server's
  transaction lifetime) outside a flush start a new one as a flush does --
  the write log sent again, the objects read so far checked -- and are
  sent again.
"""
import gc
import time

import pymongo.errors
import pytest
import transaction
import transaction.interfaces
from pymongo.write_concern import WriteConcern

from tests import models
from tests import container_models
from tests.container_support import Home
from tests.tcpproxy import TCPProxy
from zmongo import conflict
from zmongo import interfaces
from zmongo import testing
from zmongo.datamanager import MongoDataManager
from zmongo.provider import MongoDataManagerProvider

MODES = ['transactions', 'standalone']


def counters(db):
    return sorted(doc['value'] for doc in db['counters'].find())


def roots(db):
    return sorted(doc['name'] for doc in db['persistence_root'].find())


def two(mongo, mode, **options):
    """Two data managers of the fixture's client, one transaction manager:
    in the order the transaction makes them vote."""
    tm = transaction.TransactionManager()
    dms = [mongo.make_datamanager(transactions=mode == 'transactions',
                                  transaction_manager=tm, **options)
           for _ in range(2)]
    dms.sort(key=lambda dm: dm.sortKey())
    return tm, dms


def sessions(commands):
    """The distinct sessions (``lsid``) of the commands sent in server
    transactions (the name map is read and written outside them)."""
    return {repr(cmd.get('lsid')) for _, _, cmd in commands.commands
            if cmd.get('autocommit') is False}


# -- two data managers, one client, one transaction -----------------------------

@pytest.mark.parametrize('datamanager', ['transactions'], indirect=True)
def test_two_data_managers_of_one_client_commit_once(datamanager, mongo):
    tm, (first, second) = two(mongo, 'transactions')
    first.root['one'] = models.Counter(1)
    second.root['two'] = models.Counter(2)
    first.flush()
    second.flush()
    mongo.commands.reset()
    tm.commit()
    assert mongo.commands.names == ['commitTransaction']
    assert counters(mongo.db) == [1, 2]
    assert roots(mongo.db) == ['one', 'two']


@pytest.mark.parametrize('datamanager', ['transactions'], indirect=True)
def test_two_data_managers_share_one_session(datamanager, mongo):
    tm, (first, second) = two(mongo, 'transactions')
    mongo.commands.reset()
    first.root['one'] = models.Counter(1)
    assert 'one' in first.root          # a query: flushes first
    second.root['two'] = models.Counter(2)
    assert 'two' in second.root
    tm.commit()
    assert len(sessions(mongo.commands)) == 1
    assert mongo.commands.count('commitTransaction') == 1


@pytest.mark.parametrize('datamanager', ['transactions'], indirect=True)
def test_two_read_only_data_managers_send_no_commit(datamanager, mongo):
    datamanager.root['one'] = models.Counter(1)
    transaction.commit()
    tm, (first, second) = two(mongo, 'transactions')
    assert first.root['one'].value == 1
    assert second.root['one'].value == 1
    mongo.commands.reset()
    tm.commit()
    assert mongo.commands.names == ['abortTransaction']


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('failing', ['first', 'last'])
def test_one_sharer_failing_in_vote_commits_nothing(mongo, mode, failing):
    """One data manager's commit fails on the server (a duplicate key),
    the other's writes are already sent: nothing of either is committed.
    Server-transaction mode: no ``commitTransaction`` is sent (the failing
    one voting first or last); standalone mode (no server transaction):
    the abort undoes what the other had written."""
    if mode == 'standalone':
        mongo = testing.MongoFixture(testing.get_test_uri(standalone=True))
        mongo.setUp()
    try:
        mongo.db['counters'].create_index('value', unique=True)
        mongo.db['counters'].insert_one({'value': 99})
        before = counters(mongo.db)
        tm, dms = two(mongo, mode)
        bad = dms[0] if failing == 'first' else dms[1]
        good = dms[1] if failing == 'first' else dms[0]
        good.root['one'] = models.Counter(1)
        good.flush()
        bad.root['two'] = models.Counter(99)
        mongo.commands.reset()
        with pytest.raises(interfaces.DuplicateKeyError):
            tm.commit()
        tm.abort()
        assert mongo.commands.count('commitTransaction') == 0
        assert counters(mongo.db) == before
        assert roots(mongo.db) == []
    finally:
        if mode == 'standalone':
            mongo.tearDown()


@pytest.mark.parametrize('datamanager', ['standalone'], indirect=True)
def test_two_standalone_data_managers_write_as_they_flush(datamanager,
                                                          mongo):
    """Standalone mode has no server transaction to share: each data
    manager writes as it flushes (others see it at once) and undoes its
    own writes on abort; a commit sends no commitTransaction."""
    tm, (first, second) = two(mongo, 'standalone')
    first.root['one'] = models.Counter(1)
    first.flush()
    assert counters(mongo.db) == [1]        # visible before the commit
    second.root['two'] = models.Counter(2)
    mongo.commands.reset()
    tm.commit()
    assert mongo.commands.count('commitTransaction') == 0
    assert counters(mongo.db) == [1, 2]


@pytest.mark.parametrize('datamanager', ['transactions'], indirect=True)
def test_a_lost_shared_server_transaction_sends_every_log_again(
        datamanager, mongo, caplog):
    """The server loses the shared server transaction at commit: both data
    managers' writes were in it; both logs are sent again, one commit."""
    tm, (first, second) = two(mongo, 'transactions')
    first.root['one'] = models.Counter(1)
    second.root['two'] = models.Counter(2)
    mongo.client.admin.command(
        'configureFailPoint', 'failCommand', mode={'times': 1},
        data={'failCommands': ['commitTransaction'], 'errorCode': 112,
              'errorLabels': ['TransientTransactionError']})
    try:
        with caplog.at_level('INFO', logger='zmongo.datamanager'):
            tm.commit()
    finally:
        mongo.client.admin.command('configureFailPoint', 'failCommand',
                                   mode='off')
    assert 'the server transaction was lost' in caplog.text
    assert counters(mongo.db) == [1, 2]
    assert roots(mongo.db) == ['one', 'two']


@pytest.mark.parametrize('datamanager', MODES, indirect=True)
def test_savepoint_rollback_with_two_sharers(datamanager, mongo):
    """A savepoint of the transaction covers both data managers: the
    rollback keeps what both wrote before it, drops what they wrote
    after it."""
    mode = 'transactions' if datamanager.uses_transactions else 'standalone'
    tm, (first, second) = two(mongo, mode)
    first.root['one'] = models.Counter(1)
    second.root['two'] = models.Counter(2)
    savepoint = tm.savepoint()
    first.root['three'] = models.Counter(3)
    second.root['four'] = models.Counter(4)
    first.flush()
    second.flush()
    savepoint.rollback()
    mongo.commands.reset()
    tm.commit()
    assert mongo.commands.count('commitTransaction') == (
        1 if mode == 'transactions' else 0)
    assert counters(mongo.db) == [1, 2]
    assert roots(mongo.db) == ['one', 'two']


@pytest.mark.parametrize('datamanager', MODES, indirect=True)
def test_rollback_of_a_sharer_that_joined_after_the_savepoint(
        datamanager, mongo):
    """The transaction rolls back a data manager that joined after the
    savepoint by aborting it: in server-transaction mode that aborts the
    shared server transaction, and the data manager that goes on sends
    its writes again before it goes on."""
    mode = 'transactions' if datamanager.uses_transactions else 'standalone'
    tm, (first, second) = two(mongo, mode)
    first.root['one'] = models.Counter(1)
    first.flush()
    savepoint = tm.savepoint()
    second.root['two'] = models.Counter(2)
    second.flush()
    savepoint.rollback()
    first.root['three'] = models.Counter(3)
    tm.commit()
    assert counters(mongo.db) == [1, 3]
    assert roots(mongo.db) == ['one', 'three']


@pytest.mark.parametrize('datamanager', ['transactions'], indirect=True)
def test_a_sharer_with_other_settings_is_refused_at_join(datamanager,
                                                         mongo):
    tm = transaction.TransactionManager()
    first = mongo.make_datamanager(transactions=True, transaction_manager=tm)
    second = mongo.make_datamanager(
        transactions=True, transaction_manager=tm,
        write_concern=WriteConcern(w=1))
    first.root['one'] = models.Counter(1)
    with pytest.raises(ValueError) as info:
        second.root['two'] = models.Counter(2)
    message = str(info.value)
    assert repr(first) in message and repr(second) in message
    assert 'write_concern' in message
    tm.commit()
    assert counters(mongo.db) == [1]


@pytest.mark.parametrize('datamanager', ['transactions'], indirect=True)
def test_two_providers_of_one_client_commit_once(datamanager, mongo):
    options = dict(default_database=mongo.db_name,
                   root_database=mongo.db_name)
    providers = [MongoDataManagerProvider(client=mongo.client, **options)
                 for _ in range(2)]
    try:
        first, second = (p.get() for p in providers)
        assert first is not second
        first.root['one'] = models.Counter(1)
        second.root['two'] = models.Counter(2)
        mongo.commands.reset()
        transaction.commit()
        assert mongo.commands.count('commitTransaction') == 1
        assert len(sessions(mongo.commands)) == 1
        assert counters(mongo.db) == [1, 2]
    finally:
        transaction.abort()
        for provider in providers:
            provider.get().reset()


# -- reads that meet an expired server transaction ----------------------------

@pytest.fixture(scope='module')
def short_lived():
    """A replica set whose server transactions expire after 2 s."""
    with testing.EmbeddedServer(transaction_lifetime_seconds=2) as server:
        yield server


@pytest.fixture
def lived(short_lived):
    with testing.MongoFixture(short_lived.uri) as mongo:
        yield mongo


def expire():
    time.sleep(3)


def seeded(mongo, handler=conflict.NoCheckConflictHandler):
    """A data manager with ``foo`` (1), ``bar`` (2) and a container of five
    items committed, in a new transaction that has read ``foo`` and
    flushed a new root ``baz`` (its log holds a write)."""
    tm = transaction.TransactionManager()
    dm = mongo.make_datamanager(transaction_manager=tm,
                                conflict_handler_factory=handler)
    assert dm.uses_transactions
    dm.root['foo'] = models.Counter(1)
    dm.root['bar'] = models.Counter(2)
    home = Home('mongo', dm)
    box = home.get()
    for i in range(5):
        box.add(container_models.Item('item %d' % i), 'k%d' % i)
    tm.commit()
    foo = dm.root['foo']
    assert foo.value == 1
    dm.root['baz'] = models.Counter(3)
    dm.flush()
    return tm, dm, home, foo


READS = {
    'root lookup': lambda dm, home: dm.root['bar'].value == 2,
    'load': lambda dm, home: home.get()['k1'].name == 'item 1',
    'container lookup': lambda dm, home: 'k2' in home.loaded(),
    'container keys': lambda dm, home: sorted(home.loaded().keys()) == [
        'k%d' % i for i in range(5)],
    'find': lambda dm, home: len(list(dm.get_collection(
        dm.default_database, 'counters').find())) == 3,
    'count': lambda dm, home: dm.get_collection(
        dm.default_database, 'counters').count_documents({}) == 3,
}


@pytest.mark.parametrize('read', sorted(READS))
def test_a_read_after_the_lifetime_starts_again(lived, read, caplog):
    tm, dm, home, _ = seeded(lived)
    expire()
    with caplog.at_level('INFO', logger='zmongo.datamanager'):
        assert READS[read](dm, home)
    assert 'the server transaction was lost' in caplog.text
    tm.commit()
    assert counters(lived.db) == [1, 2, 3]       # baz, sent again


def test_a_read_after_the_lifetime_sees_no_torn_snapshot(lived):
    """Another transaction changed ``foo`` (read before the expiry): the
    read that starts the server transaction again raises a retryable
    ConflictError naming ``foo``, and the transaction is doomed."""
    tm, dm, home, foo = seeded(lived)
    other = lived.make_datamanager(
        transaction_manager=transaction.TransactionManager())
    other.root['foo'].value = 10
    other.transaction_manager.commit()
    expire()
    with pytest.raises(interfaces.ConflictError) as info:
        dm.root['bar']
    assert info.value.object is foo
    assert repr(foo._p_oid.id) in str(info.value)
    assert dm.should_retry(info.value)
    with pytest.raises(transaction.interfaces.TransactionFailedError):
        tm.commit()
    tm.abort()
    assert counters(lived.db) == [2, 10]


def test_a_cursor_lost_after_its_first_documents_goes_on(lived):
    """A query that had returned documents when the server transaction
    expired: in the new one it returns the same first documents, so it
    passes over them and goes on."""
    tm, dm, home, _ = seeded(lived)
    coll = dm.get_collection(dm.default_database, 'counters')
    cursor = coll.find().sort('value').batch_size(1)
    assert next(cursor)['value'] == 1
    expire()
    assert [d['value'] for d in cursor] == [2, 3]
    tm.commit()
    assert counters(lived.db) == [1, 2, 3]


@pytest.mark.parametrize('projection', [None, {'_id': 0}])
def test_a_cursor_whose_first_documents_changed_is_a_conflict(
        lived, projection):
    """The new snapshot does not return what the query had returned
    (another document comes first; without ``_id``\\ s: a document
    returned changed): the rest would come from another snapshot, a
    retryable ConflictError, and the transaction is doomed."""
    lived.db['ledger'].insert_many([{'_id': i, 'n': i} for i in range(3)])
    tm, dm, home, _ = seeded(lived)
    coll = dm.get_collection(dm.default_database, 'ledger')
    cursor = coll.find({}, projection).sort('n').batch_size(1)
    assert next(cursor)['n'] == 0
    lived.db['ledger'].update_one({'_id': 1}, {'$set': {'n': -1}})
    expire()
    with pytest.raises(interfaces.ConflictError) as info:
        list(cursor)
    assert 'in the middle of a query' in str(info.value)
    assert dm.should_retry(info.value)
    with pytest.raises(transaction.interfaces.TransactionFailedError):
        tm.commit()
    tm.abort()
    assert counters(lived.db) == [1, 2]


def test_a_cursor_restarted_before_its_first_document_keeps_its_options(
        lived):
    tm, dm, home, _ = seeded(lived)
    coll = dm.get_collection(dm.default_database, 'counters')
    cursor = coll.find({}, {'_id': 0, 'value': 1}).sort(
        'value', -1).skip(1).limit(1)
    expire()
    assert list(cursor) == [{'value': 2}]
    tm.commit()


def test_a_read_only_transaction_restarted_sends_no_commit(lived):
    tm = transaction.TransactionManager()
    dm = lived.make_datamanager(transaction_manager=tm)
    dm.root['foo'] = models.Counter(1)
    tm.commit()
    assert dm.root['foo'].value == 1
    expire()
    assert 'bar' not in dm.root
    lived.commands.reset()
    tm.commit()
    assert lived.commands.names == ['abortTransaction']


def test_a_write_through_the_wrapper_after_the_lifetime(lived):
    tm, dm, home, _ = seeded(lived)
    coll = dm.get_collection(dm.default_database, 'counters')
    expire()
    coll.update_one({'value': 2}, {'$set': {'value': 20}})
    tm.commit()
    assert counters(lived.db) == [1, 3, 20]


def test_reads_lost_more_often_than_the_bound_give_up(lived):
    """A read whose server transaction is lost again and again (here: a
    fail point that loses it four times) gives up with a retryable
    ConflictError after three new ones."""
    tm, dm, home, _ = seeded(lived)
    lived.client.admin.command(
        'configureFailPoint', 'failCommand', mode={'times': 4},
        data={'failCommands': ['find'], 'errorCode': 251,
              'errorLabels': ['TransientTransactionError']})
    try:
        with pytest.raises(interfaces.ConflictError) as info:
            dm.root['bar']
    finally:
        lived.client.admin.command('configureFailPoint', 'failCommand',
                                   mode='off')
    assert 'lost 4 times in a row' in str(info.value)
    assert dm.should_retry(info.value)
    tm.abort()
    assert counters(lived.db) == [1, 2]


def test_a_standalone_read_error_is_not_restarted(mongo):
    """Standalone mode has no server transaction to lose: a read error is
    the server's, as it was."""
    standalone = testing.MongoFixture(testing.get_test_uri(standalone=True))
    standalone.setUp()
    try:
        dm = standalone.make_datamanager()
        assert not dm.uses_transactions
        coll = dm.get_collection(dm.default_database, 'counters')
        with pytest.raises(pymongo.errors.OperationFailure):
            coll.find_one({'$bad': 1})
    finally:
        standalone.tearDown()


# -- attacks --------------------------------------------------------------------

@pytest.mark.parametrize('datamanager', MODES, indirect=True)
def test_abort_after_both_sharers_flushed_leaves_nothing(datamanager, mongo):
    mode = 'transactions' if datamanager.uses_transactions else 'standalone'
    datamanager.root['foo'] = models.Counter(1)
    transaction.commit()
    before = counters(mongo.db)
    tm, (first, second) = two(mongo, mode)
    first.root['foo'].value = 10
    first.root['one'] = models.Counter(2)
    second.root['two'] = models.Counter(3)
    first.flush()
    second.flush()
    tm.abort()
    assert counters(mongo.db) == before
    assert roots(mongo.db) == ['foo']


@pytest.mark.parametrize('datamanager', ['transactions'], indirect=True)
def test_a_cut_before_the_shared_commit_commits_nothing(datamanager, mongo):
    """Both data managers flushed through a proxy; the connection is cut
    before the one commitTransaction: the commit fails, nothing of either
    is there, and once the server is reachable again the next
    transaction of the same client works."""
    proxy = TCPProxy(mongo.client.address).start()
    client = testing.make_client(proxy.uri, timeoutMS=2000,
                                 serverSelectionTimeoutMS=2000)
    try:
        tm = transaction.TransactionManager()
        dms = [MongoDataManager(client, default_database=mongo.db_name,
                                root_database=mongo.db_name,
                                transaction_manager=tm) for _ in range(2)]
        dms[0].root['one'] = models.Counter(1)
        dms[1].root['two'] = models.Counter(2)
        dms[0].flush()
        dms[1].flush()
        proxy.cut()
        with pytest.raises(pymongo.errors.PyMongoError):
            tm.commit()
        tm.abort()
        proxy.restore()
        mongo.client.admin.command('killAllSessions', [])
        assert counters(mongo.db) == []
        dms[0].root['three'] = models.Counter(3)
        dms[1].root['four'] = models.Counter(4)
        tm.commit()
        assert counters(mongo.db) == [3, 4]
    finally:
        transaction.abort()
        proxy.restore()
        client.close()
        proxy.stop()


@pytest.mark.parametrize('datamanager', ['transactions'], indirect=True)
@pytest.mark.parametrize('command', ['insert', 'find'])
def test_a_restart_during_a_savepoint_rollback(datamanager, mongo, command,
                                               caplog):
    """The new server transaction of a savepoint rollback is lost too
    (a fail point: the log's insert sent again, or the check of what was
    read): it is started once more, and the transaction goes on."""
    dm = datamanager
    dm.root['foo'] = models.Counter(1)
    transaction.commit()
    assert dm.root['foo'].value == 1
    dm.root['one'] = models.Counter(2)
    savepoint = transaction.savepoint()
    dm.root['two'] = models.Counter(3)
    dm.flush()
    mongo.client.admin.command(
        'configureFailPoint', 'failCommand', mode={'times': 1},
        data={'failCommands': [command], 'errorCode': 112,
              'errorLabels': ['TransientTransactionError']})
    try:
        with caplog.at_level('INFO', logger='zmongo.datamanager'):
            savepoint.rollback()
    finally:
        mongo.client.admin.command('configureFailPoint', 'failCommand',
                                   mode='off')
    assert 'lost again' in caplog.text
    transaction.commit()
    assert counters(mongo.db) == [1, 2]
    assert roots(mongo.db) == ['foo', 'one']


@pytest.mark.parametrize('datamanager', ['transactions'], indirect=True)
def test_savepoint_rollback_after_a_read_object_was_deleted(datamanager,
                                                            mongo):
    dm = datamanager
    dm.root['foo'] = models.Counter(1)
    transaction.commit()
    foo = dm.root['foo']
    assert foo.value == 1
    savepoint = transaction.savepoint()
    foo.value = 5
    other = mongo.make_datamanager(
        transaction_manager=transaction.TransactionManager())
    other.remove(other.root['foo'])
    other.transaction_manager.commit()
    with pytest.raises(interfaces.ConflictError) as info:
        savepoint.rollback()
    assert info.value.object is foo and info.value.cur_state is None
    transaction.abort()


@pytest.mark.parametrize('datamanager', ['transactions'], indirect=True)
def test_sharers_in_different_modes_are_refused(datamanager, mongo):
    tm = transaction.TransactionManager()
    first = mongo.make_datamanager(transactions=True, transaction_manager=tm)
    second = mongo.make_datamanager(transactions=False,
                                    transaction_manager=tm)
    first.root['one'] = models.Counter(1)
    with pytest.raises(ValueError, match='transactions=True'):
        second.root['two'] = models.Counter(2)
    tm.abort()


@pytest.mark.parametrize('let_go', ['cacheMinimize', 'collected'])
def test_an_object_let_go_of_is_checked_at_a_restart(lived, let_go):
    """The transaction read ``foo`` and let go of it (a ghost again after
    ``cacheMinimize``, or collected): what it read still counts, so a
    change of ``foo`` by another transaction is found when the server
    transaction starts again."""
    tm, dm, home, foo = seeded(lived)
    oid = foo._p_oid
    if let_go == 'cacheMinimize':
        dm.cacheMinimize()
        assert foo._p_changed is None
    else:
        del foo
        gc.collect()
        assert dm.cached_object(oid) is None
    other = lived.make_datamanager(
        transaction_manager=transaction.TransactionManager())
    other.root['foo'].value = 10
    other.transaction_manager.commit()
    expire()
    with pytest.raises(interfaces.ConflictError) as info:
        dm.root['bar']
    assert repr(oid.id) in str(info.value)
    tm.abort()


def test_a_serial_object_let_go_of_is_checked_by_its_serial(lived):
    tm, dm, home, _ = seeded(lived, conflict.SimpleSerialConflictHandler)
    foo = dm.root['foo']
    assert foo.value == 1
    dm.cacheMinimize()
    assert foo._p_changed is None
    other = lived.make_datamanager(
        transaction_manager=transaction.TransactionManager(),
        conflict_handler_factory=conflict.SimpleSerialConflictHandler)
    other.root['foo'].value = 10
    other.transaction_manager.commit()
    expire()
    with pytest.raises(interfaces.ConflictError) as info:
        dm.root['bar']
    assert repr(foo._p_oid.id) in str(info.value)
    tm.abort()


@pytest.mark.parametrize('datamanager', MODES, indirect=True)
def test_attempts_retry_two_sharers_after_a_conflict(datamanager, mongo):
    """A serial conflict in one data manager fails the whole transaction
    (nothing of the other committed either); ``attempts()`` retries both,
    and the retry commits both, once."""
    mode = 'transactions' if datamanager.uses_transactions else 'standalone'
    datamanager.root['foo'] = models.Counter(1)
    transaction.commit()
    tm, (first, second) = two(
        mongo, mode, conflict_handler_factory=conflict.SimpleSerialConflictHandler)
    tries = []
    for attempt in tm.attempts(3):
        with attempt:
            tries.append(1)
            first.root['foo'].value += 10
            second.root['entry %d' % len(tries)] = models.Counter(100)
            if len(tries) == 1:
                other = mongo.make_datamanager(
                    transaction_manager=transaction.TransactionManager(),
                    conflict_handler_factory=(
                        conflict.SimpleSerialConflictHandler))
                other.root['foo'].value += 1
                other.transaction_manager.commit()
    assert len(tries) == 2
    assert counters(mongo.db) == [12, 100]
    assert roots(mongo.db) == ['entry 2', 'foo']
