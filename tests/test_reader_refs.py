"""ObjectReader resolves every kind of DBRef to the object it points to.

The references zmongo hands out itself -- ``_p_oid``, the result of
``ObjectWriter.store()`` and ``insert()`` -- are ``HashedDBRef`` s, a
``DBRef`` subclass.  An application passes them back as readily as the
plain ``bson.DBRef`` pymongo decodes, so the reader must treat both (and any
other subclass) alike.
"""
import bson
import transaction

from tests.serialize_models import Holder
from zmongo import _oid


class AppDBRef(bson.DBRef):
    """A DBRef subclass an application might define."""


def stored_holder(datamanager):
    holder = Holder()
    holder.label = 'target'
    datamanager.root['holder'] = holder
    transaction.commit()
    # The object of this transaction (one per DBRef within a transaction).
    return datamanager.root['holder']


def test_store_result_resolves_to_the_object(datamanager):
    holder = Holder()
    ref = datamanager.writer.store(holder)
    assert type(ref) is _oid.HashedDBRef
    assert datamanager.reader.get_object(ref, None) is holder


def test_p_oid_resolves_like_a_plain_dbref(datamanager):
    holder = stored_holder(datamanager)
    oid = holder._p_oid
    assert type(oid) is _oid.HashedDBRef
    plain = bson.DBRef(oid.collection, oid.id, oid.database)
    reader = datamanager.reader
    assert reader.get_object(oid, None) is holder
    assert reader.get_object(plain, None) is holder


def test_any_dbref_subclass_is_a_reference(datamanager, mongo):
    oid = stored_holder(datamanager)._p_oid
    ref = AppDBRef(oid.collection, oid.id, oid.database)
    # A fresh data manager: the reader builds the ghost, nothing cached.
    obj = mongo.make_datamanager().reader.get_object(ref, None)
    assert isinstance(obj, Holder)
    assert obj._p_oid == oid
    assert obj.label == 'target'


def test_subclass_reference_without_database_points_into_owners_database(
        datamanager):
    holder = stored_holder(datamanager)
    oid = holder._p_oid
    ref = _oid.HashedDBRef(oid.collection, oid.id, None)
    # No database: the one of the document holding the reference.
    assert datamanager.reader.get_object(ref, holder) is holder


def test_references_inside_values_resolve(datamanager):
    holder = stored_holder(datamanager)
    value = datamanager.reader.get_object(
        {'one': holder._p_oid, 'many': [holder._p_oid]}, holder)
    assert value['one'] is holder
    assert value['many'][0] is holder

