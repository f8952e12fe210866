"""Documents exactly as mongopersist 0.8 (Python 2, pymongo 2) wrote them
load unchanged.

The documents are written here by hand, field for field in the format its
README shows, and inserted with plain pymongo; they are then loaded through
a data manager on the real server.
"""
import collections
import datetime
import decimal

import bson
import pytest
import transaction

from tests import serialize_models as sm
from tests.models import Address
from tests.models import Car
from tests.models import ExtendedAddress
from tests.models import Person
from tests.models import Phone
from zmongo import conflict
from zmongo import serialize

PERSON = 'tests.models.Person'
HOLDER = 'tests.serialize_models.Holder'
WRITES = frozenset({'insert', 'update', 'delete', 'findAndModify'})
TODAY = datetime.datetime(2011, 9, 24, 11, 29, 8, 930000)


def typ(path):
    return {'_py_type': 'type', 'path': path}


DICT_SUB = sm.DictSub(a=1)
DICT_SUB.extra = 'x'


class MongopersistData:
    """The README's database: Stephan, his friend Roy, two addresses in a
    shared collection, the name map and the root."""

    def __init__(self, mongo):
        db_name = mongo.db_name
        self.db = mongo.db
        self.stephan_id = bson.ObjectId('4e7df744e138230a3e000000')
        self.roy_id = bson.ObjectId('4e7df745e138230a3e000004')
        self.address_id = bson.ObjectId('4e7df744e138230a3e000003')
        self.address2_id = bson.ObjectId('4e7df744e138230a3e000005')
        self.stephan_ref = bson.DBRef(PERSON, self.stephan_id, db_name)
        self.roy_ref = bson.DBRef(PERSON, self.roy_id, db_name)
        self.docs = {
            PERSON: [{
                '_id': self.stephan_id,
                'address': bson.DBRef('address', self.address_id, db_name),
                'address2': bson.DBRef('address', self.address2_id,
                                       db_name),
                'birthday': {'_py_factory': 'datetime.date',
                             '_py_factory_args': [
                                 bson.Binary(b'\x07\xbc\x01\x19', 0)]},
                'car': {'_py_persistent_type': 'tests.models.Car',
                        'make': 'Ford', 'model': 'Explorer',
                        'year': '2005'},
                'friends': {'roy': self.roy_ref},
                'name': 'Stephan Richter',
                'phone': {'_py_type': 'tests.models.Phone', 'area': '978',
                          'country': '+1', 'number': '394-5124'},
                'today': TODAY,
                'visited': ['Germany', 'USA'],
            }, {
                '_id': self.roy_id, 'address': None, 'birthday': None,
                'friends': {}, 'name': 'Roy Mathew', 'phone': None,
                'today': TODAY, 'visited': [],
            }],
            'address': [{
                '_id': self.address_id, 'city': 'Maynard', 'zip': '01754',
            }, {
                '_id': self.address2_id, 'city': 'Tettau', 'zip': '01945',
                'country': 'Germany',
                '_py_persistent_type': 'tests.models.ExtendedAddress',
            }],
            'persistence_name_map': [{
                '_id': bson.ObjectId('4eb1b5ab37a08e2f06000000'),
                'collection': 'address', 'database': db_name,
                'doc_has_type': False, 'path': 'tests.models.Address',
            }, {
                '_id': bson.ObjectId('4eb1b5ab37a08e2f06000001'),
                'collection': 'address', 'database': db_name,
                'doc_has_type': True, 'path': 'tests.models.ExtendedAddress',
            }],
            'persistence_root': [{
                '_id': bson.ObjectId('4e7ddf12e138237403000009'),
                'name': 'stephan', 'ref': self.stephan_ref,
            }],
        }
        for coll_name, docs in self.docs.items():
            self.db[coll_name].insert_many([dict(d) for d in docs])

    def snapshot(self):
        return {name: list(self.db[name].find(sort=[('_id', 1)]))
                for name in sorted(self.db.list_collection_names())}


@pytest.fixture
def data(mongo):
    return MongopersistData(mongo)


def holder_with(mongo, **fields):
    """Insert a Holder document with ``fields``; return its DBRef."""
    oid = bson.ObjectId()
    mongo.db[HOLDER].insert_one(dict(fields, _id=oid))
    return bson.DBRef(HOLDER, oid, mongo.db_name)


# -- the README's objects -----------------------------------------------------

def check_stephan(stephan):
    assert type(stephan) is Person
    assert stephan.name == 'Stephan Richter'
    assert stephan.today == TODAY
    assert stephan.birthday == datetime.date(1980, 1, 25)
    assert type(stephan.birthday) is datetime.date
    assert stephan.phone == Phone('+1', '978', '394-5124')
    assert stephan.visited == ['Germany', 'USA']
    assert type(stephan.visited) is serialize.PersistentList
    assert type(stephan.friends) is serialize.PersistentDict
    assert list(stephan.friends) == ['roy']
    roy = stephan.friends['roy']
    assert type(roy) is Person
    assert roy.name == 'Roy Mathew'
    assert (roy.address, roy.birthday, roy.phone) == (None, None, None)
    assert roy.friends == {} and roy.visited == []
    assert type(stephan.car) is Car
    assert (stephan.car.year, stephan.car.make, stephan.car.model) == \
        ('2005', 'Ford', 'Explorer')
    assert type(stephan.address) is Address
    assert (stephan.address.city, stephan.address.zip) == \
        ('Maynard', '01754')
    assert type(stephan.address2) is ExtendedAddress
    assert (stephan.address2.city, stephan.address2.zip,
            stephan.address2.country) == ('Tettau', '01945', 'Germany')


def test_root_entry_loads(mongo, data):
    dm = mongo.make_datamanager()
    assert list(dm.root) == ['stephan']
    check_stephan(dm.root['stephan'])


def test_load_by_dbref(mongo, data):
    dm = mongo.make_datamanager()
    stephan = dm.load(data.stephan_ref)
    check_stephan(stephan)
    # One object per DBRef within a transaction.
    assert dm.root['stephan'] is stephan
    assert dm.load(data.roy_ref) is stephan.friends['roy']
    assert stephan._p_oid == data.stephan_ref


def test_find_objects(mongo, data):
    dm = mongo.make_datamanager()
    people = {p.name: p for p in
              dm.get_collection(mongo.db_name, PERSON).find_objects()}
    assert sorted(people) == ['Roy Mathew', 'Stephan Richter']
    check_stephan(people['Stephan Richter'])
    assert people['Stephan Richter'].friends['roy'] is people['Roy Mathew']


def test_shared_collection_resolved_by_name_map(mongo, data):
    dm = mongo.make_datamanager()
    found = {a.city: type(a) for a in
             dm.get_collection(mongo.db_name, 'address').find_objects()}
    assert found == {'Maynard': Address, 'Tettau': ExtendedAddress}


def test_new_objects_in_a_shared_collection_keep_the_format(mongo, data):
    dm = mongo.make_datamanager()
    stephan = dm.root['stephan']
    stephan.address = Address('Boston', '02110')
    stephan.address2 = ExtendedAddress('Berlin', '10115', 'Germany')
    transaction.commit()
    boston = mongo.db['address'].find_one({'city': 'Boston'})
    berlin = mongo.db['address'].find_one({'city': 'Berlin'})
    assert boston == {'_id': boston['_id'], 'city': 'Boston',
                      'zip': '02110'}
    assert berlin == {'_id': berlin['_id'], 'city': 'Berlin',
                      'zip': '10115', 'country': 'Germany',
                      '_py_persistent_type': 'tests.models.ExtendedAddress'}
    # mongopersist's name-map entries serve; none is added.
    assert mongo.db['persistence_name_map'].count_documents({}) == 2


def test_loading_changes_nothing_and_commit_writes_nothing(
        datamanager, mongo, data):
    before = data.snapshot()
    mongo.commands.reset()
    stephan = datamanager.root['stephan']
    check_stephan(stephan)
    loaded = [stephan, stephan.friends['roy'], stephan.address,
              stephan.address2, stephan.car, stephan.friends,
              stephan.visited]
    for obj in loaded:
        assert obj._p_changed is False, obj
    transaction.commit()
    assert [n for n in mongo.commands.names if n in WRITES] == []
    assert data.snapshot() == before


def test_rewriting_a_document_keeps_mongopersists_format(mongo, data):
    before = data.snapshot()
    dm = mongo.make_datamanager()
    stephan = dm.root['stephan']
    stephan.name = 'Stephan R.'
    transaction.commit()
    after = data.snapshot()
    stephan_before, roy_before = before[PERSON]
    stephan_after, roy_after = after[PERSON]
    assert stephan_after == dict(stephan_before, name='Stephan R.')
    # Nothing else was written.
    assert roy_after == roy_before
    del before[PERSON], after[PERSON]
    assert after == before


def test_serial_field(mongo, data):
    mongo.db[PERSON].update_one({'_id': data.roy_id},
                                {'$set': {'_py_serial': 3}})
    dm = mongo.make_datamanager(
        conflict_handler_factory=conflict.SimpleSerialConflictHandler)
    roy = dm.load(data.roy_ref)
    assert roy.name == 'Roy Mathew'
    assert roy._p_serial == b'\x00\x00\x00\x00\x00\x00\x00\x03'
    assert '_py_serial' not in roy.__dict__
    roy.name = 'Roy M.'
    transaction.commit()
    doc = mongo.db[PERSON].find_one({'_id': data.roy_id})
    assert doc['_py_serial'] == 4
    assert doc['name'] == 'Roy M.'


# -- single values in Python 2 form -------------------------------------------

PY2_VALUES = [
    ('date-binary',
     {'_py_factory': 'datetime.date',
      '_py_factory_args': [bson.Binary(b'\x07\xbc\x01\x19', 0)]},
     datetime.date(1980, 1, 25)),
    # Python 2 str that happened to be valid UTF-8: stored as a BSON string.
    ('date-latin1-str',
     {'_py_factory': 'datetime.date', '_py_factory_args': ['\x07l\x01\x19']},
     datetime.date(1900, 1, 25)),
    ('time-latin1-str',
     {'_py_factory': 'datetime.time',
      '_py_factory_args': ['\x0c\x1e\x00\x00\x00\x00']},
     datetime.time(12, 30)),
    ('timedelta',
     {'_py_factory': 'datetime.timedelta', '_py_factory_args': [1, 2, 3]},
     datetime.timedelta(1, 2, 3)),
    ('naive-datetime', TODAY, TODAY),
    ('decimal',
     {'_py_factory': 'decimal.Decimal', '_py_factory_args': ['3.14']},
     decimal.Decimal('3.14')),
    ('builtin-set',
     {'_py_factory': '__builtin__.set', '_py_factory_args': [['a', 'b']]},
     {'a', 'b'}),
    ('builtin-frozenset',
     {'_py_factory': '__builtin__.frozenset', '_py_factory_args': [[1, 2]]},
     frozenset([1, 2])),
    ('copy_reg-reconstructor',
     {'_py_factory': 'copy_reg._reconstructor',
      '_py_factory_args': [typ('tests.serialize_models.DictSub'),
                           typ('__builtin__.dict'), {'a': 1}],
      'extra': 'x'},
     DICT_SUB),
    ('class', typ('__builtin__.str'), str),
    ('persistent-class', typ('tests.models.Person'), Person),
    ('constant', {'_py_constant': 'tests.serialize_models.CONSTANT'},
     sm.CONSTANT),
    ('int-keys', {'dict_data': [[1, 'one'], [2, 'two']]},
     {1: 'one', 2: 'two'}),
    ('tuple-keys', {'dict_data': [[['a', 1], 'x'], [['b', ['c', 2]], 'y']]},
     {('a', 1): 'x', ('b', ('c', 2)): 'y'}),
    ('dotted-keys',
     {'dict_data': [['key.with.dots', 1], ['key$with$dollars', 2]]},
     {'key.with.dots': 1, 'key$with$dollars': 2}),
    ('plain-object',
     {'_py_type': 'tests.models.Phone', 'area': '978', 'country': '+1',
      'number': '394-5124'},
     Phone('+1', '978', '394-5124')),
    ('long', bson.Int64(1 << 40), bson.Int64(1 << 40)),
    ('binary-str', bson.Binary(b'\xff\xfe', 0), b'\xff\xfe'),
]


@pytest.mark.parametrize('stored, expected',
                         [case[1:] for case in PY2_VALUES],
                         ids=[case[0] for case in PY2_VALUES])
def test_python2_value_loads(mongo, stored, expected):
    ref = holder_with(mongo, value=stored)
    value = mongo.make_datamanager().load(ref).value
    if isinstance(expected, type) or expected is sm.CONSTANT:
        assert value is expected
        return
    assert value == expected
    if isinstance(expected, sm.DictSub):
        assert type(value) is sm.DictSub
        assert value.extra == 'x'
    elif isinstance(expected, dict):
        assert type(value) is serialize.PersistentDict
        assert [type(k) for k in value] == [type(k) for k in expected]
    else:
        assert type(value) is type(expected)


def test_python2_values_rewritten_in_python3_form_load_equal(mongo):
    fields = {name: stored for name, stored, _ in PY2_VALUES}
    ref = holder_with(mongo, **fields)
    obj = mongo.make_datamanager().load(ref)
    obj._p_activate()
    before = dict(vars(obj))
    obj._p_changed = True
    transaction.commit()
    doc = mongo.db[HOLDER].find_one()
    # Python 2 names are written with their Python 3 names now.
    assert doc['builtin-set']['_py_factory'] == 'builtins.set'
    assert doc['copy_reg-reconstructor']['_py_factory'] == \
        'copyreg._reconstructor'
    assert doc['date-latin1-str']['_py_factory_args'] == [b'\x07l\x01\x19']
    again = mongo.make_datamanager().load(ref)
    again._p_activate()
    again = vars(again)
    assert again == before
    assert len(again) == len(PY2_VALUES)
    assert all(type(again[k]) is type(before[k]) for k in before)


def test_loaded_containers_are_the_tracking_types(mongo):
    ref = holder_with(mongo, tags=['a'], keyed={'dict_data': [[1, ['x']]]},
                      phone={'_py_type': 'tests.models.Phone',
                             'extra': {'k': 'v'}})
    obj = mongo.make_datamanager().load(ref)
    obj.tags.append('b')
    obj.keyed[1].append('y')
    obj.phone.extra['k2'] = 'w'
    transaction.commit()
    doc = mongo.db[HOLDER].find_one()
    assert doc['tags'] == ['a', 'b']
    assert doc['keyed'] == {'dict_data': [[1, ['x', 'y']]]}
    assert doc['phone'] == {'_py_type': 'tests.models.Phone',
                            'extra': {'k': 'v', 'k2': 'w'}}


def test_ordered_dict_from_python2(mongo):
    # Python 2's OrderedDict reduced to (OrderedDict, ([[k, v], ...],)).
    ref = holder_with(mongo, value={
        '_py_factory': 'collections.OrderedDict',
        '_py_factory_args': [[['b', 1], ['a', 2]]]})
    value = mongo.make_datamanager().load(ref).value
    assert type(value) is collections.OrderedDict
    assert list(value.items()) == [('b', 1), ('a', 2)]


def test_serial_field_read_without_a_serial_handler_stays_a_field(mongo):
    """A document written with serials, changed by a data manager that does
    not check them, keeps its plain layout (as mongopersist wrote it)."""
    from tests import models as m
    mongo.db[m.PERSON].insert_one({'_id': 1, '_py_serial': 3, 'name': 'Ada'})
    dm = mongo.make_datamanager()
    person = dm.load(bson.DBRef(m.PERSON, 1, mongo.db_name))
    person.name = 'Ada Lovelace'
    transaction.commit()
    assert mongo.db[m.PERSON].find_one() == \
        {'_id': 1, '_py_serial': 3, 'name': 'Ada Lovelace'}


def test_attribute_named_like_the_document_id_uses_pair_form(mongo):
    from tests import models as m
    dm = mongo.make_datamanager()
    person = m.Person('Ada')
    person._id = 'clash'
    dm.root['ada'] = person
    transaction.commit()
    doc = mongo.db[m.PERSON].find_one()
    assert 'dict_data' in doc and doc['_id'] != 'clash'
    transaction.abort()
    assert dm.root['ada']._id == 'clash'
