"""Dublin Core metadata kept in the ``dc`` field of the object's document.

``ZopeDublinCore`` stores its values under keys such as ``Date.Created``;
MongoDB field names cannot contain dots, so they are stored as
``Date_Created`` inside the ``dc`` sub-document, where they stay queryable
(``{'dc.Date_Created': ...}``).

Reading never writes: an object without metadata has no ``dc`` field, and
gets one only when a value is set (a listing that shows titles must not
write to every item it shows).
"""
import collections
import collections.abc

import zope.interface
from zope.dublincore.interfaces import IWriteZopeDublinCore
from zope.dublincore.zopedublincore import ZopeDublinCore
from zope.location import Location
from zope.security.proxy import removeSecurityProxy


class DCDataWrapper(collections.abc.MutableMapping):
    """The ``dc`` dict of ``context``, seen with ZopeDublinCore's dotted key
    names; the dict is created on the first write only."""

    def __init__(self, context, field='dc'):
        self.context = context
        self.field = field

    @property
    def data(self):
        """The stored dict, or an empty one if there is none (not stored)."""
        return getattr(self.context, self.field, None) or {}

    def _writable(self):
        data = getattr(self.context, self.field, None)
        if data is None:
            data = {}
            setattr(self.context, self.field, data)
        return data

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
        self._writable()[self._field(key)] = value

    def __delitem__(self, key):
        del self._writable()[self._field(key)]

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
        super().__init__(DCDataWrapper(naked, self.DCKEY))

    def _changed(self):
        removeSecurityProxy(self.__parent__)._p_changed = True
