"""Loading documents that name code: what the loader refuses, what it calls,
and how it reports documents it cannot load.

Documents are inserted with plain pymongo (as an attacker with write access
to the database, or a buggy writer, would) and loaded through a data manager
on the real server.  Where refusing matters, the test also proves that the
named code did not run.
"""
import bson
import pytest
import transaction

from tests import serialize_models as sm
from zmongo import interfaces
from zmongo import serialize

COLL = 'tests.serialize_models.Holder'
RECORD_CALL = 'tests.serialize_models.record_call'


@pytest.fixture(autouse=True)
def no_calls():
    del sm.CALLS[:]
    yield
    del sm.CALLS[:]


@pytest.fixture
def marker(tmp_path):
    """A file that exists only if a command from a document ran."""
    path = tmp_path / 'pwned'
    yield path
    assert not path.exists(), 'a command named by a document was run'


def insert(mongo, **fields):
    """Insert a Holder document as it is; return its DBRef."""
    oid = fields.pop('_id', None) or bson.ObjectId()
    mongo.db[COLL].insert_one(dict(fields, _id=oid))
    return bson.DBRef(COLL, oid, mongo.db_name)


def load_fails(mongo, ref, exc_type, **options):
    """Loading ``ref`` must fail with ``exc_type``, naming the document."""
    obj = mongo.make_datamanager(**options).load(ref)
    with pytest.raises(exc_type) as info:
        obj._p_activate()
    message = str(info.value)
    assert repr(ref.id) in message
    assert '%s.%s' % (mongo.db_name, COLL) in message
    return info.value


def load(mongo, ref, **options):
    obj = mongo.make_datamanager(**options).load(ref)
    obj._p_activate()
    return obj


def typ(path):
    return {'_py_type': 'type', 'path': path}


# -- refused: code that is not a class or a registered factory ----------------

def dangerous_values(marker):
    touch = 'touch %s' % marker
    python = "__import__('pathlib').Path(%r).touch()" % str(marker)
    return {
        'os.system': {'_py_factory': 'os.system',
                      '_py_factory_args': [touch]},
        'posix.system': {'_py_factory': 'posix.system',
                         '_py_factory_args': [touch]},
        'builtins.eval': {'_py_factory': 'builtins.eval',
                          '_py_factory_args': [python]},
        'python2-eval': {'_py_factory': '__builtin__.eval',
                         '_py_factory_args': [python]},
        'builtins.exec': {'_py_factory': 'builtins.exec',
                          '_py_factory_args': [python]},
        'subprocess.call': {'_py_factory': 'subprocess.call',
                            '_py_factory_args': [['touch', str(marker)]]},
        'subprocess.Popen': {'_py_factory': 'subprocess.Popen',
                             '_py_factory_args': [['touch', str(marker)]]},
        'py_type-os.system': {'_py_type': 'os.system'},
        'py_type-Popen': {'_py_type': 'subprocess.Popen',
                          'args': ['touch', str(marker)]},
        'sub-object-Popen': {'_py_persistent_type': 'subprocess.Popen'},
        # The pickle helpers, steered at what they must not build.
        'reconstructor-Popen-base': {
            '_py_factory': 'copyreg._reconstructor',
            '_py_factory_args': [typ('tests.serialize_models.Plain'),
                                 typ('subprocess.Popen'),
                                 ['touch', str(marker)]]},
        'reconstructor-os.system': {
            '_py_factory': 'copy_reg._reconstructor',
            '_py_factory_args': [typ('os.system'), typ('builtins.object'),
                                 touch]},
        'newobj-Popen': {
            '_py_factory': 'copyreg.__newobj__',
            '_py_factory_args': [typ('subprocess.Popen'),
                                 ['touch', str(marker)]]},
        # The unregistered application function leaves a trace if called.
        'record_call': {'_py_factory': RECORD_CALL,
                        '_py_factory_args': ['called']},
        # Hidden deeper in the document.
        'in-list': [1, {'_py_factory': 'os.system',
                        '_py_factory_args': [touch]}],
        'in-dict_data-key': {'dict_data': [[
            {'_py_factory': 'builtins.eval', '_py_factory_args': [python]},
            'value']]},
        'in-factory-args': {'_py_factory': 'builtins.set',
                            '_py_factory_args': [[{
                                '_py_factory': 'subprocess.call',
                                '_py_factory_args': [['touch',
                                                      str(marker)]]}]]},
    }


DANGEROUS = list(dangerous_values('marker'))


@pytest.mark.parametrize('case', DANGEROUS)
def test_document_naming_code_is_refused_and_nothing_runs(
        mongo, marker, case):
    value = dangerous_values(marker)[case]
    ref = insert(mongo, name='victim', value=value)
    load_fails(mongo, ref, interfaces.UnsafeDocumentError)
    assert not marker.exists()
    assert sm.CALLS == []


@pytest.mark.parametrize('path', ['os.system', 'subprocess.Popen',
                                  'builtins.dict'])
def test_document_naming_unsafe_persistent_type_is_refused(mongo, path):
    # Its own _py_persistent_type picks the class of the whole document.
    ref = insert(mongo, _py_persistent_type=path, value=1)
    dm = mongo.make_datamanager()
    found = dm.get_collection(mongo.db_name, COLL).find_objects()
    with pytest.raises(interfaces.UnsafeDocumentError) as info:
        next(found)
    assert repr(ref.id) in str(info.value)
    assert COLL in str(info.value)
    assert path in str(info.value)


def test_refused_document_is_left_as_it_was(datamanager, mongo, marker):
    value = dangerous_values(marker)['os.system']
    ref = insert(mongo, name='victim', value=value)
    before = mongo.db[COLL].find_one()
    obj = datamanager.load(ref)
    for _ in range(2):      # a failed load leaves a ghost, not half a state
        with pytest.raises(interfaces.UnsafeDocumentError):
            obj.name
    transaction.commit()
    assert mongo.db[COLL].find_one() == before


# -- allowed: classes and registered factories --------------------------------

def test_trusted_class_is_called_only_once_registered_as_factory(mongo):
    # Trusted (tests/conftest.py): its instances load from _py_type; but
    # calling it is a constructor the document chose.
    ref = insert(mongo, value={'_py_factory': 'tests.serialize_models.Plain',
                               '_py_factory_args': [], 'a': 1})
    err = load_fails(mongo, ref, interfaces.UnsafeDocumentError)
    assert 'register_factory(tests.serialize_models.Plain)' in str(err)
    transaction.abort()
    value = load(mongo, ref, factories=[sm.Plain]).value
    assert value == sm.Plain(a=1)


def test_registered_factory_is_called(mongo):
    ref = insert(mongo, value={'_py_factory': RECORD_CALL,
                               '_py_factory_args': [1, 'two']})
    assert serialize.register_factory(sm.record_call) is sm.record_call
    try:
        value = load(mongo, ref).value
    finally:
        serialize.unregister_factory(sm.record_call)
    assert sm.CALLS == [(1, 'two')]
    assert value == sm.Plain(called_with=[1, 'two'])
    transaction.abort()
    # Unregistered again: refused, and not called.
    load_fails(mongo, ref, interfaces.UnsafeDocumentError)
    assert sm.CALLS == [(1, 'two')]


def test_factory_registered_by_dotted_name(mongo):
    ref = insert(mongo, value={'_py_factory': RECORD_CALL,
                               '_py_factory_args': ['x']})
    assert serialize.register_factory(RECORD_CALL) is sm.record_call
    try:
        load(mongo, ref)
    finally:
        serialize.unregister_factory(RECORD_CALL)
    assert sm.CALLS == [('x',)]
    transaction.abort()
    load_fails(mongo, ref, interfaces.UnsafeDocumentError)
    assert sm.CALLS == [('x',)]


def test_factory_given_to_one_data_manager(mongo):
    ref = insert(mongo, value={'_py_factory': RECORD_CALL,
                               '_py_factory_args': ['dm']})
    value = load(mongo, ref, factories=[sm.record_call]).value
    assert value == sm.Plain(called_with=['dm'])
    assert sm.CALLS == [('dm',)]
    transaction.abort()
    # Another data manager has not registered it.
    load_fails(mongo, ref, interfaces.UnsafeDocumentError)
    assert sm.CALLS == [('dm',)]


def test_register_factory_needs_a_callable():
    with pytest.raises(TypeError):
        serialize.register_factory('tests.serialize_models.CALLS')


# -- documents that cannot be loaded ------------------------------------------

@pytest.mark.parametrize('value, path', [
    ({'_py_factory': 'no_such_module.make', '_py_factory_args': []},
     'no_such_module.make'),
    ({'_py_type': 'tests.serialize_models.NoSuchClass', 'a': 1},
     'tests.serialize_models.NoSuchClass'),
    ({'_py_persistent_type': 'no.such.Persistent'}, 'no.such.Persistent'),
    ({'_py_constant': 'no_such_module.CONSTANT'}, 'no_such_module.CONSTANT'),
    (typ('tests.serialize_models.Gone'), 'tests.serialize_models.Gone'),
], ids=['factory', 'type', 'persistent-type', 'constant', 'class-ref'])
def test_unresolvable_path_is_a_load_error(mongo, value, path):
    ref = insert(mongo, value=value)
    err = load_fails(mongo, ref, interfaces.DocumentLoadError)
    assert path in str(err)


def test_unresolvable_persistent_type_of_the_document(mongo):
    ref = insert(mongo, _py_persistent_type='no.such.Persistent', value=1)
    dm = mongo.make_datamanager()
    found = dm.get_collection(mongo.db_name, COLL).find_objects()
    with pytest.raises(interfaces.DocumentLoadError) as info:
        next(found)
    assert repr(ref.id) in str(info.value)
    assert COLL in str(info.value)
    assert 'no.such.Persistent' in str(info.value)


@pytest.mark.parametrize('value', [
    {'_py_factory': 'builtins.set', '_py_factory_args': 'abc'},
    {'_py_factory': 'builtins.set', '_py_factory_args': 5},
    {'_py_factory': 'builtins.set', '_py_factory_args': {'a': 1}},
    {'_py_factory': 5},
    {'_py_type': ['not', 'a', 'path']},
    {'_py_type': 'nodots'},
    {'dict_data': [[1]]},
    {'dict_data': [5]},
    {'dict_data': [[1, 2, 3]]},
    {'dict_data': [[{'a': 1}, 'unhashable key']]},
    {'dict_data': [[[1, {'a': 1}], 'unhashable in tuple']]},
    {'_py_aware_datetime': 'yesterday', 'utcoffset': 0},
    {'_py_aware_datetime': bson.datetime.datetime(2020, 1, 1),
     'utcoffset': 'x'},
    {'_py_aware_datetime': bson.datetime.datetime(2020, 1, 1),
     'utcoffset': 0, 'zone': 'No/Such_Zone'},
    {'_py_aware_datetime': bson.datetime.datetime(2020, 1, 1),
     'utcoffset': 0, 'zone': '../../../etc/passwd'},
    {'_py_factory': 'datetime.date', '_py_factory_args': ['bad']},
    {'_py_factory': 'copyreg._reconstructor',
     '_py_factory_args': [typ('tests.serialize_models.Plain'),
                          typ('builtins.dict'), 5]},
], ids=repr)
def test_corrupt_document_is_a_load_error(mongo, value):
    ref = insert(mongo, value=value)
    load_fails(mongo, ref, interfaces.DocumentLoadError)


def test_reference_to_a_missing_document(mongo):
    missing = bson.DBRef(COLL, bson.ObjectId(), mongo.db_name)
    ref = insert(mongo, friend=missing)
    friend = load(mongo, ref).friend
    with pytest.raises(interfaces.DocumentNotFoundError) as info:
        friend.name
    assert repr(missing.id) in str(info.value)
    assert COLL in str(info.value)


def test_loading_a_missing_document(mongo):
    missing = bson.DBRef(COLL, bson.ObjectId(), mongo.db_name)
    obj = mongo.make_datamanager().load(missing)
    with pytest.raises(interfaces.DocumentNotFoundError) as info:
        obj._p_activate()
    assert repr(missing.id) in str(info.value)


def test_root_naming_a_missing_document(mongo):
    missing = bson.DBRef(COLL, bson.ObjectId(), mongo.db_name)
    mongo.db['persistence_root'].insert_one({'name': 'gone', 'ref': missing})
    obj = mongo.make_datamanager().root['gone']
    with pytest.raises(interfaces.DocumentNotFoundError):
        obj._p_activate()


def test_reference_to_a_collection_without_class(mongo):
    ref = bson.DBRef('no_such_collection', 1, mongo.db_name)
    dm = mongo.make_datamanager()
    with pytest.raises(ImportError, match='no_such_collection'):
        serialize.ObjectReader(dm).resolve(ref)
    with pytest.raises(ImportError, match='no_such_collection'):
        dm.load(ref)
