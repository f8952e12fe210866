"""What the application trusts, and how: the positive side of safe loading.

Plain classes load once trusted (``register_type``, ``trust_modules``, a
data manager's ``trusted_modules``, the provider), rebuilt as pickle does;
registered factories are called; persistent classes and enum members of
imported modules need nothing; mongopersist documents load unchanged once
the application trusts its modules.  Documents are written with raw pymongo
and loaded through a data manager on the real server.
"""
import os
import sys

import bson
import pytest
import transaction

import tests
from tests import untrusted_models as um
from zmongo import _safety
from zmongo import interfaces
from zmongo import serialize
from zmongo.provider import MongoDataManagerProvider
from zmongo.testing import get_test_uri
from zmongo.testing import trusting

COLL = 'tests.serialize_models.Holder'
MODULE = 'tests.untrusted_models'
RECORDER = 'tests.import_recorder'


@pytest.fixture(autouse=True)
def no_calls():
    del um.CALLS[:]
    yield
    del um.CALLS[:]


def insert(mongo, **fields):
    oid = bson.ObjectId()
    mongo.db[COLL].insert_one(dict(fields, _id=oid))
    return bson.DBRef(COLL, oid, mongo.db_name)


def load(mongo, ref, **options):
    obj = mongo.make_datamanager(**options).load(ref)
    obj._p_activate()
    return obj


def refused(mongo, ref, **options):
    with pytest.raises(interfaces.UnsafeDocumentError) as info:
        load(mongo, ref, **options)
    transaction.abort()
    return str(info.value)


PHONE = {'_py_type': MODULE + '.Phone', 'number': '555'}


# -- plain classes: trusted four ways, rebuilt without __init__ ---------------

def test_untrusted_plain_class_is_refused_saying_how_to_allow_it(mongo):
    ref = insert(mongo, phone=PHONE)
    message = refused(mongo, ref)
    assert 'field phone._py_type' in message
    assert 'register_type(%s.Phone)' % MODULE in message
    assert 'trust_modules(%r)' % MODULE in message
    assert um.CALLS == []


@pytest.mark.parametrize('how', ['data-manager', 'trust_modules',
                                 'parent-prefix', 'register_type'])
def test_trusted_plain_class_loads_without_calling_init(mongo, how):
    ref = insert(mongo, phone=PHONE)
    options = {}
    with trusting():
        if how == 'data-manager':
            options['trusted_modules'] = [MODULE]
        elif how == 'trust_modules':
            serialize.trust_modules(MODULE)
        elif how == 'parent-prefix':
            serialize.trust_modules('tests')
        else:
            assert serialize.register_type(um.Phone) is um.Phone
        phone = load(mongo, ref, **options).phone
    assert type(phone) is um.Phone and vars(phone) == {'number': '555'}
    assert um.CALLS == []           # Phone.__init__ never ran
    transaction.abort()
    # Trusted no more: refused again.
    refused(mongo, ref)


def test_recorder_is_rebuilt_as_pickle_does(mongo):
    ref = insert(mongo, value={'_py_type': MODULE + '.Recorder', 'x': 1})
    value = load(mongo, ref, trusted_modules=[MODULE]).value
    assert value.x == 1
    # No __new__ or __init__ of the class: object.__new__ and the state.
    assert um.CALLS == [('__setstate__', {'x': 1})]


def test_a_prefix_covers_whole_name_parts_only(mongo):
    ref = insert(mongo, phone=PHONE)
    refused(mongo, ref, trusted_modules=['tests.untrusted'])
    refused(mongo, ref, trusted_modules=['tests.untrusted_models.Pho'])
    assert load(mongo, ref, trusted_modules=[MODULE + '.Phone']).phone


def test_untrust_modules_and_unregister_type_undo(mongo):
    ref = insert(mongo, phone=PHONE)
    with trusting():
        serialize.trust_modules(MODULE)
        serialize.register_type(um.Phone)
        serialize.untrust_modules(MODULE)
        assert load(mongo, ref).phone.number == '555'
        transaction.abort()
        serialize.unregister_type(um.Phone)
        refused(mongo, ref)


def test_trusting_puts_the_registry_back_exactly(mongo):
    before = (_safety.REGISTRY.prefixes, dict(_safety.REGISTRY.types),
              serialize.FACTORIES.snapshot())
    with pytest.raises(RuntimeError):
        with trusting(modules=['a.b'], types=[um.Phone],
                      factories=[um.make_phone]):
            serialize.trust_modules('c')
            assert um.make_phone in serialize.FACTORIES
            raise RuntimeError
    assert (_safety.REGISTRY.prefixes, dict(_safety.REGISTRY.types),
            serialize.FACTORIES.snapshot()) == before


def test_bad_prefixes_are_refused_at_once(mongo):
    for bad in ['my-app', 'myapp.', '', 3]:
        with pytest.raises(ValueError, match='prefix is a module name'):
            mongo.make_datamanager(trusted_modules=[bad])
        with pytest.raises(ValueError, match='prefix is a module name'):
            serialize.trust_modules(bad)
    with pytest.raises(TypeError):
        serialize.register_type(um.Phone('x'))


# -- factories: called once registered ---------------------------------------

def test_application_factory_is_called_once_registered(mongo):
    ref = insert(mongo, phone={'_py_factory': MODULE + '.make_phone',
                               '_py_factory_args': ['555']})
    message = refused(mongo, ref, trusted_modules=[MODULE])
    assert 'register_factory(%s.make_phone)' % MODULE in message
    assert um.CALLS == []
    with trusting(factories=[MODULE + '.make_phone']):
        assert load(mongo, ref).phone.number == '555'
    assert um.CALLS == [('make_phone', ('555',))]
    transaction.abort()
    assert load(mongo, ref, factories=[um.make_phone]).phone.number == '555'


def test_registered_class_is_called_with_document_arguments(mongo):
    ref = insert(mongo, value={'_py_factory': MODULE + '.Recorder',
                               '_py_factory_args': [1, 'two']})
    load(mongo, ref, factories=[um.Recorder])
    assert um.CALLS == [('__new__', (1, 'two')), ('__init__', (1, 'two'))]


# -- always loadable: persistent classes, enum members, stdlib values --------

def test_persistent_class_and_enum_of_an_imported_module_need_no_trust(
        mongo):
    ref = insert(mongo,
                 page={'_py_persistent_type': MODULE + '.Page',
                       'title': 'Home'},
                 color={'_py_factory': MODULE + '.Color',
                        '_py_factory_args': [2]})
    obj = load(mongo, ref)
    assert type(obj.page) is um.Page and obj.page.title == 'Home'
    assert obj.color is um.Color.GREEN


def test_an_enum_value_that_is_no_member_is_a_load_error(mongo):
    ref = insert(mongo, color={'_py_factory': MODULE + '.Color',
                               '_py_factory_args': [7]})
    with pytest.raises(interfaces.DocumentLoadError, match='field color'):
        load(mongo, ref)


def test_flag_combinations_load_without_the_classes_own_hooks(mongo):
    ref = insert(mongo,
                 access={'_py_factory': MODULE + '.Access',
                         '_py_factory_args': [3]},
                 strict={'_py_factory': MODULE + '.Strict',
                         '_py_factory_args': [3]})
    with pytest.raises(interfaces.DocumentLoadError, match='field strict'):
        load(mongo, ref)
    assert um.CALLS == []
    transaction.abort()
    mongo.db[COLL].update_one({'_id': ref.id}, {'$unset': {'strict': 1}})
    assert load(mongo, ref).access == um.Access.READ | um.Access.WRITE


def test_persistent_object_of_its_own_document_needs_no_trust(mongo):
    dm = mongo.make_datamanager()
    dm.root['page'] = um.Page('Home')
    transaction.commit()
    assert mongo.make_datamanager().root['page'].title == 'Home'


@pytest.mark.parametrize('value, expected', [
    ({'_py_factory': 'builtins.bytes', '_py_factory_args': ['ab', 'latin-1']},
     b'ab'),
    ({'_py_factory': 'fractions.Fraction', '_py_factory_args': ['-3/4']},
     __import__('fractions').Fraction(-3, 4)),
    ({'_py_factory': 'collections.deque', '_py_factory_args': [[1, 2], 5]},
     __import__('collections').deque([1, 2], 5)),
    ({'_py_factory': 'builtins.range', '_py_factory_args': [10 ** 12]},
     range(10 ** 12)),
    ({'_py_factory': 'ipaddress.IPv6Network', '_py_factory_args': ['::/0']},
     __import__('ipaddress').IPv6Network('::/0')),
], ids=['bytes', 'fraction', 'deque', 'lazy-range', 'network'])
def test_stdlib_values_with_bounded_arguments_load(mongo, value, expected):
    ref = insert(mongo, value=value)
    assert load(mongo, ref).value == expected


def test_nesting_up_to_the_limit_loads(mongo):
    value = 'bottom'
    for _ in range(_safety.MAX_DEPTH):
        value = [value]
    ref = insert(mongo, value=value)
    loaded = load(mongo, ref).value
    for _ in range(_safety.MAX_DEPTH):
        loaded = loaded[0]
    assert loaded == 'bottom'


# -- modules: imported only under a trusted prefix ----------------------------

def test_module_under_a_trusted_prefix_is_imported(mongo):
    assert RECORDER not in sys.modules
    ref = insert(mongo, thing={'_py_type': RECORDER + '.Thing'})
    message = refused(mongo, ref)
    assert 'trust_modules(%r)' % RECORDER in message
    assert RECORDER not in sys.modules
    try:
        thing = load(mongo, ref, trusted_modules=[RECORDER]).thing
        assert type(thing).__module__ == RECORDER
        assert os.environ.get('ZMONGO_TEST_IMPORT_RECORDER') == 'imported'
    finally:
        # Leave no trace for the tests that prove it is never imported.
        sys.modules.pop(RECORDER, None)
        if hasattr(tests, 'import_recorder'):
            del tests.import_recorder
        os.environ.pop('ZMONGO_TEST_IMPORT_RECORDER', None)


def test_missing_module_is_a_load_error_not_a_trust_question(mongo):
    ref = insert(mongo, thing={'_py_type': 'no_such_package.models.Thing'})
    with pytest.raises(interfaces.DocumentLoadError,
                       match="there is no module 'no_such_package"):
        load(mongo, ref)


def test_provider_passes_trusted_modules_to_every_data_manager(mongo):
    ref = insert(mongo, phone=PHONE)
    provider = MongoDataManagerProvider(
        get_test_uri(), default_database=mongo.db_name,
        trusted_modules='tests.untrusted_models')
    try:
        dm = provider.get()
        assert dm.trusted_modules == {MODULE}
        assert dm.load(ref).phone.number == '555'
    finally:
        transaction.abort()
        provider.close()


# -- mongopersist documents ---------------------------------------------------

def test_mongopersist_document_loads_unchanged_once_trusted(mongo):
    """A document as mongopersist 0.8 wrote it, naming a plain class of the
    application (``_py_type``), one through ``copy_reg._reconstructor`` and
    a factory function of the application."""
    oid = bson.ObjectId('4e7df744e138230a3e000000')
    doc = {
        '_id': oid,
        'phone': {'_py_type': MODULE + '.Phone', 'number': '978'},
        'other': {'_py_factory': 'copy_reg._reconstructor',
                  '_py_factory_args': [
                      {'_py_type': 'type', 'path': MODULE + '.Phone'},
                      {'_py_type': 'type', 'path': '__builtin__.object'},
                      None],
                  'number': '394'},
        'made': {'_py_factory': MODULE + '.make_phone',
                 '_py_factory_args': ['5124']},
    }
    mongo.db[COLL].insert_one(doc)
    ref = bson.DBRef(COLL, oid, mongo.db_name)
    message = refused(mongo, ref)
    assert "trust_modules('%s')" % MODULE in message
    with trusting(modules=[MODULE], factories=[um.make_phone]):
        obj = load(mongo, ref)
        assert [obj.phone.number, obj.other.number, obj.made.number] == \
            ['978', '394', '5124']
        transaction.commit()
    # Loading changed nothing, and nothing was written.
    assert mongo.db[COLL].find_one({'_id': oid}) == doc
