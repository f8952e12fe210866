"""Atomic commits, isolation, one-phase commit, retries (issue 5's proofs).

Each test here would fail against mongopersist's approach (writing before
commit and undoing by hand, checking serials in a read before the write,
writing in ``tpc_finish``).
"""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import transaction
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference
from pymongo.write_concern import WriteConcern

from tests import models
from zmongo import conflict
from zmongo import interfaces
from zmongo import testing

HERE = os.path.dirname(os.path.abspath(__file__))


def snapshot(mongo):
    return {name: sorted(map(repr, mongo.db[name].find()))
            for name in sorted(mongo.db.list_collection_names())}


def people(mongo):
    return sorted(d['name'] for d in mongo.db[models.PERSON].find())


# -- isolation ----------------------------------------------------------------

def test_outside_reader_never_sees_uncommitted_writes(mongo):
    dm = mongo.make_datamanager(transactions=True)
    dm.root['ada'] = models.Person('Ada')
    transaction.commit()
    seen = []
    stop = threading.Event()
    reader = testing.make_client()

    def poll():
        coll = reader[mongo.db_name][models.PERSON]
        while not stop.is_set():
            seen.extend(d['name'] for d in coll.find())
            time.sleep(0.002)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        for i in range(20):
            dm.root['ada'].name = 'uncommitted %d' % i
            dm.root['new%d' % i] = models.Person('uncommitted new %d' % i)
            dm.flush()
        time.sleep(0.05)
        transaction.abort()
        time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
        reader.close()
    assert seen and set(seen) == {'Ada'}
    assert people(mongo) == ['Ada']


def test_queries_inside_the_transaction_see_its_own_changes(mongo):
    dm = mongo.make_datamanager(transactions=True)
    dm.root['ada'] = models.Person('Ada')
    coll = dm.get_collection(mongo.db_name, models.PERSON)
    assert [d['name'] for d in coll.find()] == ['Ada']
    assert people(mongo) == []
    transaction.commit()
    assert people(mongo) == ['Ada']


# -- atomicity ----------------------------------------------------------------

def test_killed_process_leaves_nothing_of_its_transaction(mongo):
    dm = mongo.make_datamanager(transactions=True)
    for name in ('ada', 'bob', 'cy'):
        dm.root[name] = models.Person(name)
    transaction.commit()
    before = snapshot(mongo)
    child = subprocess.Popen(
        [sys.executable, '-m', 'tests.scripts.write_then_hang',
         testing.get_test_uri(), mongo.db_name, 'on'],
        cwd=os.path.dirname(HERE), stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == 'flushed'
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    # Its writes were made, inside its server transaction: none is visible.
    assert snapshot(mongo) == before
    # The server drops the orphaned transaction when its session expires;
    # killAllSessions is what an operator (or the timeout) does.
    mongo.client.admin.command('killAllSessions', [])
    assert snapshot(mongo) == before
    dm.root['ada'].name = 'written after the crash'
    transaction.commit()
    assert 'written after the crash' in people(mongo)


def test_failing_mongo_commit_rolls_back_zodb(mongo):
    import ZODB
    db = ZODB.DB(None)
    conn = db.open()
    try:
        conn.root()['before'] = 1
        transaction.commit()
        dm = mongo.make_datamanager(transactions=True)
        dm.insert(models.Person('Ada'), 'ada')
        transaction.commit()
        # A ZODB change and a Mongo change that cannot be written.
        conn.root()['changed'] = True
        dm.insert(models.Person('Another Ada'), 'ada')
        txn = transaction.get()
        with pytest.raises(interfaces.DuplicateKeyError):
            transaction.commit()
        # ZODB sorted first, Mongo last.
        assert [r.sortKey() for r in txn._resources][-1].startswith('~')
        transaction.abort()
        assert 'changed' not in conn.root()
        conn.sync()
        assert sorted(conn.root()) == ['before']
        assert people(mongo) == ['Ada']
    finally:
        transaction.abort()
        conn.close()
        db.close()


def test_zodb_and_mongo_commit_together(mongo):
    import ZODB
    db = ZODB.DB(None)
    conn = db.open()
    try:
        dm = mongo.make_datamanager()
        conn.root()['x'] = 1
        dm.root['ada'] = models.Person('Ada')
        transaction.commit()
        assert conn.root()['x'] == 1 and people(mongo) == ['Ada']
    finally:
        transaction.abort()
        conn.close()
        db.close()


# -- one-phase commit ---------------------------------------------------------

class Recorder:
    """A second resource that notes the order of the protocol calls."""

    def __init__(self, log, key='zodb-like'):
        self.log = log
        self.key = key
        self.transaction_manager = transaction.manager

    def sortKey(self):
        return self.key

    def __getattr__(self, name):
        if name in ('abort', 'tpc_begin', 'commit', 'tpc_vote',
                    'tpc_finish', 'tpc_abort'):
            return lambda txn: self.log.append((self.key, name))
        raise AttributeError(name)


def test_all_writes_and_the_commit_happen_by_tpc_vote(mongo):
    dm = mongo.make_datamanager(transactions=True)
    log = []
    dm.root['ada'] = models.Person('Ada')
    transaction.get().join(Recorder(log))
    original_vote = dm.tpc_vote

    def vote(txn):
        original_vote(txn)
        log.append(('zmongo', 'tpc_vote done', people(mongo)))
    dm.tpc_vote = vote
    finish_commands = []
    original_finish = dm.tpc_finish

    def finish(txn):
        mongo.commands.reset()
        original_finish(txn)
        finish_commands.extend(mongo.commands.names)
    dm.tpc_finish = finish
    transaction.commit()
    # The other resource voted before us; the data was committed (visible
    # to outside readers) by the end of our vote; tpc_finish sent nothing.
    assert log.index(('zodb-like', 'tpc_vote')) < \
        log.index(('zmongo', 'tpc_vote done', ['Ada']))
    assert finish_commands == []


def test_sort_key_sorts_after_other_resources(datamanager):
    key = datamanager.sortKey()
    for other in ('zodb', '/var/lib/Data.fs', 'MappingStorage', 'z' * 50,
                  'sqlalchemy:1'):
        assert other < key


def test_tpc_finish_only_forgets(mongo):
    dm = mongo.make_datamanager(transactions=False)
    dm.root['ada'] = models.Person('Ada')
    txn = transaction.get()
    dm.tpc_begin(txn)
    dm.commit(txn)
    dm.tpc_vote(txn)
    assert people(mongo) == ['Ada']
    mongo.commands.reset()
    dm.tpc_finish(txn)
    assert mongo.commands.names == []
    # Forgotten: what the transaction read and wrote; the objects stay
    # (identity is kept across transactions) but as ghosts.
    assert all(obj._p_changed is None for obj in dm._cache.values())
    assert dm.cached_object(dm.root['ada']._p_oid) is not None


# -- retries, threads ------------------------------------------------------------

@pytest.mark.parametrize('transactions', [True, False])
def test_eight_threads_incrementing_shared_counters(mongo, transactions):
    counters, threads, increments = 4, 8, 200
    handler = conflict.SimpleSerialConflictHandler
    dm = mongo.make_datamanager(transactions=transactions,
                                conflict_handler_factory=handler)
    for i in range(counters):
        dm.root['c%d' % i] = models.Counter()
    transaction.commit()
    errors = []

    def work(n):
        tm = transaction.TransactionManager()
        mine = mongo.make_datamanager(transactions=transactions,
                                      transaction_manager=tm,
                                      conflict_handler_factory=handler)
        try:
            for i in range(increments):
                for attempt in tm.attempts(200):
                    with attempt:
                        mine.root['c%d' % ((n + i) % counters)].value += 1
        except Exception as err:  # reported below, with the thread's name
            errors.append((n, err))

    workers = [threading.Thread(target=work, args=(n,))
               for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    values = [d['value'] for d in mongo.db.counters.find()]
    assert sorted(values) == [threads * increments // counters] * counters


def _fail_commits(mongo, times):
    mongo.client.admin.command(
        'configureFailPoint', 'failCommand', mode={'times': times},
        data={'failCommands': ['commitTransaction'], 'errorCode': 112,
              'errorLabels': ['TransientTransactionError']})


def test_a_lost_server_transaction_is_sent_again(mongo, caplog):
    """A server error labelled TransientTransactionError at commit
    (injected with the server's failCommand fail point): zmongo starts a
    new server transaction, sends the log again and commits, logging it."""
    dm = mongo.make_datamanager(transactions=True)
    _fail_commits(mongo, 1)
    tries = 0
    try:
        with caplog.at_level('INFO', logger='zmongo.datamanager'):
            for attempt in transaction.manager.attempts(3):
                with attempt:
                    tries += 1
                    dm.root['ada%d' % tries] = models.Person('Ada')
    finally:
        mongo.client.admin.command('configureFailPoint', 'failCommand',
                                   mode='off')
    assert tries == 1
    assert people(mongo) == ['Ada']
    assert 'the server transaction was lost' in caplog.text


def test_transient_transaction_errors_are_retried(mongo):
    """Lost more often than zmongo starts again (3 times): a retryable
    ConflictError, and attempts() tries again."""
    dm = mongo.make_datamanager(transactions=True)
    _fail_commits(mongo, 4)
    tries = 0
    try:
        for attempt in transaction.manager.attempts(3):
            with attempt:
                tries += 1
                dm.root['ada%d' % tries] = models.Person('Ada')
    finally:
        mongo.client.admin.command('configureFailPoint', 'failCommand',
                                   mode='off')
    assert tries == 2
    assert people(mongo) == ['Ada']


# -- options ------------------------------------------------------------------

def test_default_concerns_never_lose_an_acknowledged_commit(mongo):
    dm = mongo.make_datamanager(transactions=True)
    mongo.commands.reset()
    dm.root['ada'] = models.Person('Ada')
    transaction.commit()
    commands = {name: cmd for name, _, cmd in mongo.commands.commands}
    assert commands['commitTransaction']['writeConcern'] == \
        {'w': 'majority', 'j': True}
    # (The root's unique name index is created first, outside any server
    # transaction.)
    first = [cmd for name, _, cmd in mongo.commands.commands
             if name != 'createIndexes'][0]
    assert first.get('startTransaction') is True


def _with_uri_options(query, standalone=False):
    """A MongoFixture whose client has ``query`` in its URI."""
    uri = testing.get_test_uri(standalone=standalone)
    return testing.MongoFixture(
        uri + ('&' if '?' in uri else ('?' if uri.endswith('/') else '/?'))
        + query)


def test_the_uri_write_concern_is_used_as_given():
    with _with_uri_options('w=1') as mongo:
        assert mongo.client.write_concern.document == {'w': 1}
        dm = mongo.make_datamanager(transactions=True)
        assert dm.write_concern.document == {'w': 1}
        dm.root['ada'] = models.Person('Ada')
        mongo.commands.reset()
        transaction.commit()
        commands = {name: cmd for name, _, cmd in mongo.commands.commands}
        assert commands['commitTransaction']['writeConcern'] == {'w': 1}


def test_the_uri_write_concern_in_standalone_mode():
    with _with_uri_options('w=1&journal=false', standalone=True) as mongo:
        dm = mongo.make_datamanager(transactions=False)
        dm.root['ada'] = models.Person('Ada')
        mongo.commands.reset()
        transaction.commit()
        inserts = [cmd for name, _, cmd in mongo.commands.commands
                   if name == 'insert']
        assert inserts[0]['writeConcern'] == {'w': 1, 'j': False}


def test_an_explicit_write_concern_wins_over_the_uri():
    with _with_uri_options('w=1') as mongo:
        dm = mongo.make_datamanager(
            transactions=True, write_concern=WriteConcern(w='majority'))
        dm.root['ada'] = models.Person('Ada')
        mongo.commands.reset()
        transaction.commit()
        commands = {name: cmd for name, _, cmd in mongo.commands.commands}
        assert commands['commitTransaction']['writeConcern'] == \
            {'w': 'majority'}


def test_snapshot_reads_by_default(mongo):
    dm = mongo.make_datamanager(transactions=True)
    mongo.commands.reset()
    dm.root.get('x')
    first = mongo.commands.commands[0][2]
    assert first['readConcern'] == {'level': 'snapshot'}
    transaction.abort()


def test_concern_and_timeout_options(mongo):
    dm = mongo.make_datamanager(
        transactions=True, write_concern=WriteConcern(w=1),
        read_concern=ReadConcern('majority'),
        read_preference=ReadPreference.PRIMARY, transaction_timeout=5)
    dm.root['ada'] = models.Person('Ada')
    mongo.commands.reset()
    transaction.commit()
    commands = {name: cmd for name, _, cmd in mongo.commands.commands}
    assert commands['commitTransaction']['writeConcern'] == {'w': 1}
    assert 0 < commands['commitTransaction']['maxTimeMS'] <= 5000


def test_standalone_writes_are_journaled(mongo):
    dm = mongo.make_datamanager(transactions=False)
    dm.root['ada'] = models.Person('Ada')
    mongo.commands.reset()
    transaction.commit()
    writes = [cmd for name, _, cmd in mongo.commands.commands
              if name in ('insert', 'update', 'delete')]
    assert writes and all(cmd['writeConcern'] == {'w': 'majority', 'j': True}
                          for cmd in writes)


def test_refused_server_commit_rolls_back_zodb(mongo):
    """The Mongo commit itself (commitTransaction in tpc_vote) fails: ZODB,
    which voted before it, must not commit either."""
    import pymongo.errors
    import ZODB
    db = ZODB.DB(None)
    conn = db.open()
    dm = mongo.make_datamanager(transactions=True)
    try:
        conn.root()['changed'] = True
        dm.root['ada'] = models.Person('Ada')
        mongo.client.admin.command(
            'configureFailPoint', 'failCommand', mode={'times': 1},
            data={'failCommands': ['commitTransaction'], 'errorCode': 2})
        with pytest.raises(pymongo.errors.OperationFailure):
            transaction.commit()
        transaction.abort()
        conn.sync()
        assert 'changed' not in conn.root()
        assert people(mongo) == []
    finally:
        mongo.client.admin.command('configureFailPoint', 'failCommand',
                                   mode='off')
        transaction.abort()
        conn.close()
        db.close()
