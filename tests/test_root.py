"""Named roots (``persistence_root``)."""
import bson
import pytest
import transaction

from tests import models
from zmongo.datamanager import Root


def entries(mongo):
    return [(d['name'], d['ref']) for d in mongo.db.persistence_root.find()]


def test_root_is_a_mapping_stored_as_name_and_ref(datamanager, mongo):
    assert isinstance(datamanager.root, Root)
    datamanager.root['ada'] = ada = models.Person('Ada')
    transaction.commit()
    [(name, ref)] = entries(mongo)
    assert name == 'ada'
    assert isinstance(ref, bson.DBRef) and ref == ada._p_oid
    assert list(datamanager.root) == ['ada']
    assert datamanager.root.keys() == ['ada']
    assert len(datamanager.root) == 1
    assert 'ada' in datamanager.root and 'bob' not in datamanager.root
    assert datamanager.root['ada'].name == 'Ada'


def test_missing_name_is_a_key_error(datamanager):
    with pytest.raises(KeyError):
        datamanager.root['nobody']
    with pytest.raises(KeyError):
        del datamanager.root['nobody']
    assert datamanager.root.get('nobody') is None


def test_names_are_strings(datamanager):
    with pytest.raises(TypeError, match='root names are str'):
        datamanager.root[{'$ne': None}]


def test_replacing_a_root_removes_the_old_object(datamanager, mongo):
    datamanager.root['x'] = models.Person('Old')
    transaction.commit()
    datamanager.root['x'] = models.Person('New')
    transaction.commit()
    assert [d['name'] for d in mongo.db[models.PERSON].find()] == ['New']
    assert len(entries(mongo)) == 1
    assert datamanager.root['x'].name == 'New'


def test_deleting_a_root_removes_entry_and_object(datamanager, mongo):
    datamanager.root['x'] = models.Person('Ada')
    transaction.commit()
    del datamanager.root['x']
    transaction.commit()
    assert entries(mongo) == []
    assert mongo.db[models.PERSON].count_documents({}) == 0


def test_root_changes_are_undone_by_abort(datamanager, mongo):
    datamanager.root['x'] = models.Person('Ada')
    transaction.commit()
    before = entries(mongo)
    datamanager.root['y'] = models.Person('Bob')
    del datamanager.root['x']
    datamanager.flush()
    transaction.abort()
    assert entries(mongo) == before
    assert [d['name'] for d in mongo.db[models.PERSON].find()] == ['Ada']


def test_root_database_and_collection(mongo):
    dm = mongo.make_datamanager(root_collection='my_roots')
    dm.root['x'] = models.Person('Ada')
    transaction.commit()
    assert mongo.db.my_roots.count_documents({}) == 1
    root = Root(dm, database=mongo.db_name, collection='my_roots')
    assert root['x'].name == 'Ada'
