"""An adversarial review of the safe loader (issue 18).

Documents are written with raw pymongo, as whoever can write to the
application's MongoDB would, and loaded through the data manager.  The
tests under "Problems found" fail now: each docstring says what happens and
what should happen instead.  The tests under "Attacks that held" pass.
"""
import datetime
import enum
import re
import sys
import time

import bson
import pytest
import transaction

from tests import untrusted_models as um
from zmongo import _safety
from zmongo import interfaces

COLL = 'tests.serialize_models.Holder'
UNSAFE = interfaces.UnsafeDocumentError
LOAD = interfaces.DocumentLoadError
REFUSED = (UNSAFE, LOAD)
THIS = __name__     # 'tests.test_loader_attacks', imported by pytest

#: Calls into this module's canaries, which a document must not cause.
CANARY = []


def __getattr__(name):
    """A module-level ``__getattr__`` hook, as ``concurrent.futures``,
    ``unittest``, numpy and many packages have (they import modules lazily
    in it): looking a name up runs it."""
    if name == 'LAZY_NAME':
        CANARY.append(('__getattr__', name))
        return 'made by the hook'
    raise AttributeError(name)


def register(obj):
    """Persistent calls ``obj._p_jar.register(obj)`` when ``obj`` changes."""
    CANARY.append(('register', obj))


def setstate(obj):
    """Persistent calls ``obj._p_jar.setstate(obj)`` to unghostify ``obj``."""
    CANARY.append(('setstate', obj))


def typ(path):
    return {'_py_type': 'type', 'path': path}


def call(path, *args):
    return {'_py_factory': path, '_py_factory_args': list(args)}


@pytest.fixture(autouse=True)
def clean_canary():
    del CANARY[:]
    del um.CALLS[:]
    yield
    transaction.abort()


def insert(mongo, value, place='value'):
    oid = bson.ObjectId()
    mongo.db[COLL].insert_one({'_id': oid, place: value})
    return bson.DBRef(COLL, oid, mongo.db_name)


def load(mongo, value, place='value', route='load'):
    """Insert ``value`` as a field (or the whole ``_py_state``) of a Holder
    document and load it by ``route``; returns the object."""
    ref = insert(mongo, value, place)
    # A reader of its own (its own transaction, so its own snapshot: data
    # managers of one client in one transaction share one).
    dm = mongo.make_datamanager(
        transaction_manager=transaction.TransactionManager())
    if route == 'find_objects':
        coll = dm.get_collection(mongo.db_name, COLL)
        return list(coll.find_objects({'_id': ref.id}))[0]
    obj = dm.load(ref)
    obj._p_activate()
    return obj


def assert_located(err, mongo, field):
    """The refusal names database, collection, _id and field path."""
    assert isinstance(err, REFUSED), repr(err)
    assert err.database == mongo.db_name
    assert err.collection == COLL
    assert isinstance(err.document_id, bson.ObjectId)
    assert err.field.startswith(field), (err.field, str(err))


# ---------------------------------------------------------------------------
# Problems found (each fails now)
# ---------------------------------------------------------------------------

def test_a_name_does_not_run_a_modules_getattr_hook(mongo):
    """``_dotted.resolve`` walks a dotted name with ``getattr``, so naming
    ``<imported module>.<anything>`` runs that module's ``__getattr__``
    hook (PEP 562), and a path through an object runs its properties and
    ``__getattr__``.  Such hooks import modules lazily in the standard
    library and in many packages: ``{'_py_constant':
    'concurrent.futures.ProcessPoolExecutor'}`` (concurrent.futures is
    imported by asyncio, so by pymongo) imports ``multiprocessing`` and
    seven more modules; a DBRef whose collection is
    ``'unittest.IsolatedAsyncioTestCase'`` imports ``unittest.async_case``.

    Now: the hook runs (the canary records it) and the name loads as what
    the hook returned.  Should: names are looked up without running code
    (``module.__dict__`` / ``inspect.getattr_static`` along the MRO, no
    walk through instances), so this is refused naming the field."""
    with pytest.raises(REFUSED) as info:
        load(mongo, {'_py_constant': THIS + '.LAZY_NAME'})
    assert CANARY == []
    assert_located(info.value, mongo, 'value')


def test_a_name_does_not_import_through_a_stdlib_lazy_hook(mongo):
    """The real-world form of the test above: ``concurrent.futures``'s
    ``__getattr__`` imports ``concurrent.futures.process`` (and
    ``multiprocessing`` with it) on a document's word.  Now: the modules
    are imported and the class is returned.  Should: refused, nothing
    imported."""
    import concurrent.futures  # noqa: F401  (as asyncio/pymongo do)
    if 'concurrent.futures.process' in sys.modules:
        pytest.skip('already imported by an earlier test in this process')
    before = set(sys.modules)
    try:
        with pytest.raises(REFUSED):
            load(mongo, {'_py_constant':
                         'concurrent.futures.ProcessPoolExecutor'})
    finally:
        imported = set(sys.modules) - before
    assert 'concurrent.futures.process' not in imported
    assert 'multiprocessing' not in imported


def test_slot_state_cannot_replace_the_jar(mongo):
    """A persistent object's whole state stored as ``[dict, slots]`` (the
    ``__slots__`` form of commit b6c196c, or a ``builtins.tuple`` factory)
    reaches ``Persistent.__setstate__``, which ``setattr``s every name in
    ``slots`` -- names the class never declared: ``_p_jar``, ``_p_oid``,
    ``_p_serial``, ``__class__``, ``__dict__``.  With ``_p_jar`` set to
    any object a name reaches (a module here), persistent later calls
    ``that._p_jar.register(obj)`` when the application changes the object
    and ``that._p_jar.setstate(obj)`` when it unghostifies it: a function
    the document chose is called.  (``atexit``, ``codecs`` and every
    object with a ``register`` method qualify; the change is also lost,
    never registered with the real data manager.)

    Now: the load succeeds and ``obj.title = ...`` calls this module's
    ``register``.  Should: slot names are checked against the class's
    declared ``__slots__`` (``copyreg._slotnames``), and ``_p_*``/``_v_*``
    and dunder names are refused with an error naming field ``_py_state``.
    """
    state = [{'title': 'x'}, {'_p_jar': typ(THIS)}]
    try:
        obj = load(mongo, state, place='_py_state')
    except REFUSED as err:
        assert_located(err, mongo, '_py_state')
        return
    obj.title = 'changed by the application'
    assert CANARY == [], 'a function chosen by the document was called'
    pytest.fail('the jar of a loaded object was replaced by %r'
                % (obj._p_jar,))


@pytest.mark.parametrize('slots', [
    {'_p_oid': 5},
    {'_p_serial': b'\xff' * 8},
    {'__class__': typ('tests.untrusted_models.Page')},
])
def test_slot_state_cannot_set_persistence_attributes(mongo, slots):
    """Same route as above: a ``(dict, slots)`` state sets the object's
    identity, serial or class.  Now: loads with that attribute replaced
    (``_p_oid`` 5 breaks the next commit; ``_p_serial`` defeats the serial
    conflict check; ``__class__`` swaps the class the document's
    collection decided).  Should: refused, naming field ``_py_state``."""
    um.Page  # imported: a persistent class loadable by policy
    with pytest.raises(REFUSED) as info:
        load(mongo, [{'title': 'x'}, slots], place='_py_state')
    assert_located(info.value, mongo, '_py_state')


def str_doubling(levels, start):
    """``str([s])`` is ``repr`` of a list: each backslash of ``s`` comes
    out as two."""
    value = start
    for _ in range(levels):
        value = call('builtins.str', [value])
    return value


def test_str_of_a_list_is_not_a_memory_bomb(mongo):
    """``check_arguments`` lets ``builtins.str`` take one list (the shape is
    shared with ``bytes``/``bytearray``, for which a list of ints is
    right).  ``str([s])`` is a repr, in which each backslash of ``s``
    doubles, so each nesting level (3 of the 100 allowed) doubles the
    size: a 1 KB document nesting 32 levels asks for 4 GiB per backslash.
    Here 12 levels turn 64 backslashes (a ~300 byte document) into a
    262,000 character string.

    Now: loads.  Should: ``str`` takes a ``str`` or ``bytes`` (+ codec)
    from a document, never a list/tuple (nor anything whose repr it
    would compute), so this is UnsafeDocumentError naming the field."""
    value = str_doubling(12, '\\' * 64)
    doc_size = len(bson.encode({'value': value}))
    try:
        obj = load(mongo, value)
    except REFUSED as err:
        assert_located(err, mongo, 'value')
        return
    pytest.fail('a %d byte document loaded as a %d character string'
                % (doc_size, len(obj.value)))


# Tuple keys of two ints whose hashes are all equal (CPython's xxHash-based
# tuplehash is invertible lane by lane; hash(int) is the int mod 2**61-1).
_M = (1 << 64) - 1
_P1, _P2, _P5 = (11400714785074694791, 14029467366897019727,
                 2870177450012600261)
_MOD = (1 << 61) - 1


def _rotl(x):
    return ((x << 31) | (x >> 33)) & _M


def _rotr(x):
    return ((x >> 31) | (x << 33)) & _M


def colliding_pairs(count, target=12345):
    """``count`` distinct ``(a, b)`` int pairs with ``hash((a, b)) ==
    target`` (64-bit CPython 3.8+)."""
    p1_inv, p2_inv = pow(_P1, -1, 1 << 64), pow(_P2, -1, 1 << 64)
    acc2 = (target - (2 ^ (_P5 ^ 3527539))) & _M
    wanted = _rotr((acc2 * p1_inv) & _M)
    pairs, a = [], 0
    while len(pairs) < count:
        a += 1
        acc1 = (_rotl((_P5 + a * _P2) & _M) * _P1) & _M
        lane = ((wanted - acc1) * p2_inv) & _M
        if lane < _MOD:
            pairs.append((a, lane))
        elif -_MOD < lane - (1 << 64) < -2:
            pairs.append((a, lane - (1 << 64)))
    return pairs


def test_colliding_pairs_do_collide():
    pairs = colliding_pairs(50)
    assert len(set(pairs)) == 50
    assert {hash(pair) for pair in pairs} == {12345}


def test_colliding_dict_keys_do_not_make_a_load_quadratic(mongo):
    """``dict_data`` keys that are arrays load as tuples; tuples of ints
    with equal hashes are easy to compute (see ``colliding_pairs``), and
    each insertion into the dict then compares with every earlier key:
    O(n**2).  No factory is needed (``set``/``frozenset``/``Counter`` of
    ``complex`` or ``Fraction`` values collide as easily).  Measured here:
    4,000 keys 0.19 s, 8,000 keys 0.93 s; a 16 MB document holds ~400,000
    such keys: hours of CPU, holding the GIL, for every process that loads
    it.

    Now: 6,000 keys (a 250 KB document) load, in quadratic time.  Should:
    a dict/set built from document values refuses keys whose hashes
    collide beyond a small bound (count keys per hash first), with
    UnsafeDocumentError naming the field."""
    pairs = colliding_pairs(6000)
    value = {'dict_data': [[list(pair), None] for pair in pairs]}
    started = time.monotonic()
    try:
        obj = load(mongo, value)
    except REFUSED as err:
        assert_located(err, mongo, 'value')
        return
    pytest.fail('%d colliding keys loaded in %.2f s (quadratic)'
                % (len(obj.value), time.monotonic() - started))


@pytest.mark.parametrize('path', ['zmongo.serialize.ObjectReader',
                                  'zmongo.serialize.ObjectWriter',
                                  'zmongo.serialize.ObjectSerializer'])
def test_own_modules_do_not_trust_plain_classes(mongo, path):
    """``OWN_MODULES`` is meant to let documents name zmongo's persistent
    classes before they are imported, but ``Policy`` adds it to the
    trusted prefixes, and ``is_trusted`` uses the same prefixes: every
    plain class defined in ``zmongo.serialize``/``zmongo.container``
    (ObjectReader, ObjectWriter, ObjectSerializer, _ItemCache, ...) is
    rebuilt with a document-chosen ``__dict__``.  Now: loads.  Should:
    OWN_MODULES only widens ``may_import``; those classes are refused
    unless registered."""
    with pytest.raises(UNSAFE) as info:
        load(mongo, {'_py_type': path, '_jar': 'not a data manager'})
    assert_located(info.value, mongo, 'value')


def test_flag_values_do_not_grow_a_process_wide_cache(mongo):
    """``_member`` calls ``cls(value)`` for a Flag with the stdlib
    ``_missing_``; for an IntFlag (boundary KEEP, e.g. ``re.RegexFlag``,
    always imported) every distinct int makes a pseudo-member that enum
    caches in ``cls._value2member_map_`` for the life of the process.
    Documents can thus grow memory that is never released, across loads
    (and the cache is the stdlib's, shared with the application).  Now:
    300 values add 300 cache entries.  Should: refuse values with bits
    outside the class's members (``value & ~cls._flag_mask_``), so the
    cache stays bounded by the class's own members."""
    before = len(re.RegexFlag._value2member_map_)
    values = [call('re.RegexFlag', (1 << 40) | i) for i in range(300)]
    try:
        load(mongo, values)
    except REFUSED:
        pass
    assert len(re.RegexFlag._value2member_map_) - before < 20


@pytest.mark.parametrize('state', [
    {'dict_data': [[1, 'one'], [None, 'none']]},
    [[3, 'three'], [b'x', 'bytes']],
])
def test_attribute_names_are_strings(mongo, state):
    """A plain object's ``_py_state`` in ``dict_data`` form, or as a list
    of pairs, is ``__dict__.update``d as it is: attribute names 1, None,
    b'x'.  Such an object breaks ``getattr``/``vars`` users and fails to
    be written back.  Now: loads.  Should: DocumentLoadError naming field
    ``value._py_state`` (attribute names must be str)."""
    with pytest.raises(REFUSED) as info:
        load(mongo, {'_py_type': 'tests.serialize_models.Plain',
                     '_py_state': state})
    assert_located(info.value, mongo, 'value')


@pytest.mark.parametrize('route', ['load', 'find_objects'])
@pytest.mark.parametrize('fields', [
    {'utcoffset': 1e300},               # OverflowError escapes raw
    {'zone': 5},                        # TypeError, no field path
    {'local': 'not a date', 'microsecond': 'x'},
])
def test_aware_datetime_errors_are_located(mongo, route, fields):
    """``_aware_datetime`` checks none of its fields: a huge ``utcoffset``
    raises a bare ``OverflowError`` out of ``load``/``find_objects`` (not
    a DocumentLoadError, no document named: an application catching
    DocumentLoadError to skip a bad document crashes instead); a bad
    ``zone`` or ``microsecond`` becomes a DocumentLoadError without the
    field path.  Should: DocumentLoadError naming field ``value``."""
    value = {'_py_aware_datetime': datetime.datetime(2020, 1, 1)}
    value.update(fields)
    with pytest.raises(REFUSED) as info:
        load(mongo, value, route=route)
    assert_located(info.value, mongo, 'value')


def test_a_zone_name_imports_nothing(mongo):
    """``zoneinfo.ZoneInfo(key)`` (the ``zone`` of an aware datetime, or a
    ``zoneinfo.ZoneInfo`` factory) falls back to ``importlib.resources``
    on ``tzdata.zoneinfo.<dirs of key>`` when the system has no such zone
    file: a document's zone name imports modules (``tzdata``,
    ``tzdata.zoneinfo``, subpackages named by the key; harmless code, but
    against "a module not yet imported is never imported on a document's
    word").  Should: zones load only from the names
    ``zoneinfo.available_timezones()`` knows, or tzdata is imported by
    zmongo up front; an unknown zone is DocumentLoadError naming the
    field."""
    if 'tzdata' in sys.modules:
        pytest.skip('tzdata already imported in this process')
    before = set(sys.modules)
    try:
        with pytest.raises(REFUSED):
            load(mongo, {'_py_aware_datetime': datetime.datetime(2020, 1, 1),
                         'zone': 'No_Such/Zone_Here'})
    finally:
        imported = set(sys.modules) - before
    assert not {name for name in imported if name.startswith('tzdata')}


@pytest.mark.parametrize('value', [
    {'dict_data': [[call('builtins.set', []), 1]]},          # unhashable key
    bson.DBRef('no_such_collection', 1),                     # no class
    bson.DBRef('tests.untrusted_models.Recorder', 1),         # not persistent
], ids=['unhashable-key', 'dbref-unknown', 'dbref-not-persistent'])
def test_refusals_name_the_field(mongo, value):
    """These load errors name the document but not the field (``field``
    is empty; the message says "cannot load it into Holder: TypeError"
    / "ImportError: collection ... maps to no class"), so in a document
    with many fields the operator cannot find the bad value.  Should:
    the field path (``value.dict_data[0]``, ``value``) as other refusals
    give."""
    with pytest.raises(REFUSED) as info:
        load(mongo, value)
    assert_located(info.value, mongo, 'value')


# ---------------------------------------------------------------------------
# Attacks that held
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('name,trusted,expected', [
    ('myapp_evil.X', {'myapp'}, False),
    ('myappX', {'myapp'}, False),
    ('myapp', {'myapp'}, True),
    ('myapp.models.X', {'myapp'}, True),
    ('my.app.X', {'myapp'}, False),
    ('lib.content_evil.X', {'lib.content'}, False),
    ('lib.X', {'lib.content'}, False),
])
def test_trusted_prefix_confusion(name, trusted, expected):
    assert _safety.covered(name, frozenset(trusted)) is expected


@pytest.mark.parametrize('bad', ['myapp.', '.myapp', 'my app', 'myapp..x',
                                 'myapp.*', '', 'myapp-evil'])
def test_malformed_prefixes_are_refused(bad):
    with pytest.raises(ValueError):
        _safety.prefixes([bad])


@pytest.mark.parametrize('value,fragment', [
    (call('zmongo._safety.builtins.eval', '1'), 'register_factory'),
    (call('zmongo.serialize.types.FunctionType', typ('builtins.eval'), {}),
     'register_factory'),
    (call('zmongo.testing.os.system', 'true'), 'register_factory'),
    (call('zmongo.serialize.copyreg._reconstructor',
          typ('tests.untrusted_models.Recorder'), typ('builtins.object'),
          None), 'register_type'),
    (call('zmongo.serialize.copyreg.__newobj__',
          typ('tests.untrusted_models.Recorder')), 'register_type'),
    ({'_py_type': 'os.path.__class__'}, 'not trusted'),
    ({'_py_type': 'builtins.object.__subclasses__'}, 'not a class'),
    ({'_py_type': 'zmongo.serialize.__builtins__'}, 'not a class'),
    (call('builtins.type', 'X', [], {}), 'register_factory'),
    (call('builtins.object.__reduce__'), 'register_factory'),
    (call('zmongo.serialize.__builtins__.eval', '1'), 'cannot'),
    ({'_py_persistent_type': 'builtins.type'}, 'not a persistent'),
    ({'_py_type': 'tests.untrusted_models.Recorder', '__class__':
      typ('subprocess.Popen')}, 'register_type'),
])
def test_attribute_walks_to_callables_are_refused(mongo, value, fragment):
    """Names reaching dangerous callables through imported modules'
    attributes ('zmongo.serialize.os.system', copyreg via zmongo.serialize,
    dunder walks) are refused like the direct names."""
    import tests.models  # noqa: F401
    import subprocess  # noqa: F401
    with pytest.raises(REFUSED) as info:
        load(mongo, value)
    assert fragment in str(info.value)
    assert_located(info.value, mongo, 'value')
    assert um.CALLS == []


def test_class_switch_to_an_untrusted_plain_class_is_refused(mongo):
    """A ``(dict, slots)`` state setting ``__class__`` to a plain class
    fails on the layout (Persistent's C fields), as a DocumentLoadError."""
    with pytest.raises(REFUSED):
        load(mongo, [{'a': 1}, {'__class__':
                                typ('tests.untrusted_models.Recorder')}],
             place='_py_state')
    assert um.CALLS == []


def test_nesting_in_dict_data_keys_is_bounded(mongo):
    key = 'bottom'
    for _ in range(150):
        key = [key]
    with pytest.raises(LOAD) as info:
        load(mongo, {'dict_data': [[key, 1]]})
    assert 'deeper than 100' in str(info.value)


def test_enum_of_an_untrusted_module_is_only_looked_up(mongo):
    """Enum members are looked up, a Flag's own ``_missing_`` is not run."""
    obj = load(mongo, [call('tests.untrusted_models.Color', 1),
                       call('tests.untrusted_models.Access', 3)])
    assert list(obj.value) == [um.Color.RED, um.Access.READ | um.Access.WRITE]
    with pytest.raises(REFUSED):
        load(mongo, call('tests.untrusted_models.Strict', 6))
    assert um.CALLS == []


@pytest.mark.parametrize('value', [
    call('builtins.int', 'f' * 5000, 16),      # no digit limit for base 16
    call('decimal.Decimal', '1e999999999999999999'),
    call('builtins.range', 2 ** 62),
    call('fractions.Fraction', '0.' + '9' * 4000),
])
def test_big_numbers_stay_cheap(mongo, value):
    started = time.monotonic()
    try:
        load(mongo, value)
    except REFUSED:
        pass
    assert time.monotonic() - started < 2.0


def test_flag_enum_module_is_stdlib_enum():
    # Guard for test_flag_values_do_not_grow_a_process_wide_cache.
    assert issubclass(re.RegexFlag, enum.IntFlag)
