"""Generated object graphs round-trip exactly, or are refused clearly.

``hypothesis`` builds object graphs -- nested dicts (``str`` keys with any
characters, and ``int``/``bool``/``None``/``bytes``/``float``/``tuple``
keys), lists, tuples, strings, ints at and beyond the 64-bit edges, floats
(``inf``, ``nan``, ``-0.0``), naive and time-zone-aware datetimes, bytes and
persistent sub-objects -- stores each as an attribute of a persistent
object, commits, and loads it with a fresh data manager in a new
transaction, against the real server.

Each example either comes back exactly -- with the documented changes
only: tuples load as lists, naive datetimes keep milliseconds, ints beyond
32 bits load as ``bson.Int64`` (an ``int``) -- or is refused with
``SerializationError`` naming the attribute path.  Only what BSON (or a
Python datetime in UTC) cannot hold may be refused: integers beyond 64 bits
and aware datetimes whose UTC instant lies outside the years 1-9999.
"""
import datetime
import math
import zoneinfo

import bson
import pytest
import transaction
from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests import hardening_models as hm
from zmongo import interfaces
from zmongo import serialize

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UTC = datetime.timezone.utc

#: Keys and strings that mean something to zmongo or MongoDB.
SPECIAL_STRINGS = [
    '', '.', '$', '$set', '$where', 'a.b', '.a', 'a.', 'a$', '\x00',
    'a\x00b', 'dict_data', '_id', '_py_type', '_py_factory',
    '_py_factory_args', '_py_persistent_type', '_py_constant', '_py_serial',
    '_py_aware_datetime', '_py_state', '_py_list_items', '_py_dict_items',
    'type', 'path', 'zone', 'utcoffset', 'microsecond', '$ref', '$id',
    '$db', '{"$ne": null}', 'Grüße', '\U0001f600', '\u2028', '\ufeff',
]

SETTINGS = settings(
    max_examples=200, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture,
                           HealthCheck.too_slow, HealthCheck.data_too_large])


# -- strategies ---------------------------------------------------------------

def ints(huge):
    """64-bit ints with their edges; with ``huge``, also ints beyond."""
    edges = st.sampled_from([
        INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1, 0, -1, 1,
        (1 << 31) - 1, -(1 << 31), 1 << 31, -(1 << 31) - 1, 1 << 32])
    strategies = [st.integers(INT64_MIN, INT64_MAX), edges]
    if huge:
        strategies.append(st.sampled_from([
            INT64_MAX + 1, INT64_MIN - 1, 1 << 64, -(1 << 64), 10 ** 30]))
    return st.one_of(*strategies)


strings = st.one_of(st.text(), st.sampled_from(SPECIAL_STRINGS))

fixed_zones = st.one_of(
    st.just(UTC),
    st.integers(-1439, 1439).map(
        lambda m: datetime.timezone(datetime.timedelta(minutes=m))),
    st.integers(-86399, 86399).map(
        lambda s: datetime.timezone(datetime.timedelta(seconds=s))),
    # Python allows offsets with fractions of a second.
    st.integers(-86399999999, 86399999999).map(
        lambda us: datetime.timezone(datetime.timedelta(microseconds=us))),
    st.builds(datetime.timezone,
              st.integers(-1439, 1439).map(
                  lambda m: datetime.timedelta(minutes=m)),
              st.sampled_from(['CET', 'X', ''])),
)
# Including wall times a zone makes ambiguous (fold 0 and 1) or imaginary
# (in a DST gap): hypothesis aims at the zones' transitions.
aware_datetimes = st.datetimes(
    timezones=st.one_of(fixed_zones, st.timezones()))


def leaves(huge):
    return st.one_of(
        st.none(), st.booleans(), ints(huge),
        st.floats(allow_nan=True, allow_infinity=True),
        strings, st.binary(max_size=64),
        st.datetimes(), aware_datetimes,
    )


def hashable_keys(huge):
    scalar = st.one_of(strings, ints(huge), st.booleans(), st.none(),
                       st.binary(max_size=8),
                       st.floats(allow_nan=False))
    return st.recursive(
        scalar, lambda inner: st.lists(inner, max_size=3).map(tuple),
        max_leaves=4)


# Attribute names a persistent object really stores (``_p_``/``_v_`` ones
# are the persistence machinery's; dunder names are Python's).
attribute_names = st.one_of(
    st.sampled_from(['a', 'b', 'name']), strings).filter(
    lambda n: not n.startswith(('_p_', '_v_', '__')))


def parts(children):
    return st.dictionaries(attribute_names, children, max_size=4).map(
        lambda attrs: hm.Part(**attrs))


@st.composite
def graphs(draw):
    """An object graph; one in three examples may hold ints
    beyond 64 bits somewhere."""
    huge = draw(st.integers(0, 2)) == 0

    def extend(children):
        return st.one_of(
            st.lists(children, max_size=5),
            st.lists(children, max_size=5).map(tuple),
            st.dictionaries(strings, children, max_size=5),
            st.dictionaries(hashable_keys(huge), children, max_size=5),
            parts(children),
        )
    return draw(st.recursive(leaves(huge), extend, max_leaves=20))


# -- what must come back ------------------------------------------------------

def _segment(path, segment):
    if isinstance(segment, str):
        return path + '.' + segment if path else segment
    return '%s[%r]' % (path, segment)


def first_refusal(value, path='value'):
    """The attribute path of the first value that must be refused (in the
    writer's order: a dict's values, then its keys), or None."""
    t = type(value)
    if t is int:
        return None if INT64_MIN <= value <= INT64_MAX else path
    if t is datetime.datetime:
        if value.utcoffset() is None:
            return None
        try:
            value - value.utcoffset()
        except OverflowError:
            return path
        return None
    if t in (list, tuple):
        for index, item in enumerate(value):
            found = first_refusal(item, _segment(path, index))
            if found:
                return found
        return None
    if t is dict or t is hm.Part:
        mapping = value if t is dict else value.__getstate__()
        for key, item in mapping.items():
            found = first_refusal(item, _segment(path, key))
            if found:
                return found
        for key in mapping:
            found = first_refusal(key, _segment(path, key))
            if found:
                return found
    return None


def same_key(expected, actual):
    if type(expected) is tuple:
        return type(actual) is tuple and len(actual) == len(expected) and \
            all(same_key(e, a) for e, a in zip(expected, actual))
    if type(expected) is int:
        return type(actual) in (int, bson.Int64) and actual == expected
    if type(expected) is float:
        return type(actual) is float and actual == expected and \
            math.copysign(1, actual) == math.copysign(1, expected)
    return type(actual) is type(expected) and actual == expected


def assert_same(expected, actual, path='value'):
    """``actual`` (loaded) is ``expected`` (stored), exactly, up to the
    documented conversions."""
    t = type(expected)
    where = 'at %s: stored %r, loaded %r' % (path, expected, actual)
    if expected is None or t is bool:
        assert actual is expected, where
    elif t is int:
        assert type(actual) in (int, bson.Int64), where
        assert actual == expected, where
    elif t is float:
        assert type(actual) is float, where
        if math.isnan(expected):
            assert math.isnan(actual), where
        else:
            assert actual == expected, where
            assert math.copysign(1, actual) == math.copysign(1, expected), \
                where
    elif t in (str, bytes):
        assert type(actual) is t and actual == expected, where
    elif t is datetime.datetime and expected.utcoffset() is None:
        assert type(actual) is datetime.datetime, where
        assert actual.tzinfo is None, where
        assert actual == expected.replace(
            microsecond=expected.microsecond // 1000 * 1000), where
    elif t is datetime.datetime:
        assert type(actual) is datetime.datetime, where
        assert actual == expected, where
        assert actual.utcoffset() == expected.utcoffset(), where
        assert actual.microsecond == expected.microsecond, where
        assert actual.replace(tzinfo=None) == \
            expected.replace(tzinfo=None), where
        assert actual.astimezone(UTC) == expected.astimezone(UTC), where
        if isinstance(expected.tzinfo, zoneinfo.ZoneInfo):
            assert actual.tzinfo is expected.tzinfo, where
    elif t in (list, tuple):
        # (A plain list inside a sub-object stored in the _py_state form:
        # see test_bad_documents.test_in_place_change_under_an_escaped_name)
        assert isinstance(actual, (serialize.PersistentList, list)), where
        assert len(actual) == len(expected), where
        for index, (e, a) in enumerate(zip(expected, actual)):
            assert_same(e, a, _segment(path, index))
    elif t is dict:
        assert isinstance(actual, (serialize.PersistentDict, dict)), where
        assert_same_mapping(expected, getattr(actual, 'data', actual), path)
    elif t is hm.Part:
        assert type(actual) is hm.Part, where
        assert_same_mapping(expected.__getstate__(), actual.__getstate__(),
                            path)
    else:  # pragma: no cover - the strategies make nothing else
        raise AssertionError('unexpected value ' + where)


def assert_same_mapping(expected, actual, path):
    keys, loaded_keys = list(expected), list(actual)
    assert len(keys) == len(loaded_keys) and all(
        same_key(e, a) for e, a in zip(keys, loaded_keys)), \
        'at %s: keys %r came back as %r' % (path, keys, loaded_keys)
    for key, loaded_key in zip(keys, loaded_keys):
        assert_same(expected[key], actual[loaded_key], _segment(path, key))


# -- the property -------------------------------------------------------------

def store_and_load(mongo, value, transactions):
    """Store ``value`` as attribute ``value`` of a new Bag; commit; load it
    in a new transaction with a new data manager.  Returns the loaded Bag,
    or raises what the commit raised (after aborting)."""
    transaction.abort()
    mongo.db[hm.BAG].delete_many({})
    dm = mongo.make_datamanager(transactions=transactions)
    ref = dm.insert(hm.Bag(value=value))
    try:
        transaction.commit()
    except Exception:
        transaction.abort()
        raise
    loaded = mongo.make_datamanager(transactions=transactions).load(ref)
    loaded._p_activate()
    return loaded


@SETTINGS
@given(value=graphs(), transactions=st.booleans())
@example(value=[INT64_MIN, INT64_MAX, 1 << 31, -(1 << 31) - 1],
         transactions=True)
@example(value={'x': INT64_MAX + 1}, transactions=False)
@example(value={(1, INT64_MIN - 1): 'huge int in a tuple key'},
         transactions=True)
@example(value=[float('inf'), float('-inf'), float('nan'), -0.0, 5e-324],
         transactions=True)
@example(value={s: s for s in SPECIAL_STRINGS}, transactions=False)
@example(value={1: 'int', '1': 'str', True: 'bool', None: 'none',
                (1, ('a', b'b')): 'tuple', b'k': 'bytes', 1.5: 'float'},
         transactions=True)
@example(value={'dict_data': [['a', 1]]}, transactions=True)
@example(value={'_py_type': 'type', 'path': 'os.system'}, transactions=True)
@example(value=hm.Part(**{'a.b': [1, (2, 3)], '$x': {'\x00': None}}),
         transactions=False)
@example(value=[datetime.datetime(1, 1, 1),
                datetime.datetime(9999, 12, 31, 23, 59, 59, 999999),
                datetime.datetime(1969, 12, 31, 23, 59, 59, 999999)],
         transactions=True)
@example(value=[datetime.datetime(2021, 10, 31, 2, 30, 0, 1,
                                  tzinfo=zoneinfo.ZoneInfo('Europe/Berlin'),
                                  fold=fold) for fold in (0, 1)],
         transactions=True)
@example(value=datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(
    datetime.timedelta(hours=1))), transactions=True)
def test_object_graph_round_trips_or_is_refused(mongo, value, transactions):
    refused_at = first_refusal(value)
    event('refused' if refused_at else 'round trip')
    if refused_at is not None:
        with pytest.raises(interfaces.SerializationError) as info:
            store_and_load(mongo, value, transactions)
        message = str(info.value)
        assert message.startswith('cannot store attribute %s of <Bag>: '
                                  % refused_at), message
        assert '64 bits' in message or 'outside the years 1-9999' in message
        # Nothing was written.
        assert mongo.db[hm.BAG].count_documents({}) == 0
        return
    loaded = store_and_load(mongo, value, transactions)
    try:
        assert sorted(loaded.__getstate__()) == ['value']
        assert_same(value, loaded.value)
        # Loading did not count as a change.
        assert not loaded._p_changed
    finally:
        transaction.abort()


# -- time zones, pinned -------------------------------------------------------

def round_trip(mongo, value):
    loaded = store_and_load(mongo, value, True)
    try:
        return loaded.value
    finally:
        transaction.abort()


def test_sub_second_utc_offset_round_trips(mongo):
    """The local microsecond differs from the UTC one here."""
    zone = datetime.timezone(datetime.timedelta(seconds=0.5))
    when = datetime.datetime(2020, 1, 1, 12, 0, 0, 0, tzinfo=zone)
    assert_same(when, round_trip(mongo, when))


def test_imaginary_wall_time_keeps_its_offset(mongo):
    """02:30 on 2021-03-28 does not exist in Berlin (clocks jump from 2:00
    to 3:00); the value says +01:00 and must come back so."""
    berlin = zoneinfo.ZoneInfo('Europe/Berlin')
    when = datetime.datetime(2021, 3, 28, 2, 30, 0, 123456, tzinfo=berlin)
    assert when.utcoffset() == datetime.timedelta(hours=1)
    assert_same(when, round_trip(mongo, when))
