"""Sharded clusters: the shard keys zmongo refuses, and the writes it sends
on those it supports (docs/scaling.rst).

There is no sharded cluster in the tests: the loopback proxy presents the
embedded server as a ``mongos`` (its ``hello`` answers rewritten, see
``tests/tcpproxy.py``), and the shard keys are real documents in the
embedded server's ``config.collections``, where zmongo reads them.  The
server does not route or refuse anything itself, so these tests pin what
zmongo decides and sends; MongoDB's routing rules it answers to are
quoted in docs/scaling.rst.
"""
import pytest
import transaction

from tests import container_models as models
from tests import models as plain
from tests.tcpproxy import TCPProxy
from zmongo import _sharding
from zmongo import conflict
from zmongo import interfaces
from zmongo.testing import MongoFixture

MODES = {'transactions': True, 'standalone': False}


@pytest.fixture
def routed(mongo):
    """A MongoFixture whose client talks to the embedded server through a
    proxy presenting it as a mongos; ``routed.shard(coll, key)`` records a
    shard key for a collection of its database."""
    proxy = TCPProxy(mongo.client.address, as_mongos=True).start()
    fixture = MongoFixture(proxy.uri).setUp()
    namespaces = []

    def shard(coll, key, db=None):
        namespace = '%s.%s' % (db or fixture.db_name, coll)
        namespaces.append(namespace)
        mongo.client.config.collections.replace_one(
            {'_id': namespace}, {'_id': namespace, 'key': key,
                                 'unique': False}, upsert=True)

    fixture.shard = shard
    try:
        yield fixture
    finally:
        fixture.tearDown()
        mongo.client.config.collections.delete_many(
            {'_id': {'$in': namespaces}})
        proxy.stop()


def config_reads(commands):
    return [c for name, db, c in commands.commands
            if name == 'find' and db == 'config']


def writes_to(commands, coll):
    return [c for name, _, c in commands.commands
            if name in ('update', 'insert', 'delete') and
            c.get(name) == coll]


# -- the proxy presents a mongos ----------------------------------------------

def test_the_proxy_presents_a_mongos(routed, mongo):
    assert routed.client.is_mongos
    assert _sharding.routes_through_mongos(routed.client) is True
    mongo.client.admin.command('ping')
    assert _sharding.routes_through_mongos(mongo.client) is False


# -- nothing changes where there is no mongos --------------------------------

@pytest.mark.parametrize('datamanager', list(MODES), indirect=True)
def test_no_mongos_no_config_read(datamanager, mongo):
    mongo.client.config.collections.replace_one(
        {'_id': '%s.person' % mongo.db_name},
        {'_id': '%s.person' % mongo.db_name, 'key': {'parent': 1}},
        upsert=True)
    try:
        people = models.People()
        datamanager.root['people'] = people
        people['a'] = models.Person('A')
        transaction.commit()
        assert config_reads(mongo.commands) == []
        assert mongo.db.person.count_documents({}) == 1
    finally:
        mongo.client.config.collections.delete_many(
            {'_id': '%s.person' % mongo.db_name})


# -- supported: objects on _id ----------------------------------------------

@pytest.mark.parametrize('mode', list(MODES))
def test_id_shard_keys_work_in_both_modes(routed, mode):
    routed.shard('counters', {'_id': 'hashed'})
    dm = routed.make_datamanager(transactions=MODES[mode])
    foo = plain.Counter(1)
    dm.insert(foo)
    transaction.commit()
    dm2 = routed.make_datamanager(transactions=MODES[mode])
    dm2.load(foo._p_oid).value = 2
    transaction.commit()
    assert routed.db.counters.find_one()['value'] == 2
    # NoCheck's replace upserts on _id: the whole shard key.
    update, = writes_to(routed.commands, 'counters')[-1:]
    assert update['updates'][0]['q'] == {'_id': foo._p_oid.id}
    assert update['updates'][0].get('upsert') is True


def test_shard_keys_are_read_once_per_collection_and_client(routed):
    routed.shard('counters', {'_id': 1})
    for name in ('a', 'b', 'c'):
        dm = routed.make_datamanager()
        dm.insert(plain.Counter(name))
        transaction.commit()
    reads = config_reads(routed.commands)
    asked = [r['filter']['_id'] for r in reads]
    # One per collection used (the name map, the objects' collection),
    # never again in later transactions.
    assert len(asked) == len(set(asked))
    assert '%s.counters' % routed.db_name in asked


# -- refused -----------------------------------------------------------------

@pytest.mark.parametrize('mode', list(MODES))
def test_a_container_collection_sharded_on_id_is_refused(routed, mode):
    routed.shard('person', {'_id': 'hashed'})
    dm = routed.make_datamanager(transactions=MODES[mode])
    people = models.People()
    dm.insert(people)
    with pytest.raises(interfaces.UnsupportedShardKeyError) as info:
        people['a'] = models.Person('A')
    message = str(info.value)
    assert '%s.person' % routed.db_name in message
    assert "{_id: 'hashed'}" in message
    assert '{parent: 1} or {parent: 1, key: 1}' in message
    transaction.abort()
    # Refused before anything was written, and again on the next use.
    assert routed.db.person.count_documents({}) == 0
    dm = routed.make_datamanager(transactions=MODES[mode])
    fresh = models.People()
    dm.insert(fresh)
    with pytest.raises(interfaces.UnsupportedShardKeyError):
        fresh.keys()
    transaction.abort()


def test_a_container_hashed_on_another_field_is_refused(routed):
    routed.shard('person', {'key': 'hashed'})
    dm = routed.make_datamanager()
    people = models.People()
    dm.insert(people)
    with pytest.raises(interfaces.UnsupportedShardKeyError,
                       match="fields are a prefix.*{parent: 'hashed'}"):
        people.keys()


@pytest.mark.parametrize('mode', list(MODES))
def test_the_root_sharded_on_id_is_refused(routed, mode):
    routed.shard('persistence_root', {'_id': 1})
    dm = routed.make_datamanager(transactions=MODES[mode])
    with pytest.raises(interfaces.UnsupportedShardKeyError,
                       match=r'persistence_root.*\{name: 1\}'):
        dm.root['x'] = plain.Counter()


def test_the_name_map_sharded_on_id_is_refused(routed):
    routed.shard('persistence_name_map', {'_id': 'hashed'})
    dm = routed.make_datamanager()
    with pytest.raises(interfaces.UnsupportedShardKeyError,
                       match='persistence_name_map.*upsert'):
        dm.insert(plain.Counter())


def test_a_dotted_shard_key_is_refused(routed):
    routed.shard('counters', {'meta.region': 1})
    dm = routed.make_datamanager()
    dm.insert(plain.Counter())
    # Refused at the first write to the collection, before it is sent.
    with pytest.raises(interfaces.UnsupportedShardKeyError,
                       match='embedded field .meta.region'):
        transaction.commit()
    transaction.abort()
    assert routed.db.counters.count_documents({}) == 0


def test_standalone_mode_refuses_other_than_id_keys(routed):
    routed.shard('person', {'parent': 1, 'key': 1})
    dm = routed.make_datamanager(transactions=False)
    people = models.People()
    dm.insert(people)
    with pytest.raises(interfaces.UnsupportedShardKeyError,
                       match=r'standalone mode.*upsert on _id'):
        people['a'] = models.Person('A')
    transaction.abort()


# -- supported: containers on (parent, key), server transactions -------------

@pytest.fixture(params=[{'parent': 1, 'key': 1}, {'parent': 1}],
                ids=['parent-key', 'parent'])
def container_key(request, routed):
    routed.shard('person', request.param)
    return request.param


def stored_tree(routed, handler=conflict.NoCheckConflictHandler):
    dm = routed.make_datamanager(conflict_handler_factory=handler)
    one, two = models.People(), models.People()
    dm.root['one'] = one
    dm.root['two'] = two
    one['a'] = models.Person('A')
    one['b'] = models.Person('B')
    transaction.commit()
    return one._p_oid, two._p_oid


def test_container_keeps_its_unique_index(routed, container_key):
    stored_tree(routed)
    found = {ix['name']: ix for ix in routed.db.person.list_indexes()}
    assert found['zmongo_container_parent_key']['unique'] is True


def test_a_move_carries_the_old_shard_key_values(routed, container_key):
    one_oid, two_oid = stored_tree(routed)
    dm = routed.make_datamanager()
    one, two = dm.load(one_oid), dm.load(two_oid)
    old = routed.db.person.find_one({'key': 'a'})
    routed.commands.reset()
    two['moved'] = one['a']
    del one['a']
    transaction.commit()
    update, = writes_to(routed.commands, 'person')
    q = update['updates'][0]['q']
    for field in container_key:
        assert q[field] == old[field]
    assert not update['updates'][0].get('upsert')
    moved = routed.db.person.find_one({'_id': old['_id']})
    assert moved['key'] == 'moved'
    assert moved['parent'] != old['parent']
    dm = routed.make_datamanager()
    assert list(dm.load(two_oid).keys()) == ['moved']
    assert sorted(dm.load(one_oid).keys()) == ['b']


def test_a_delete_carries_the_shard_key_values(routed, container_key):
    one_oid, _ = stored_tree(routed)
    dm = routed.make_datamanager()
    one = dm.load(one_oid)
    old = routed.db.person.find_one({'key': 'b'})
    routed.commands.reset()
    del one['b']
    transaction.commit()
    delete, = writes_to(routed.commands, 'person')
    q = delete['deletes'][0]['q']
    assert q['_id'] == old['_id']
    for field in container_key:
        assert q[field] == old[field]
    assert routed.db.person.count_documents({'key': 'b'}) == 0


def test_nocheck_replace_of_a_deleted_document_inserts_it(
        routed, container_key):
    one_oid, _ = stored_tree(routed)
    dm = routed.make_datamanager()
    a = dm.load(one_oid)['a']
    a.name = 'mine'
    doc = routed.db.person.find_one({'key': 'a'})
    routed.db.person.delete_one({'_id': doc['_id']})  # another transaction
    routed.commands.reset()
    transaction.commit()
    # The other transaction wrote after this one's snapshot: the server
    # says write conflict, zmongo starts a new server transaction (abort,
    # the snapshot check) and sends its writes again.  Then the replace
    # (no upsert: it could not be routed) matches nothing, one query tells
    # the document is gone, and an insert stores it after all.
    assert routed.commands.names == [
        'update', 'abortTransaction', 'find', 'update', 'find', 'insert',
        'commitTransaction']
    assert not any(u.get('upsert') for c in writes_to(routed.commands,
                                                      'person')
                   for u in c.get('updates', ()))
    assert routed.db.person.find_one({'_id': doc['_id']})['name'] == 'mine'


def test_nocheck_replace_of_a_moved_document_follows_it(
        routed, container_key):
    one_oid, two_oid = stored_tree(routed)
    dm = routed.make_datamanager()
    a = dm.load(one_oid)['a']
    a.name = 'mine'
    doc = routed.db.person.find_one({'key': 'a'})
    # Another transaction moved it to container two, as 'z'.
    other = routed.db.person.find_one({'key': 'b'})['parent']
    assert other == one_oid
    routed.db.person.update_one(
        {'_id': doc['_id']}, {'$set': {'parent': two_oid, 'key': 'z'}})
    routed.commands.reset()
    transaction.commit()
    # (The write conflict and restart first, as above.)
    assert routed.commands.names == [
        'update', 'abortTransaction', 'find', 'update', 'find', 'update',
        'commitTransaction']
    again = writes_to(routed.commands, 'person')[-1]
    q = again['updates'][0]['q']
    assert q['_id'] == doc['_id']
    for field in container_key:
        assert q[field] == {'parent': two_oid, 'key': 'z'}[field]
    # Last writer wins: the document is what this transaction wrote.
    assert routed.db.person.find_one({'_id': doc['_id']})['key'] == 'a'


def test_serial_conflicts_still_detected(routed, container_key):
    one_oid, _ = stored_tree(routed,
                             conflict.SimpleSerialConflictHandler)
    dm = routed.make_datamanager(
        conflict_handler_factory=conflict.SimpleSerialConflictHandler)
    a = dm.load(one_oid)['a']
    a.name = 'mine'
    routed.db.person.update_one({'key': 'a'}, {'$inc': {'_py_serial': 1}})
    with pytest.raises(interfaces.ConflictError):
        transaction.commit()
    transaction.abort()


def test_a_provider_reads_each_shard_key_once(routed):
    from zmongo.provider import MongoDataManagerProvider
    routed.shard('counters', {'_id': 'hashed'})
    provider = MongoDataManagerProvider(
        client=routed.client, default_database=routed.db_name,
        root_database=routed.db_name)
    for value in range(3):
        provider.get().insert(plain.Counter(value))
        transaction.commit()
    asked = [r['filter']['_id'] for r in config_reads(routed.commands)]
    assert sorted(asked) == sorted(set(asked))
    assert asked.count('%s.counters' % routed.db_name) == 1
    assert routed.db.counters.count_documents({}) == 3


def test_the_name_map_on_its_entry_fields_works(routed):
    routed.shard('persistence_name_map', {'collection': 1})
    dm = routed.make_datamanager()
    dm.insert(plain.Counter(5))
    transaction.commit()
    assert routed.db.counters.find_one()['value'] == 5


def test_objects_on_another_key_carry_it_in_server_transactions(routed):
    routed.shard('counters', {'value': 1})
    dm = routed.make_datamanager()
    counter = plain.Counter(1)
    dm.insert(counter)
    transaction.commit()
    dm = routed.make_datamanager()
    dm.load(counter._p_oid).value = 2
    routed.commands.reset()
    transaction.commit()
    update, = writes_to(routed.commands, 'counters')
    assert update['updates'][0]['q'] == {'_id': counter._p_oid.id,
                                         'value': 1}
    assert not update['updates'][0].get('upsert')
    assert routed.db.counters.find_one()['value'] == 2
