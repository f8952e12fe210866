"""An object built from a document just read (a listing, a query) is made
up to date at once, without becoming a ghost and loading itself through the
data manager (issue 17), and keeps what that round trip gave it: its place
in the identity map, sub-objects that report to it, a self-reference that
is itself, no write when unchanged, a ghost after the transaction, and a
ghost left behind by a document that cannot be loaded."""
import bson
import pytest
import transaction

from tests import load_models as models
from zmongo import _oid
from zmongo import interfaces
from zmongo import serialize
from zmongo.testing import trusting

WRITES = ('insert', 'update', 'delete')


@pytest.fixture(autouse=True)
def trusted_load_models():
    with trusting(modules=('tests.load_models',)):
        yield


def stored(datamanager, klass, doc):
    """Insert ``doc`` (outside zmongo) and read it back as a query would:
    ``(oid, document)``."""
    db_name = datamanager.default_database
    coll_name = serialize.get_dotted_name(klass)
    coll = datamanager.raw_collection(db_name, coll_name)
    coll.insert_one(doc)
    found = coll.find_one({'_id': doc['_id']})
    return _oid.oid(coll_name, doc['_id'], db_name), found


def writes(mongo):
    return [name for name in mongo.commands.names if name in WRITES]


def test_built_up_to_date_and_kept_as_loaded(datamanager, mongo):
    oid, doc = stored(datamanager, models.Plain,
                      {'_id': 1, 'name': 'a', 'tags': ['x']})
    obj = datamanager.load_from_document(oid, doc)
    assert type(obj) is models.Plain
    assert obj._p_changed is False
    assert obj._p_jar is datamanager and obj._p_oid == oid
    assert datamanager.cached_object(oid) is obj
    assert datamanager.load(oid) is obj
    mongo.commands.reset()
    assert obj.name == 'a' and list(obj.tags) == ['x']
    assert mongo.commands.names == []
    # Loading again in the transaction keeps the object and its state.
    assert datamanager.load_from_document(oid, dict(doc, name='b')) is obj
    assert obj.name == 'a'
    transaction.commit()
    assert writes(mongo) == []
    assert obj._p_changed is None          # a ghost, as ZODB's would be
    assert obj.name == 'a'


def test_sub_objects_report_to_the_object(datamanager, mongo):
    oid, doc = stored(datamanager, models.Plain,
                      {'_id': 2, 'name': 'a', 'tags': ['x']})
    obj = datamanager.load_from_document(oid, doc)
    obj.tags.append('y')
    assert obj._p_changed is True
    transaction.commit()
    coll = datamanager.raw_collection(oid.database, oid.collection)
    assert coll.find_one({'_id': 2})['tags'] == ['x', 'y']


def test_a_self_reference_is_the_object(datamanager):
    db_name = datamanager.default_database
    coll_name = serialize.get_dotted_name(models.Plain)
    oid, doc = stored(datamanager, models.Plain, {
        '_id': 3, 'name': 'me', 'me': bson.DBRef(coll_name, 3, db_name)})
    obj = datamanager.load_from_document(oid, doc)
    assert obj.me is obj
    transaction.abort()


def test_a_class_with_its_own_setstate_loads_without_a_change(
        datamanager, mongo):
    oid, doc = stored(datamanager, models.OwnSetstate,
                      {'_id': 4, 'name': 'a'})
    obj = datamanager.load_from_document(oid, doc)
    assert obj.derived == 'from a'
    assert obj._p_changed is False
    mongo.commands.reset()
    transaction.commit()
    assert writes(mongo) == []


def test_a_document_that_cannot_load_leaves_a_ghost(datamanager, mongo):
    oid, doc = stored(datamanager, models.Plain, {
        '_id': 5, 'name': 'a',
        'bad': {'_py_type': 'tests.load_models.no_such_name'}})
    with pytest.raises(interfaces.DocumentLoadError) as first:
        datamanager.load_from_document(oid, doc)
    assert 'bad' in str(first.value)
    obj = datamanager.cached_object(oid)
    assert type(obj) is models.Plain and obj._p_changed is None
    # Touched, it fails alike, from the document already read.
    mongo.commands.reset()
    with pytest.raises(interfaces.DocumentLoadError):
        obj.name
    assert mongo.commands.names == []
    transaction.abort()
