"""Attacks on the sharded-cluster support (issue 15): moves, rollbacks,
restarts, hostile ``config.collections`` entries, the refusals' advice.

As in ``tests/test_sharding.py``, the loopback proxy presents the embedded
server as a ``mongos`` and shard keys are real documents in its
``config.collections``; the server routes nothing, so these tests pin the
filters zmongo sends and what it refuses.
"""
import re
import socket
import threading
import time

import pytest
import transaction

from tests import container_models as models
from tests import models as plain
from tests.test_sharding import config_reads
from tests.test_sharding import routed  # noqa: F401 (a fixture)
from tests.test_sharding import stored_tree
from tests.tcpproxy import TCPProxy
from tests.test_sharding import writes_to
from zmongo import conflict
from zmongo import container
from zmongo import interfaces
from zmongo import testing

PERSON = {'parent': 1, 'key': 1}


def write_filters(commands, coll):
    found = []
    for c in writes_to(commands, coll):
        for u in list(c.get('updates', ())) + list(c.get('deletes', ())):
            found.append(u['q'])
    return found


# -- moves, savepoints ---------------------------------------------------------

def test_a_move_twice_then_a_savepoint_rollback_then_a_move(routed):
    routed.shard('person', PERSON)
    one_oid, two_oid = stored_tree(routed)
    dm = routed.make_datamanager()
    root = dm.root
    three = models.People()
    root['three'] = three
    one, two = dm.load(one_oid), dm.load(two_oid)
    two['x'] = one['a']
    del one['a']
    sp = transaction.savepoint()        # written: parent two, key x
    three['y'] = two['x']
    del two['x']
    dm.flush()                          # written: parent three, key y
    sp.rollback()                       # back to parent two, key x
    routed.commands.reset()
    one = dm.load(one_oid)
    one['z'] = dm.load(two_oid)['x']
    del dm.load(two_oid)['x']
    transaction.commit()
    q = write_filters(routed.commands, 'person')[-1]
    assert q['parent'] == two_oid and q['key'] == 'x'
    dm = routed.make_datamanager()
    assert list(dm.load(one_oid).keys()) == ['b', 'z'] or \
        sorted(dm.load(one_oid).keys()) == ['b', 'z']
    assert list(dm.load(two_oid).keys()) == []


def test_an_item_inserted_then_moved_in_one_transaction(routed):
    routed.shard('person', PERSON)
    one_oid, two_oid = stored_tree(routed)
    dm = routed.make_datamanager()
    one, two = dm.load(one_oid), dm.load(two_oid)
    one['new'] = models.Person('N')
    dm.flush()                          # inserted: parent one, key new
    routed.commands.reset()
    two['moved'] = one['new']
    del one['new']
    transaction.commit()
    q = write_filters(routed.commands, 'person')[-1]
    assert q['parent'] == one_oid and q['key'] == 'new'
    assert routed.db.person.find_one({'name': 'N'})['key'] == 'moved'


# -- hashed shard keys ---------------------------------------------------------

@pytest.mark.parametrize('key', [{'parent': 'hashed'},
                                 {'parent': 'hashed', 'key': 1}])
def test_a_container_hashed_on_parent_works(routed, key):
    """MongoDB builds and enforces a unique index when the shard key's
    field names are a prefix of it, hashed or not (items of one container
    share the hash of ``parent``: one chunk); a hashed ``parent`` also
    spreads the inserts of new containers, which a ranged one on
    increasing ObjectIds sends to one shard."""
    routed.shard('person', key)
    one_oid, two_oid = stored_tree(routed)
    found = {ix['name']: ix for ix in routed.db.person.list_indexes()}
    assert found['zmongo_container_parent_key']['unique'] is True
    dm = routed.make_datamanager()
    one, two = dm.load(one_oid), dm.load(two_oid)
    routed.commands.reset()
    two['m'] = one['a']
    del one['a']
    transaction.commit()
    q = write_filters(routed.commands, 'person')[-1]
    assert q['parent'] == one_oid
    assert ('key' in q) == ('key' in key)


def test_objects_on_id_and_another_field(routed):
    routed.shard('counters', {'_id': 1, 'value': 1})
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


def test_a_container_on_parent_key_and_id_is_refused(routed):
    """{parent, key, _id} is not a prefix of the unique (parent, key)."""
    routed.shard('person', {'parent': 1, 'key': 1, '_id': 1})
    dm = routed.make_datamanager()
    people = models.People()
    dm.insert(people)
    with pytest.raises(interfaces.UnsupportedShardKeyError,
                       match='prefix'):
        people.keys()
    transaction.abort()


# -- NoCheck: the last writer wins, also against a move ------------------------

def test_nocheck_delete_of_an_item_another_transaction_moved(
        routed, mongo):
    """NoCheck deletes what it deletes whoever wrote in between (on an
    unsharded collection the delete filters on ``_id`` alone); here the
    delete carries the shard key values read, which the move changed."""
    routed.shard('person', PERSON)
    one_oid, two_oid = stored_tree(routed)
    dm = routed.make_datamanager()
    one = dm.load(one_oid)
    assert one['a'].name == 'A'
    doc = routed.db.person.find_one({'key': 'a'})
    # Another transaction moved it to container two, as 'z'.
    mongo.client[routed.db_name].person.update_one(
        {'_id': doc['_id']}, {'$set': {'parent': two_oid, 'key': 'z'}})
    del one['a']
    routed.commands.reset()
    transaction.commit()
    assert routed.db.person.find_one({'_id': doc['_id']}) is None
    # The delete on the values read missed; one query found it moved, and
    # the delete went again on its current values.
    last = write_filters(routed.commands, 'person')[-1]
    assert last == {'_id': doc['_id'], 'parent': two_oid, 'key': 'z'}


def test_nocheck_delete_unsharded_control(mongo):
    """The same on an unsharded collection: the delete wins."""
    dm = mongo.make_datamanager()
    one, two = models.People(), models.People()
    dm.root['one'], dm.root['two'] = one, two
    one['a'] = models.Person('A')
    transaction.commit()
    dm = mongo.make_datamanager()
    one = dm.root['one']
    assert one['a'].name == 'A'
    doc = mongo.db.person.find_one({'key': 'a'})
    mongo.db.person.update_one({'_id': doc['_id']}, {'$set': {
        'parent': dm.root['two']._p_oid, 'key': 'z'}})
    del one['a']
    transaction.commit()
    assert mongo.db.person.find_one({'_id': doc['_id']}) is None


# -- config.collections as MongoDB writes it, and hostile entries -------------

def record(mongo, routed, coll, entry):
    namespace = '%s.%s' % (routed.db_name, coll)
    doc = dict(entry, _id=namespace)
    mongo.client.config.collections.replace_one({'_id': namespace}, doc,
                                                upsert=True)
    routed.shard(coll, doc.get('key'))   # registered for the clean-up ...
    mongo.client.config.collections.replace_one({'_id': namespace}, doc)


def test_an_unsplittable_collection_is_not_sharded(routed, mongo):
    """MongoDB 8.0 tracks unsharded collections it moved or unsharded
    (``moveCollection``, ``unshardCollection``) in ``config.collections``
    with ``key: {_id: 1}`` and ``unsplittable: true``: unsharded, one
    shard; a container's items there keep their unique index."""
    record(mongo, routed, 'person', {'key': {'_id': 1},
                                     'unsplittable': True})
    dm = routed.make_datamanager()
    people = models.People()
    dm.root['people'] = people
    people['a'] = models.Person('A')
    transaction.commit()
    assert routed.db.person.count_documents({}) == 1


@pytest.mark.parametrize('key', ['parent', 5, ['parent', 1], True])
def test_a_config_entry_whose_key_is_no_document(routed, mongo, key):
    record(mongo, routed, 'counters', {'key': key})
    dm = routed.make_datamanager()
    dm.insert(plain.Counter())
    with pytest.raises(interfaces.UnsupportedShardKeyError) as info:
        transaction.commit()
    message = str(info.value)
    assert '%s.counters' % routed.db_name in message
    assert 'config.collections' in message
    assert repr(key) in message
    transaction.abort()
    assert routed.db.counters.count_documents({}) == 0


@pytest.mark.parametrize('entry', [{'dropped': True, 'key': {'x.y': 1}},
                                   {'key': {}}, {}, {'key': None}])
def test_config_entries_meaning_unsharded(routed, mongo, entry):
    record(mongo, routed, 'counters', entry)
    dm = routed.make_datamanager()
    dm.insert(plain.Counter(3))
    transaction.commit()
    assert routed.db.counters.find_one()['value'] == 3


# -- the refusals say what would work ------------------------------------------

def test_standalone_name_map_on_its_entry_fields_works(routed):
    """The name map is written outside any transaction, with no undo:
    the standalone rule (undo writes upsert on _id) does not apply."""
    routed.shard('persistence_name_map', {'collection': 1})
    dm = routed.make_datamanager(transactions=False)
    dm.insert(plain.Counter(5))
    transaction.commit()
    assert routed.db.counters.find_one()['value'] == 5


@pytest.mark.parametrize('key', [{'_id': 'hashed'}, {'parent': 1, 'key': 1},
                                 {'parent': 1}])
def test_standalone_container_refusal_advice_would_work(routed, key):
    """In standalone mode no shard key works for a container's items (the
    unique index wants a (parent, key) prefix, undo writes want _id): the
    message must not send the user to a key that is refused too."""
    routed.shard('person', key)
    dm = routed.make_datamanager(transactions=False)
    people = models.People()
    dm.insert(people)
    with pytest.raises(interfaces.UnsupportedShardKeyError) as info:
        people['a'] = models.Person('A')
    message = str(info.value)
    transaction.abort()
    assert 'server transactions' in message
    # The advice covers standalone mode: only unsharded serves a
    # container's items there.
    assert re.search(r'standalone mode .*only (an )?unsharded', message), \
        message
    assert 'shard it on {parent' not in message or \
        'with server transactions' in message, message


# -- the write log sent again after the server transaction was lost -----------

@pytest.fixture(scope='module')
def short_lived():
    """A replica set whose server transactions expire after 2 s."""
    with testing.EmbeddedServer(transaction_lifetime_seconds=2) as server:
        yield server


@pytest.fixture
def routed_short(short_lived):
    """``routed`` on the short-lived server."""
    direct = testing.MongoFixture(short_lived.uri).setUp()
    proxy = TCPProxy(direct.client.address, as_mongos=True).start()
    fixture = testing.MongoFixture(proxy.uri).setUp()
    fixture.db_name = direct.db_name
    fixture.db = fixture.client[direct.db_name]
    fixture.direct = direct
    namespace = '%s.person' % direct.db_name
    direct.client.config.collections.replace_one(
        {'_id': namespace}, {'_id': namespace, 'key': PERSON}, upsert=True)
    try:
        yield fixture
    finally:
        fixture.tearDown()
        direct.client.config.collections.delete_one({'_id': namespace})
        direct.tearDown()
        proxy.stop()


@pytest.mark.parametrize('other', ['moved', 'deleted'])
def test_nocheck_replace_sent_again_after_a_lost_server_transaction(
        routed_short, other):
    """NoCheck: the last writer wins.  The replace was flushed, the server
    transaction expired, another transaction moved (or deleted) the item;
    the log is sent again in a new server transaction."""
    routed = routed_short
    one_oid, two_oid = stored_tree(routed)
    dm = routed.make_datamanager()
    one = dm.load(one_oid)
    a, b = one['a'], one['b']
    a.name = 'mine'
    dm.flush()
    time.sleep(3)                       # the server transaction expires
    # (The embedded server reaps expired transactions when another
    # transaction runs a statement.)
    with routed.direct.client.start_session() as session:
        session.with_transaction(lambda s: routed.direct.db.other.insert_one(
            {}, session=s))
    doc = routed.direct.db.person.find_one({'key': 'a'})
    if other == 'moved':
        routed.direct.db.person.update_one(
            {'_id': doc['_id']}, {'$set': {'parent': two_oid, 'key': 'z'}})
    else:
        routed.direct.db.person.delete_one({'_id': doc['_id']})
    b.name = 'also mine'
    transaction.commit()
    found = routed.direct.db.person.find_one({'_id': doc['_id']})
    assert found is not None and found['name'] == 'mine'


def expire_and_change(routed, key, other, two_oid):
    """Let the server transaction expire, then (another transaction) move
    item ``key`` of ``one`` to ``two`` (as ``z``) or delete it; returns
    its ``_id``."""
    time.sleep(3)
    with routed.direct.client.start_session() as session:
        session.with_transaction(lambda s: routed.direct.db.other.insert_one(
            {}, session=s))
    doc = routed.direct.db.person.find_one({'key': key})
    if other == 'moved':
        routed.direct.db.person.update_one(
            {'_id': doc['_id']}, {'$set': {'parent': two_oid, 'key': 'z'}})
    else:
        routed.direct.db.person.delete_one({'_id': doc['_id']})
    return doc['_id']


def test_nocheck_delete_sent_again_after_a_lost_server_transaction(
        routed_short):
    """The delete was flushed, the server transaction expired, another
    transaction moved the item: the delete sent again deletes it there."""
    routed = routed_short
    one_oid, two_oid = stored_tree(routed)
    dm = routed.make_datamanager()
    one = dm.load(one_oid)
    b = one['b']
    del one['a']
    dm.flush()
    id_ = expire_and_change(routed, 'a', 'moved', two_oid)
    b.name = 'also mine'
    transaction.commit()
    assert routed.direct.db.person.find_one({'_id': id_}) is None
    assert routed.direct.db.person.find_one({'key': 'b'})['name'] == \
        'also mine'


@pytest.mark.parametrize('other', ['moved', 'deleted'])
def test_nocheck_replaces_and_a_wrapper_write_sent_again(
        routed_short, other):
    """Item a is written twice, then a write through the collection
    wrapper follows in the same collection (a bulk the counts cannot
    tell about alone);
    the log sent again after the server transaction was lost stores a's
    last state where the other transaction left it (or anew), and the
    wrapper's write too."""
    routed = routed_short
    one_oid, two_oid = stored_tree(routed)
    dm = routed.make_datamanager()
    one = dm.load(one_oid)
    a, b = one['a'], one['b']
    a.name = 'first'
    dm.flush()
    a.name = 'mine'
    dm.flush()
    dm.get_collection_from_object(b).update_one(
        {'_id': b._p_oid.id, 'parent': one_oid, 'key': 'b'},
        {'$set': {'name': 'wrapper'}})
    id_ = expire_and_change(routed, 'a', other, two_oid)
    transaction.commit()
    found = routed.direct.db.person.find_one({'_id': id_})
    assert found is not None and found['name'] == 'mine'
    assert routed.direct.db.person.find_one({'key': 'b'})['name'] == \
        'wrapper'


# -- writes through the collection wrapper -------------------------------------

@pytest.mark.parametrize('handler', [
    conflict.NoCheckConflictHandler, conflict.SimpleSerialConflictHandler])
def test_a_wrapper_write_moving_an_item_then_the_item_changes(
        routed, handler):
    """The wrapper renames item a (a shard key change, its filter carrying
    the shard key: the caller's business); then the object is changed and
    written: its replace must carry the values the wrapper stored."""
    routed.shard('person', PERSON)
    one_oid, _ = stored_tree(routed, handler)
    dm = routed.make_datamanager(conflict_handler_factory=handler)
    one = dm.load(one_oid)
    a = one['a']
    coll = dm.get_collection_from_object(a)
    coll.update_one({'_id': a._p_oid.id, 'parent': one_oid, 'key': 'a'},
                    {'$set': {'key': 'q'}})
    a.name = 'mine'
    routed.commands.reset()
    transaction.commit()
    found = routed.db.person.find_one({'_id': a._p_oid.id})
    assert found['name'] == 'mine'
    q = write_filters(routed.commands, 'person')[0]
    assert q['key'] == 'q'


@pytest.mark.parametrize('transactions', [True, False])
def test_serial_handler_sees_its_own_wrapper_write(mongo, transactions):
    """(No sharding.)  A serial handler keeps whole documents: after a
    write through the collection wrapper the object reloads the document
    as the write left it, and its own later write goes on top of it (on
    the serial it read: no conflict)."""
    handler = conflict.SimpleSerialConflictHandler
    dm = mongo.make_datamanager(conflict_handler_factory=handler)
    one = models.People()
    dm.root['one'] = one
    one['a'] = models.Person('A')
    transaction.commit()
    dm = mongo.make_datamanager(conflict_handler_factory=handler,
                                transactions=transactions)
    a = dm.root['one']['a']
    assert a.name == 'A'
    dm.get_collection_from_object(a).update_one(
        {'_id': a._p_oid.id}, {'$set': {'name': 'W', 'extra': 1}})
    assert a.name == 'W'
    a.name = 'W2'
    transaction.commit()
    found = mongo.db[a._p_oid.collection].find_one({'_id': a._p_oid.id})
    assert found['name'] == 'W2'


# -- the per-client cache, from many threads -----------------------------------

def test_threads_first_using_a_collection_read_its_shard_key_once(routed):
    routed.shard('counters', {'_id': 'hashed'})
    routed.client.admin.command('ping')     # the handshake is done
    dms = [routed.make_datamanager() for _ in range(8)]
    barrier = threading.Barrier(len(dms))
    errors = []

    def use(dm):
        try:
            barrier.wait()
            dm.raw_collection(routed.db_name, 'counters')
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=use, args=(dm,)) for dm in dms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    asked = [r['filter']['_id'] for r in config_reads(routed.commands)]
    assert asked.count('%s.counters' % routed.db_name) == 1


# -- no server: what waits for the handshake ----------------------------------

def test_a_collection_wrapper_needs_no_server():
    from zmongo.datamanager import MongoDataManager
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    client = testing.make_client('mongodb://127.0.0.1:%d/' % port,
                                 serverSelectionTimeoutMS=200,
                                 timeoutMS=200)
    try:
        dm = MongoDataManager(client, default_database='db',
                              transactions=True)
        things = dm.get_collection('db', 'things')
        assert things.name == 'things'      # (sends nothing either)
    finally:
        client.close()


@pytest.mark.parametrize('first', ['find_one', 'insert_one', 'create_index'])
def test_a_wrapper_of_a_refused_collection_refuses_its_first_operation(
        routed, first):
    """The sharding check of a wrapper's collection is made before its
    first operation, read or write, goes out."""
    routed.shard('counters', {'meta.region': 1})
    dm = routed.make_datamanager()
    counters = dm.get_collection(routed.db_name, 'counters')
    args = {'find_one': ({},), 'insert_one': ({'x': 1},),
            'create_index': ('x',)}[first]
    routed.commands.reset()
    with pytest.raises(interfaces.UnsupportedShardKeyError,
                       match='embedded field .meta.region'):
        getattr(counters, first)(*args)
    transaction.abort()
    # Nothing went to the collection (only the config server was read).
    assert [c for _, _, c in routed.commands.commands
            if 'counters' in c.values()] == []
    assert routed.db.counters.count_documents({}) == 0


# -- sub-document containers ---------------------------------------------------

def test_a_move_between_sub_document_containers(routed):
    """Their items' ``parent`` is the ObjectId the container keeps in its
    holder's document; a move changes it, and the filter has the old."""
    routed.shard('person', PERSON)
    dm = routed.make_datamanager()
    dm.root['app'] = app = models.Site()
    app['a'] = container.SubDocumentMongoContainer('person')
    app['b'] = container.SubDocumentMongoContainer('person')
    app['a']['x'] = models.Item('X')
    transaction.commit()
    old = routed.db.person.find_one({'key': 'x'})
    dm = routed.make_datamanager()
    app = dm.root['app']
    routed.commands.reset()
    app['b']['y'] = app['a']['x']
    del app['a']['x']
    transaction.commit()
    q = write_filters(routed.commands, 'person')[-1]
    assert q == {'_id': old['_id'], 'parent': old['parent'], 'key': 'x'}
    dm = routed.make_datamanager()
    app = dm.root['app']
    assert app['a'].keys() == [] and app['b'].keys() == ['y']
    del app['b']['y']
    routed.commands.reset()
    transaction.commit()
    q = write_filters(routed.commands, 'person')[-1]
    assert q['parent'] == app['b']._m_container_id and q['key'] == 'y'
    assert routed.db.person.count_documents({}) == 0


# -- standalone mode on a mongos: undo writes on an _id shard key -------------

def test_standalone_abort_after_a_flush_on_an_id_shard_key(routed):
    routed.shard('counters', {'_id': 'hashed'})
    dm = routed.make_datamanager(transactions=False)
    kept, gone = plain.Counter(1), plain.Counter(2)
    dm.insert(kept)
    dm.insert(gone)
    transaction.commit()
    dm = routed.make_datamanager(transactions=False)
    dm.load(kept._p_oid).value = 10
    dm.remove(dm.load(gone._p_oid))
    new = plain.Counter(3)
    dm.insert(new)
    dm.flush()
    routed.commands.reset()
    transaction.abort()
    assert sorted(d['value'] for d in routed.db.counters.find()) == [1, 2]
    # Every undo write names the document by _id, the whole shard key;
    # the one re-creating the deleted document upserts on it.
    for c in writes_to(routed.commands, 'counters'):
        for w in list(c.get('updates', ())) + list(c.get('deletes', ())):
            assert '_id' in w['q']


# -- sharded after the first use ----------------------------------------------

def test_a_collection_sharded_after_its_first_use(routed):
    """As documented: each client reads a collection's shard key once; a
    collection sharded later is seen by a new client."""
    dm = routed.make_datamanager()
    people = models.People()
    dm.root['people'] = people
    people['a'] = models.Person('A')
    transaction.commit()
    routed.shard('person', {'key': 1})       # refused, once known
    dm = routed.make_datamanager()
    dm.root['people']['b'] = models.Person('B')
    transaction.commit()                    # the client does not know yet
    other = testing.MongoFixture(routed.uri).setUp()
    try:
        other.db_name, other.db = routed.db_name, other.client[routed.db_name]
        dm = other.make_datamanager()
        with pytest.raises(interfaces.UnsupportedShardKeyError):
            dm.root['people'].keys()
        transaction.abort()
    finally:
        other.client.close()


def test_a_container_on_an_embedded_field_is_told_what_works(routed):
    routed.shard('person', {'parent.$id': 1})
    dm = routed.make_datamanager()
    people = models.People()
    dm.insert(people)
    with pytest.raises(interfaces.UnsupportedShardKeyError) as info:
        people.keys()
    transaction.abort()
    message = str(info.value)
    assert 'embedded field (parent.$id)' in message
    # Not only {_id: 'hashed'}, which a container's items cannot use.
    assert "container's items ({parent: 1})" in message


# -- a replica set without a primary -------------------------------------------

@pytest.fixture
def secondary_only(mongo, monkeypatch):
    """A proxy presenting the embedded server as the one reachable member,
    a secondary, of its replica set (no primary: an election, an outage)."""
    from tests import tcpproxy
    proxy = TCPProxy(mongo.client.address, as_mongos=True)
    proxy.start()
    me = '127.0.0.1:%d' % proxy.port

    def as_secondary(doc):
        if not ('isWritablePrimary' in doc or 'ismaster' in doc):
            return None
        doc = dict(doc)
        doc.pop('primary', None)
        doc.update(hosts=[me], me=me, secondary=True)
        for name in ('isWritablePrimary', 'ismaster'):
            if name in doc:
                doc[name] = False
        return doc

    monkeypatch.setattr(tcpproxy, '_as_router', as_secondary)
    set_name = mongo.client.admin.command('hello')['setName']
    try:
        yield proxy, set_name
    finally:
        proxy.stop()


def test_reads_from_a_secondary_while_there_is_no_primary(
        secondary_only, mongo):
    """A client created while its replica set has no primary reads from
    a secondary (the check for a mongos waited for a writable server:
    ServerSelectionTimeoutError on every use, nothing cached)."""
    from zmongo.datamanager import MongoDataManager
    proxy, set_name = secondary_only
    mongo.db.things.insert_one({'_id': 1})
    client = testing.make_client(
        'mongodb://127.0.0.1:%d/?replicaSet=%s' % (proxy.port, set_name),
        readPreference='secondaryPreferred', connect=False,
        serverSelectionTimeoutMS=1500, timeoutMS=1500)
    try:
        dm = MongoDataManager(client, default_database=mongo.db_name,
                              transactions=False)
        coll = dm.raw_collection(mongo.db_name, 'things')
        assert coll.find_one({'_id': 1}) == {'_id': 1}
    finally:
        client.close()
