"""A collection seen as a mapping, keyed by one attribute of its objects."""
import collections.abc

import bson

from zmongo import _names
from zmongo import _oid


class MongoCollectionMapping(collections.abc.MutableMapping):
    """Maps the ``__mongo_mapping_key__`` attribute of a collection's objects
    to the objects.

    Documents whose key is missing or ``None`` are not in the mapping, so
    deleting a key only sets it to ``None``: the object stays stored.
    Subclass and set ``__mongo_collection__`` (and optionally
    ``__mongo_database__``, ``__mongo_mapping_key__``, ``__mongo_filter__``).
    """

    __mongo_database__ = None
    __mongo_collection__ = None
    __mongo_mapping_key__ = 'key'

    def __init__(self, jar):
        self._m_jar = jar

    def __mongo_filter__(self):
        """The query selecting this mapping's documents (a new dict each
        call: the key condition is added to it).  Override it when several
        mappings share a collection."""
        return {}

    @property
    def _m_database(self):
        return self.__mongo_database__ or self._m_jar.default_database

    def get_mongo_collection(self):
        """The wrapped collection: queries through it see the
        transaction's pending changes."""
        return self._m_jar.get_collection(self._m_database,
                                          self.__mongo_collection__)

    def _filter(self, key):
        if isinstance(key, (dict, list)):
            raise TypeError('%s keys cannot be %s (a query would match '
                            'other documents): %r'
                            % (type(self).__name__, type(key).__name__, key))
        filter_ = self.__mongo_filter__()
        filter_[self.__mongo_mapping_key__] = key
        return filter_

    def __getitem__(self, key):
        doc = self.get_mongo_collection().find_one(self._filter(key))
        if doc is None:
            raise KeyError(key)
        dbref = _oid.oid(self.__mongo_collection__, doc[_names.ID],
                         self._m_database)
        return self._m_jar.load_from_document(dbref, doc)

    def __setitem__(self, key, value):
        self._filter(key)
        # A new object gets added to the data manager here; an existing one
        # is registered so the new key is written.
        self._m_jar.register(value)
        setattr(value, self.__mongo_mapping_key__, key)

    def __delitem__(self, key):
        value = self[key]
        setattr(value, self.__mongo_mapping_key__, None)

    def _keyed_filter(self):
        filter_ = self.__mongo_filter__()
        filter_[self.__mongo_mapping_key__] = {'$ne': None}
        return filter_

    def __iter__(self):
        key = self.__mongo_mapping_key__
        docs = self.get_mongo_collection().find(self._keyed_filter(),
                                                {key: 1})
        return iter([doc[key] for doc in docs])

    def keys(self):
        return list(self)

    def __len__(self):
        return self.get_mongo_collection().count_documents(
            self._keyed_filter())

    def __contains__(self, key):
        return self.get_mongo_collection().find_one(
            self._filter(key), {_names.ID: 1}) is not None
