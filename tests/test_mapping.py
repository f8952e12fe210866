"""MongoCollectionMapping: a collection keyed by one attribute."""
import pytest
import transaction

from tests import models
from zmongo import mapping


class People(mapping.MongoCollectionMapping):
    __mongo_collection__ = models.PERSON
    __mongo_mapping_key__ = 'short_name'


def test_mapping_over_a_collection(datamanager):
    people = People(datamanager)
    assert people.keys() == []
    datamanager.root['stephan'] = models.Person('Stephan')
    transaction.commit()
    assert People(datamanager).keys() == []
    People(datamanager)['stephan'] = datamanager.root['stephan']
    transaction.commit()
    assert People(datamanager).keys() == ['stephan']
    assert People(datamanager)['stephan'].name == 'Stephan'
    assert len(People(datamanager)) == 1
    assert 'stephan' in People(datamanager)
    assert People(datamanager).get('nobody') is None


def test_setting_the_key_attribute_adds_to_the_mapping(datamanager):
    datamanager.root['roy'] = models.Person('Roy')
    transaction.commit()
    datamanager.root['roy'].short_name = 'roy'
    transaction.commit()
    assert People(datamanager).keys() == ['roy']


def test_new_objects_are_added(datamanager, mongo):
    People(datamanager)['new'] = models.Person('New')
    transaction.commit()
    assert mongo.db[models.PERSON].find_one()['short_name'] == 'new'


def test_deleting_only_clears_the_key(datamanager, mongo):
    People(datamanager)['x'] = models.Person('X')
    transaction.commit()
    del People(datamanager)['x']
    transaction.commit()
    assert People(datamanager).keys() == []
    assert mongo.db[models.PERSON].find_one()['short_name'] is None
    with pytest.raises(KeyError):
        People(datamanager)['x']


def test_query_shaped_keys_are_refused(datamanager):
    People(datamanager)['x'] = models.Person('X')
    transaction.commit()
    with pytest.raises(TypeError, match='keys cannot be dict'):
        People(datamanager)[{'$ne': None}]
    with pytest.raises(TypeError):
        People(datamanager)[{'$ne': None}] = models.Person('Y')


def test_filter_and_collection(datamanager):
    class Adults(People):
        def __mongo_filter__(self):
            return {'adult': True}
    datamanager.root['a'] = adult = models.Person('A')
    adult.short_name, adult.adult = 'a', True
    datamanager.root['k'] = kid = models.Person('K')
    kid.short_name, kid.adult = 'k', False
    transaction.commit()
    assert Adults(datamanager).keys() == ['a']
    assert Adults(datamanager).get_mongo_collection().collection.name == \
        models.PERSON
