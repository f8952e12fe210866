"""Attacks on the sharded-cluster support (issue 15): moves, rollbacks,
restarts, hostile ``config.collections`` entries, the refusals' advice.

As in ``tests/test_sharding.py``, the loopback proxy presents the embedded
server as a ``mongos`` and shard keys are real documents in its
``config.collections``; the server routes nothing, so these tests pin the
filters zmongo sends and what it refuses.
"""
import re

import pytest
import transaction

from tests import container_models as models
from tests import models as plain
from tests.test_sharding import config_reads
from tests.test_sharding import routed  # noqa: F401 (a fixture)
from tests.test_sharding import stored_tree
from tests.test_sharding import writes_to
from zmongo import conflict
from zmongo import interfaces

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
