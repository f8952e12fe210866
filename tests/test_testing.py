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
