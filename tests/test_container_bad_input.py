"""Bad names get zope.container's errors, change nothing and ask the
database nothing; odd but valid names are ordinary names."""
import pytest
import transaction
from zope.location.interfaces import IContained

from tests import container_models as models
from tests.container_support import KINDS, Home
from tests.container_support import container_cache  # noqa: F401
from tests.container_support import events, registry  # noqa: F401

QUERY_SHAPED = [{'$ne': None}, {'$gt': ''}, {'$regex': '.*'}, ['a'],
                ('a',), 1, 1.5, object()]
NOT_TEXT = [1, 1.5, b'\xf3abc', ['a'], {'$ne': None}, ('a',)]
NOT_NAMES = ['', '/', 'a/b', '+add', '@@view', '$where', '$ne']
ODD_NAMES = ['index.html', 'price$', '{"$ne": null}', 'a.b.c', 'x$', 'x$y',
             '{"$gt": ""}', '.hidden', 'with space', 'ünïcødé', '_id',
             'dict_data', 'a\x00b', "it's", '%24ne']


@pytest.fixture
def stocked(datamanager, request):
    """A committed container with one item, and the data manager."""
    def make(kind):
        home = Home(kind, datamanager)
        home.get()['existing'] = models.Item('Existing')
        transaction.commit()
        c = home.loaded()
        c.keys()
        return home, c
    return make


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('key', NOT_TEXT, ids=repr)
def test_names_that_are_not_text_are_type_errors(
        kind, key, stocked, mongo, container_cache):
    home, c = stocked(kind)
    item = models.Item('New')
    mongo.commands.reset()
    with pytest.raises(TypeError):
        c[key] = item
    with pytest.raises(TypeError):
        c.add(item, key)
    assert mongo.commands.count() == 0
    assert item._p_oid is None and item.__parent__ is None
    transaction.commit()
    assert home.get().keys() == ['existing']


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('key', NOT_NAMES, ids=repr)
def test_names_zope_or_mongo_forbid_are_value_errors(
        kind, key, stocked, mongo, container_cache):
    home, c = stocked(kind)
    item = models.Item('New')
    mongo.commands.reset()
    with pytest.raises(ValueError) as info:
        c[key] = item
    assert (repr(key) in str(info.value)) or key == ''
    assert mongo.commands.count() == 0
    assert item._p_oid is None and item.__parent__ is None
    transaction.commit()
    assert home.get().keys() == ['existing']


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('key', QUERY_SHAPED, ids=repr)
def test_query_shaped_lookups_never_reach_mongo(
        kind, key, stocked, mongo, container_cache):
    home, c = stocked(kind)
    mongo.commands.reset()
    with pytest.raises(TypeError, match='str'):
        c[key]
    with pytest.raises(TypeError):
        c.get(key)
    with pytest.raises(TypeError):
        key in c
    with pytest.raises(TypeError):
        del c[key]
    assert mongo.commands.count() == 0
    assert c.keys() == ['existing']


@pytest.mark.parametrize('kind', ['mongo', 'allitems', 'subdocument'])
def test_a_query_shaped_key_attribute_is_refused(kind, stocked, mongo):
    home, c = stocked(kind)
    item = models.Item('New', key={'$ne': None})
    mongo.commands.reset()
    with pytest.raises(TypeError):
        c[None] = item
    with pytest.raises(TypeError):
        c.add(item)
    assert mongo.commands.count() == 0
    assert item._p_oid is None


@pytest.mark.parametrize('kind', KINDS)
def test_odd_names_are_ordinary_names(kind, datamanager, container_cache):
    home = Home(kind, datamanager)
    c = home.get()
    for name in ODD_NAMES:
        c[name] = models.Item(name)
    assert sorted(c.keys()) == sorted(ODD_NAMES)
    transaction.commit()
    c = home.get()
    assert sorted(c.keys()) == sorted(ODD_NAMES)
    for name in ODD_NAMES:
        assert name in c
        assert c[name].name == name
        assert c[name].__name__ == name
    # Found exactly: no name matches another as a pattern or an operator.
    assert 'indexXhtml' not in c and 'price' not in c and 'x' not in c
    assert c.get('{"$ne": 0}') is None
    del c['{"$ne": null}']
    transaction.commit()
    assert sorted(home.get().keys()) == sorted(
        n for n in ODD_NAMES if n != '{"$ne": null}')


@pytest.mark.parametrize('kind', KINDS)
def test_ascii_bytes_names_are_converted(kind, datamanager, container_cache):
    c = Home(kind, datamanager).get()
    c[b'abc'] = models.Item('abc')
    assert c.keys() == ['abc']
    assert b'abc' in c and 'abc' in c
    assert c[b'abc'] is c['abc']
    del c[b'abc']
    assert c.keys() == []


@pytest.mark.parametrize('kind', ['mongo', 'allitems', 'subdocument'])
def test_an_item_without_a_name_attribute(kind, datamanager):
    c = Home(kind, datamanager).get()
    with pytest.raises(ValueError, match="no 'key' attribute"):
        c[None] = models.Item('nameless')
    with pytest.raises(ValueError, match="no 'key' attribute"):
        c.add(models.Item('nameless'))
    assert c.keys() == []


def test_idnames_lookups_of_names_that_are_no_ids(datamanager, mongo):
    home = Home('idnames', datamanager)
    home.get().add(models.Item('X'))
    transaction.commit()
    c = home.loaded()
    for name in ('roy', '4e7e9d3ae138232d7b000fff', '4E7E9D3AE138232D7B000FFF',
                 'abc'):
        with pytest.raises(KeyError):
            c[name]
        assert name not in c
        assert c.get(name) is None


def test_find_refuses_non_dict_filters_and_projections(datamanager, mongo):
    c = Home('mongo', datamanager).get()
    c['x'] = models.Item('X')
    mongo.commands.reset()
    with pytest.raises(TypeError):
        c.raw_find('x')
    with pytest.raises(TypeError):
        c.find({'name': 'X'}, {'name': 1})
    with pytest.raises(TypeError):
        c.find_one({'name': 'X'}, projection={'name': 1})
    assert mongo.commands.count() == 0


@pytest.mark.parametrize('kind', KINDS)
def test_locations_that_are_not_contained_are_refused(
        kind, datamanager, events):
    # zope.container would declare IContained on the object itself, which
    # no document can store: refused before anything happens.
    c = Home(kind, datamanager).get()
    located = models.Located()
    with pytest.raises(TypeError, match='declare IContained on its class'):
        c['x'] = located
    assert events == [] and located._p_oid is None
    assert not IContained.providedBy(located)
    assert c.keys() == []
