"""Writes through a data manager's collection wrapper get a write-ahead
undo in standalone mode (issue 15): the documents a write may change are
read first and what it will leave is known before it is sent (inserts and
replaces write given documents, deletes leave none, updates and
``bulk_write`` are run on a copy of the documents first), so the undo
writes are logged before it is sent, and an abort puts back exactly what
it changed -- never over a later commit -- also when its answer is
lost."""
import datetime

import pymongo.errors
import pytest
import transaction
from pymongo import (DeleteMany, DeleteOne, InsertOne, ReplaceOne,
                     UpdateMany, UpdateOne)

from tests.tcpproxy import TCPProxy
from tests.test_faults import CutOn
from zmongo import testing
from zmongo.datamanager import MongoDataManager

TIMEOUT_MS = 2000


def ledger_docs(db):
    return sorted(map(repr, db['ledger'].find()))


def seed(db):
    db['ledger'].insert_many([{'_id': i, 'n': i} for i in range(5)])
    return ledger_docs(db)


def requests():
    """Every kind of request, and ones that depend on earlier ones: an
    update of a document an earlier request inserted, an update matching
    a document only after an earlier one changed it, an upsert."""
    return [
        InsertOne({'_id': 10, 'n': 10}),
        UpdateOne({'_id': 10}, {'$set': {'updated': True}}),
        UpdateOne({'n': 0}, {'$set': {'n': 100}}),
        UpdateOne({'n': 100}, {'$inc': {'n': 1}}),        # after the one above
        UpdateMany({'n': {'$gte': 3, '$lt': 10}}, {'$set': {'many': True}}),
        ReplaceOne({'_id': 1}, {'replaced': True}),
        DeleteOne({'_id': 2}),
        DeleteMany({'many': True, 'n': 4}),
        UpdateOne({'_id': 20}, {'$set': {'n': 20}}, upsert=True),
        InsertOne({'n': 30}),                              # _id by pymongo
    ]


@pytest.fixture
def standalone():
    with testing.MongoFixture(testing.get_test_uri(standalone=True)) as m:
        yield m


def make_dm(client, mongo, **options):
    dm = MongoDataManager(client, default_database=mongo.db_name,
                          root_database=mongo.db_name, **options)
    assert not dm.uses_transactions
    return dm


def ledger(dm, mongo):
    return dm.get_collection(mongo.db_name, 'ledger')


def test_a_bulk_write_is_undone_by_abort(standalone):
    before = seed(standalone.db)
    dm = make_dm(standalone.client, standalone)
    result = ledger(dm, standalone).bulk_write(requests())
    assert result.upserted_ids
    assert ledger_docs(standalone.db) != before
    after = {d['_id']: d for d in standalone.db['ledger'].find()}
    assert after[0]['n'] == 101 and after[10]['updated'] is True
    transaction.abort()
    assert ledger_docs(standalone.db) == before
    assert not [n for n in standalone.db.list_collection_names()
                if n.startswith('zmongo_undo_')]


def test_a_committed_bulk_write_stays(standalone):
    seed(standalone.db)
    dm = make_dm(standalone.client, standalone)
    ledger(dm, standalone).bulk_write(requests())
    expected = ledger_docs(standalone.db)
    transaction.commit()
    assert ledger_docs(standalone.db) == expected


def test_a_bulk_write_rolled_back_to_a_savepoint(standalone):
    before = seed(standalone.db)
    dm = make_dm(standalone.client, standalone)
    coll = ledger(dm, standalone)
    coll.insert_one({'_id': 50})
    kept = ledger_docs(standalone.db)
    savepoint = transaction.savepoint()
    coll.bulk_write(requests())
    savepoint.rollback()
    assert ledger_docs(standalone.db) == kept
    transaction.abort()
    assert ledger_docs(standalone.db) == before


def test_the_undo_never_lands_over_a_later_commit(standalone, caplog):
    """The bulk changed document 3; another writer changes it again and
    commits; the abort leaves the other's document (and says so)."""
    seed(standalone.db)
    dm = make_dm(standalone.client, standalone)
    ledger(dm, standalone).bulk_write([
        UpdateOne({'_id': 3}, {'$set': {'n': 33}}),
        UpdateOne({'_id': 4}, {'$set': {'n': 44}})])
    standalone.db['ledger'].update_one({'_id': 3}, {'$set': {'other': 1}})
    with caplog.at_level('WARNING', logger='zmongo.datamanager'):
        transaction.abort()
    docs = {d['_id']: d for d in standalone.db['ledger'].find()}
    assert docs[3] == {'_id': 3, 'n': 33, 'other': 1}
    assert docs[4] == {'_id': 4, 'n': 4}
    assert '1 of 2 undo writes' in caplog.text


def test_a_bulk_write_that_failed_half_way_is_undone(standalone):
    """An ordered bulk stops at a duplicate key: what it wrote before is
    undone by the abort."""
    before = seed(standalone.db)
    dm = make_dm(standalone.client, standalone)
    with pytest.raises(pymongo.errors.BulkWriteError):
        ledger(dm, standalone).bulk_write([
            UpdateOne({'_id': 0}, {'$set': {'n': 7}}),
            InsertOne({'_id': 11}),
            InsertOne({'_id': 1}),          # taken
            InsertOne({'_id': 12})])
    assert standalone.db['ledger'].find_one({'_id': 11}) is not None
    transaction.abort()
    assert ledger_docs(standalone.db) == before


def test_the_cost_of_an_undoable_bulk_write(standalone):
    """Read first (one find), the run on the copy (insert, the bulk's own
    commands, find, drop), the bulk, read again (one find)."""
    seed(standalone.db)
    dm = make_dm(standalone.client, standalone)
    coll = ledger(dm, standalone)
    coll.find_one({})                   # the session, the name map...
    standalone.commands.reset()
    coll.bulk_write([UpdateOne({'_id': 0}, {'$set': {'n': 7}}),
                     DeleteOne({'_id': 1})])
    assert standalone.commands.names == [
        'find', 'insert', 'update', 'delete', 'find', 'drop',
        'update', 'delete', 'find']


def test_requests_it_cannot_read_are_refused(standalone):
    dm = make_dm(standalone.client, standalone)
    with pytest.raises(TypeError, match='cannot undo'):
        ledger(dm, standalone).bulk_write([object()])


# -- faults -------------------------------------------------------------------

@pytest.fixture
def proxy(standalone):
    proxy = TCPProxy(standalone.client.address).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxied(proxy):
    client = testing.make_client(proxy.uri, timeoutMS=TIMEOUT_MS,
                                 serverSelectionTimeoutMS=TIMEOUT_MS)
    yield client
    transaction.abort()
    proxy.restore()
    client.close()


@pytest.mark.parametrize('command', [b'update', b'delete'])
def test_a_bulk_write_whose_answer_is_lost_is_undone(
        standalone, proxy, proxied, command):
    """The server applies the bulk (up to its ``update`` or ``delete``
    command, whose reply the proxy swallows before cutting the
    connection): no answer, so what it wrote is unknown to the client.
    The write-ahead undo writes are in the log: once the server answers
    again, the abort leaves the database as it was."""
    before = seed(standalone.db)
    dm = make_dm(proxied, standalone)
    coll = ledger(dm, standalone)
    coll.find_one({})
    # The bulk's own command (the run on the copy goes to another
    # collection): {<command>: 'ledger', ...} as BSON.
    proxy.cut_after_reply_to(b'\x02' + command + b'\x00\x07\x00\x00\x00ledger\x00')
    with pytest.raises(pymongo.errors.PyMongoError):
        coll.bulk_write([
            InsertOne({'_id': 10, 'n': 10}),
            UpdateOne({'_id': 0}, {'$set': {'n': 100}}),
            UpdateMany({'n': {'$gte': 3}}, {'$inc': {'n': 1}}),
            DeleteOne({'_id': 2})])
    assert proxy.cuts_after_reply == 1
    assert ledger_docs(standalone.db) != before     # the server applied it
    proxy.restore()
    transaction.abort()
    assert ledger_docs(standalone.db) == before


#: A write of each single-write method, and the command that carries it.
SINGLE_WRITES = {
    'insert_one': (b'insert', lambda c: c.insert_one({'_id': 99})),
    'insert_many': (b'insert', lambda c: c.insert_many([{'n': 7}, {}])),
    'update_one': (b'update', lambda c: c.update_one(
        {'_id': 1}, {'$set': {'n': 9}})),
    'update_many': (b'update', lambda c: c.update_many(
        {}, {'$inc': {'n': 1}})),
    'replace_one': (b'update', lambda c: c.replace_one({'_id': 1},
                                                        {'x': 1})),
    'delete_one': (b'delete', lambda c: c.delete_one({'_id': 1})),
    'delete_many': (b'delete', lambda c: c.delete_many({'n': {'$gt': 1}})),
    'find_one_and_update': (b'findAndModify', lambda c: c.find_one_and_update(
        {'_id': 1}, {'$push': {'tags': 'a'}})),
    'find_one_and_replace': (b'findAndModify',
                             lambda c: c.find_one_and_replace(
                                 {'_id': 1}, {'y': 2})),
    'find_one_and_delete': (b'findAndModify',
                            lambda c: c.find_one_and_delete({'_id': 1})),
}


@pytest.mark.parametrize('write', sorted(SINGLE_WRITES))
def test_a_single_write_whose_answer_is_lost_is_undone(
        standalone, proxy, proxied, write):
    before = seed(standalone.db)
    dm = make_dm(proxied, standalone)
    coll = ledger(dm, standalone)
    coll.find_one({})
    command, call = SINGLE_WRITES[write]
    proxy.cut_after_reply_to(b'\x02' + command +
                             b'\x00\x07\x00\x00\x00ledger\x00')
    with pytest.raises(pymongo.errors.PyMongoError):
        call(coll)
    assert proxy.cuts_after_reply == 1
    assert ledger_docs(standalone.db) != before     # the server applied it
    proxy.restore()
    transaction.abort()
    assert ledger_docs(standalone.db) == before


#: An update whose result the run on a copy cannot know.
CURRENT_DATE = (b'update', lambda c: c.update_many(
    {}, {'$inc': {'n': 1}, '$currentDate': {'at': True}}))


@pytest.mark.parametrize('write', sorted(SINGLE_WRITES) + ['current date'])
def test_a_single_write_is_undone_exactly(standalone, write):
    """Answered: the undo is of what the write did (read back), also where
    the copy could not know it (``$currentDate``)."""
    before = seed(standalone.db)
    dm = make_dm(standalone.client, standalone)
    SINGLE_WRITES.get(write, CURRENT_DATE)[1](ledger(dm, standalone))
    assert ledger_docs(standalone.db) != before
    transaction.abort()
    assert ledger_docs(standalone.db) == before


#: Updates with ``$currentDate``, which the data manager sends with the
#: dates pinned (standalone mode).
CURRENT_DATES = {
    'update_many': CURRENT_DATE[1],
    'update_one': lambda c: c.update_one(
        {'_id': 2}, {'$set': {'x': 1}, '$currentDate': {
            'at': {'$type': 'date'}}}),
    'find_one_and_update': lambda c: c.find_one_and_update(
        {'_id': 3}, {'$currentDate': {'at': True}}),
    'bulk_write': lambda c: c.bulk_write([
        UpdateOne({'_id': 1}, {'$currentDate': {'at': True}}),
        UpdateMany({'n': {'$gte': 3}}, {'$set': {'m': 1},
                                        '$currentDate': {'at': True}})]),
}


@pytest.mark.parametrize('write', sorted(CURRENT_DATES))
def test_a_current_date_update_whose_answer_is_lost_is_undone(
        standalone, proxy, proxied, write):
    """The dates are pinned before the write is sent, so the run on the
    copy knows what it leaves and the write-ahead undo matches it."""
    before = seed(standalone.db)
    dm = make_dm(proxied, standalone)
    coll = ledger(dm, standalone)
    coll.find_one({})
    command = b'update' if write != 'find_one_and_update' else \
        b'findAndModify'
    proxy.cut_after_reply_to(b'\x02' + command +
                             b'\x00\x07\x00\x00\x00ledger\x00')
    with pytest.raises(pymongo.errors.PyMongoError):
        CURRENT_DATES[write](coll)
    assert proxy.cuts_after_reply == 1
    changed = list(standalone.db['ledger'].find({'at': {'$exists': True}}))
    assert changed and all(isinstance(d['at'], datetime.datetime)
                           for d in changed)     # the server applied it
    proxy.restore()
    transaction.abort()
    assert ledger_docs(standalone.db) == before


def test_a_pinned_current_date_is_the_same_in_every_document(standalone):
    """One date for the whole write, chosen once; the caller's update and
    requests are left as they were."""
    seed(standalone.db)
    dm = make_dm(standalone.client, standalone)
    coll = ledger(dm, standalone)
    update = {'$currentDate': {'at': True}}
    coll.update_many({}, update)
    assert update == {'$currentDate': {'at': True}}
    dates = {d['at'] for d in standalone.db['ledger'].find()}
    assert len(dates) == 1
    request = UpdateOne({'_id': 1}, {'$currentDate': {'at2': True}})
    coll.bulk_write([request])
    assert 'at2' in standalone.db['ledger'].find_one({'_id': 1})
    assert repr(request) == repr(UpdateOne({'_id': 1}, {'$currentDate': {
        'at2': True}}))
    transaction.abort()


def test_the_cost_of_an_undoable_update(standalone):
    """Read first, the run on the copy (insert, update, find, drop), the
    update, read again: inserts, replaces and deletes need no copy."""
    seed(standalone.db)
    dm = make_dm(standalone.client, standalone)
    coll = ledger(dm, standalone)
    coll.find_one({})
    standalone.commands.reset()
    coll.update_one({'_id': 0}, {'$set': {'n': 7}})
    assert standalone.commands.names == [
        'find', 'insert', 'update', 'find', 'drop', 'update', 'find']
    standalone.commands.reset()
    coll.delete_one({'_id': 1})
    assert standalone.commands.names == ['find', 'delete', 'find']


def test_a_bulk_write_with_let_variables_and_a_hint(standalone):
    """Options the copy cannot honour (a hint naming an index it lacks) do
    not stop the write; ``let`` variables reach the copy too."""
    before = seed(standalone.db)
    standalone.db['ledger'].create_index('n', name='by_n')
    dm = make_dm(standalone.client, standalone)
    coll = ledger(dm, standalone)
    coll.bulk_write([UpdateOne({'$expr': {'$eq': ['$n', '$$which']}},
                               {'$set': {'hit': True}}, hint='by_n')],
                    let={'which': 3})
    assert standalone.db['ledger'].find_one({'_id': 3})['hit'] is True
    coll.update_many({'$expr': {'$gte': ['$n', '$$low']}},
                     {'$set': {'low': True}}, let={'low': 2})
    transaction.abort()
    assert ledger_docs(standalone.db) == before


def test_writes_with_let_variables_in_both_modes(datamanager, mongo):
    """The documents a write may change are read with its ``let``
    variables (the read first would fail without them)."""
    seed(mongo.db)
    coll = datamanager.get_collection(mongo.db_name, 'ledger')
    coll.update_many({'$expr': {'$gte': ['$n', '$$low']}},
                     {'$set': {'low': True}}, let={'low': 3})
    coll.delete_one({'$expr': {'$eq': ['$n', '$$which']}}, let={'which': 0})
    transaction.commit()
    docs = {d['_id']: d for d in mongo.db['ledger'].find()}
    assert sorted(docs) == [1, 2, 3, 4]
    assert [i for i in docs if docs[i].get('low')] == [3, 4]


def test_a_cut_in_the_middle_of_the_run_on_a_copy(standalone, proxy, caplog):
    """The connection is cut after the copy was written, before it is
    dropped: the write is not sent (it fails), nothing is changed, and
    the copy left over is named in a warning."""
    cut_on = CutOn(proxy)
    client = testing.make_client(proxy.uri, [cut_on], timeoutMS=TIMEOUT_MS,
                                 serverSelectionTimeoutMS=TIMEOUT_MS)
    try:
        before = seed(standalone.db)
        dm = make_dm(client, standalone)
        coll = ledger(dm, standalone)
        coll.find_one({})
        cut_on.arm('drop')
        with caplog.at_level('WARNING', logger='zmongo._direct'):
            with pytest.raises(pymongo.errors.PyMongoError):
                coll.update_one({'_id': 1}, {'$set': {'n': 9}})
        proxy.restore()
        transaction.abort()
        assert ledger_docs(standalone.db) == before
        left = [n for n in standalone.db.list_collection_names()
                if n.startswith('zmongo_undo_')]
        assert len(left) == 1 and left[0] in caplog.text
        assert 'drop it by hand' in caplog.text
    finally:
        transaction.abort()
        proxy.restore()
        client.close()
