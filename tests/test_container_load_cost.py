"""Loading a container's items: the parent field is not sent back per item,
and what is loaded that way still counts as unchanged."""
import bson
import pytest
import transaction
import zope.component
import zope.interface

from tests import container_models as models
from tests.container_support import COLLECTION_KINDS, Home
from tests.container_support import container_cache  # noqa: F401
from zmongo import container
from zmongo import interfaces


def fill(kind, datamanager, count):
    home = Home(kind, datamanager)
    c = home.get()
    for i in range(count):
        c.add(models.Item('item %d' % i), None if kind == 'idnames'
              else 'k%d' % i)
    transaction.commit()
    return home


def _listing(c, how):
    if how == 'items':
        return [obj for _, obj in c.items()]
    if how == 'values':
        return c.values()
    return list(c.find({'name': {'$ne': None}}))


@pytest.mark.parametrize('how', ['items', 'values', 'find'])
@pytest.mark.parametrize('kind', ['mongo', 'idnames'])
def test_listings_leave_the_parent_field_out(
        kind, how, datamanager, mongo, container_cache):
    home = fill(kind, datamanager, 5)
    c = home.loaded()
    mongo.commands.reset()
    items = _listing(c, how)
    finds = [cmd for name, _, cmd in mongo.commands.commands
             if name == 'find']
    assert [cmd.get('projection') for cmd in finds] == [{'parent': 0}]
    assert len(items) == 5
    assert all(item.parent is c and item.__parent__ is c for item in items)
    # In the object's state as it would be stored.
    state = items[0].__getstate__()
    assert state['parent'] is c
    transaction.commit()


@pytest.mark.parametrize('how', ['items', 'find'])
@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_items_loaded_by_a_listing_and_marked_changed_are_not_written(
        kind, how, datamanager, mongo, container_cache):
    home = fill(kind, datamanager, 6)
    c = home.loaded()
    items = _listing(c, how)
    for item in items:
        item._p_changed = True
    mongo.commands.reset()
    transaction.commit()
    assert 'update' not in mongo.commands.names
    assert 'insert' not in mongo.commands.names


@pytest.mark.parametrize('kind', ['mongo', 'idnames'])
def test_a_changed_item_loaded_by_a_listing_is_written_with_its_parent(
        kind, datamanager, mongo, container_cache):
    home = fill(kind, datamanager, 3)
    c = home.loaded()
    items = c.values()
    items[0].name = 'renamed'
    transaction.commit()
    doc = mongo.db.person.find_one({'name': 'renamed'})
    assert isinstance(doc['parent'], bson.DBRef)
    assert doc['parent'] == home.ref
    c = home.get()
    assert sorted(item.name for item in c.values())[-1] == 'renamed'
    transaction.commit()


@zope.interface.implementer(interfaces.IMongoSpecProcessor)
class SameSpec:
    def __init__(self, context):
        pass

    def process(self, collection, spec):
        return spec


def test_a_spec_processor_keeps_the_whole_document(datamanager, mongo):
    """A registered ``IMongoSpecProcessor`` may change the filter: then the
    parent field is read from the documents, not taken from it."""
    home = fill('mongo', datamanager, 3)
    c = home.loaded()
    gsm = zope.component.getGlobalSiteManager()
    gsm.registerAdapter(SameSpec, (None,), interfaces.IMongoSpecProcessor)
    try:
        mongo.commands.reset()
        items = c.values()
        finds = [cmd for name, _, cmd in mongo.commands.commands
                 if name == 'find']
        assert [cmd.get('projection') for cmd in finds] == [None]
        assert all(item.parent is c for item in items)
    finally:
        gsm.unregisterAdapter(SameSpec, (None,),
                              interfaces.IMongoSpecProcessor)
    transaction.commit()


def test_an_all_items_container_reads_every_parent(datamanager, mongo):
    home = fill('mongo', datamanager, 2)
    everything = container.AllItemsMongoContainer('person')
    datamanager.root['all'] = everything
    transaction.commit()
    mongo.commands.reset()
    items = everything.values()
    assert not any(cmd.get('projection') for name, _, cmd in
                   mongo.commands.commands if name == 'find')
    assert all(item.parent is home.get() for item in items)
    transaction.commit()


def test_find_with_projection_none_is_a_whole_find(datamanager, mongo):
    home = fill('mongo', datamanager, 2)
    c = home.loaded()
    items = list(c.find(None, projection=None, sort=[('key', 1)]))
    assert [item.__name__ for item in items] == ['k0', 'k1']
    assert all(item.parent is c for item in items)
    transaction.commit()
