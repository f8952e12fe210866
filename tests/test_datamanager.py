"""The data manager: identity, change tracking, flushing, abort and commit.

Every test runs twice (the ``datamanager`` fixture): once in
server-transaction mode and once in standalone (undo) mode.
"""
import bson
import persistent
import pytest
import transaction
from zope.interface.verify import verifyClass
from zope.interface.verify import verifyObject

from tests import models
from zmongo import interfaces
from zmongo.datamanager import MongoDataManager
from zmongo.serialize import PersistentDict
from zmongo.serialize import PersistentList


def raw(mongo, collection=models.PERSON):
    """Every document of a collection, as the server holds it."""
    return sorted(mongo.db[collection].find(), key=lambda d: str(d['_id']))


def snapshot(mongo):
    return {name: raw(mongo, name)
            for name in sorted(mongo.db.list_collection_names())}


def test_interfaces(datamanager):
    assert verifyClass(interfaces.IMongoDataManager, MongoDataManager)
    assert verifyObject(interfaces.IMongoDataManager, datamanager)
    import transaction.interfaces
    assert verifyObject(transaction.interfaces.IDataManager, datamanager)


def test_mode_is_detected_from_the_server(mongo):
    # The embedded server presents itself as a one-node replica set.
    assert mongo.make_datamanager().uses_transactions is True
    assert mongo.make_datamanager(transactions=False).uses_transactions \
        is False


def test_bad_transactions_option(mongo):
    with pytest.raises(ValueError, match="transactions must be 'auto'"):
        mongo.make_datamanager(transactions='sometimes')


def test_insert_returns_dbref_and_commit_keeps_it(datamanager, mongo):
    person = models.Person('Ada')
    ref = datamanager.insert(person)
    assert isinstance(ref, bson.DBRef)
    assert ref == person._p_oid
    assert (ref.database, ref.collection) == (mongo.db_name, models.PERSON)
    assert person._p_jar is datamanager
    transaction.commit()
    assert [d['name'] for d in raw(mongo)] == ['Ada']
    assert raw(mongo)[0]['_id'] == ref.id


def test_insert_accepts_any_id(datamanager, mongo):
    oids = ['ada', 42, bson.ObjectId(), 2.5]
    for oid in oids:
        datamanager.insert(models.Person(str(oid)), oid)
    transaction.commit()
    assert sorted(str(d['_id']) for d in raw(mongo)) == \
        sorted(str(oid) for oid in oids)


def test_insert_twice_is_a_value_error(datamanager):
    person = models.Person('Ada')
    datamanager.insert(person)
    with pytest.raises(ValueError, match='already has the oid'):
        datamanager.insert(person)


def test_insert_of_id_that_cannot_be_an_id(datamanager, mongo):
    for oid in (['a', 'list'], {'$ne': None}, ('a',)):
        with pytest.raises(ValueError, match='cannot be the _id'):
            datamanager.insert(models.Person('Ada'), oid)
    transaction.commit()
    assert raw(mongo) == []


def test_remove_without_oid_is_a_value_error(datamanager):
    with pytest.raises(ValueError, match='has no oid'):
        datamanager.remove(models.Person('Ada'))


def test_insert_then_abort_leaves_nothing(datamanager, mongo):
    person = models.Person('Ada')
    datamanager.insert(person)
    datamanager.flush()
    transaction.abort()
    assert raw(mongo) == []
    # The object is new again.
    assert person._p_oid is None and person._p_jar is None


def test_insert_then_remove_in_one_transaction(datamanager, mongo):
    person = models.Person('Ada')
    datamanager.insert(person)
    datamanager.flush()
    datamanager.remove(person)
    transaction.commit()
    assert raw(mongo) == []


def test_insert_then_remove_without_flush_writes_nothing(
        datamanager, mongo):
    person = models.Person('Ada')
    datamanager.insert(person)
    datamanager.remove(person)
    mongo.commands.reset()
    transaction.commit()
    assert 'insert' not in mongo.commands.names
    assert raw(mongo) == []


def test_remove_then_commit_and_remove_then_abort(datamanager, mongo):
    datamanager.root['ada'] = models.Person('Ada')
    transaction.commit()
    before = snapshot(mongo)
    datamanager.remove(datamanager.root['ada'])
    datamanager.flush()
    transaction.abort()
    assert snapshot(mongo) == before
    datamanager.remove(datamanager.root['ada'])
    transaction.commit()
    assert raw(mongo) == []


def test_abort_restores_the_database_exactly(datamanager, mongo):
    dm = datamanager
    dm.root['ada'] = models.Person('Ada', friends={'x': 1}, visited=('a',))
    dm.root['bob'] = models.Person('Bob')
    dm.root['cy'] = models.Person('Cy')
    transaction.commit()
    before = snapshot(mongo)
    ada = dm.root['ada']
    ada.name = 'Ada Lovelace'
    ada.friends['y'] = 2
    ada.visited.append('b')
    dm.remove(dm.root['bob'])
    dm.root['dan'] = models.Person('Dan')
    dm.flush()                       # written (in standalone mode: for real)
    ada.name = 'Ada King'            # and changed again after the flush
    dm.flush()
    transaction.abort()
    assert snapshot(mongo) == before
    assert dm.root['ada'].name == 'Ada'


@pytest.mark.parametrize('flush', [False, True])
@pytest.mark.parametrize('held', ['created', 'loaded'])
def test_abort_ghostifies_changed_objects(datamanager, mongo, flush, held):
    ada = datamanager.root['ada'] = models.Person('Ada')
    transaction.commit()
    if held == 'loaded':
        ada = datamanager.root['ada']
    ada.name = 'Changed'
    if flush:
        datamanager.flush()
    transaction.abort()
    # The object held across the abort reloads the stored state...
    assert ada.name == 'Ada'
    # ...and a later commit of an unrelated change does not store the
    # aborted one.
    ada.birthday = 1815
    transaction.commit()
    assert [(d['name'], d['birthday']) for d in raw(mongo)] == [
        ('Ada', 1815)]


def test_commit_keeps_everything(datamanager, mongo):
    datamanager.root['ada'] = models.Person('Ada')
    transaction.commit()
    datamanager.root['ada'].name = 'Ada Lovelace'
    transaction.commit()
    assert [d['name'] for d in raw(mongo)] == ['Ada Lovelace']


def test_one_object_per_dbref_within_a_transaction(datamanager, mongo):
    datamanager.root['ada'] = models.Person('Ada')
    transaction.commit()
    first = datamanager.root['ada']
    assert datamanager.root['ada'] is first
    assert datamanager.load(first._p_oid) is first
    assert first.name == 'Ada'
    transaction.commit()
    # Identity is kept across transactions (as ZODB's Connection keeps
    # it), the state is not: a fresh load after commit or abort.
    assert first._p_changed is None
    mongo.db[models.PERSON].update_one({}, {'$set': {'name': 'Ada L.'}})
    assert datamanager.root['ada'] is first
    assert first.name == 'Ada L.'
    transaction.abort()
    assert first._p_changed is None
    assert datamanager.root['ada'] is first


def test_load_needs_a_dbref(datamanager):
    with pytest.raises(TypeError, match='needs a bson.DBRef'):
        datamanager.load('ada')


def test_loading_never_marks_changed(datamanager, mongo):
    datamanager.root['ada'] = models.Person(
        'Ada', friends={'a': models.Person('Bob')}, visited=('x', 'y'),
        phone=models.Phone('+1', '978', '394'))
    transaction.commit()
    ada = datamanager.root['ada']
    assert ada._p_changed is None        # a ghost until used
    assert ada.name == 'Ada'
    assert ada._p_changed is False
    assert isinstance(ada.friends, PersistentDict)
    assert isinstance(ada.visited, PersistentList)
    assert ada.friends._p_changed is False
    assert ada.visited._p_changed is False
    assert ada.friends['a'].name == 'Bob'
    mongo.commands.reset()
    datamanager.flush()                  # nothing pending: nothing sent
    assert mongo.commands.names == []


def test_unchanged_objects_are_never_written(datamanager, mongo):
    datamanager.root['ada'] = models.Person('Ada')
    transaction.commit()
    ada = datamanager.root['ada']
    ada.name = 'Ada'                 # same value: marked, but not different
    ada.friends = {}
    mongo.commands.reset()
    transaction.commit()
    assert not {'update', 'insert', 'delete'} & set(mongo.commands.names)


def test_dump_writes_and_clears_changed(datamanager, mongo):
    datamanager.root['ada'] = models.Person('Ada')
    transaction.commit()
    ada = datamanager.root['ada']
    ada.name = 'Dumped'
    assert ada._p_changed is True
    assert datamanager.dump(ada) == ada._p_oid
    assert ada._p_changed is False
    transaction.commit()
    assert raw(mongo)[0]['name'] == 'Dumped'


def test_dump_joins_the_transaction_so_abort_undoes_it(datamanager, mongo):
    datamanager.root['ada'] = models.Person('Ada')
    transaction.commit()
    ada = datamanager.root['ada']
    ada.name = 'Dumped'
    datamanager.dump(ada)
    transaction.abort()
    assert raw(mongo)[0]['name'] == 'Ada'


def test_register_of_a_new_object_schedules_its_insert(datamanager, mongo):
    person = models.Person('New')
    datamanager.register(person)
    assert person._p_oid is not None
    transaction.commit()
    assert [d['name'] for d in raw(mongo)] == ['New']


def test_setstate_of_object_with_oid_but_no_jar(datamanager):
    datamanager.root['ada'] = models.Person('Ada')
    transaction.commit()
    oid = datamanager.root['ada']._p_oid
    obj = models.Person.__new__(models.Person)
    obj._p_oid = oid
    datamanager.setstate(obj)
    assert obj.name == 'Ada'


def test_oldstate_is_a_key_error(datamanager):
    with pytest.raises(KeyError):
        datamanager.oldstate(models.Person('x'), b'\0' * 8)


def test_sort_key_is_a_string_sorting_after_zodb(datamanager):
    key = datamanager.sortKey()
    assert isinstance(key, str)
    import ZODB
    import ZODB.FileStorage  # noqa: F401
    db = ZODB.DB(None)
    try:
        conn = db.open()
        assert conn.sortKey() < key
        assert '/var/lib/zope/Data.fs' < key
        conn.close()
    finally:
        db.close()


def test_reset_keeps_options(mongo):
    dm = mongo.make_datamanager(transactions=False,
                                default_database='elsewhere')
    dm.reset()
    assert dm.default_database == 'elsewhere'
    assert dm.uses_transactions is False


def test_queries_see_pending_changes(datamanager):
    datamanager.root['ada'] = models.Person('Ada')
    transaction.commit()
    datamanager.root['ada'].name = 'Ada Lovelace'
    coll = datamanager.get_collection(datamanager.default_database,
                                      models.PERSON)
    assert coll.find_one({'name': 'Ada Lovelace'}) is not None


def test_commit_of_k_objects_costs_constant_commands(datamanager, mongo):
    def commit_cost(k):
        for i in range(k):
            datamanager.root['p%d-%d' % (k, i)] = models.Person('p')
        transaction.commit()
        people = list(datamanager.get_collection(
            datamanager.default_database, models.PERSON).find_objects(
                {'name': 'p'}))
        for person in people:
            person.name = 'changed-%d' % k
        mongo.commands.reset()
        transaction.commit()
        names = mongo.commands.names
        datamanager.get_collection(
            datamanager.default_database, models.PERSON).update_many(
                {}, {'$set': {'name': 'done'}})
        transaction.commit()
        return names
    small, large = commit_cost(3), commit_cost(40)
    assert small == large
    assert large.count('update') == 1


def test_one_bulk_write_per_collection(datamanager, mongo):
    mongo.commands.reset()
    for i in range(10):
        datamanager.insert(models.Person('p%d' % i))
        datamanager.insert(models.Address('c%d' % i, '0'))
    transaction.commit()
    assert mongo.commands.count('insert') == 2


def test_new_objects_referenced_from_stored_ones_are_added(
        datamanager, mongo):
    datamanager.root['ada'] = models.Person('Ada')
    transaction.commit()
    datamanager.root['ada'].friends['bob'] = models.Person('Bob')
    transaction.commit()
    assert sorted(d['name'] for d in raw(mongo)) == ['Ada', 'Bob']
    friend_ref = [d for d in raw(mongo) if d['name'] == 'Ada'][0][
        'friends']['bob']
    assert isinstance(friend_ref, bson.DBRef)


def test_changes_to_sub_object_mark_the_owner(datamanager, mongo):
    datamanager.root['ada'] = models.Person('Ada', visited=['x'])
    transaction.commit()
    ada = datamanager.root['ada']
    visited = ada.visited
    assert ada._p_changed is False
    visited.append('y')
    assert ada._p_changed is True
    transaction.commit()
    assert raw(mongo)[0]['visited'] == ['x', 'y']


def test_objects_of_another_data_manager_are_refused(mongo):
    dm1 = mongo.make_datamanager()
    dm2 = mongo.make_datamanager()
    person = models.Person('Ada')
    person._p_jar = dm1
    with pytest.raises(ValueError, match='another data manager'):
        dm2.insert(person)


def test_isolation_in_transaction_mode(mongo):
    dm = mongo.make_datamanager(transactions=True)
    dm.root['ada'] = models.Person('Ada')
    dm.flush()
    # Another client sees nothing before the commit...
    assert raw(mongo) == []
    assert mongo.db['persistence_root'].count_documents({}) == 0
    transaction.commit()
    # ...and everything after it.
    assert [d['name'] for d in raw(mongo)] == ['Ada']


def test_standalone_mode_writes_at_flush(mongo):
    dm = mongo.make_datamanager(transactions=False)
    dm.root['ada'] = models.Person('Ada')
    dm.flush()
    assert [d['name'] for d in raw(mongo)] == ['Ada']
    transaction.abort()
    assert raw(mongo) == []


def test_read_only_transaction_writes_nothing(datamanager, mongo):
    datamanager.root['ada'] = models.Person('Ada')
    transaction.commit()
    ada = datamanager.root['ada']
    mongo.commands.reset()
    assert ada.name == 'Ada'
    assert mongo.commands.names == ['find']     # read in this transaction
    mongo.commands.reset()
    transaction.commit()
    # Nothing is written, so nothing is committed: the server transaction
    # the read ran in is aborted (which frees its snapshot on the server).
    assert mongo.commands.names == (
        ['abortTransaction'] if datamanager.uses_transactions else [])


def test_too_large_document_is_refused_and_changes_nothing(
        datamanager, mongo):
    datamanager.root['ada'] = models.Person('Ada')
    transaction.commit()
    before = snapshot(mongo)
    datamanager.root['ada'].name = 'x' * (17 * 1024 * 1024)
    with pytest.raises(interfaces.SerializationError,
                       match='more than the 16777216'):
        transaction.commit()
    transaction.abort()
    assert snapshot(mongo) == before


def test_should_retry(datamanager):
    import pymongo.errors
    assert datamanager.should_retry(interfaces.ConflictError())
    transient = pymongo.errors.OperationFailure(
        'x', 112, {'errorLabels': ['TransientTransactionError']})
    assert datamanager.should_retry(transient)
    assert not datamanager.should_retry(
        pymongo.errors.OperationFailure('x', 2, {}))
    assert not datamanager.should_retry(ValueError())


class Unstorable(persistent.Persistent):
    def __init__(self):
        self.handle = open(__file__)


def test_unstorable_object_fails_and_changes_nothing(datamanager, mongo):
    datamanager.root['ada'] = models.Person('Ada')
    transaction.commit()
    before = snapshot(mongo)
    ada = datamanager.root['ada']
    ada.name = 'Changed'
    thing = ada.thing = Unstorable()
    handle = thing.handle
    try:
        with pytest.raises(interfaces.SerializationError,
                           match='cannot store attribute handle'):
            transaction.commit()
    finally:
        handle.close()
    transaction.abort()
    assert snapshot(mongo) == before
