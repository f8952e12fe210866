"""Schema fields that accept the persistent types zmongo loads."""
import pytest
import transaction
import zope.schema
import zope.schema.interfaces

from tests import models
from zmongo import schema
from zmongo.serialize import PersistentDict
from zmongo.serialize import PersistentList


def test_sequence_accepts_lists_tuples_and_loaded_lists(datamanager):
    field = schema.MongoSequence(value_type=zope.schema.TextLine())
    assert zope.schema.interfaces.IList.providedBy(field)
    field.validate(['a'])
    field.validate(('a',))
    datamanager.root['p'] = models.Person('Ada', visited=['x'])
    transaction.commit()
    loaded = datamanager.root['p'].visited
    assert isinstance(loaded, PersistentList)
    field.validate(loaded)
    with pytest.raises(zope.schema.interfaces.WrongType):
        field.validate({'a': 1})
    with pytest.raises(zope.schema.interfaces.WrongContainedType):
        field.validate([1])
    with pytest.raises(zope.schema.interfaces.WrongType):
        zope.schema.List().validate(loaded)   # why the field exists


def test_mapping_accepts_dicts_and_loaded_dicts(datamanager):
    field = schema.MongoMapping(key_type=zope.schema.TextLine(),
                                value_type=zope.schema.Int())
    assert zope.schema.interfaces.IDict.providedBy(field)
    field.validate({'a': 1})
    datamanager.root['p'] = models.Person('Ada', friends={'a': 1})
    transaction.commit()
    loaded = datamanager.root['p'].friends
    assert isinstance(loaded, PersistentDict)
    field.validate(loaded)
    with pytest.raises(zope.schema.interfaces.WrongType):
        field.validate(['a'])
