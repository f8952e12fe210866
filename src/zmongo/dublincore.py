"""Dublin Core metadata kept in the ``dc`` field of the object's document.

``ZopeDublinCore`` stores its values under keys such as ``Date.Created``;
MongoDB field names cannot contain dots, so they are stored as
``Date_Created`` inside the ``dc`` sub-document, where they stay queryable
(``{'dc.Date_Created': ...}``).
"""
import collections
import collections.abc

import zope.interface
from zope.dublincore.interfaces import IWriteZopeDublinCore
from zope.dublincore.zopedublincore import ZopeDublinCore
from zope.location import Location
from zope.security.proxy import removeSecurityProxy


class DCDataWrapper(collections.abc.MutableMapping):
    """The ``dc`` dict, seen with ZopeDublinCore's dotted key names."""

    def __init__(self, data):
        self.data = data

    @staticmethod
    def _field(key):
        return key.replace('.', '_')

    def __getitem__(self, key):
        # ZopeDublinCore stores tuples of strings; BSON gives back lists.
        value = self.data[self._field(key)]
        if isinstance(value, (list, collections.UserList)):
            return tuple(value)
        return value

    def __setitem__(self, key, value):
        self.data[self._field(key)] = value

    def __delitem__(self, key):
        del self.data[self._field(key)]

    def __iter__(self):
        return iter([k.replace('_', '.') for k in self.data])

    def __len__(self):
        return len(self.data)


@zope.interface.implementer(IWriteZopeDublinCore)
class ZDCAnnotatableAdapter(ZopeDublinCore, Location):
    """Zope Dublin Core for Mongo-stored objects, data in their ``dc`` field.
    """

    DCKEY = 'dc'

    def __init__(self, context):
        self.__parent__ = context
        self.__name__ = self.DCKEY
        naked = removeSecurityProxy(context)
        if getattr(naked, self.DCKEY, None) is None:
            setattr(naked, self.DCKEY, {})
        super().__init__(DCDataWrapper(getattr(naked, self.DCKEY)))

    def _changed(self):
        removeSecurityProxy(self.__parent__)._p_changed = True
