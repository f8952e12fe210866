"""What the container classes other than MongoContainer do differently."""
import bson
import pytest
import transaction

from tests import container_models as models
from tests.container_support import Home
from tests.container_support import container_cache  # noqa: F401
from zmongo import container


# -- IdNamesMongoContainer ----------------------------------------------------

def test_idnames_names_items_by_their_id(datamanager, mongo, container_cache):
    home = Home('idnames', datamanager)
    c = home.get()
    c.add(models.Item('Stephan'))
    [name] = c.keys()
    assert bson.ObjectId.is_valid(name)
    stephan = c[name]
    assert str(stephan._p_oid.id) == name and stephan.__name__ == name
    transaction.commit()
    doc = mongo.db.person.find_one()
    assert doc['_id'] == bson.ObjectId(name)
    assert 'key' not in doc
    assert doc['parent'] == home.ref
    c = home.get()
    assert c.keys() == [name] and c[name].name == 'Stephan'
    assert c.values()[0].__name__ == name


def test_idnames_a_given_name_becomes_the_id(datamanager, mongo,
                                             container_cache):
    c = Home('idnames', datamanager).get()
    oid = bson.ObjectId()
    c[str(oid)] = models.Item('A')
    c['not-an-object-id'] = models.Item('B')
    transaction.commit()
    assert mongo.db.person.find_one({'_id': oid})['name'] == 'A'
    assert mongo.db.person.find_one({'_id': 'not-an-object-id'})['name'] == \
        'B'


def test_idnames_an_existing_object_keeps_its_id(datamanager):
    c = Home('idnames', datamanager).get()
    other = Home('idnames', datamanager).get()
    c.add(models.Item('A'))
    [name] = c.keys()
    item = c[name]
    with pytest.raises(ValueError, match='names items by their _id'):
        other['something-else'] = item
    assert item.__parent__ is c
    other[None] = item                   # moved under its own name
    assert other.keys() == [name] and c.keys() == []


def test_idnames_always_removes_documents():
    c = container.IdNamesMongoContainer('person')
    assert c._m_remove_documents is True
    with pytest.raises(AttributeError):
        c._m_remove_documents = False


# -- AllItemsMongoContainer ---------------------------------------------------

def test_all_items_adds_without_a_parent(datamanager, mongo, container_cache):
    everybody = Home('allitems', datamanager).get()
    everybody['anton'] = models.Item('Anton')
    transaction.commit()
    doc = mongo.db.person.find_one()
    assert doc['key'] == 'anton' and 'parent' not in doc


# -- SubDocumentMongoContainer ------------------------------------------------

def test_sub_document_container_is_stored_in_its_parent(
        datamanager, mongo, container_cache):
    datamanager.root['app'] = app = models.Site()
    app['people'] = container.SubDocumentMongoContainer('person')
    app['people']['stephan'] = models.Item('Stephan')  # before any flush
    transaction.commit()
    [site] = list(mongo.db.site.find())
    people_state = site['data']['people']
    assert people_state['_py_persistent_type'] == \
        'zmongo.container.SubDocumentMongoContainer'
    assert people_state['_m_collection'] == 'person'
    assert mongo.db.person.find_one()['parent'] == \
        people_state['_m_container_id']
    people = datamanager.root['app']['people']
    assert people.__parent__ is datamanager.root['app']
    assert people.__name__ == 'people'
    assert people.keys() == ['stephan']
    assert people['stephan'].__parent__ is people


def test_sub_document_containers_do_not_share_items(
        datamanager, container_cache):
    datamanager.root['app'] = app = models.Site()
    app['a'] = container.SubDocumentMongoContainer('person')
    app['b'] = container.SubDocumentMongoContainer('person')
    app['a']['x'] = models.Item('in a')
    transaction.commit()
    app = datamanager.root['app']
    assert app['a'].keys() == ['x'] and app['b'].keys() == []


def test_sub_document_container_written_by_mongopersist(datamanager, mongo):
    # mongopersist had no container id: items name the container's state.
    state = {'_py_persistent_type':
             'zmongo.container.SubDocumentMongoContainer',
             '_m_collection': 'person'}
    site_id = mongo.db.site.insert_one({'data': {'people': state}}).inserted_id
    mongo.db.person.insert_one({'name': 'Old', 'key': 'old', 'parent': state})
    mongo.db.persistence_name_map.insert_many([
        {'collection': 'site', 'database': mongo.db_name,
         'path': 'tests.container_models.Site', 'doc_has_type': False},
        {'collection': 'person', 'database': mongo.db_name,
         'path': 'tests.container_models.Person', 'doc_has_type': False}])
    site = datamanager.load(bson.DBRef('site', site_id, mongo.db_name))
    people = site['people']
    assert people.keys() == ['old']
    assert people['old'].name == 'Old'


# -- SimpleMongoContainer -----------------------------------------------------

def test_simple_container_format(datamanager, mongo):
    datamanager.root['c'] = c = container.SimpleMongoContainer()
    transaction.commit()
    assert list(mongo.db['zmongo.container.SimpleMongoContainer'].find(
        {}, {'_id': 0})) == [{'data': {}}]
    c = datamanager.root['c']
    c['stephan'] = models.SimplePerson('Stephan')
    c['index.html'] = models.SimplePerson('Index')
    transaction.commit()
    [doc] = mongo.db['zmongo.container.SimpleMongoContainer'].find()
    stephan = mongo.db.person.find_one({'name': 'Stephan'})
    assert doc['data'] == {'dict_data': [
        ['stephan', bson.DBRef('person', stephan['_id'], mongo.db_name)],
        ['index.html', bson.DBRef('person', mongo.db.person.find_one(
            {'name': 'Index'})['_id'], mongo.db_name)]]}
    assert stephan['__name__'] == 'stephan'
    assert stephan['__parent__'] == datamanager.root['c']._p_oid
    c = datamanager.root['c']
    assert c['stephan'].__parent__ is c
    assert sorted(c.keys()) == ['index.html', 'stephan']


def test_simple_container_removes_documents(datamanager, mongo):
    datamanager.root['c'] = c = container.SimpleMongoContainer()
    c['stephan'] = models.SimplePerson('Stephan')
    transaction.commit()
    del datamanager.root['c']['stephan']
    transaction.commit()
    assert mongo.db.person.count_documents({}) == 0
    assert datamanager.root['c'].keys() == []
