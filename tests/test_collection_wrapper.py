"""Collections handed out by the data manager."""
import pymongo.collection
import transaction
import zope.component
import zope.interface

from tests import models
from zmongo import interfaces
from zmongo.datamanager import CollectionWrapper


def person_collection(dm):
    return dm.get_collection(dm.default_database, models.PERSON)


def test_wrapper_exposes_the_raw_collection(datamanager):
    coll = person_collection(datamanager)
    assert isinstance(coll, CollectionWrapper)
    assert isinstance(coll.collection, pymongo.collection.Collection)
    assert coll.name == models.PERSON               # passed through
    assert coll.collection.database.name == datamanager.default_database


def test_collection_from_object(datamanager):
    address = models.Address('Maynard', '01754')
    coll = datamanager.get_collection_from_object(address)
    assert coll.collection.name == 'address'
    person = models.Person('Ada')
    datamanager.insert(person)
    assert datamanager.get_collection_from_object(person).collection.name \
        == models.PERSON


def test_queries_flush_first(datamanager):
    datamanager.insert(models.Person('Ada'))
    assert person_collection(datamanager).count_documents({}) == 1
    assert person_collection(datamanager).find_one()['name'] == 'Ada'


def test_find_objects_loads_without_further_queries(datamanager, mongo):
    for name in 'abcde':
        datamanager.insert(models.Person(name))
    transaction.commit()
    mongo.commands.reset()
    people = list(person_collection(datamanager).find_objects({}))
    assert sorted(p.name for p in people) == list('abcde')
    assert mongo.commands.names == ['find']
    one = person_collection(datamanager).find_one_object({'name': 'c'})
    assert one is [p for p in people if p.name == 'c'][0]
    assert person_collection(datamanager).find_one_object(
        {'name': 'zz'}) is None


def test_writes_through_the_wrapper_join_the_transaction(datamanager, mongo):
    person_collection(datamanager).insert_one({'name': 'raw'})
    transaction.abort()
    if datamanager.uses_transactions:
        assert mongo.db[models.PERSON].count_documents({}) == 0


@zope.interface.implementer(interfaces.IMongoSpecProcessor)
class OnlyAda:
    def __init__(self, context):
        self.calls = []

    def process(self, collection, spec):
        spec = dict(spec or {})
        spec['name'] = 'Ada'
        return spec


def test_spec_processor_sees_every_query(datamanager):
    for name in ('Ada', 'Bob'):
        datamanager.insert(models.Person(name))
    transaction.commit()
    gsm = zope.component.getGlobalSiteManager()
    gsm.registerAdapter(OnlyAda, (None,), interfaces.IMongoSpecProcessor)
    try:
        coll = person_collection(datamanager)
        assert [d['name'] for d in coll.find({})] == ['Ada']
        assert [d['name'] for d in coll.find()] == ['Ada']
        assert coll.find_one({'name': 'Bob'})['name'] == 'Ada'
    finally:
        gsm.unregisterAdapter(OnlyAda, (None,),
                              interfaces.IMongoSpecProcessor)
    assert person_collection(datamanager).count_documents({}) == 2
