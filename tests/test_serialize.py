"""The storage format of zmongo.serialize, written and read back through a
real data manager and the real (embedded) server.

Each test stores objects with one data manager, looks at the raw document
with plain pymongo, and loads it back with a fresh data manager.
"""
import collections
import datetime
import decimal
import fractions
import http
import pathlib
import re
import threading
import uuid
import zoneinfo

import bson
import persistent
import pytest
import transaction

from tests import serialize_models as sm
from tests.models import Address
from tests.models import Bar
from tests.models import Car
from tests.models import ExtendedAddress
from tests.models import Foo
from tests.models import Person
from tests.models import PBar
from tests.models import PFoo
from tests.models import Phone
from tests.models import Top
from zmongo import interfaces
from zmongo import serialize

HOLDER = 'tests.serialize_models.Holder'
WRITES = frozenset({'insert', 'update', 'delete', 'findAndModify'})
UTC = datetime.timezone.utc


# -- helpers ------------------------------------------------------------------

def store(mongo, obj, name='obj', **options):
    """Store ``obj`` as root ``name`` with a new data manager; commit."""
    dm = mongo.make_datamanager(**options)
    dm.root[name] = obj
    transaction.commit()
    return obj


def raw(mongo, obj):
    """The document of stored ``obj``, straight from pymongo."""
    return mongo.db[obj._p_oid.collection].find_one({'_id': obj._p_oid.id})


def load(mongo, name='obj', **options):
    """Root ``name``, loaded by a fresh data manager."""
    return mongo.make_datamanager(**options).root[name]


def roundtrip(mongo, **attrs):
    """Store a Holder with ``attrs``; return (raw document, loaded Holder)."""
    obj = store(mongo, sm.Holder(**attrs))
    doc = raw(mongo, obj)
    transaction.abort()
    return doc, load(mongo)


def writes(commands):
    return [name for name in commands.names if name in WRITES]


def commit_fails(exc_type, match=None):
    """Commit must fail with ``exc_type``; the transaction is aborted."""
    try:
        with pytest.raises(exc_type, match=match) as info:
            transaction.commit()
    finally:
        transaction.abort()
    return info.value


def nothing_stored(mongo):
    return mongo.db[HOLDER].count_documents({}) == 0 and \
        mongo.db['persistence_root'].count_documents({}) == 0


# -- native values ------------------------------------------------------------

def test_native_values_are_stored_as_themselves(mongo):
    oid = bson.ObjectId()
    ref = bson.DBRef(HOLDER, 1, mongo.db_name)
    values = dict(none=None, yes=True, no=False, num=42, real=1.5,
                  text='Grüße', oid=oid, ref=ref,
                  i64=bson.Int64(7), dec=bson.Decimal128('1.10'))
    doc, loaded = roundtrip(mongo, **values)
    for name, value in values.items():
        assert doc[name] == value
        assert type(doc[name]) is type(value)
    # A DBRef loads as (a ghost of) the object it points to.
    assert isinstance(loaded.ref, sm.Holder)
    assert loaded.ref._p_oid == ref
    del values['ref']
    for name, value in values.items():
        assert getattr(loaded, name) == value
        assert type(getattr(loaded, name)) is type(value)


@pytest.mark.parametrize('value', [(1 << 63) - 1, -(1 << 63)])
def test_ints_at_the_64_bit_edges_round_trip(mongo, value):
    doc, loaded = roundtrip(mongo, num=value)
    assert doc['num'] == value
    assert loaded.num == value


@pytest.mark.parametrize('value', [1 << 63, -(1 << 63) - 1, 10 ** 30])
def test_ints_beyond_64_bits_are_refused_naming_the_attribute(mongo, value):
    dm = mongo.make_datamanager()
    dm.root['obj'] = sm.Holder(numbers=[1, {'deep': value}])
    err = commit_fails(interfaces.SerializationError)
    message = str(err)
    assert 'numbers[1].deep' in message
    assert str(value) in message
    assert '64 bits' in message
    assert nothing_stored(mongo)


def test_naive_datetime_is_a_bson_date_with_milliseconds(mongo):
    when = datetime.datetime(2020, 1, 2, 3, 4, 5, 123456)
    doc, loaded = roundtrip(mongo, when=when)
    # Native BSON date: microseconds truncated to milliseconds.
    assert type(doc['when']) is datetime.datetime
    assert doc['when'] == datetime.datetime(2020, 1, 2, 3, 4, 5, 123000)
    assert loaded.when == datetime.datetime(2020, 1, 2, 3, 4, 5, 123000)
    assert loaded.when.microsecond == 123000
    assert loaded.when.tzinfo is None
    # ... and queryable as a date.
    assert mongo.db[HOLDER].count_documents(
        {'when': {'$gt': datetime.datetime(2020, 1, 2),
                  '$lt': datetime.datetime(2020, 1, 3)}}) == 1


@pytest.mark.parametrize('tz, zone', [
    (datetime.timezone(datetime.timedelta(hours=5, minutes=30)), None),
    (datetime.timezone(-datetime.timedelta(hours=3), 'BRT'), None),
    (UTC, None),
    (zoneinfo.ZoneInfo('Europe/Berlin'), 'Europe/Berlin'),
    (zoneinfo.ZoneInfo('America/New_York'), 'America/New_York'),
], ids=['plus0530', 'minus3-named', 'utc', 'berlin', 'new-york'])
def test_aware_datetime_round_trips_with_offset_and_microseconds(
        mongo, tz, zone):
    when = datetime.datetime(2021, 6, 1, 12, 30, 15, 123456, tzinfo=tz)
    doc, loaded = roundtrip(mongo, when=when)
    utc = when.astimezone(UTC).replace(tzinfo=None)
    expected = {'_py_aware_datetime': utc.replace(microsecond=123000),
                'local': datetime.datetime(2021, 6, 1, 12, 30, 15, 123000),
                'microsecond': 123456,
                'utcoffset': when.utcoffset().total_seconds()}
    if zone is not None:
        expected['zone'] = zone
    assert doc['when'] == expected
    assert loaded.when == when
    assert loaded.when.utcoffset() == when.utcoffset()
    assert loaded.when.microsecond == 123456
    assert loaded.when.replace(tzinfo=None) == when.replace(tzinfo=None)
    if zone is not None:
        assert loaded.when.tzinfo == zoneinfo.ZoneInfo(zone)
    # The stored instant is queryable.
    assert mongo.db[HOLDER].count_documents({'when._py_aware_datetime': {
        '$gte': utc - datetime.timedelta(seconds=1),
        '$lte': utc + datetime.timedelta(seconds=1)}}) == 1


def test_aware_datetime_in_an_ambiguous_hour_keeps_its_offset(mongo):
    berlin = zoneinfo.ZoneInfo('Europe/Berlin')
    # 02:30 happens twice on 2021-10-31 in Berlin: fold=1 is the CET one.
    when = datetime.datetime(2021, 10, 31, 2, 30, tzinfo=berlin, fold=1)
    assert when.utcoffset() == datetime.timedelta(hours=1)
    doc, loaded = roundtrip(mongo, when=when)
    assert doc['when']['utcoffset'] == 3600.0
    assert loaded.when.utcoffset() == datetime.timedelta(hours=1)
    assert loaded.when.fold == 1
    assert loaded.when.astimezone(UTC) == when.astimezone(UTC)


def test_aware_datetime_out_of_range_is_a_serialization_error(mongo):
    plus_one = datetime.timezone(datetime.timedelta(hours=1))
    dm = mongo.make_datamanager()
    # Its UTC instant is before year 1: no datetime can hold it.
    dm.root['obj'] = sm.Holder(
        when=datetime.datetime(1, 1, 1, tzinfo=plus_one))
    err = commit_fails(interfaces.SerializationError)
    assert 'when' in str(err)
    assert nothing_stored(mongo)


def test_bytes_are_stored_as_binary(mongo):
    data = bytes(range(256))
    doc, loaded = roundtrip(mongo, data=data)
    assert doc['data'] == data
    assert type(doc['data']) is bytes
    assert loaded.data == data
    assert type(loaded.data) is bytes


def test_tuples_come_back_as_lists(mongo):
    doc, loaded = roundtrip(mongo, pair=(1, ('a', 2)))
    assert doc['pair'] == [1, ['a', 2]]
    assert isinstance(loaded.pair, serialize.PersistentList)
    assert loaded.pair == [1, ['a', 2]]
    assert isinstance(loaded.pair[1], serialize.PersistentList)


# -- dicts --------------------------------------------------------------------

def test_dict_with_plain_str_keys_is_a_sub_document(mongo):
    doc, loaded = roundtrip(mongo, d={'a': 1, 'b': {'c': [2]}})
    assert doc['d'] == {'a': 1, 'b': {'c': [2]}}
    assert loaded.d == {'a': 1, 'b': {'c': [2]}}


@pytest.mark.parametrize('key, stored_key', [
    (1, 1),
    (1.5, 1.5),
    (None, None),
    (('a', 2), ['a', 2]),
    (('a', ('b', 3)), ['a', ['b', 3]]),
    (b'raw', b'raw'),
    (datetime.date(1980, 1, 25),
     {'_py_factory': 'datetime.date',
      '_py_factory_args': [b'\x07\xbc\x01\x19']}),
    (frozenset([1]),
     {'_py_factory': 'builtins.frozenset', '_py_factory_args': [[1]]}),
    ('a.b', 'a.b'),
    ('$set', '$set'),
    ('a$b', 'a$b'),
    ('nul\x00key', 'nul\x00key'),
    ('_py_type', '_py_type'),
    ('_py_factory', '_py_factory'),
    ('_py_persistent_type', '_py_persistent_type'),
    ('_py_aware_datetime', '_py_aware_datetime'),
    ('dict_data', 'dict_data'),
    ('_id', '_id'),
], ids=repr)
def test_dict_with_special_key_is_stored_as_dict_data(mongo, key, stored_key):
    doc, loaded = roundtrip(mongo, d={key: 'value'})
    assert doc['d'] == {'dict_data': [[stored_key, 'value']]}
    assert isinstance(loaded.d, serialize.PersistentDict)
    assert loaded.d == {key: 'value'}
    (loaded_key,) = loaded.d.keys()
    assert type(loaded_key) is type(key)
    assert loaded_key == key


def test_dict_data_keeps_int_and_str_keys_apart(mongo):
    doc, loaded = roundtrip(mongo, d={1: 'int', '1': 'str', 'a.b': 'dot'})
    assert doc['d'] == {'dict_data': [[1, 'int'], ['1', 'str'],
                                      ['a.b', 'dot']]}
    assert loaded.d == {1: 'int', '1': 'str', 'a.b': 'dot'}


def test_dict_data_values_are_converted_too(mongo):
    when = datetime.date(2001, 2, 3)
    doc, loaded = roundtrip(mongo, d={1: {'inner': (when, Phone('+1', 2, 3))}})
    assert doc['d']['dict_data'][0][1]['inner'][1]['_py_type'] == \
        'tests.models.Phone'
    assert loaded.d[1]['inner'] == [when, Phone('+1', 2, 3)]


# -- non-persistent objects ---------------------------------------------------

def test_plain_object_is_stored_with_py_type(mongo):
    doc, loaded = roundtrip(mongo, phone=Phone('+1', '978', '394-5124'))
    assert doc['phone'] == {'_py_type': 'tests.models.Phone', 'country': '+1',
                            'area': '978', 'number': '394-5124'}
    assert type(loaded.phone) is Phone
    assert loaded.phone == Phone('+1', '978', '394-5124')


def _dict_sub():
    value = sm.DictSub(a=1, b=[2])
    value.extra = 'x'
    return value


@pytest.mark.parametrize('value, stored', [
    (datetime.date(1980, 1, 25),
     {'_py_factory': 'datetime.date',
      '_py_factory_args': [b'\x07\xbc\x01\x19']}),
    (decimal.Decimal('3.14'),
     {'_py_factory': 'decimal.Decimal', '_py_factory_args': ['3.14']}),
    ({1, 2, 3},
     {'_py_factory': 'builtins.set', '_py_factory_args': [[1, 2, 3]]}),
    (_dict_sub(),
     {'_py_factory': 'copyreg._reconstructor',
      '_py_factory_args': [
          {'_py_type': 'type', 'path': 'tests.serialize_models.DictSub'},
          {'_py_type': 'type', 'path': 'builtins.dict'},
          {'a': 1, 'b': [2]}],
      'extra': 'x'}),
    (collections.OrderedDict([('b', 1), ('a', 2)]),
     {'_py_factory': 'collections.OrderedDict', '_py_factory_args': [],
      '_py_dict_items': [['b', 1], ['a', 2]]}),
    (sm.Color.GREEN,
     {'_py_factory': 'tests.serialize_models.Color',
      '_py_factory_args': [2]}),
], ids=['date', 'Decimal', 'set', 'dict-subclass', 'OrderedDict', 'enum'])
def test_py_factory_form(mongo, value, stored):
    doc, loaded = roundtrip(mongo, value=value)
    assert doc['value'] == stored
    assert type(loaded.value) is type(value)
    assert loaded.value == value
    if isinstance(value, dict):
        assert list(loaded.value.items()) == list(value.items())


def test_enum_member_loads_as_the_member_itself(mongo):
    doc, loaded = roundtrip(mongo, color=sm.Color.RED)
    assert loaded.color is sm.Color.RED


@pytest.mark.parametrize('value', [
    datetime.time(12, 30, 1, 5), datetime.timedelta(days=2, seconds=3),
    fractions.Fraction(1, 3), uuid.UUID(int=12345), complex(1, 2),
    frozenset({'a', 'b'}), collections.deque([1, 2]),
    collections.Counter('abca'),
], ids=repr)
def test_other_plain_data_types_round_trip(mongo, value):
    doc, loaded = roundtrip(mongo, value=value)
    assert type(loaded.value) is type(value)
    assert loaded.value == value


@pytest.mark.parametrize('value, path', [
    (sm.CONSTANT, 'tests.serialize_models.CONSTANT'),
    (sm.COPYREG_CONSTANT, 'tests.serialize_models.COPYREG_CONSTANT'),
    (interfaces.IObjectWriter, 'zmongo.interfaces.IObjectWriter'),
], ids=['reduce', 'copyreg', 'interface'])
def test_module_constant_is_stored_by_name(mongo, value, path):
    doc, loaded = roundtrip(mongo, value=value)
    assert doc['value'] == {'_py_constant': path}
    assert loaded.value is value


@pytest.mark.parametrize('value, path', [
    (Person, 'tests.models.Person'),
    (sm.Outer.Inner, 'tests.serialize_models.Outer.Inner'),
    (str, 'builtins.str'),
    (len, 'builtins.len'),
    (sm.module_function, 'tests.serialize_models.module_function'),
], ids=['persistent-class', 'nested-class', 'builtin-class',
        'builtin-function', 'function'])
def test_classes_and_functions_are_stored_by_path(mongo, value, path):
    doc, loaded = roundtrip(mongo, value=value)
    assert doc['value'] == {'_py_type': 'type', 'path': path}
    assert loaded.value is value


def _local_function():
    def local_function():
        pass
    return local_function


@pytest.mark.parametrize('value, why', [
    (_local_function(), 'not importable'),
    (lambda: None, 'not importable'),
    # A method of a builtin object has no importable name at all.
    ([].append, 'could never be loaded'),
], ids=['local-function', 'lambda', 'builtin-method'])
def test_function_without_an_importable_name_is_refused(mongo, value, why):
    dm = mongo.make_datamanager()
    dm.root['obj'] = sm.Holder(func=value)
    err = commit_fails(interfaces.SerializationError)
    assert why in str(err)
    assert 'attribute func' in str(err)
    assert nothing_stored(mongo)


# -- cycles -------------------------------------------------------------------

def test_circular_non_persistent_references_are_refused(mongo):
    top, foo, bar = Top(), Foo(), Bar()
    top.foo = foo
    foo.bar = bar
    bar.foo = foo
    dm = mongo.make_datamanager()
    dm.root['top'] = top
    err = commit_fails(interfaces.CircularReferenceError)
    assert 'foo.bar.foo' in str(err)
    assert mongo.db['tests.models.Top'].count_documents({}) == 0


def _self_list():
    items = [1]
    items.append(items)
    return items


def _self_dict():
    data = {'a': 1}
    data['self'] = [data]
    return data


def _object_in_own_list():
    plain = sm.Plain()
    plain.children = [plain]
    return plain


@pytest.mark.parametrize('make', [_self_list, _self_dict, _object_in_own_list],
                         ids=['list', 'dict', 'object-in-list'])
def test_circular_containers_are_refused(mongo, make):
    dm = mongo.make_datamanager()
    dm.root['obj'] = sm.Holder(value=make())
    commit_fails(interfaces.CircularReferenceError)
    assert nothing_stored(mongo)


def test_shared_non_cyclic_objects_are_not_circular(mongo):
    phone = Phone('+1', '978', '394-5124')
    items = [1, 2]
    mapping = {'k': 'v'}
    doc, loaded = roundtrip(mongo, home=phone, work=phone,
                            both=[phone, phone], a=items, b=items,
                            nested=[items, items], m1=mapping,
                            m2={'again': mapping})
    assert doc['home'] == doc['work'] == doc['both'][0] == doc['both'][1]
    assert doc['nested'] == [[1, 2], [1, 2]]
    assert loaded.home == loaded.work == phone
    assert loaded.both == [phone, phone]
    assert loaded.a == loaded.b == [1, 2]
    assert loaded.m2 == {'again': {'k': 'v'}}


def test_circular_references_between_new_persistent_objects(mongo):
    top, foo, bar = Top(), PFoo(), PBar()
    top.foo = foo
    foo.bar = bar
    bar.foo = foo
    store(mongo, top, 'ptop')
    assert raw(mongo, top) == {'_id': top._p_oid.id, 'foo': foo._p_oid}
    assert raw(mongo, foo) == {'_id': foo._p_oid.id, 'bar': bar._p_oid}
    assert raw(mongo, bar) == {'_id': bar._p_oid.id, 'foo': foo._p_oid}
    assert foo._p_oid.collection == 'tests.models.PFoo'
    transaction.abort()
    loaded = load(mongo, 'ptop')
    assert type(loaded.foo) is PFoo
    assert type(loaded.foo.bar) is PBar
    assert loaded.foo.bar.foo is loaded.foo


# -- persistent sub-objects ---------------------------------------------------

def test_sub_object_is_stored_inside_the_parent_document(mongo):
    person = Person('Stephan')
    person.car = Car('2005', 'Ford', 'Explorer')
    store(mongo, person)
    assert raw(mongo, person)['car'] == {
        '_py_persistent_type': 'tests.models.Car',
        'year': '2005', 'make': 'Ford', 'model': 'Explorer'}
    assert 'tests.models.Car' not in mongo.db.list_collection_names()
    transaction.abort()
    car = load(mongo).car
    assert type(car) is Car
    assert (car.year, car.make, car.model) == ('2005', 'Ford', 'Explorer')


def test_changes_of_a_sub_object_are_saved(datamanager, mongo):
    person = Person('Stephan')
    person.car = Car('2005', 'Ford', 'Explorer')
    datamanager.root['p'] = person
    transaction.commit()
    dm2 = mongo.make_datamanager(transactions=datamanager.uses_transactions)
    loaded = dm2.root['p']
    loaded.car.year = '2004'
    transaction.commit()
    doc = raw(mongo, person)
    assert doc['car']['year'] == '2004'
    assert doc['car']['_py_persistent_type'] == 'tests.models.Car'
    assert 'tests.models.Car' not in mongo.db.list_collection_names()


def test_sub_object_as_instance_attribute(datamanager, mongo):
    note = sm.Note('hello')
    note._p_mongo_sub_object = True
    datamanager.root['obj'] = sm.Holder(note=note)
    transaction.commit()
    doc = mongo.db[HOLDER].find_one()
    assert doc['note'] == {
        '_py_persistent_type': 'tests.serialize_models.Note',
        'text': 'hello'}
    assert 'tests.serialize_models.Note' not in \
        mongo.db.list_collection_names()
    dm2 = mongo.make_datamanager(transactions=datamanager.uses_transactions)
    loaded = dm2.root['obj']
    assert type(loaded.note) is sm.Note
    loaded.note.text = 'changed'
    transaction.commit()
    assert mongo.db[HOLDER].find_one()['note']['text'] == 'changed'


# -- PersistentDict / PersistentList ------------------------------------------

def test_loaded_dicts_and_lists_are_persistent_types(mongo):
    doc, loaded = roundtrip(mongo, d={'a': {'b': 1}}, items=[1, [2]],
                            phone=sm.Plain(tags=['x'], info={'y': 1}))
    assert type(loaded.d) is serialize.PersistentDict
    assert type(loaded.d['a']) is serialize.PersistentDict
    assert type(loaded.items) is serialize.PersistentList
    assert type(loaded.items[1]) is serialize.PersistentList
    assert type(loaded.phone.tags) is serialize.PersistentList
    assert type(loaded.phone.info) is serialize.PersistentDict


def test_in_place_changes_of_loaded_dicts_and_lists_are_saved(
        datamanager, mongo):
    datamanager.root['obj'] = sm.Holder(
        d={'a': {'b': 1}}, items=[1, [2]], plain=sm.Plain(tags=['x']))
    transaction.commit()
    dm2 = mongo.make_datamanager(transactions=datamanager.uses_transactions)
    loaded = dm2.root['obj']
    loaded.d['a']['c'] = 2
    loaded.d['new'] = 'n'
    loaded.items[1].append(3)
    loaded.items.append(4)
    loaded.plain.tags.append('y')
    transaction.commit()
    doc = mongo.db[HOLDER].find_one()
    assert doc['d'] == {'a': {'b': 1, 'c': 2}, 'new': 'n'}
    assert doc['items'] == [1, [2, 3], 4]
    assert doc['plain']['tags'] == ['x', 'y']


def test_loading_never_marks_anything_changed(datamanager, mongo):
    person = Person('Stephan', phone=Phone('+1', '978', '394-5124'),
                    friends={'roy': Person('Roy')}, visited=('DE', 'US'),
                    birthday=datetime.date(1980, 1, 25))
    person.car = Car('2005', 'Ford', 'Explorer')
    person.keyed = {1: ['one'], ('t', 2): {'x': [1]}}
    person.when = datetime.datetime(2021, 1, 1, tzinfo=UTC)
    datamanager.root['p'] = person
    transaction.commit()
    dm2 = mongo.make_datamanager(transactions=datamanager.uses_transactions)
    mongo.commands.reset()
    loaded = dm2.root['p']
    assert loaded.name == 'Stephan'
    assert loaded.friends['roy'].name == 'Roy'
    assert loaded.keyed[('t', 2)]['x'] == [1]
    assert loaded.car.make == 'Ford'
    for obj in (loaded, loaded.friends['roy'], loaded.car, loaded.friends,
                loaded.visited, loaded.keyed, loaded.keyed[1]):
        assert obj._p_changed is False
    transaction.commit()
    assert writes(mongo.commands) == []


def test_persistent_dict_compares_equal_to_a_plain_dict():
    pdict = serialize.PersistentDict({'a': 1})
    assert pdict == {'a': 1}
    assert {'a': 1} == pdict
    assert pdict != {'a': 2}
    assert not (pdict != {'a': 1})
    assert pdict == serialize.PersistentDict(a=1)
    assert serialize.PersistentDict() == {}


# -- custom serializers -------------------------------------------------------

@pytest.mark.parametrize('method, arg', [
    ('can_read', {}), ('read', {}), ('can_write', object()),
    ('write', object())])
def test_object_serializer_methods_must_be_overridden(method, arg):
    with pytest.raises(NotImplementedError):
        getattr(serialize.ObjectSerializer(), method)(arg)


BIRTHDAY = datetime.date(1980, 1, 25)
BIRTHDAY_BY_SERIALIZER = {'_py_type': 'datetime.date', 'ordinal': 722839}


def test_serializer_given_to_the_data_manager(mongo):
    serializers = [sm.DateSerializer()]
    obj = store(mongo, sm.Holder(birthday=BIRTHDAY), serializers=serializers)
    assert raw(mongo, obj)['birthday'] == BIRTHDAY_BY_SERIALIZER
    transaction.abort()
    assert load(mongo, serializers=serializers).birthday == BIRTHDAY
    # Other data managers do not use it.
    obj2 = store(mongo, sm.Holder(birthday=BIRTHDAY), name='other')
    assert raw(mongo, obj2)['birthday']['_py_factory'] == 'datetime.date'


def test_serializer_in_the_global_registry(mongo):
    saved = list(serialize.SERIALIZERS)
    serialize.SERIALIZERS.append(sm.DateSerializer())
    try:
        obj = store(mongo, sm.Holder(birthday=BIRTHDAY))
        assert raw(mongo, obj)['birthday'] == BIRTHDAY_BY_SERIALIZER
        transaction.abort()
        assert load(mongo).birthday == BIRTHDAY
    finally:
        serialize.SERIALIZERS[:] = saved


def test_empty_serializers_option_means_no_custom_serializers(mongo):
    saved = list(serialize.SERIALIZERS)
    serialize.SERIALIZERS.append(sm.DateSerializer())
    try:
        obj = store(mongo, sm.Holder(birthday=BIRTHDAY), serializers=[])
        assert raw(mongo, obj)['birthday'] == {
            '_py_factory': 'datetime.date',
            '_py_factory_args': [b'\x07\xbc\x01\x19']}
    finally:
        serialize.SERIALIZERS[:] = saved


# -- what cannot be stored ----------------------------------------------------

def test_persistent_class_defined_in_a_function_is_refused(mongo):
    class Local(persistent.Persistent):
        pass

    dm = mongo.make_datamanager()
    with pytest.raises(interfaces.SerializationError,
                       match=r'<locals>.*not importable'):
        dm.root['local'] = Local()
    transaction.abort()
    assert nothing_stored(mongo)


def test_plain_class_defined_in_a_function_is_refused(mongo):
    class LocalPlain:
        pass

    dm = mongo.make_datamanager()
    dm.root['obj'] = sm.Holder(things={'x': [LocalPlain()]})
    err = commit_fails(interfaces.SerializationError)
    assert 'things.x[0]' in str(err)
    assert 'LocalPlain' in str(err)
    assert 'not importable' in str(err)
    assert nothing_stored(mongo)


@pytest.mark.parametrize('make, type_name, why', [
    (lambda: (i for i in ()), 'builtins.generator', 'cannot be reduced'),
    # Reduces (protocol 0) to a class its dotted name does not find.
    (threading.Lock, '_thread.lock', 'could never be loaded'),
], ids=['generator', 'lock'])
def test_object_that_cannot_be_reduced_is_refused(mongo, make, type_name,
                                                  why):
    dm = mongo.make_datamanager()
    dm.root['obj'] = sm.Holder(things={'x': [make()]})
    err = commit_fails(interfaces.SerializationError)
    message = str(err)
    assert 'things.x[0]' in message
    assert type_name in message
    assert why in message
    assert nothing_stored(mongo)


@pytest.mark.parametrize('make, path, remedy', [
    (lambda: collections.defaultdict(list, a=[1]), 'collections.defaultdict',
     'register_factory(collections.defaultdict)'),
    (lambda: re.compile('a+'), 're._compile', 'register_factory(re._compile)'),
    (lambda: pathlib.PurePosixPath('/tmp'), 'pathlib.PurePosixPath',
     'register_factory(pathlib.PurePosixPath)'),
    (threading.Event, 'threading.Event', 'register_type(threading.Event)'),
], ids=['defaultdict', 'regex', 'path', 'stdlib-object'])
def test_value_the_loader_would_refuse_is_not_written(mongo, make, path,
                                                      remedy):
    dm = mongo.make_datamanager()
    dm.root['obj'] = sm.Holder(things=[make()])
    err = commit_fails(interfaces.SerializationError)
    message = str(err)
    assert 'things[0]' in message
    assert path in message
    assert remedy in message
    assert nothing_stored(mongo)


def test_member_of_a_stdlib_enum_is_written_and_loaded(mongo):
    # Enum members are looked up by value, never made: always loadable.
    obj = store(mongo, sm.Holder(value=http.HTTPStatus.OK))
    assert raw(mongo, obj)['value'] == {
        '_py_factory': 'http.HTTPStatus', '_py_factory_args': [200]}
    transaction.abort()
    assert load(mongo).value is http.HTTPStatus.OK


def test_value_of_a_registered_factory_is_written_and_loaded(mongo):
    value = collections.defaultdict(list, a=[1])
    options = {'factories': [collections.defaultdict]}
    obj = store(mongo, sm.Holder(value=value), **options)
    assert raw(mongo, obj)['value'] == {
        '_py_factory': 'collections.defaultdict',
        '_py_factory_args': [{'_py_type': 'type', 'path': 'builtins.list'}],
        '_py_dict_items': [['a', [1]]]}
    transaction.abort()
    loaded = load(mongo, **options).value
    assert type(loaded) is collections.defaultdict
    assert loaded.default_factory is list
    assert loaded == {'a': [1]}


# -- names and collections ----------------------------------------------------

@pytest.mark.parametrize('obj, name', [
    (Person, 'tests.models.Person'),
    (sm.Outer.Inner, 'tests.serialize_models.Outer.Inner'),
    (sm.module_function, 'tests.serialize_models.module_function'),
    (serialize.ObjectWriter, 'zmongo.serialize.ObjectWriter'),
    (len, 'builtins.len'),
    (dict, 'builtins.dict'),
])
def test_get_dotted_name(obj, name):
    assert serialize.get_dotted_name(obj) == name


def test_get_collection_name(mongo):
    dm = mongo.make_datamanager()
    writer = serialize.ObjectWriter(dm)
    assert writer.get_collection_name(Person('x')) == \
        (mongo.db_name, 'tests.models.Person')
    assert writer.get_collection_name(Address('Maynard', '01754')) == \
        (mongo.db_name, 'address')
    # A collection named by _p_mongo_collection gets its name-map entry.
    assert mongo.db['persistence_name_map'].count_documents(
        {'collection': 'address', 'path': 'tests.models.Address'}) == 1
    # Without a data manager: no default database, no name map.
    writer = serialize.ObjectWriter(None)
    assert writer.get_collection_name(sm.Other()) == \
        ('zmongo_other_db', 'Other')
    assert writer.get_collection_name(sm.Holder()) == \
        (None, 'tests.serialize_models.Holder')


def test_get_collection_name_of_a_stored_object_is_its_oids(mongo):
    obj = store(mongo, sm.Holder())
    writer = serialize.ObjectWriter(mongo.make_datamanager())
    assert writer.get_collection_name(obj) == (mongo.db_name, HOLDER)
    obj._p_oid = bson.DBRef('elsewhere', obj._p_oid.id, 'somedb')
    assert writer.get_collection_name(obj) == ('somedb', 'elsewhere')


def test_collection_sharing(mongo):
    person = Person('Stephan', address=Address('Maynard', '01754'))
    person.address2 = ExtendedAddress('Tettau', '01945', 'Germany')
    store(mongo, person)
    docs = {doc['city']: doc for doc in mongo.db['address'].find()}
    assert docs['Maynard'] == {'_id': person.address._p_oid.id,
                               'city': 'Maynard', 'zip': '01754'}
    assert docs['Tettau'] == {
        '_id': person.address2._p_oid.id, 'city': 'Tettau', 'zip': '01945',
        'country': 'Germany',
        '_py_persistent_type': 'tests.models.ExtendedAddress'}
    assert mongo.db.list_collection_names().count('address') == 1
    transaction.abort()
    dm = mongo.make_datamanager()
    loaded = dm.root['obj']
    assert type(loaded.address) is Address
    assert type(loaded.address2) is ExtendedAddress
    assert loaded.address2.country == 'Germany'
    transaction.abort()
    dm = mongo.make_datamanager()
    found = {obj.city: type(obj) for obj in
             dm.get_collection(mongo.db_name, 'address').find_objects()}
    assert found == {'Maynard': Address, 'Tettau': ExtendedAddress}


def test_name_map_documents(mongo):
    person = Person('Stephan', address=Address('Maynard', '01754'))
    person.address2 = ExtendedAddress('Tettau', '01945', 'Germany')
    store(mongo, person)
    entries = sorted(mongo.db['persistence_name_map'].find(
        {}, {'_id': False}), key=lambda e: e['path'])
    assert entries == [
        {'collection': 'address', 'database': mongo.db_name,
         'path': 'tests.models.Address', 'doc_has_type': False},
        {'collection': 'address', 'database': mongo.db_name,
         'path': 'tests.models.ExtendedAddress', 'doc_has_type': True},
    ]


def test_store_type_as_class_attribute(mongo):
    obj = store(mongo, sm.StoreType(1))
    assert raw(mongo, obj) == {
        '_id': obj._p_oid.id, 'value': 1,
        '_py_persistent_type': 'tests.serialize_models.StoreType'}
    assert mongo.db['persistence_name_map'].find_one(
        {'collection': 'storetype'}, {'_id': False}) == {
        'collection': 'storetype', 'database': mongo.db_name,
        'path': 'tests.serialize_models.StoreType', 'doc_has_type': True}
    transaction.abort()
    loaded = load(mongo)
    assert type(loaded) is sm.StoreType
    assert loaded.value == 1


def test_store_type_as_instance_attribute(mongo):
    typed, untyped = sm.Shared('typed'), sm.Shared('untyped')
    typed._p_mongo_store_type = True
    store(mongo, sm.Holder(items=[typed, untyped]))
    assert raw(mongo, typed) == {
        '_id': typed._p_oid.id, 'value': 'typed',
        '_py_persistent_type': 'tests.serialize_models.Shared'}
    assert raw(mongo, untyped) == {'_id': untyped._p_oid.id,
                                   'value': 'untyped'}
    transaction.abort()
    items = load(mongo).items
    assert [type(i) for i in items] == [sm.Shared, sm.Shared]
    assert [i.value for i in items] == ['typed', 'untyped']
