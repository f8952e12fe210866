"""Schema fields whose values may be the persistent types zmongo loads.

A list or dict stored in MongoDB comes back as zmongo's ``PersistentList`` /
``PersistentDict`` (so that changes are tracked); plain ``zope.schema``
``List``/``Dict`` fields would reject them on validation.
"""
import zope.interface
import zope.schema
import zope.schema.interfaces

from zmongo.serialize import PersistentDict
from zmongo.serialize import PersistentList


@zope.interface.implementer(zope.schema.interfaces.IList)
class MongoSequence(zope.schema.List):
    """A sequence field accepting lists, tuples and ``PersistentList``."""
    _type = (list, tuple, PersistentList)


@zope.interface.implementer(zope.schema.interfaces.IDict)
class MongoMapping(zope.schema.Dict):
    """A mapping field accepting dicts and ``PersistentDict``."""
    _type = (dict, PersistentDict)
