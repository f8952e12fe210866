"""Faults: an unreachable server, connections cut mid-transaction and
mid-commit, a server restarted under a running client, and the server's
conflict and duplicate-key errors at commit.

Everything talks to loopback only and every wait is bounded by the
client's ``timeoutMS``.  Connections are cut with the small TCP proxy of
:mod:`tests.tcpproxy`, between a ``MongoClient`` and the embedded server;
what the database holds afterwards is read directly, not through the proxy.

A transaction whose commit never reached the server stays open on the
server (a real mongod keeps it too) and holds its documents until it
expires; tests clean up with ``killAllSessions``, as an operator (or the
transaction lifetime limit) would.
"""
import socket
import time

import bson
import pymongo.errors
import pytest
import transaction
from pymongo import monitoring

from tests import hardening_models as hm
from tests.tcpproxy import TCPProxy
from zmongo import conflict
from zmongo import interfaces
from zmongo import testing
from zmongo.datamanager import MongoDataManager

MODES = ['transactions', 'standalone']
#: Client bound for the fault tests (ms): small, so faults show up fast.
TIMEOUT_MS = 2000
#: How long one failed commit may take: the commit's own wait, the abort's
#: (standalone undo: one per collection), and slack for a slow machine.
COMMIT_BOUND = 4 * TIMEOUT_MS / 1000 + 3


def replay_point(client, mongo, mode):
    """Standalone mode cannot undo on a server it cannot reach: the undo
    is sent again before the client's next operation.  Make one."""
    if mode == 'standalone':
        make_dm(client, mongo, mode).root.get('a')
        transaction.abort()


# -- helpers ------------------------------------------------------------------

def closed_port():
    """A loopback port nothing listens on (connecting is refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def free_port():
    """A loopback port free for a server to listen on."""
    return closed_port()


def snapshot(db):
    """Every document of every collection, read with the given database
    (a direct client, never the proxy)."""
    return {name: sorted(repr(doc) for doc in db[name].find())
            for name in sorted(db.list_collection_names())}


def items(db):
    return {d['name']: d['value'] for d in db['items'].find()}


def entries(db):
    return sorted(d['text'] for d in db['entries'].find())


def make_dm(client, mongo, mode, **options):
    return MongoDataManager(
        client, default_database=mongo.db_name, root_database=mongo.db_name,
        transactions=mode if isinstance(mode, bool) or mode == 'auto'
        else mode == 'transactions', **options)


def fails_within(seconds, exc_types, func, *args):
    """``func(*args)`` must raise ``exc_types`` within ``seconds``."""
    started = time.monotonic()
    with pytest.raises(exc_types) as info:
        func(*args)
    elapsed = time.monotonic() - started
    assert elapsed < seconds, 'took %.1f s' % elapsed
    return info.value


def kill_orphans(mongo):
    """End server transactions whose client lost its connection."""
    mongo.client.admin.command('killAllSessions', [])


class Recorder:
    """A second transaction resource: notes how the transaction ended."""

    def __init__(self):
        self.calls = []
        self.transaction_manager = transaction.manager

    def sortKey(self):
        return 'recorder'

    def __getattr__(self, name):
        if name in ('abort', 'tpc_begin', 'commit', 'tpc_vote',
                    'tpc_finish', 'tpc_abort'):
            return lambda txn: self.calls.append(name)
        raise AttributeError(name)


WRITE_COMMANDS = frozenset({'insert', 'update', 'delete'})


class CutOn(monitoring.CommandListener):
    """Cuts the proxy just before the client sends a given command: the
    command never reaches the server."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.trigger = None
        self.then = None
        self.fired = []

    def arm(self, command_name, nth=1, then=None):
        """Cut before the ``nth`` command named ``command_name`` (or, for
        ``'write'``, the nth insert/update/delete) from now on; call
        ``then`` right after the cut."""
        self.trigger = [command_name, nth]
        self.then = then

    def started(self, event):
        if self.trigger is None:
            return
        name, nth = self.trigger
        if event.command_name == name or (
                name == 'write' and event.command_name in WRITE_COMMANDS):
            if nth > 1:
                self.trigger[1] -= 1
                return
            self.trigger = None
            self.fired.append((event.command_name,
                               event.command.get(event.command_name)))
            self.proxy.cut()
            if self.then is not None:
                self.then()

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture
def proxy(mongo):
    proxy = TCPProxy(mongo.client.address).start()
    yield proxy
    proxy.stop()
    kill_orphans(mongo)


@pytest.fixture
def cut_on(proxy):
    return CutOn(proxy)


@pytest.fixture
def proxied(proxy, cut_on):
    """A client that reaches the server only through the proxy."""
    client = testing.make_client(proxy.uri, [cut_on], timeoutMS=TIMEOUT_MS,
                                 serverSelectionTimeoutMS=TIMEOUT_MS)
    yield client
    transaction.abort()
    proxy.restore()     # so closing ends its sessions without waiting
    client.close()


def seed(mongo):
    """Items a=0, b=0 and entry 'seed', committed through a direct client."""
    dm = mongo.make_datamanager()
    dm.root['a'] = hm.Item('a')
    dm.root['b'] = hm.Item('b')
    dm.root['seed'] = hm.Entry('seed')
    transaction.commit()
    return snapshot(mongo.db)


def change_everything(dm, tag):
    """One transaction's worth of changes in two collections."""
    dm.root['a'].value = tag
    dm.root['b'].value = tag
    dm.insert(hm.Entry('entry %s' % tag))


def all_or_nothing(mongo, before, tag):
    """The database holds all of the transaction ``tag`` or none of it;
    return which."""
    now = snapshot(mongo.db)
    if now == before:
        return 'none'
    assert items(mongo.db) == {'a': tag, 'b': tag}, now
    assert entries(mongo.db) == sorted(['seed', 'entry %s' % tag]), now
    return 'all'


def next_transaction_works(mongo, client, mode, tag='next'):
    """After the fault: the orphaned server transaction (if any) killed, a
    new data manager on the same client commits a change to the same
    documents."""
    kill_orphans(mongo)
    dm = make_dm(client, mongo, mode)
    for attempt in transaction.manager.attempts(3):
        with attempt:
            change_everything(dm, tag)
    assert items(mongo.db) == {'a': tag, 'b': tag}
    assert 'entry %s' % tag in entries(mongo.db)


# -- (a) unreachable at start ------------------------------------------------

@pytest.fixture
def unreachable(mongo):
    port = closed_port()
    client = testing.make_client(
        'mongodb://127.0.0.1:%d/' % port, timeoutMS=1000,
        serverSelectionTimeoutMS=1000)
    yield client, '127.0.0.1:%d' % port
    transaction.abort()
    client.close()


@pytest.mark.parametrize('mode', ['auto', 'transactions', 'standalone'])
@pytest.mark.parametrize('klass', [hm.Bag, hm.Item],
                         ids=['fails-at-commit', 'fails-at-insert'])
def test_unreachable_server_commit_fails_in_time_and_aborts(
        mongo, unreachable, mode, klass):
    """Inserting a Bag needs no I/O, so the commit meets the unreachable
    server; inserting an Item (``_p_mongo_collection``) reads the name map
    at once."""
    client, address = unreachable
    dm = make_dm(client, mongo, mode)
    other = Recorder()
    transaction.get().join(other)
    obj = klass(name='a')

    def insert_and_commit():
        dm.insert(obj)
        transaction.commit()

    err = fails_within(5, pymongo.errors.ConnectionFailure,
                       insert_and_commit)
    assert address in str(err)
    if klass is hm.Bag:
        # The failed commit aborted the whole transaction, the other
        # resource included.
        assert other.calls[-1] == 'tpc_abort', other.calls
    else:
        assert other.calls == []
    transaction.abort()
    assert 'tpc_finish' not in other.calls
    # The new object is new again.
    assert obj._p_oid is None and obj._p_jar is None
    # Nothing reached any server, and the transaction machinery is usable.
    assert mongo.db.list_collection_names() == []
    transaction.commit()


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('operation', ['root-get', 'root-contains',
                                       'root-setitem', 'load', 'query'])
def test_unreachable_server_reads_fail_in_time(mongo, unreachable, mode,
                                               operation):
    """A read never turns an unreachable server into 'not found'."""
    client, address = unreachable
    dm = make_dm(client, mongo, mode)

    def run():
        if operation == 'root-get':
            return dm.root.get('a')
        if operation == 'root-contains':
            return 'a' in dm.root
        if operation == 'root-setitem':
            dm.root['a'] = hm.Item('a')
            return None
        if operation == 'load':
            return dm.load(bson.DBRef('items', 1, mongo.db_name)).name
        return list(dm.get_collection(mongo.db_name, 'items').find())

    err = fails_within(5, pymongo.errors.ConnectionFailure, run)
    assert address in str(err)
    transaction.abort()


# -- (b) connection cut mid-transaction and mid-commit -----------------------

@pytest.mark.parametrize('mode', MODES)
def test_cut_after_flush_before_commit(mongo, proxy, proxied, mode):
    before = seed(mongo)
    dm = make_dm(proxied, mongo, mode)
    other = Recorder()
    transaction.get().join(other)
    dm.root['a'].value = 1
    dm.insert(hm.Entry('entry 1'))
    dm.flush()
    dm.root['b'].value = 1          # still pending
    proxy.cut()
    fails_within(COMMIT_BOUND, pymongo.errors.ConnectionFailure,
                 transaction.commit)
    # ZODB and any other resource roll back with it.
    assert other.calls[-1] == 'tpc_abort', other.calls
    transaction.abort()
    if mode == 'transactions':
        # Nothing of it: the commit never reached the server.
        assert all_or_nothing(mongo, before, 1) == 'none'
    proxy.restore()
    replay_point(proxied, mongo, mode)
    assert all_or_nothing(mongo, before, 1) == 'none'
    next_transaction_works(mongo, proxied, mode)


@pytest.mark.parametrize('mode', MODES)
def test_flushed_then_cut_then_commit_without_further_changes(
        mongo, proxy, proxied, mode):
    """All writes were flushed before the cut: a server transaction cannot
    commit (nothing of it stays); standalone writes had all landed (all of
    it stays, and the commit, which has nothing left to send, succeeds)."""
    before = seed(mongo)
    dm = make_dm(proxied, mongo, mode)
    change_everything(dm, 1)
    dm.flush()
    proxy.cut()
    if mode == 'transactions':
        fails_within(COMMIT_BOUND, pymongo.errors.ConnectionFailure,
                     transaction.commit)
        transaction.abort()
        assert all_or_nothing(mongo, before, 1) == 'none'
    else:
        transaction.commit()
        assert all_or_nothing(mongo, before, 1) == 'all'
    proxy.restore()
    next_transaction_works(mongo, proxied, mode)


def test_orphaned_server_transaction_makes_a_conflict_not_a_hang(
        mongo, proxy, proxied):
    """The server keeps a transaction whose client vanished, holding its
    documents; until it is killed or expires, another client's transaction
    writing them gets a retryable ConflictError at once -- not a hang.
    (The same client may reuse the orphan's server session, which ends the
    orphan; another process cannot.)"""
    before = seed(mongo)
    dm = make_dm(proxied, mongo, 'transactions')
    change_everything(dm, 1)
    dm.flush()
    proxy.cut()
    with pytest.raises(pymongo.errors.ConnectionFailure):
        transaction.commit()
    transaction.abort()
    proxy.restore()
    dm2 = mongo.make_datamanager(transactions=True)
    dm2.root['a'].value = 2
    err = fails_within(COMMIT_BOUND, interfaces.ConflictError,
                       transaction.commit)
    assert dm2.should_retry(err)
    transaction.abort()
    assert snapshot(mongo.db) == before
    next_transaction_works(mongo, proxied, 'transactions')


@pytest.mark.parametrize('mode', MODES)
def test_cut_during_the_commit_between_two_bulk_writes(
        mongo, proxy, proxied, cut_on, mode):
    """tpc_vote writes two collections (one bulk write each); the
    connection is cut just before the second bulk write is sent."""
    before = seed(mongo)
    dm = make_dm(proxied, mongo, mode)
    a, b = dm.root['a'], dm.root['b']
    a.value, b.value = 1, 1
    dm.insert(hm.Entry('entry 1'))
    other = Recorder()
    transaction.get().join(other)
    cut_on.arm('write', nth=2)
    fails_within(COMMIT_BOUND, pymongo.errors.ConnectionFailure,
                 transaction.commit)
    assert len(cut_on.fired) == 1
    # ZODB and any other resource roll back with it.
    assert other.calls[-1] == 'tpc_abort', other.calls
    transaction.abort()
    proxy.restore()
    replay_point(proxied, mongo, mode)
    assert all_or_nothing(mongo, before, 1) == 'none'
    next_transaction_works(mongo, proxied, mode)


def test_cut_just_before_commit_transaction(mongo, proxy, proxied, cut_on):
    """Every write reached the server inside its transaction; the
    commitTransaction command does not: nothing is committed."""
    before = seed(mongo)
    dm = make_dm(proxied, mongo, 'transactions')
    change_everything(dm, 1)
    cut_on.arm('commitTransaction')
    fails_within(COMMIT_BOUND, pymongo.errors.ConnectionFailure,
                 transaction.commit)
    assert [name for name, _ in cut_on.fired] == ['commitTransaction']
    transaction.abort()
    assert all_or_nothing(mongo, before, 1) == 'none'
    proxy.restore()
    next_transaction_works(mongo, proxied, 'transactions')


def test_commit_applied_but_its_answer_lost(mongo, proxy, proxied):
    """The server commits, the reply never arrives: the client cannot know
    the outcome.  The error says so (pymongo's UnknownTransactionCommitResult
    label, which zmongo passes through), the database holds all of the
    transaction, and nothing is half there."""
    before = seed(mongo)
    dm = make_dm(proxied, mongo, 'transactions')
    change_everything(dm, 1)
    proxy.cut_after_reply_to(b'commitTransaction')
    err = fails_within(COMMIT_BOUND, pymongo.errors.ConnectionFailure,
                       transaction.commit)
    assert proxy.cuts_after_reply == 1
    assert err.has_error_label('UnknownTransactionCommitResult')
    transaction.abort()
    assert all_or_nothing(mongo, before, 1) == 'all'
    proxy.restore()
    next_transaction_works(mongo, proxied, 'transactions')


@pytest.mark.parametrize('mode', MODES)
def test_connections_dropped_mid_transaction_server_still_up(
        mongo, proxy, proxied, mode):
    """A blip: every connection is reset after a flush, but the server
    stays reachable.  Whatever the driver makes of it (a retried commit, or
    an error), the database holds all of the transaction or none of it."""
    before = seed(mongo)
    dm = make_dm(proxied, mongo, mode)
    dm.root['a'].value = 1
    dm.flush()
    proxy.drop()
    started = time.monotonic()
    try:
        # The next read may be the one that meets the reset connection.
        dm.root['b'].value = 1
        dm.insert(hm.Entry('entry 1'))
        transaction.commit()
    except pymongo.errors.PyMongoError:
        transaction.abort()
        assert all_or_nothing(mongo, before, 1) == 'none'
    else:
        assert all_or_nothing(mongo, before, 1) == 'all'
    assert time.monotonic() - started < COMMIT_BOUND
    next_transaction_works(mongo, proxied, mode)


@pytest.mark.parametrize('mode', MODES)
def test_connection_blip_during_the_commit(mongo, proxy, proxied, cut_on,
                                           mode):
    """The connection is reset just before the second bulk write of the
    commit, and the proxy accepts again at once (the retry of a retryable
    write, or the undo, can reach the server): all or nothing."""
    before = seed(mongo)
    dm = make_dm(proxied, mongo, mode)
    a, b = dm.root['a'], dm.root['b']
    a.value, b.value = 1, 1
    dm.insert(hm.Entry('entry 1'))

    cut_on.arm('write', nth=2, then=proxy.restore)
    try:
        transaction.commit()
    except pymongo.errors.PyMongoError:
        transaction.abort()
        assert all_or_nothing(mongo, before, 1) == 'none'
    else:
        assert all_or_nothing(mongo, before, 1) == 'all'
    assert len(cut_on.fired) == 1
    next_transaction_works(mongo, proxied, mode)


# -- (c) server stopped and restarted under a running client ------------------

@pytest.mark.parametrize('mode', MODES)
def test_server_restarted_under_a_running_client(tmp_path, mode):
    port = free_port()
    data_dir = str(tmp_path / 'data')
    server = testing.EmbeddedServer(data_dir=data_dir, port=port).start()
    client = testing.make_client(server.uri, timeoutMS=TIMEOUT_MS,
                                 serverSelectionTimeoutMS=TIMEOUT_MS)
    direct = None
    try:
        db_name = 'zmongo_restart'

        def dm():
            return MongoDataManager(client, default_database=db_name,
                                    root_database=db_name,
                                    transactions=mode == 'transactions')
        first = dm()
        first.root['a'] = hm.Item('a', 1)
        first.root['seed'] = hm.Entry('seed')
        transaction.commit()

        server.stop()
        # Down: a transaction fails in time and aborts.
        during = dm()

        def change():
            during.insert(hm.Entry('while down'))
            transaction.commit()
        fails_within(COMMIT_BOUND, pymongo.errors.ConnectionFailure, change)
        transaction.abort()

        server = testing.EmbeddedServer(data_dir=data_dir, port=port).start()
        assert server.address == ('127.0.0.1', port)
        # Up again: the same client, a new data manager per transaction.
        after = dm()
        item = after.root['a']
        assert (item.name, item.value) == ('a', 1)     # survived
        item.value = 2
        after.insert(hm.Entry('after restart'))
        transaction.commit()
        again = dm()
        assert again.root['a'].value == 2
        transaction.abort()
        # Checked with a client of its own.
        direct = testing.make_client(server.uri)
        assert {d['name']: d['value']
                for d in direct[db_name]['items'].find()} == {'a': 2}
        assert sorted(d['text'] for d in direct[db_name]['entries'].find()) \
            == ['after restart', 'seed']
    finally:
        transaction.abort()
        client.close()
        if direct is not None:
            direct.close()
        server.stop()


@pytest.mark.parametrize('mode', MODES)
def test_server_stopped_mid_transaction(tmp_path, mode):
    """The server stops after a flush and before the commit, and comes
    back: the transaction aborted, and none of it is in the database."""
    port = free_port()
    data_dir = str(tmp_path / 'data')
    server = testing.EmbeddedServer(data_dir=data_dir, port=port).start()
    client = testing.make_client(server.uri, timeoutMS=TIMEOUT_MS,
                                 serverSelectionTimeoutMS=TIMEOUT_MS)
    db_name = 'zmongo_restart'
    try:
        def dm():
            return MongoDataManager(client, default_database=db_name,
                                    root_database=db_name,
                                    transactions=mode == 'transactions')
        first = dm()
        first.root['a'] = hm.Item('a', 1)
        first.root['b'] = hm.Item('b', 1)
        transaction.commit()
        pending = dm()
        pending.root['a'].value = 99
        pending.flush()
        pending.root['b'].value = 99
        server.stop()
        fails_within(COMMIT_BOUND, pymongo.errors.ConnectionFailure,
                     transaction.commit)
        transaction.abort()
        server = testing.EmbeddedServer(data_dir=data_dir, port=port).start()
        if mode == 'standalone':
            dm().root.get('a')      # the client's next operation: replays
            transaction.abort()
        assert {d['name']: d['value'] for d in
                client[db_name]['items'].find()} == {'a': 1, 'b': 1}
        after = dm()
        after.root['a'].value = 2
        transaction.commit()
        assert {d['name']: d['value'] for d in
                client[db_name]['items'].find()} == {'a': 2, 'b': 1}
    finally:
        transaction.abort()
        client.close()
        server.stop()


# -- (d) the server's conflict and duplicate-key errors at commit -------------

def test_write_conflict_between_server_transactions_is_a_conflict_error(
        mongo):
    seed(mongo)
    tm1, tm2 = transaction.TransactionManager(), \
        transaction.TransactionManager()
    dm1 = mongo.make_datamanager(transactions=True, transaction_manager=tm1)
    dm2 = mongo.make_datamanager(transactions=True, transaction_manager=tm2)
    dm1.root['a'].value = 1
    dm1.flush()                 # dm1's open transaction holds a
    dm2.root['a'].value = 2
    dm2.insert(hm.Entry('loser'))
    with pytest.raises(interfaces.ConflictError) as info:
        tm2.commit()
    assert isinstance(info.value.__cause__, pymongo.errors.PyMongoError)
    assert dm2.should_retry(info.value)
    tm2.abort()
    tm1.commit()
    assert items(mongo.db) == {'a': 1, 'b': 0}
    assert entries(mongo.db) == ['seed']
    # attempts() retries it: on fresh data it wins.
    for attempt in tm2.attempts(3):
        with attempt:
            dm2.root['a'].value += 10
    assert items(mongo.db) == {'a': 11, 'b': 0}


def test_write_conflict_error_from_a_bulk_write_is_a_conflict_error(mongo):
    """Standalone mode: the server answers a commit's write with
    WriteConflict (code 112, injected with the failCommand fail point):
    ConflictError, and nothing of the transaction stays."""
    before = seed(mongo)
    dm = mongo.make_datamanager(transactions=False)
    change_everything(dm, 1)
    mongo.client.admin.command(
        'configureFailPoint', 'failCommand', mode={'times': 1},
        data={'failCommands': ['insert'], 'errorCode': 112})
    try:
        with pytest.raises(interfaces.ConflictError):
            transaction.commit()
    finally:
        mongo.client.admin.command('configureFailPoint', 'failCommand',
                                   mode='off')
    transaction.abort()
    assert snapshot(mongo.db) == before


@pytest.mark.parametrize('command', ['insert', 'commitTransaction'])
def test_a_write_conflict_in_a_server_transaction_is_sent_again(
        mongo, command):
    """Server-transaction mode: a WriteConflict (injected) on a commit's
    write or on commitTransaction loses the server transaction; zmongo
    starts a new one, sends the writes again and commits all of it."""
    seed(mongo)
    dm = mongo.make_datamanager(transactions=True)
    change_everything(dm, 1)
    mongo.client.admin.command(
        'configureFailPoint', 'failCommand', mode={'times': 1},
        data={'failCommands': [command], 'errorCode': 112})
    try:
        transaction.commit()
    finally:
        mongo.client.admin.command('configureFailPoint', 'failCommand',
                                   mode='off')
    assert items(mongo.db) == {'a': 1, 'b': 1}
    assert entries(mongo.db) == ['entry 1', 'seed']
    if command == 'commitTransaction':
        # The fail point refused the commit without ending the server
        # transaction (a real WriteConflict ends it).
        kill_orphans(mongo)


@pytest.fixture
def unique_names(mongo):
    mongo.db['items'].create_index('name', unique=True)


@pytest.mark.parametrize('mode', MODES)
def test_duplicate_key_at_commit_is_a_duplicate_key_error(
        mongo, unique_names, mode):
    before = seed(mongo)
    dm = mongo.make_datamanager(transactions=mode == 'transactions')
    dm.root['a'].value = 1
    dm.insert(hm.Entry('entry 1'))
    dm.flush()                          # some writes land first
    dm.root['b'].value = 1
    dm.insert(hm.Item('a', 99))         # 'a' is taken
    with pytest.raises(interfaces.DuplicateKeyError) as info:
        transaction.commit()
    message = str(info.value)
    assert '%s.items' % mongo.db_name in message
    assert "'a'" in message
    transaction.abort()
    assert snapshot(mongo.db) == before


@pytest.mark.parametrize('mode', MODES)
def test_duplicate_key_error_is_not_retried(mongo, unique_names, mode):
    seed(mongo)
    dm = mongo.make_datamanager(transactions=mode == 'transactions')
    tries = []
    with pytest.raises(interfaces.DuplicateKeyError):
        for attempt in transaction.manager.attempts(3):
            with attempt:
                tries.append(1)
                dm.insert(hm.Item('b'))
    assert tries == [1]
    transaction.abort()
    assert items(mongo.db) == {'a': 0, 'b': 0}


@pytest.mark.parametrize('mode', MODES)
def test_concurrent_inserts_of_one_key(mongo, unique_names, mode):
    """Two transactions insert the same unique key: the first to commit
    wins; the other gets DuplicateKeyError (or, while the winner's server
    transaction is still open, a retryable ConflictError, and then
    DuplicateKeyError once it has committed)."""
    seed(mongo)
    transactions = mode == 'transactions'
    tm1, tm2 = transaction.TransactionManager(), \
        transaction.TransactionManager()
    dm1 = mongo.make_datamanager(transactions=transactions,
                                 transaction_manager=tm1)
    dm2 = mongo.make_datamanager(transactions=transactions,
                                 transaction_manager=tm2)
    dm1.insert(hm.Item('x', 1))
    dm1.flush()
    dm2.insert(hm.Item('x', 2))
    if transactions:
        # The winner has not committed: the server reports a write
        # conflict.
        with pytest.raises(interfaces.ConflictError):
            tm2.commit()
        tm2.abort()
        dm2.insert(hm.Item('x', 2))
    tm1.commit()
    with pytest.raises(interfaces.DuplicateKeyError):
        tm2.commit()
    tm2.abort()
    assert items(mongo.db) == {'a': 0, 'b': 0, 'x': 1}


def test_unreached_undo_belongs_to_its_client_only(mongo, proxy, proxied):
    """Clients with the same settings are still different clients: the
    undo another one could not send is not taken over (or lost) by it."""
    from zmongo._sessions import UNREACHED_UNDO
    twin = testing.make_client(proxy.uri, timeoutMS=TIMEOUT_MS,
                               serverSelectionTimeoutMS=TIMEOUT_MS)
    try:
        assert twin == proxied          # pymongo: equal settings
        before = seed(mongo)
        dm = make_dm(proxied, mongo, 'standalone')
        change_everything(dm, 1)
        dm.flush()
        proxy.cut()
        transaction.abort()
        assert UNREACHED_UNDO.waiting(proxied)
        assert not UNREACHED_UNDO.waiting(twin)
        proxy.restore()
        replay_point(proxied, mongo, 'standalone')
        assert all_or_nothing(mongo, before, 1) == 'none'
        assert not UNREACHED_UNDO.waiting(proxied)
    finally:
        twin.close()


@pytest.mark.parametrize('handler', [conflict.NoCheckConflictHandler,
                                     conflict.SimpleSerialConflictHandler])
@pytest.mark.parametrize('mode', MODES)
def test_duplicate_key_on_a_replaced_object(mongo, unique_names, mode,
                                            handler):
    """A changed object whose new state takes a unique key another document
    holds: a DuplicateKeyError naming the collection, key and value -- not
    a conflict, not retried, in both modes."""
    seed(mongo)
    dm = mongo.make_datamanager(transactions=mode == 'transactions',
                                conflict_handler_factory=handler)
    tries = []
    with pytest.raises(interfaces.DuplicateKeyError) as info:
        for attempt in transaction.manager.attempts(3):
            with attempt:
                tries.append(1)
                dm.root['b'].name = 'a'
    assert tries == [1]
    message = str(info.value)
    assert '%s.items' % mongo.db_name in message
    assert "'name': 'a'" in message
    transaction.abort()
    assert items(mongo.db) == {'a': 0, 'b': 0}


@pytest.mark.parametrize('datamanager', ['standalone'], indirect=True)
@pytest.mark.parametrize('command', [b'insert', b'update'])
def test_standalone_write_whose_reply_is_lost_is_undone(
        mongo, datamanager, proxy, proxied, command):
    """Standalone mode (a server presenting itself as standalone: no
    transactions, no retried writes): the server applies a flush's write
    but its reply is lost.  The abort must still undo it: the writes of a
    bulk that got no answer are in the write log with their undo writes
    (sent once the server answers again)."""
    before = seed(mongo)
    dm = make_dm(proxied, mongo, 'standalone')
    change_everything(dm, 'lost')
    proxy.cut_after_reply_to(command)
    with pytest.raises(pymongo.errors.PyMongoError):
        dm.flush()
    assert proxy.cuts_after_reply == 1
    transaction.abort()
    proxy.restore()
    replay_point(proxied, mongo, 'standalone')
    assert snapshot(mongo.db) == before
    next_transaction_works(mongo, proxied, 'standalone')
