"""A corpus of hostile documents: loading runs no code a document chooses.

Whoever can write to the database writes these documents, with raw pymongo.
Each is loaded through a data manager in every way an application reaches
documents -- a named root, ``load(dbref)``, ``find_objects`` and a
container's listing -- with the hostile value once as an attribute
(``value``) and once as the object's whole state (``_py_state``).  Each
load must fail with the expected error, whose message names the database,
collection, ``_id``, field and what would allow it; and must leave no
trace: no file made or removed, no module imported, no call recorded, no
time or memory spent beyond a bound.  Afterwards the application carries
on: other documents load and a commit works.

The modules the hostile documents name are imported here first (except the
ones that prove "never imported"), so each refusal is the policy's, not a
side effect of an import the loader would not make anyway.
"""
import builtins
import copyreg
import functools
import importlib
import logging
import operator
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
import types

import bson
import pytest
import transaction
import ZODB.FileStorage

import zmongo.datamanager
from tests import serialize_models
from tests import untrusted_models as um
from zmongo import container
from zmongo import interfaces

COLL = 'tests.serialize_models.Holder'
#: Imported by nothing: a document naming it must not import it either.
RECORDER = 'tests.import_recorder'
UNSAFE = interfaces.UnsafeDocumentError
LOAD = interfaces.DocumentLoadError
#: Bounds on one refused load.
MAX_SECONDS = 2.0
MAX_BYTES = 20 * 1024 * 1024

# Referenced so linters keep the imports the corpus relies on.
_IMPORTED_FIRST = (builtins, copyreg, functools, importlib, logging, operator,
                   os, pickle, shutil, sqlite3, subprocess, tempfile, types,
                   ZODB.FileStorage, zmongo.datamanager, serialize_models)


def typ(path):
    return {'_py_type': 'type', 'path': path}


def call(path, *args):
    return {'_py_factory': path, '_py_factory_args': list(args)}


def nested(depth):
    value = 'bottom'
    for _ in range(depth):
        value = [value]
    return value


def evil_pickle(marker):
    """Pickle bytes that run ``touch marker`` when unpickled."""
    return (b'cos\nsystem\n(V' + ('touch %s' % marker).encode() +
            b'\ntR.')


def corpus(tmp):
    """``{case: (hostile value, error class, message fragment)}``; ``tmp``
    is a directory the test watches (``tmp/pwned`` must never appear,
    ``tmp/keep/canary`` must stay)."""
    marker = str(tmp / 'pwned')
    touch = 'touch %s' % marker
    python = "open(%r, 'w').close()" % marker
    recorder = 'tests.untrusted_models.Recorder'
    return {
        # Factories whose construction has side effects.
        'FileStorage': (call('ZODB.FileStorage.FileStorage', marker),
                        UNSAFE, 'register_factory(ZODB.FileStorage'),
        'logging.FileHandler': (call('logging.FileHandler', marker),
                                UNSAFE, 'register_factory(logging.FileHandler)'),
        'NamedTemporaryFile': (
            {'_py_factory': 'tempfile.NamedTemporaryFile',
             '_py_factory_args': ['w+b', -1, None, None, 'x', 'y', str(tmp)]},
            UNSAFE, 'register_factory(tempfile.NamedTemporaryFile)'),
        'sqlite3.connect': (call('sqlite3.connect', marker),
                            UNSAFE, 'register_factory(_sqlite3.connect)'),
        # Callables that run code, commands or imports.
        'os.system': (call('os.system', touch), UNSAFE,
                      'register_factory(posix.system)'),
        'posix.system': (call('posix.system', touch), UNSAFE,
                         'register_factory(posix.system)'),
        'subprocess.Popen': (call('subprocess.Popen', ['touch', marker]),
                             UNSAFE, 'register_factory(subprocess.Popen)'),
        'subprocess.call': (call('subprocess.call', ['touch', marker]),
                            UNSAFE, 'register_factory(subprocess.call)'),
        'builtins.eval': (call('builtins.eval', python), UNSAFE,
                          'register_factory(builtins.eval)'),
        'python2-eval': (call('__builtin__.eval', python), UNSAFE,
                         'register_factory(builtins.eval)'),
        'builtins.exec': (call('builtins.exec', python), UNSAFE,
                          'register_factory(builtins.exec)'),
        'builtins.__import__': (call('builtins.__import__', RECORDER), UNSAFE,
                                'register_factory(builtins.__import__)'),
        'builtins.getattr': (
            call('builtins.getattr', typ('os.system'), '__call__'), UNSAFE,
            'register_factory(builtins.getattr)'),
        'importlib.import_module': (
            call('importlib.import_module', RECORDER), UNSAFE,
            'register_factory(importlib.import_module)'),
        'functools.partial': (
            call('functools.partial', typ('os.system'), touch), UNSAFE,
            'register_factory(functools.partial)'),
        'operator.methodcaller': (
            call('operator.methodcaller', 'system', touch), UNSAFE,
            'register_factory(operator.methodcaller)'),
        'pickle.loads': (call('pickle.loads', evil_pickle(marker)), UNSAFE,
                         'register_factory(_pickle.loads)'),
        'shutil.rmtree': (call('shutil.rmtree', str(tmp / 'keep')), UNSAFE,
                          'register_factory(shutil.rmtree)'),
        'types.FunctionType': (
            call('types.FunctionType', typ('os.system'), {}), UNSAFE,
            'register_factory(builtins.function)'),
        # The pickle helpers, steered at what they must not build.
        # (posix.system: os.system is refused as a reference already, see
        # 'reference-through-os' below.)
        'copyreg._reconstructor-os.system': (
            call('copyreg._reconstructor', typ('posix.system'),
                 typ('builtins.object'), touch), UNSAFE,
            'needs (class, base class, state)'),
        'copyreg._reconstructor-Popen-base': (
            call('copyreg._reconstructor', typ('tests.serialize_models.Plain'),
                 typ('subprocess.Popen'), ['touch', marker]), UNSAFE,
            'not from subprocess.Popen'),
        'copyreg._reconstructor-Recorder': (
            call('copyreg._reconstructor', typ(recorder),
                 typ('builtins.object'), None), UNSAFE,
            'register_type(%s)' % recorder),
        'copyreg.__newobj__-Popen': (
            call('copyreg.__newobj__', typ('subprocess.Popen'),
                 ['touch', marker]), UNSAFE,
            'register_type(subprocess.Popen)'),
        # Types a document names for instances.
        'py_type-Popen': ({'_py_type': 'subprocess.Popen',
                           'args': ['touch', marker]}, UNSAFE,
                          'register_type(subprocess.Popen)'),
        # A function named through another module's imports, not by its
        # own name (what zmongo writes): refused even as a reference.
        'reference-through-os': (typ('os.system'), UNSAFE,
                                 "whose own name is 'posix.system'"),
        'reference-through-zmongo': (
            typ('zmongo.testing.os.system'), UNSAFE,
            "whose own name is 'posix.system'"),
        'py_type-os.system': ({'_py_type': 'os.system'}, UNSAFE,
                              'not a class'),
        'sub-object-FileStorage': (
            {'_py_persistent_type': 'ZODB.FileStorage.FileStorage',
             '_file_name': marker}, UNSAFE,
            'not a persistent.Persistent subclass'),
        # A class of the application's that it did not trust.
        'Recorder-py_type': ({'_py_type': recorder, 'x': 1}, UNSAFE,
                             'trust_modules(%r)' % 'tests.untrusted_models'),
        'Recorder-factory': (call(recorder, 1, 2), UNSAFE,
                             'register_factory(%s)' % recorder),
        'Recorder-newobj': (call('copyreg.__newobj__', typ(recorder), 1),
                            UNSAFE, 'register_type(%s)' % recorder),
        'application-factory': (call('tests.untrusted_models.make_phone',
                                     '555'), UNSAFE,
                                'register_factory(tests.untrusted_models.'
                                'make_phone)'),
        # A module nobody imported: named, it stays unimported.
        'unimported-py_type': ({'_py_type': RECORDER + '.Thing'}, UNSAFE,
                               'trust_modules(%r)' % RECORDER),
        'unimported-factory': (call(RECORDER + '.make_thing'), UNSAFE,
                               'trust_modules(%r)' % RECORDER),
        'unimported-constant': ({'_py_constant': RECORDER + '.CONSTANT'},
                                UNSAFE, 'trust_modules(%r)' % RECORDER),
        'unimported-class-ref': (typ(RECORDER + '.Thing'), UNSAFE,
                                 'trust_modules(%r)' % RECORDER),
        'unimported-stdlib': ({'_py_type': 'this.Zen'}, UNSAFE,
                              "trust_modules('this')"),
        'unimported-sub-object': ({'_py_persistent_type':
                                   RECORDER + '.Thing'}, UNSAFE,
                                  'trust_modules(%r)' % RECORDER),
        # Resource bombs: small documents, unbounded work if obeyed.
        'bytes-10**12': (call('builtins.bytes', 10 ** 12), UNSAFE,
                         'refusing to call it'),
        'bytearray-10**12': (call('builtins.bytearray', 10 ** 12), UNSAFE,
                             'refusing to call it'),
        'list-of-range': (call('builtins.list',
                               call('builtins.range', 10 ** 12)), UNSAFE,
                          'refusing to call it'),
        'set-of-range': (call('builtins.set', call('builtins.range', 10 ** 12)),
                         UNSAFE, 'refusing to call it'),
        'deque-of-range': (call('collections.deque',
                                call('builtins.range', 10 ** 12)), UNSAFE,
                           'refusing to call it'),
        'fraction-exponent': (call('fractions.Fraction', '1e999999999'),
                              UNSAFE, 'without exponent'),
        'int-of-huge-decimal': (call('builtins.int',
                                     call('decimal.Decimal', '1e999999999')),
                                UNSAFE, 'refusing to call it'),
        'codec-import': (call('builtins.bytes', 'x', 'idna'), UNSAFE,
                         'loaded codec'),
        'nesting-150': (nested(150), LOAD, 'deeper than 100 levels'),
        # Hidden deeper in the document.
        'in-dict_data-key': ({'dict_data': [[call('builtins.eval', python),
                                             'value']]}, UNSAFE,
                             'register_factory(builtins.eval)'),
        'in-factory-args': (call('builtins.set', [call('subprocess.call',
                                                       ['touch', marker])]),
                            UNSAFE, 'register_factory(subprocess.call)'),
    }


CASES = sorted(corpus(__import__('pathlib').Path('/x')))
PLACES = ['field', 'whole']
ROUTES = ['root', 'load', 'find_objects', 'container']


@pytest.fixture
def watched(tmp_path):
    """A directory whose contents must not change, and every other trace a
    hostile document could leave."""
    keep = tmp_path / 'keep'
    keep.mkdir()
    (keep / 'canary').write_text('still here')
    del um.CALLS[:]
    os.environ.pop('ZMONGO_TEST_IMPORT_RECORDER', None)
    was_imported = set(sys.modules)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*'))
    yield tmp_path
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*'))
    assert after == before, 'a document made or removed files'
    assert (keep / 'canary').read_text() == 'still here'
    assert RECORDER not in sys.modules
    assert 'ZMONGO_TEST_IMPORT_RECORDER' not in os.environ
    assert set(sys.modules) - was_imported == set(), 'a load imported'
    assert um.CALLS == []


def insert(mongo, place, value, key='victim'):
    """The hostile document, as an attribute or as the whole state (a
    container item keeps its name beside it)."""
    oid = bson.ObjectId()
    doc = {'_id': oid}
    if key is not None:
        doc['key'] = key
    doc['value' if place == 'field' else '_py_state'] = value
    mongo.db[COLL].insert_one(doc)
    return bson.DBRef(COLL, oid, mongo.db_name)


def load_via(route, mongo, dm, ref):
    """Load the document of ``ref`` as an application would by ``route``."""
    if route == 'root':
        mongo.db['persistence_root'].insert_one({'name': 'victim',
                                                 'ref': ref})
        obj = dm.root['victim']
        obj._p_activate()
    elif route == 'load':
        dm.load(ref)._p_activate()
    elif route == 'find_objects':
        coll = dm.get_collection(mongo.db_name, COLL)
        list(coll.find_objects({'_id': ref.id}))
    else:
        box = container.AllItemsMongoContainer(COLL)
        dm.insert(box)
        list(box.values())


def bounded_load(route, mongo, dm, ref, error):
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(error) as info:
            load_via(route, mongo, dm, ref)
    finally:
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert seconds < MAX_SECONDS
    assert peak < MAX_BYTES
    return info.value


@pytest.mark.parametrize('route', ROUTES)
@pytest.mark.parametrize('place', PLACES)
@pytest.mark.parametrize('case', CASES)
def test_hostile_document_is_refused_and_leaves_no_trace(
        mongo, watched, case, place, route):
    value, error, fragment = corpus(watched)[case]
    key = None if place == 'whole' and route != 'container' else 'victim'
    ref = insert(mongo, place, value, key)
    field = 'value' if place == 'field' else '_py_state'
    dm = mongo.make_datamanager()
    err = bounded_load(route, mongo, dm, ref, error)
    message = str(err)
    assert type(err) is error
    assert fragment in message
    assert 'document %r of %s.%s' % (ref.id, mongo.db_name, COLL) in message
    assert 'field %s' % field in message
    assert err.document_id == ref.id and err.database == mongo.db_name
    assert err.collection == COLL and err.field.startswith(field)
    # The application carries on: other documents load, commits work.
    transaction.abort()
    good = insert(mongo, 'field', [1, 'two'], key='good')
    dm = mongo.make_datamanager()
    obj = dm.load(good)
    assert list(obj.value) == [1, 'two']
    obj.value.append(3)
    transaction.commit()
    assert mongo.db[COLL].find_one({'_id': good.id})['value'] == [1, 'two', 3]


def test_corpus_is_large_enough():
    assert len(CASES) >= 30
