"""Conflicts: two writers of one document can never both win."""
import pytest
import transaction
import transaction.interfaces
from zope.interface.verify import verifyObject

from tests import models
from zmongo import conflict
from zmongo import interfaces

MODES = ['transactions', 'standalone']


@pytest.fixture(params=MODES)
def two_writers(request, mongo):
    """Two data managers with their own transaction managers, as two
    processes would have; deterministic, no threads."""

    def make(handler=conflict.SimpleSerialConflictHandler):
        tms = transaction.TransactionManager(), \
            transaction.TransactionManager()
        dms = [mongo.make_datamanager(
            transactions=request.param == 'transactions',
            transaction_manager=tm, conflict_handler_factory=handler)
            for tm in tms]
        return list(zip(tms, dms))
    return make


def standalone_writers(mongo, handler):
    """Two standalone-mode data managers with transaction managers of their
    own: ``((tm1, tm2), (dm1, dm2))``."""
    tms = transaction.TransactionManager(), transaction.TransactionManager()
    return tms, tuple(mongo.make_datamanager(
        transactions=False, transaction_manager=tm,
        conflict_handler_factory=handler) for tm in tms)


def counters(mongo, collection='counters'):
    return [doc['value'] for doc in mongo.db[collection].find()]


def test_handlers_provide_their_interfaces(datamanager):
    for handler in (conflict.NoCheckConflictHandler,
                    conflict.SimpleSerialConflictHandler,
                    conflict.ResolvingSerialConflictHandler):
        verifyObject(interfaces.IConflictHandler, handler(datamanager))
    verifyObject(interfaces.IResolvingConflictHandler,
                 conflict.ResolvingSerialConflictHandler(datamanager))


def test_conflict_error_is_transient_and_carries_evidence():
    obj = models.Counter()
    err = interfaces.ConflictError(
        None, obj, {'_py_serial': 1}, {'_py_serial': 2}, {'_py_serial': 2})
    assert isinstance(err, transaction.interfaces.TransientError)
    assert (err.object, err.orig_serial, err.cur_serial, err.new_serial) \
        == (obj, 1, 2, 2)
    assert str(err) == ('database conflict error (oid None, class Counter, '
                        'orig serial 1, cur serial 2, new serial 2)')
    assert interfaces.ConflictError().orig_serial is None


def test_serials_are_stored_and_counted(mongo):
    dm = mongo.make_datamanager(
        conflict_handler_factory=conflict.SimpleSerialConflictHandler)
    dm.root['c'] = models.Counter()
    transaction.commit()
    assert mongo.db.counters.find_one()['_py_serial'] == 1
    counter = dm.root['c']
    assert counter.value == 0       # loads the ghost
    assert counter._p_serial == b'\0' * 7 + b'\1'
    dm.root['c'].value = 5
    transaction.commit()
    assert mongo.db.counters.find_one()['_py_serial'] == 2


def test_two_writers_one_wins(two_writers, mongo):
    (tm1, dm1), (tm2, dm2) = two_writers()
    dm1.root['c'] = models.Counter()
    tm1.commit()
    c1, c2 = dm1.root['c'], dm2.root['c']
    c1.value += 1
    c2.value += 1
    tm1.commit()
    with pytest.raises(interfaces.ConflictError):
        tm2.commit()
    tm2.abort()
    assert counters(mongo) == [1]
    # A retry on fresh data succeeds.
    dm2.root['c'].value += 1
    tm2.commit()
    assert counters(mongo) == [2]


def test_conflict_names_the_object_in_standalone_mode(mongo):
    tms, (dm1, dm2) = standalone_writers(mongo, conflict.SimpleSerialConflictHandler)
    dm1.root['c'] = models.Counter()
    tms[0].commit()
    c1, c2 = dm1.root['c'], dm2.root['c']
    c1.value, c2.value = 1, 2
    tms[0].commit()
    with pytest.raises(interfaces.ConflictError) as info:
        tms[1].commit()
    tms[1].abort()
    assert info.value.object is c2
    assert (info.value.orig_serial, info.value.cur_serial,
            info.value.new_serial) == (1, 2, 2)
    assert info.value.cur_state['value'] == 1
    assert info.value.new_state['value'] == 2


def test_loser_leaves_no_partial_writes(two_writers, mongo):
    (tm1, dm1), (tm2, dm2) = two_writers()
    dm1.root['a'] = models.Counter()
    dm1.root['b'] = models.Counter()
    tm1.commit()
    dm1.root['b'].value = 10
    tm1.commit()
    # The loser changed a first (no conflict) and b (conflict: its b is
    # older than what the winner wrote since it was read).
    a2, b2 = dm2.root['a'], dm2.root['b']
    assert b2.value == 10           # read before the winner writes
    a2.value = 99
    dm1.root['b'].value = 20
    tm1.commit()
    b2.value = 99
    with pytest.raises(interfaces.ConflictError):
        tm2.commit()
    tm2.abort()
    assert sorted(counters(mongo)) == [0, 20]


def test_attempts_retries_conflicts(two_writers, mongo):
    (tm1, dm1), (tm2, dm2) = two_writers()
    dm1.root['c'] = models.Counter()
    tm1.commit()
    tries = []
    for attempt in tm2.attempts(3):
        with attempt:
            counter = dm2.root['c']
            counter.value += 1
            tries.append(counter.value)
            if len(tries) == 1:
                # Someone else commits in between, once.
                dm1.root['c'].value += 10
                tm1.commit()
    assert counters(mongo) == [11]
    assert len(tries) == 2


def test_concurrent_delete_is_a_conflict(two_writers, mongo):
    (tm1, dm1), (tm2, dm2) = two_writers()
    dm1.root['c'] = models.Counter()
    tm1.commit()
    c2 = dm2.root['c']
    c2.value = 5
    dm1.remove(dm1.root['c'])
    tm1.commit()
    with pytest.raises(interfaces.ConflictError) as info:
        tm2.commit()
    tm2.abort()
    assert info.value.cur_state is None or \
        'write conflict' in str(info.value)
    assert counters(mongo) == []


def test_delete_of_a_changed_document_is_a_conflict(two_writers, mongo):
    (tm1, dm1), (tm2, dm2) = two_writers()
    dm1.root['c'] = models.Counter()
    tm1.commit()
    c2 = dm2.root['c']
    c2.value  # read before the other writer changes it
    dm1.root['c'].value = 7
    tm1.commit()
    dm2.remove(c2)
    with pytest.raises(interfaces.ConflictError):
        tm2.commit()
    tm2.abort()
    assert counters(mongo) == [7]


def test_no_check_handler_lets_last_writer_win(mongo):
    tms, (dm1, dm2) = standalone_writers(mongo, conflict.NoCheckConflictHandler)
    dm1.root['c'] = models.Counter()
    tms[0].commit()
    c1, c2 = dm1.root['c'], dm2.root['c']
    c1.value, c2.value = 1, 2
    tms[0].commit()
    tms[1].commit()
    assert counters(mongo) == [2]
    assert '_py_serial' not in mongo.db.counters.find_one()


def test_resolving_handler_merges_in_standalone_mode(mongo):
    tms, (dm1, dm2) = standalone_writers(mongo, conflict.ResolvingSerialConflictHandler)
    dm1.root['m'] = models.MergingCounter()
    tms[0].commit()
    m1, m2 = dm1.root['m'], dm2.root['m']
    m1.value += 1
    m2.value += 5
    tms[0].commit()
    tms[1].commit()
    assert counters(mongo, 'merging_counters') == [6]
    assert mongo.db.merging_counters.find_one()['_py_serial'] == 3


def test_resolving_handler_without_resolver_conflicts(mongo):
    tms, (dm1, dm2) = standalone_writers(mongo, conflict.ResolvingSerialConflictHandler)
    dm1.root['c'] = models.Counter()
    tms[0].commit()
    c1, c2 = dm1.root['c'], dm2.root['c']
    c1.value, c2.value = 1, 2
    tms[0].commit()
    with pytest.raises(interfaces.ConflictError):
        tms[1].commit()
    tms[1].abort()


def test_check_conflicts_api(mongo):
    # Standalone mode: in a server transaction the check would (rightly)
    # read the transaction's snapshot, which predates the outside write.
    dm = mongo.make_datamanager(
        transactions=False, conflict_handler_factory=conflict.SimpleSerialConflictHandler)
    dm.root['c'] = models.Counter()
    transaction.commit()
    counter = dm.root['c']
    counter.value
    assert not dm.conflict_handler.has_conflicts([counter])
    mongo.db.counters.update_one({}, {'$set': {'_py_serial': 5}})
    assert dm.conflict_handler.has_conflicts([counter])
    with pytest.raises(interfaces.ConflictError):
        dm.conflict_handler.check_conflicts([counter])


def test_documents_without_serial_count_as_serial_zero(mongo):
    dm = mongo.make_datamanager(
        transactions=False,
        conflict_handler_factory=conflict.SimpleSerialConflictHandler)
    dm.root['other'] = models.Counter()   # records the collection's class
    transaction.commit()
    mongo.db.counters.insert_one({'value': 1})  # written without a serial
    counter = dm.get_collection(mongo.db_name, 'counters').find_one_object(
        {'value': 1})
    counter.value = 2
    transaction.commit()
    doc = mongo.db.counters.find_one({'value': 2})
    assert doc['_py_serial'] == 1


def test_p64_u64():
    assert conflict.p64(1) == b'\0\0\0\0\0\0\0\1'
    assert conflict.u64(conflict.p64(2 ** 40)) == 2 ** 40


def test_a_query_does_not_refresh_an_object_already_loaded(mongo):
    """Finding an object again must not move its serial forward: the
    conflict check compares with the document it was really built from."""
    tms, (dm1, dm2) = standalone_writers(mongo, conflict.SimpleSerialConflictHandler)
    dm1.root['c'] = models.Counter()
    tms[0].commit()
    mine = dm2.root['c']
    assert mine.value == 0
    dm1.root['c'].value = 10            # someone else commits meanwhile
    tms[0].commit()
    again = dm2.get_collection(mongo.db_name, 'counters').find_one_object({})
    assert again is mine and mine.value == 0
    mine.value += 1
    with pytest.raises(interfaces.ConflictError):
        tms[1].commit()
    tms[1].abort()
    assert counters(mongo) == [10]
