"""zmongo.testing: the embedded server support itself."""
import bson
import pymongo.errors
import pytest

from zmongo import testing


def test_dbref_index_fix_is_applied_to_the_affected_version():
    import secantus
    assert secantus.__version__ in testing.DBREF_INDEX_BUG_VERSIONS
    assert testing.apply_embedded_server_fixes() is True
    assert testing.apply_embedded_server_fixes() is True      # idempotent


def test_indexes_over_dbrefs_work(mongo):
    coll = mongo.db.items
    coll.create_index([('parent', 1), ('key', 1)], unique=True)
    parent = bson.DBRef('containers', bson.ObjectId(), mongo.db_name)
    coll.insert_one({'parent': parent, 'key': 'a'})
    coll.insert_one({'parent': parent, 'key': 'b'})
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        coll.insert_one({'parent': parent, 'key': 'a'})
    plan = coll.find({'parent': parent, 'key': 'a'}).explain()
    assert 'IXSCAN' in str(plan['queryPlanner']['winningPlan'])


def test_embedded_server_starts_and_stops_quickly(tmp_path):
    import time
    server = testing.EmbeddedServer(data_dir=str(tmp_path)).start()
    client = testing.make_client(server.uri)
    client.db.x.insert_one({'a': 1})
    client.close()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.5


def test_command_counter_counts_commands(mongo):
    mongo.commands.reset()
    mongo.db.x.insert_one({'a': 1})
    mongo.db.x.find_one()
    assert mongo.commands.names == ['insert', 'find']
    assert mongo.commands.count('find') == 1 and len(mongo.commands) == 2


def test_clients_have_a_timeout(mongo):
    assert mongo.client.options.timeout == \
        testing.DEFAULT_TIMEOUT_MS / 1000


def test_each_test_gets_a_clean_database(mongo):
    assert mongo.db_name.startswith('zmongo_test_')
    assert mongo.db.list_collection_names() == []


def test_fixture_drops_its_database():
    fixture = testing.MongoFixture().setUp()
    fixture.db.x.insert_one({})
    name = fixture.db_name
    client = testing.make_client()
    fixture.tearDown()
    try:
        assert name not in client.list_database_names()
    finally:
        client.close()


def _embedded_in_matcher():
    """The patched and the original ``$in`` matcher of the embedded server
    (the module is patched whether or not this process serves)."""
    testing.apply_embedded_server_fixes()
    import secantus.query
    patched = secantus.query._op_matches
    return patched, patched._zmongo_original


IN_VALUES = [
    ['a'], ['b'], [['a', 'z']], [['z']], [[['a']]], [None], [1], [True],
    [{'a': 1}], [bson.Code('a')], [bson.Regex('a')], [b'a'], [],
    ['A'], ['a', 'b'],
]
IN_ARGS = [['a'], ['a', 'b'], [], ['A'], ['']]


@pytest.mark.parametrize('arg', IN_ARGS)
def test_string_in_fix_matches_what_the_original_matches(arg):
    patched, original = _embedded_in_matcher()
    import secantus.query
    values_cases = IN_VALUES + [[secantus.query.MISSING]]
    for values in values_cases:
        for descend in (True, False):
            assert patched(values, '$in', arg, descend=descend) == \
                original(values, '$in', arg, descend=descend), \
                (values, arg, descend)


def test_string_in_fix_leaves_other_lists_and_collations_alone():
    patched, original = _embedded_in_matcher()
    # Not all strings: the original decides (numbers match numerically).
    assert patched([1.0], '$in', [1, 'a']) is True
    assert patched([True], '$in', [1, 'a']) is False
    with pytest.raises(Exception, match='needs an array'):
        patched(['a'], '$in', 'a')


def test_in_query_over_the_container_index_is_answered(mongo):
    coll = mongo.db.items
    ref = bson.DBRef('c', 1, mongo.db_name)
    coll.insert_many([{'parent': ref, 'key': 'k%d' % i, 'tags': ['t%d' % i]}
                      for i in range(50)])
    coll.create_index([('parent', 1), ('key', 1)], unique=True,
                      partialFilterExpression={'key': {'$gte': ''}})
    keys = ['k3', 'k7', 'nope']
    found = coll.find({'$and': [{'parent': ref, 'key': {'$gte': ''}},
                                {'key': {'$in': keys}}]})
    assert sorted(d['key'] for d in found) == ['k3', 'k7']
    assert [d['key'] for d in coll.find({'tags': {'$in': ['t9']}})] == ['k9']
    found = coll.find({'key': {'$in': ['K3']}}).collation(
        {'locale': 'en', 'strength': 2})
    assert [d['key'] for d in found] == ['k3']


def test_standalone_mode_meets_a_standalone_server(datamanager, mongo):
    """The standalone run of a test talks to a server that presents itself
    as standalone (no transactions, no retryable writes), as a real
    standalone mongod does; ``mongo`` is connected to the same server."""
    import os
    if os.environ.get('ZMONGO_TEST_URI') and not os.environ.get(
            'ZMONGO_TEST_STANDALONE_URI'):
        pytest.skip('ZMONGO_TEST_URI names the only server')
    mongo.client.admin.command('ping')
    topology = mongo.client.topology_description.topology_type_name
    if datamanager.uses_transactions:
        assert topology == 'ReplicaSetWithPrimary'
    else:
        assert topology == 'Single'
        from zmongo.datamanager import MongoDataManager
        assert MongoDataManager(mongo.client).uses_transactions is False
