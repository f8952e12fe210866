"""Container keys issue 9 lists that tests/test_container_bad_input.py does
not cover: ``'$where'`` on every operation (it only tries ``c[key] = ...``),
``{'$in': [...]}``, very long names and NUL next to a shorter name -- on
lookup, ``in``, ``get``, delete and add, in every container class
(``SimpleMongoContainer`` included).  The command counter proves that
query-shaped keys never reach Mongo."""
import pytest
import transaction

from tests import container_models as models
from tests.container_support import KINDS, Home
from tests.container_support import container_cache  # noqa: F401

QUERY_SHAPED = [{'$in': ['existing', 'other']}, {'$nin': []},
                {'$where': 'true'}, {'key': 'existing'}]
LONG = 'n' * 10000


def field_names(doc):
    """Every field name in a command document, at any depth."""
    names = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            names.add(key)
            names |= field_names(value)
    elif isinstance(doc, (list, tuple)):
        for value in doc:
            names |= field_names(value)
    return names


@pytest.fixture
def stocked(datamanager):
    def make(kind):
        home = Home(kind, datamanager)
        home.get()['existing'] = models.Item('Existing')
        transaction.commit()
        c = home.loaded()
        c.keys()
        return home, c
    return make


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('key', QUERY_SHAPED, ids=repr)
def test_query_shaped_keys_never_reach_mongo(kind, key, stocked, mongo,
                                             container_cache):
    home, c = stocked(kind)
    item = models.Item('New')
    mongo.commands.reset()
    with pytest.raises(TypeError):
        c[key]
    with pytest.raises(TypeError):
        c.get(key)
    with pytest.raises(TypeError):
        key in c
    with pytest.raises(TypeError):
        del c[key]
    with pytest.raises(TypeError):
        c[key] = item
    with pytest.raises(TypeError):
        c.add(item, key)
    assert mongo.commands.count() == 0
    assert item._p_oid is None and item.__parent__ is None
    transaction.commit()
    assert home.get().keys() == ['existing']


@pytest.mark.parametrize('kind', KINDS)
def test_dollar_where_is_no_name_anywhere(kind, stocked, mongo,
                                          container_cache):
    home, c = stocked(kind)
    item = models.Item('New')
    mongo.commands.reset()
    with pytest.raises(ValueError, match=r"\$where"):
        c['$where'] = item
    with pytest.raises(ValueError, match=r"\$where"):
        c.add(item, '$where')
    assert mongo.commands.count() == 0
    assert item._p_oid is None and item.__parent__ is None
    # Looking it up is looking up a name that cannot exist: a plain miss,
    # asked (if at all) as a value, never as an operator.
    with pytest.raises(KeyError):
        c['$where']
    assert c.get('$where') is None
    assert '$where' not in c
    with pytest.raises(KeyError):
        del c['$where']
    # Where a lookup asked Mongo, '$where' was a value, never a field name
    # or an operator.
    for _, _, command in mongo.commands.commands:
        assert '$where' not in field_names(command), command
    transaction.commit()
    assert home.get().keys() == ['existing']


@pytest.mark.parametrize('kind', KINDS)
def test_very_long_names_are_stored_and_found_exactly(
        kind, datamanager, container_cache):
    home = Home(kind, datamanager)
    c = home.get()
    c[LONG] = models.Item('long')
    c[LONG + 'x'] = models.Item('longer')
    transaction.commit()
    c = home.get()
    assert sorted(c.keys()) == [LONG, LONG + 'x']
    assert c[LONG].name == 'long' and c[LONG].__name__ == LONG
    assert LONG + 'x' in c and LONG[:-1] not in c
    assert c.get(LONG + 'y') is None
    with pytest.raises(KeyError):
        del c[LONG[:-1]]
    del c[LONG]
    transaction.commit()
    assert home.get().keys() == [LONG + 'x']


@pytest.mark.parametrize('kind', KINDS)
def test_nul_names_are_told_apart(kind, datamanager, container_cache):
    home = Home(kind, datamanager)
    c = home.get()
    c['a'] = models.Item('a')
    c['a\x00b'] = models.Item('a-nul-b')
    transaction.commit()
    c = home.get()
    assert sorted(c.keys()) == ['a', 'a\x00b']
    assert c['a'].name == 'a' and c['a\x00b'].name == 'a-nul-b'
    assert 'a\x00' not in c and '\x00' not in c and 'a\x00c' not in c
    assert c.get('a\x00') is None
    with pytest.raises(KeyError):
        c['a\x00']
    with pytest.raises(KeyError):
        del c['a\x00']
    del c['a\x00b']
    transaction.commit()
    assert home.get().keys() == ['a']
