"""The indexes containers make sure of, and unique names under concurrency."""
import logging

import pytest
import transaction

from tests import container_models as models
from tests.container_support import container_cache  # noqa: F401
from zmongo import interfaces


def indexes(mongo, collection='person'):
    return {ix['name']: ix for ix in mongo.db[collection].list_indexes()}


def test_a_container_makes_its_unique_index(datamanager, mongo):
    c = models.People()
    datamanager.insert(c)
    assert c.keys() == []
    transaction.commit()
    ix = indexes(mongo)['zmongo_container_parent_key']
    assert dict(ix['key']) == {'parent': 1, 'key': 1}
    assert ix['unique'] is True
    assert dict(ix['partialFilterExpression']) == {'key': {'$gte': ''}}


def test_other_container_classes_make_lookup_indexes(datamanager, mongo):
    ids = models.IdPeople()
    everybody = models.AllPeople()
    datamanager.insert(ids)
    datamanager.insert(everybody)
    ids.keys()
    everybody.keys()
    transaction.commit()
    found = indexes(mongo)
    assert dict(found['zmongo_container_parent__id']['key']) == {
        'parent': 1, '_id': 1}
    assert dict(found['zmongo_container_key']['key']) == {'key': 1}
    assert not found['zmongo_container_key'].get('unique')


def test_objects_in_no_container_and_id_named_items_share_a_collection(
        datamanager, mongo):
    people, ids = models.People(), models.IdPeople()
    datamanager.insert(people)
    datamanager.insert(ids)
    people['a'] = models.Person('A')
    ids.add(models.Person('B'))
    ids.add(models.Person('C'))
    for name in 'DE':
        datamanager.insert(models.Person(name))   # in no container at all
    transaction.commit()
    assert mongo.db.person.count_documents({}) == 5
    assert len(datamanager.load(ids._p_oid)) == 2


def test_an_index_asked_for_inside_a_server_transaction(mongo):
    dm = mongo.make_datamanager(transactions=True)
    c = models.People()
    dm.insert(c)
    dm.get_collection(mongo.db_name, 'other').find_one({})  # opens it
    c['a'] = models.Person('A')
    assert 'zmongo_container_parent_key' not in indexes(mongo)
    transaction.commit()
    # Made right after the transaction, over what it wrote.
    assert 'zmongo_container_parent_key' in indexes(mongo)
    c = dm.load(c._p_oid)
    assert c['a'].name == 'A'
    plan = mongo.db.person.find({'parent': c._p_oid, 'key': 'a'}).explain()
    assert 'IXSCAN' in str(plan['queryPlanner']['winningPlan'])


def test_an_index_that_cannot_be_made_is_reported(datamanager, mongo, caplog):
    c = models.People()
    ref = datamanager.insert(c)
    transaction.commit()
    # Duplicates written by someone else prevent the unique index.
    mongo.db.person.insert_many([{'key': 'x', 'parent': ref, 'name': '1'},
                                 {'key': 'x', 'parent': ref, 'name': '2'}])
    with caplog.at_level(logging.WARNING, logger='zmongo.container'):
        c = datamanager.load(ref)
        assert c.keys() == ['x', 'x']
        transaction.commit()
    assert 'could not create the index zmongo_container_parent_key' in \
        caplog.text
    # It is not tried again and again.
    caplog.clear()
    c = datamanager.load(ref)
    c._p_activate()
    mongo.commands.reset()
    assert len(c) == 2
    assert mongo.commands.names == ['aggregate']
    assert caplog.text == ''


def test_a_name_is_used_once_per_transaction(datamanager, container_cache):
    c = models.People()
    datamanager.insert(c)
    c['x'] = models.Person('X')
    with pytest.raises(KeyError):
        c['x'] = models.Person('Another X')
    transaction.commit()
    c = datamanager.load(c._p_oid)
    with pytest.raises(KeyError):
        c.add(models.Person('Yet another', key='x'))
    assert c['x'].name == 'X'


def test_the_same_name_in_different_containers(datamanager, mongo):
    a, b = models.People(), models.People()
    datamanager.insert(a)
    datamanager.insert(b)
    a['x'] = models.Person('X in a')
    b['x'] = models.Person('X in b')
    transaction.commit()
    assert mongo.db.person.count_documents({'key': 'x'}) == 2


@pytest.mark.parametrize('transactions', [True, False],
                         ids=['transactions', 'standalone'])
def test_concurrent_adds_of_one_name_cannot_both_win(
        mongo, transactions, container_cache):
    tm1 = transaction.TransactionManager()
    tm2 = transaction.TransactionManager()
    dm1 = mongo.make_datamanager(transactions=transactions,
                                 transaction_manager=tm1)
    dm2 = mongo.make_datamanager(transactions=transactions,
                                 transaction_manager=tm2)
    c = models.People()
    ref = dm1.insert(c)
    c.keys()
    tm1.commit()
    c1, c2 = dm1.load(ref), dm2.load(ref)
    assert 'x' not in c1 and 'x' not in c2
    c1['x'] = models.Person('One')
    c2['x'] = models.Person('Two')
    tm1.commit()
    with pytest.raises((interfaces.DuplicateKeyError,
                        interfaces.ConflictError)) as info:
        tm2.commit()
    if isinstance(info.value, interfaces.DuplicateKeyError):
        assert "'key': 'x'" in str(info.value)
    tm2.abort()
    assert [d['name'] for d in mongo.db.person.find({'key': 'x'})] == ['One']
    # A retry sees the name taken, as zope.container reports it.
    c2 = dm2.load(ref)
    with pytest.raises(KeyError):
        c2['x'] = models.Person('Two')
    tm2.abort()


def test_embedded_server_finds_names_outside_the_index_prefix(
        datamanager, mongo):
    # zmongo.testing's fix: a query on the key alone, on a collection with
    # the (parent, key) partial index, still finds the documents.
    c = models.People()
    datamanager.insert(c)
    c['x'] = models.Person('X')
    transaction.commit()
    assert 'zmongo_container_parent_key' in indexes(mongo)
    assert [d['name'] for d in mongo.db.person.find({'key': 'x'})] == ['X']


def test_indexes_are_made_once_per_collection(datamanager, mongo):
    a, b = models.People(), models.People()
    datamanager.insert(a)
    datamanager.insert(b)
    transaction.commit()
    mongo.commands.reset()
    datamanager.load(a._p_oid).keys()
    datamanager.load(b._p_oid).keys()
    transaction.commit()
    datamanager.load(a._p_oid).keys()
    assert mongo.commands.count('createIndexes') == 1
