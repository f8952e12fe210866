"""find, find_one, raw_find, raw_find_one: queries within one container."""
import bson
import pytest
import transaction

from tests import container_models as models
from tests.container_support import COLLECTION_KINDS, Home
from tests.container_support import container_cache  # noqa: F401

NAMES = ['Stephan', 'Roy', 'Roger', 'Adam', 'Albertas', 'Russ']


@pytest.fixture
def people(datamanager):
    """Two containers over one collection, committed; the first is used."""
    def make(kind):
        home = Home(kind, datamanager)
        c = home.get()
        for name in NAMES:
            c[name.lower()] = models.Item(name)
        if kind != 'allitems':
            other = Home(kind, datamanager).get()
            other['roland'] = models.Item('Roland')
        transaction.commit()
        return home.loaded()
    return make


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_raw_find_adds_the_container_filter(kind, people, container_cache):
    c = people(kind)
    docs = list(c.raw_find({'name': {'$regex': '^Ro'}}))
    assert sorted(d['name'] for d in docs) == ['Roger', 'Roy']
    assert sorted(d['name'] for d in c.raw_find()) == sorted(NAMES)
    assert c.raw_find_one({'name': 'Roland'}) is None
    assert c.raw_find_one({'name': 'Adam'})['name'] == 'Adam'


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_find_gives_located_objects(kind, people, container_cache):
    c = people(kind)
    found = list(c.find({'name': {'$regex': '^Ro'}}))
    assert sorted(p.name for p in found) == ['Roger', 'Roy']
    for item in found:
        assert item.__parent__ is c
        assert c[item.__name__] is item
        assert item._p_changed is False
    assert sorted(p.name for p in c.find()) == sorted(NAMES)
    assert c.find_one({'name': {'$regex': '^XXX'}}) is None
    first = c.find_one()
    assert first.name in NAMES and first.__parent__ is c
    stephan = c.find_one({'name': 'Stephan'})
    assert c.find_one(stephan._p_oid.id) is stephan
    assert c.find_one(bson.ObjectId()) is None


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_pymongo_options_pass_through(kind, people):
    c = people(kind)
    found = [p.name for p in c.find({}, sort=[('name', 1)], limit=2)]
    assert found == ['Adam', 'Albertas']
    assert [d['name'] for d in c.raw_find({}, {'name': 1},
                                          sort=[('name', -1)], limit=1)] == \
        ['Stephan']


@pytest.mark.parametrize('kind', ['mongo', 'idnames', 'subdocument'])
def test_a_filter_on_the_parent_field_cannot_escape(kind, people):
    c = people(kind)
    # The caller's condition is combined with the container's, not
    # substituted for it.
    assert list(c.raw_find({'parent': {'$exists': True}, 'name': 'Roland'})) \
        == []
    assert c.find_one({'parent': {'$ne': None}, 'name': 'Roland'}) is None
    assert len(list(c.find({'parent': {'$ne': None}}))) == len(NAMES)


def test_find_sees_changes_of_the_transaction(datamanager, container_cache):
    c = Home('mongo', datamanager).get()
    c['new'] = models.Item('New')
    assert [p.name for p in c.find({'name': 'New'})] == ['New']
    c['new'].name = 'Renamed'
    assert c.find_one({'name': 'Renamed'}) is c['new']
