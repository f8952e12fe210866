"""The conflict handler decides, on every server (issue 15).

mongopersist's contract: transaction A loads ``foo``, B changes and commits
``foo``, A changes ``foo`` and commits.  NoCheck: A wins (last writer);
Serial: A gets a ``ConflictError`` carrying the object, the three states
and serials; Resolving: ``_p_resolveConflict(orig, cur, new)`` merges.  On
a replica set the server reports B's write as a lost server transaction
(``WriteConflict``); zmongo starts a new one, sends its writes again and
lets the handler decide -- so both modes answer alike.  A server
transaction the server expired (its transaction lifetime) is started again
the same way, so a transaction may last longer than the server allows one.
"""
import time

import pytest
import transaction
import transaction.interfaces

from tests import models
from zmongo import conflict
from zmongo import interfaces
from zmongo import testing

MODES = ['transactions', 'standalone']


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.fixture
def server(mode):
    """The server of the mode: a replica set, or one that presents as a
    standalone server."""
    return testing.get_test_uri(standalone=mode == 'standalone')


def writers(mongo, mode, handler):
    tms = transaction.TransactionManager(), transaction.TransactionManager()
    dms = [mongo.make_datamanager(
        transactions=mode == 'transactions', transaction_manager=tm,
        conflict_handler_factory=handler) for tm in tms]
    return tms, dms


def a_loads_b_commits_a_commits(mongo, mode, handler, klass=models.Counter):
    """Returns ``(tm_a, foo_of_a)`` with A's change pending, B's
    committed."""
    (tm_a, tm_b), (dm_a, dm_b) = writers(mongo, mode, handler)
    dm_a.root['foo'] = klass(10)
    tm_a.commit()
    foo_a = dm_a.root['foo']
    assert foo_a.value == 10            # A loads foo
    foo_b = dm_b.root['foo']
    foo_b.value += 1                    # B changes and commits foo
    tm_b.commit()
    foo_a.value += 5                    # A changes foo
    return tm_a, foo_a


@pytest.fixture
def mongo(server):
    with testing.MongoFixture(server) as fixture:
        yield fixture


def stored(mongo, collection='counters'):
    return [doc['value'] for doc in mongo.db[collection].find()]


def test_nocheck_last_writer_wins(mongo, mode):
    tm_a, foo_a = a_loads_b_commits_a_commits(
        mongo, mode, conflict.NoCheckConflictHandler)
    tm_a.commit()
    assert stored(mongo) == [15]


def test_serial_raises_conflict_error_with_evidence(mongo, mode):
    tm_a, foo_a = a_loads_b_commits_a_commits(
        mongo, mode, conflict.SimpleSerialConflictHandler)
    with pytest.raises(interfaces.ConflictError) as info:
        tm_a.commit()
    err = info.value
    assert err.object is foo_a
    assert (err.orig_state['value'], err.cur_state['value'],
            err.new_state['value']) == (10, 11, 15)
    assert (err.orig_serial, err.cur_serial, err.new_serial) == (1, 2, 2)
    assert 'class Counter' in str(err) and 'cur serial 2' in str(err)
    tm_a.abort()
    assert stored(mongo) == [11]


def test_resolving_merges_with_p_resolve_conflict(mongo, mode):
    tm_a, foo_a = a_loads_b_commits_a_commits(
        mongo, mode, conflict.ResolvingSerialConflictHandler,
        models.MergingCounter)
    tm_a.commit()
    # Both increments: 10 + 1 + 5.
    assert stored(mongo, models.MergingCounter._p_mongo_collection) == [16]


def test_resolving_without_a_resolver_raises(mongo, mode):
    tm_a, foo_a = a_loads_b_commits_a_commits(
        mongo, mode, conflict.ResolvingSerialConflictHandler)
    with pytest.raises(interfaces.ConflictError) as info:
        tm_a.commit()
    assert info.value.object is foo_a
    tm_a.abort()
    assert stored(mongo) == [11]


# -- deletes: the same contract ------------------------------------------------

def a_loads_b_then_a(mongo, mode, handler, b_deletes):
    """A loads ``foo``; B deletes it (or changes it) and commits; returns
    ``(tm_a, dm_a, foo_a)``."""
    (tm_a, tm_b), (dm_a, dm_b) = writers(mongo, mode, handler)
    dm_a.root['foo'] = models.Counter(10)
    tm_a.commit()
    foo_a = dm_a.root['foo']
    assert foo_a.value == 10
    foo_b = dm_b.root['foo']
    if b_deletes:
        dm_b.remove(foo_b)
    else:
        foo_b.value += 1
    tm_b.commit()
    return tm_a, dm_a, foo_a


def test_serial_change_of_an_object_deleted_meanwhile(mongo, mode):
    tm_a, dm_a, foo_a = a_loads_b_then_a(
        mongo, mode, conflict.SimpleSerialConflictHandler, b_deletes=True)
    foo_a.value += 5
    with pytest.raises(interfaces.ConflictError) as info:
        tm_a.commit()
    err = info.value
    assert err.object is foo_a
    assert err.cur_state is None and err.cur_serial is None
    assert (err.orig_serial, err.new_serial) == (1, 2)
    tm_a.abort()
    assert stored(mongo) == []


def test_serial_delete_of_an_object_changed_meanwhile(mongo, mode):
    tm_a, dm_a, foo_a = a_loads_b_then_a(
        mongo, mode, conflict.SimpleSerialConflictHandler, b_deletes=False)
    dm_a.remove(foo_a)
    with pytest.raises(interfaces.ConflictError) as info:
        tm_a.commit()
    err = info.value
    assert err.object is foo_a
    assert (err.orig_serial, err.cur_serial) == (1, 2)
    assert err.new_state is None
    tm_a.abort()
    assert stored(mongo) == [11]


def test_nocheck_change_of_an_object_deleted_meanwhile(mongo, mode):
    """Last writer wins: A's replace writes the document again."""
    tm_a, dm_a, foo_a = a_loads_b_then_a(
        mongo, mode, conflict.NoCheckConflictHandler, b_deletes=True)
    foo_a.value += 5
    tm_a.commit()
    assert stored(mongo) == [15]


def test_nocheck_delete_of_an_object_changed_meanwhile(mongo, mode):
    tm_a, dm_a, foo_a = a_loads_b_then_a(
        mongo, mode, conflict.NoCheckConflictHandler, b_deletes=False)
    dm_a.remove(foo_a)
    tm_a.commit()
    assert stored(mongo) == []


def test_serial_conflict_found_by_a_flush_before_commit(mongo, mode):
    """The conflict is the handler's at any flush (a query), not only at
    commit, and the transaction is doomed."""
    tm_a, foo_a = a_loads_b_commits_a_commits(
        mongo, mode, conflict.SimpleSerialConflictHandler)
    with pytest.raises(interfaces.ConflictError) as info:
        foo_a._p_jar.flush()
    assert info.value.object is foo_a
    assert info.value.cur_serial == 2
    with pytest.raises(transaction.interfaces.TransactionFailedError):
        tm_a.commit()
    tm_a.abort()
    assert stored(mongo) == [11]


# -- a transaction longer than the server's transaction lifetime --------------

@pytest.fixture(scope='module')
def short_lived():
    """A replica set whose server transactions expire after 2 s."""
    with testing.EmbeddedServer(transaction_lifetime_seconds=2) as server:
        yield server


@pytest.mark.parametrize('handler', [conflict.NoCheckConflictHandler,
                                     conflict.SimpleSerialConflictHandler])
def test_a_transaction_longer_than_the_server_lifetime_commits(
        short_lived, handler):
    with testing.MongoFixture(short_lived.uri) as mongo:
        dm = mongo.make_datamanager(conflict_handler_factory=handler)
        assert dm.uses_transactions
        dm.root['foo'] = models.Counter(1)
        dm.root['bar'] = models.Counter(2)
        transaction.commit()
        foo, bar = dm.root['foo'], dm.root['bar']
        assert foo.value + bar.value == 3
        time.sleep(3)                   # the server transaction expires
        foo.value = 10
        transaction.commit()
        assert sorted(stored(mongo)) == [2, 10]


def test_a_restart_sees_no_torn_snapshot(short_lived):
    """Objects read before the server transaction expired are checked when
    it starts again: one changed by another transaction meanwhile is a
    (retryable) ConflictError, not a mix of two snapshots."""
    with testing.MongoFixture(short_lived.uri) as mongo:
        (tm_a, tm_b), (dm_a, dm_b) = writers(
            mongo, 'transactions', conflict.NoCheckConflictHandler)
        dm_a.root['foo'] = models.Counter(1)
        dm_a.root['bar'] = models.Counter(2)
        tm_a.commit()
        foo_a, bar_a = dm_a.root['foo'], dm_a.root['bar']
        assert foo_a.value + bar_a.value == 3
        dm_b.root['bar'].value = 20
        tm_b.commit()
        time.sleep(3)
        foo_a.value = bar_a.value * 10  # computed from a bar now stale
        with pytest.raises(interfaces.ConflictError) as info:
            tm_a.commit()
        assert info.value.object is bar_a
        assert dm_a.should_retry(info.value)
        tm_a.abort()
        assert sorted(stored(mongo)) == [1, 20]
