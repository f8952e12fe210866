"""Annotations kept in the annotated object's own document.

``zope.annotation``'s attribute annotations keep a BTree in
``__annotations__``; for a Mongo-stored object that would be an opaque
blob.  Here each annotation is a field of the object's document, named by
its key with ``.`` turned into ``_`` (MongoDB field names cannot contain
dots), so ``zope.app.dublincore.ZopeDublinCore`` is stored in the field
``zope_app_dublincore_ZopeDublinCore`` -- the layout mongopersist used.
"""
import collections.abc

from zope import component
from zope import interface
from zope.annotation import interfaces

#: The document field listing the annotation keys (so they can be listed).
KEYS_FIELD = '_m_annotation_keys'


class IMongoAttributeAnnotatable(interfaces.IAnnotatable):
    """Marker: annotations of this object are fields of its document."""


def normalize_key(key):
    """The field name an annotation key is stored under."""
    if not isinstance(key, str):
        raise TypeError('annotation keys are str, not %s: %r'
                        % (type(key).__name__, key))
    return key.replace('.', '_')


@interface.implementer(interfaces.IAnnotations)
@component.adapter(IMongoAttributeAnnotatable)
class AttributeAnnotations(collections.abc.MutableMapping):
    """``IAnnotations`` for a Mongo-stored object (see module docstring)."""

    def __init__(self, obj, context=None):
        self.obj = obj
        self.__parent__ = obj
        self.__name__ = None

    def __bool__(self):
        return True

    def _keys(self):
        return list(getattr(self.obj, KEYS_FIELD, ()) or ())

    def __getitem__(self, key):
        name = normalize_key(key)
        if name not in self._keys() and not hasattr(self.obj, name):
            raise KeyError(key)
        try:
            return getattr(self.obj, name)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key, value):
        name = normalize_key(key)
        keys = self._keys()
        if name not in keys:
            setattr(self.obj, KEYS_FIELD, keys + [name])
        setattr(self.obj, name, value)

    def __delitem__(self, key):
        name = normalize_key(key)
        try:
            delattr(self.obj, name)
        except AttributeError:
            raise KeyError(key) from None
        keys = self._keys()
        if name in keys:
            keys.remove(name)
            setattr(self.obj, KEYS_FIELD, keys)

    def __iter__(self):
        return iter(self._keys())

    def __len__(self):
        return len(self._keys())
