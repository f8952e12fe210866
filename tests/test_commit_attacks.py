"""Attacks on the issue-15 commit engine (review 15e): shared server
transactions, restarts of reads and savepoint rollbacks, and the
standalone write-ahead undo of collection-wrapper writes.  Each test is a
scenario that broke, or that was expected to and did not."""
import pytest
import transaction
from pymongo import UpdateMany

from tests import models
from zmongo import interfaces

MODES = ['transactions', 'standalone']


def mode_of(datamanager):
    return 'transactions' if datamanager.uses_transactions else 'standalone'


def fresh(mongo, mode, **options):
    tm = transaction.TransactionManager()
    return tm, mongo.make_datamanager(
        transactions=mode == 'transactions', transaction_manager=tm,
        **options)


def counters(db):
    return sorted(doc['value'] for doc in db['counters'].find())


# -- collection-wrapper writes and collations ------------------------------------

def seed_names(db):
    db['names'].insert_many([{'_id': 1, 'name': 'a'}, {'_id': 2, 'name': 'A'},
                             {'_id': 3, 'name': 'b'}])


CASELESS = {'locale': 'en', 'strength': 2}


@pytest.mark.parametrize('datamanager', MODES, indirect=True)
@pytest.mark.parametrize('method', ['update_many', 'update_one_each',
                                    'delete_many'])
def test_a_wrapper_write_with_a_collation_changes_what_it_matches(
        datamanager, mongo, method):
    """The wrapper reads the documents a write may change first and pins
    the write to them: that read must use the write's collation, or the
    write changes fewer documents than pymongo would."""
    seed_names(mongo.db)
    tm, dm = fresh(mongo, mode_of(datamanager))
    coll = dm.get_collection(mongo.db_name, 'names')
    if method == 'update_many':
        result = coll.update_many({'name': 'a'}, {'$set': {'hit': True}},
                                  collation=CASELESS)
        assert result.modified_count == 2
    elif method == 'update_one_each':
        for _ in range(2):
            result = coll.update_one(
                {'name': 'a', 'hit': {'$exists': False}},
                {'$set': {'hit': True}}, collation=CASELESS)
            assert result.modified_count == 1
    else:
        result = coll.delete_many({'name': 'a'}, collation=CASELESS)
        assert result.deleted_count == 2
    tm.commit()
    docs = {d['_id']: d for d in mongo.db['names'].find()}
    if method == 'delete_many':
        assert sorted(docs) == [3]
    else:
        assert [i for i in sorted(docs) if docs[i].get('hit')] == [1, 2]


@pytest.mark.parametrize('datamanager', ['standalone'], indirect=True)
def test_a_standalone_bulk_with_a_collation_is_undone_at_abort(
        datamanager, mongo):
    """A standalone ``bulk_write`` reads every document its requests may
    change (for the undo) -- with each request's collation, or an abort
    leaves what it wrote to the documents only the collation matched."""
    seed_names(mongo.db)
    before = sorted(map(repr, mongo.db['names'].find()))
    tm, dm = fresh(mongo, 'standalone')
    coll = dm.get_collection(mongo.db_name, 'names')
    result = coll.bulk_write([UpdateMany({'name': 'a'},
                                         {'$set': {'hit': True}},
                                         collation=CASELESS)])
    assert result.modified_count == 2
    tm.abort()
    assert sorted(map(repr, mongo.db['names'].find())) == before


# -- a wrapper write, an object read after it, a savepoint rollback -------------

@pytest.mark.parametrize('datamanager', MODES, indirect=True)
@pytest.mark.parametrize('when', ['after the savepoint',
                                  'before the savepoint'])
def test_an_object_read_after_a_wrapper_write_and_a_rollback(
        datamanager, mongo, when):
    """``foo`` is changed through the collection wrapper and read again
    (it shows the write); a savepoint rollback must leave it showing the
    savepoint's state -- neither the rolled-back write (a stale object)
    nor a ConflictError for a change nobody else made."""
    tm, dm = fresh(mongo, mode_of(datamanager))
    dm.root['foo'] = models.Counter(1)
    tm.commit()
    foo = dm.root['foo']
    assert foo.value == 1
    coll = dm.get_collection(mongo.db_name, 'counters')
    if when == 'before the savepoint':
        coll.update_one({'_id': foo._p_oid.id}, {'$set': {'value': 5}})
        savepoint = tm.savepoint()
        assert foo.value == 5
        expected = 5
    else:
        savepoint = tm.savepoint()
        coll.update_one({'_id': foo._p_oid.id}, {'$set': {'value': 5}})
        assert foo.value == 5
        expected = 1
    savepoint.rollback()
    assert foo.value == expected
    foo.value += 1
    tm.commit()
    assert counters(mongo.db) == [expected + 1]
