"""Bad documents, both ways: what cannot be written, names MongoDB forbids,
and stored documents that are corrupt.

Complements ``test_safe_loading`` (documents naming code, unresolvable
paths, malformed ``dict_data``/factory arguments) and ``test_datamanager``
(an existing document grown over 16 MB).  Everything runs against the real
server; raw documents are written and read with plain pymongo.
"""
import datetime

import bson
import pytest
import transaction
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests import hardening_models as hm
from zmongo import interfaces
from zmongo import serialize

MAX = 16 * 1024 * 1024
MODES = ['transactions', 'standalone']


def snapshot(mongo):
    """The documents of the test database.  Name-map entries are left out:
    they are idempotent meta-data, written outside transactions by design
    (see zmongo._namemap); so are empty collections."""
    docs = {name: sorted(repr(doc) for doc in mongo.db[name].find())
            for name in sorted(mongo.db.list_collection_names())
            if name != 'persistence_name_map'}
    return {name: found for name, found in docs.items() if found}


def make_dm(mongo, mode, **options):
    return mongo.make_datamanager(transactions=mode == 'transactions',
                                  **options)


def raw(mongo, ref):
    return mongo.db[ref.collection].find_one({'_id': ref.id})


def load(mongo, ref, mode='transactions'):
    obj = make_dm(mongo, mode).load(ref)
    obj._p_activate()
    return obj


def field_names(doc):
    """Every field name in ``doc``, at any depth."""
    if isinstance(doc, dict):
        for name, value in doc.items():
            yield name
            yield from field_names(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from field_names(value)


def assert_mongo_legal(doc):
    """No field name a real mongod would refuse or misread."""
    for name in field_names(doc):
        assert not name.startswith('$'), (name, doc)
        assert '.' not in name, (name, doc)
        assert '\x00' not in name, (name, doc)


# -- documents over 16 MB ----------------------------------------------------

@pytest.mark.parametrize('mode', MODES)
def test_document_of_exactly_16_mb_is_stored_one_byte_more_is_refused(
        mongo, mode):
    base = len(bson.encode({'_id': bson.ObjectId(), 'data': b''}))
    dm = make_dm(mongo, mode)
    ref = dm.insert(hm.Bag(data=b'x' * (MAX - base)))
    transaction.commit()
    assert len(bson.encode(raw(mongo, ref))) == MAX
    assert len(load(mongo, ref, mode).data) == MAX - base
    transaction.abort()
    before = snapshot(mongo)
    dm = make_dm(mongo, mode)
    dm.insert(hm.Bag(data=b'x' * (MAX - base + 1)))
    with pytest.raises(interfaces.SerializationError,
                       match='cannot store <Bag>: its document is %d bytes, '
                             'more than the %d' % (MAX + 1, MAX)):
        transaction.commit()
    transaction.abort()
    assert snapshot(mongo) == before




@pytest.mark.parametrize('mode, size', [
    ('transactions', 17 << 20),
    ('standalone', 17 << 20),
    ('transactions', 50 << 20),
    ('standalone', 50 << 20),
], ids=['transactions-17MiB', 'standalone-17MiB', 'transactions-50MiB',
        'standalone-50MiB'])
def test_too_large_document_among_other_writes_changes_nothing(
        mongo, mode, size):
    """The oversized document is written in the same commit as others --
    before it in the same collection's bulk write, and in another
    collection: none of them stays."""
    dm = make_dm(mongo, mode)
    dm.root['a'] = hm.Item('a')
    transaction.commit()
    before = snapshot(mongo)
    dm = make_dm(mongo, mode)
    a = dm.root['a']
    a.name
    dm.insert(hm.Item('b'))
    dm.insert(hm.Entry('entry'))
    a.value = b'x' * size
    with pytest.raises(interfaces.SerializationError) as info:
        transaction.commit()
    message = str(info.value)
    assert message.startswith('cannot store <Item a>: its document is ')
    assert 'more than the %d MongoDB allows' % MAX in message
    transaction.abort()
    assert snapshot(mongo) == before


@pytest.mark.parametrize('mode', MODES)
def test_too_large_document_met_by_a_query_changes_nothing(mongo, mode):
    """A query flushes pending changes first: the oversized document fails
    there, and the aborted transaction leaves nothing."""
    dm = make_dm(mongo, mode)
    dm.root['a'] = hm.Item('a')
    transaction.commit()
    before = snapshot(mongo)
    dm = make_dm(mongo, mode)
    dm.insert(hm.Entry('entry'))
    dm.root['a'].value = 'x' * (MAX + 1)
    with pytest.raises(interfaces.SerializationError,
                       match='cannot store <Item a>'):
        list(dm.get_collection(mongo.db_name, 'items').find())
    transaction.abort()
    assert snapshot(mongo) == before


# -- names MongoDB forbids ----------------------------------------------------

FORBIDDEN_NAMES = ['$x', '$', '$where', '$ref', '$id', 'a.b', '.', 'a.',
                   'a\x00b', '\x00', '_id', '_py_persistent_type',
                   '_py_state']


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('name', FORBIDDEN_NAMES, ids=repr)
def test_forbidden_attribute_name_is_stored_as_dict_data(mongo, mode, name):
    bag = hm.Bag(other=2)
    setattr(bag, name, [1, {'k': 'v'}])
    dm = make_dm(mongo, mode)
    ref = dm.insert(bag)
    transaction.commit()
    doc = raw(mongo, ref)
    assert_mongo_legal(doc)
    assert doc == {'_id': ref.id,
                   'dict_data': [['other', 2], [name, [1, {'k': 'v'}]]]}
    loaded = load(mongo, ref, mode)
    assert loaded.__getstate__() == {'other': 2, name: [1, {'k': 'v'}]}
    # Written again (a replace), it stays exact.
    loaded.other = 3
    transaction.commit()
    doc = raw(mongo, ref)
    assert_mongo_legal(doc)
    assert load(mongo, ref, mode).__getstate__() == \
        {'other': 3, name: [1, {'k': 'v'}]}
    transaction.abort()


@pytest.mark.parametrize('name', FORBIDDEN_NAMES, ids=repr)
def test_forbidden_names_inside_values_are_kept_exactly(mongo, name):
    """In a persistent sub-object, a plain object and a dict."""
    part = hm.Part(ok=1)
    setattr(part, name, 'part')
    plain = hm.Plain(**{name: 'plain', 'ok': 1})
    mapping = {name: 'dict', 'ok': 1}
    dm = mongo.make_datamanager()
    ref = dm.insert(hm.Bag(part=part, plain=plain, mapping=mapping))
    transaction.commit()
    assert_mongo_legal(raw(mongo, ref))
    loaded = load(mongo, ref)
    assert type(loaded.part) is hm.Part
    assert loaded.part.__getstate__() == {'ok': 1, name: 'part'}
    assert loaded.plain == hm.Plain(**{name: 'plain', 'ok': 1})
    assert loaded.mapping == {name: 'dict', 'ok': 1}
    transaction.abort()


def test_dict_shaped_like_a_dbref_stays_a_dict(mongo):
    value = {'$ref': hm.BAG, '$id': 1, '$db': mongo.db_name}
    dm = mongo.make_datamanager()
    ref = dm.insert(hm.Bag(value=value))
    transaction.commit()
    doc = raw(mongo, ref)
    assert_mongo_legal(doc)
    assert not isinstance(doc['value'], bson.DBRef)
    loaded = load(mongo, ref)
    assert isinstance(loaded.value, serialize.PersistentDict)
    assert loaded.value == value
    transaction.abort()


attribute_names = st.text().filter(
    lambda n: not n.startswith(('_p_', '_v_', '__')))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(attribute_names, min_size=1, max_size=4, unique=True))
def test_any_attribute_names_round_trip_and_stay_mongo_legal(mongo, names):
    transaction.abort()
    mongo.db[hm.BAG].delete_many({})
    bag = hm.Bag()
    for index, name in enumerate(names):
        setattr(bag, name, index)
    dm = mongo.make_datamanager()
    ref = dm.insert(bag)
    transaction.commit()
    assert_mongo_legal(raw(mongo, ref))
    state = load(mongo, ref).__getstate__()
    transaction.abort()
    assert list(state.items()) == [(name, index)
                                   for index, name in enumerate(names)]


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('name', ['a.b', '$x'])
def test_in_place_change_under_an_escaped_name(mongo, mode, name):
    dm = make_dm(mongo, mode)
    ref = dm.insert(hm.Bag(part=hm.Part(**{name: [1], 'ok': [1]}),
                           plain=hm.Plain(**{name: [1], 'ok': [1]})))
    transaction.commit()
    loaded = load(mongo, ref, mode)
    for obj in (loaded.part, loaded.plain):
        obj.__dict__['ok'].append(2)
        obj.__dict__[name].append(2)
    transaction.commit()
    again = load(mongo, ref, mode)
    try:
        for obj in (again.part, again.plain):
            assert obj.__dict__['ok'] == [1, 2]
            assert obj.__dict__[name] == [1, 2]
    finally:
        transaction.abort()


@pytest.mark.parametrize('mode', MODES)
def test_string_bson_cannot_hold_is_refused_naming_the_attribute(
        mongo, mode):
    dm = make_dm(mongo, mode)
    dm.root['a'] = hm.Item('a')
    transaction.commit()
    before = snapshot(mongo)
    dm = make_dm(mongo, mode)
    dm.root['a'].value = 1
    dm.insert(hm.Bag(text=['ok', {'deep': 'bad \ud800 string'}]))
    try:
        with pytest.raises(interfaces.SerializationError,
                           match=r'text\[1\]\.deep'):
            transaction.commit()
    finally:
        transaction.abort()
    assert snapshot(mongo) == before


# -- corrupt documents --------------------------------------------------------

NOW = datetime.datetime(2020, 1, 1)
PART = 'tests.hardening_models.Part'
PLAIN = 'tests.hardening_models.Plain'


def insert(mongo, **fields):
    oid = bson.ObjectId()
    mongo.db[hm.BAG].insert_one(dict(fields, _id=oid))
    return bson.DBRef(hm.BAG, oid, mongo.db_name)


def fails_naming_the_document(mongo, ref, obj=None):
    """Loading fails with DocumentLoadError naming collection and _id --
    every time (a failed load leaves a ghost, not half a state)."""
    if obj is None:
        obj = mongo.make_datamanager().load(ref)
    for _ in range(2):
        with pytest.raises(interfaces.DocumentLoadError) as info:
            obj._p_activate()
        message = str(info.value)
        assert repr(ref.id) in message, message
        assert '%s.%s' % (ref.database, ref.collection) in message, message
    return info.value


@pytest.mark.parametrize('value', [
    # time-zone-aware datetimes
    {'_py_aware_datetime': NOW, 'utcoffset': 0, 'microsecond': 'x'},
    {'_py_aware_datetime': NOW, 'utcoffset': 0, 'microsecond': 10 ** 7},
    {'_py_aware_datetime': NOW, 'utcoffset': 10 ** 6},
    {'_py_aware_datetime': NOW, 'utcoffset': float('nan')},
    {'_py_aware_datetime': NOW, 'utcoffset': None},
    {'_py_aware_datetime': NOW, 'utcoffset': 0, 'zone': 5},
    {'_py_aware_datetime': NOW, 'utcoffset': 0, 'zone': ['Europe/Berlin']},
    {'_py_aware_datetime': 5, 'utcoffset': 0},
    {'_py_aware_datetime': None, 'utcoffset': 0},
    {'_py_aware_datetime': NOW, 'local': NOW, 'utcoffset': 0, 'fold': 'x'},
    {'_py_aware_datetime': NOW, 'local': NOW, 'utcoffset': 0, 'fold': 2},
    {'_py_aware_datetime': NOW, 'local': NOW, 'utcoffset': 0,
     'microsecond': -1},
    # type markers of the wrong type
    {'_py_persistent_type': 5},
    {'_py_persistent_type': None},
    {'_py_type': 'type', 'path': 5},
    {'_py_type': 'type'},
    {'_py_constant': 5},
    {'_py_constant': 'nodots'},
    {'_py_factory': None},
    # state, items and arguments of the wrong shape
    {'_py_persistent_type': PART, '_py_state': 5},
    {'_py_persistent_type': PART, '_py_state': 'abc'},
    {'_py_type': PLAIN, '_py_state': 5},
    {'_py_factory': 'builtins.list', '_py_list_items': 5},
    {'_py_factory': 'builtins.dict', '_py_dict_items': [1, 2]},
    {'_py_factory': 'builtins.dict', '_py_dict_items': 5},
    {'_py_factory': 'builtins.int', '_py_factory_args': ['x']},
    {'_py_factory': 'datetime.datetime', '_py_factory_args': []},
    # references
    bson.DBRef('no_such_collection', 1, 'zmongo_test_nowhere'),
    [1, {'deep': {'_py_aware_datetime': 'x', 'utcoffset': 0}}],
], ids=repr)
def test_corrupt_value_is_a_load_error_naming_the_document(mongo, value):
    ref = insert(mongo, name='corrupt', value=value)
    before = snapshot(mongo)
    fails_naming_the_document(mongo, ref)
    transaction.commit()
    assert snapshot(mongo) == before


@pytest.mark.parametrize('fields', [
    {'dict_data': [5]},
    {'dict_data': [['a']]},
    {'dict_data': [[{'a': 1}, 'unhashable key']]},
], ids=repr)
def test_corrupt_top_level_dict_data_is_a_load_error(mongo, fields):
    ref = insert(mongo, **fields)
    fails_naming_the_document(mongo, ref)


@pytest.mark.parametrize('state', [5, 'x', [1, 2]], ids=repr)
def test_corrupt_top_level_state_is_a_load_error(mongo, state):
    ref = insert(mongo, _py_state=state)
    fails_naming_the_document(mongo, ref)


def test_reference_without_database(mongo):
    target = insert(mongo, name='target')
    ref = insert(mongo, friend=bson.DBRef(hm.BAG, target.id))
    friend = load(mongo, ref).friend
    try:
        assert friend.name == 'target'
    except interfaces.DocumentLoadError as err:
        assert repr(target.id) in str(err) and hm.BAG in str(err)
    finally:
        transaction.abort()


@pytest.mark.parametrize('entry', [
    {'name': 'x'},
    {'name': 'x', 'ref': 'not a reference'},
    {'name': 'x', 'ref': {'$ref': 'no id'}},
], ids=['missing-ref', 'str-ref', 'half-dbref'])
def test_corrupt_root_entry_is_a_load_error(mongo, entry):
    mongo.db['persistence_root'].insert_one(entry)
    dm = mongo.make_datamanager()
    assert 'x' in dm.root
    try:
        with pytest.raises(interfaces.DocumentLoadError) as info:
            dm.root['x']
        message = str(info.value)
        assert 'persistence_root' in message
        assert repr(entry['_id']) in message
    finally:
        transaction.abort()
