"""Named roots: the entry points of an object graph (``persistence_root``)."""
import collections.abc

import bson
from pymongo import DeleteOne, InsertOne, ReplaceOne

from zmongo import _indexes
from zmongo import _names
from zmongo import interfaces
from zmongo._collection import process_spec


class Root(collections.abc.MutableMapping):
    """A mapping of names to persistent objects, one document per name::

        {'name': 'stephan', 'ref': DBRef('myapp.Person', ObjectId(...), 'db')}

    Writes belong to the data manager's transaction like any other.  The
    root owns its objects: replacing or deleting a name removes the object
    it named (as mongopersist did).
    """

    database = None
    collection = _names.ROOT_COLLECTION

    def __init__(self, jar, database=None, collection=None):
        self._jar = jar
        if database is not None:
            self.database = database
        if collection is not None:
            self.collection = collection

    @property
    def _db_name(self):
        return self.database or self._jar.default_database

    @property
    def _collection_inst(self):
        return self._jar.get_collection(self._db_name, self.collection)

    @staticmethod
    def _check_name(key):
        if not isinstance(key, str):
            raise TypeError('root names are str, not %s: %r'
                            % (type(key).__name__, key))

    def _entry(self, key):
        self._check_name(key)
        find_cached = getattr(self._jar, 'find_cached', None)
        if find_cached is None:
            return self._collection_inst.find_one({_names.ROOT_NAME: key})
        # Through the data manager's document cache (pending changes are
        # written first, as the collection wrapper does).  Names are unique
        # once the index exists: an entry found then stays the answer
        # until it changes.
        raw = self._jar.raw_collection(self._db_name, self.collection)
        docs = find_cached(
            self._db_name, self.collection,
            process_spec(raw, {_names.ROOT_NAME: key}), one=True,
            unique=_indexes.index_made(raw, [(_names.ROOT_NAME, 1)]))
        return docs[0] if docs else None

    def __getitem__(self, key):
        doc = self._entry(key)
        if doc is None:
            raise KeyError(key)
        ref = doc.get(_names.ROOT_REF)
        if not isinstance(ref, bson.DBRef) or \
                not isinstance(ref.collection, str):
            raise interfaces.DocumentLoadError(
                'root entry %r (document %r of %s.%s) has no valid %r: %r'
                % (key, doc.get(_names.ID), self._db_name, self.collection,
                   _names.ROOT_REF, ref))
        return self._jar.load(ref)

    def _ensure_index(self):
        """A unique index on the name, so two transactions adding the same
        name cannot both commit (the loser gets a retryable
        ``NameConflictError``, as with a ``BTreeContainer``'s names).
        Created outside any server transaction: right away, or after the
        running one (as the containers' indexes are)."""
        _indexes.ensure_index(
            self._jar, self._jar.raw_collection(self._db_name,
                                                self.collection),
            [(_names.ROOT_NAME, 1)], name=_names.ROOT_INDEX, unique=True)

    def __setitem__(self, key, value):
        self._ensure_index()
        existing = self._entry(key)
        if value._p_oid is not None:
            # Removed earlier in this transaction (its old name deleted):
            # a move, so it stays.
            self._jar.cancel_removal(value)
        ref = value._p_oid if value._p_oid is not None \
            else self._jar.insert(value)
        if existing is None:
            entry = {_names.ID: bson.ObjectId(), _names.ROOT_NAME: key,
                     _names.ROOT_REF: ref}
            self._jar.queue_write(
                self._db_name, self.collection, InsertOne(entry),
                DeleteOne({_names.ID: entry[_names.ID]}))
            return
        if existing[_names.ROOT_REF] == ref:
            return
        entry = dict(existing, **{_names.ROOT_REF: ref})
        self._jar.queue_write(
            self._db_name, self.collection,
            ReplaceOne({_names.ID: existing[_names.ID]}, entry),
            ReplaceOne({_names.ID: existing[_names.ID]}, existing))
        self._remove_target(existing[_names.ROOT_REF])

    def __delitem__(self, key):
        existing = self._entry(key)
        if existing is None:
            raise KeyError(key)
        self._jar.queue_write(
            self._db_name, self.collection,
            DeleteOne({_names.ID: existing[_names.ID]}),
            ReplaceOne({_names.ID: existing[_names.ID]}, existing,
                       upsert=True))
        self._remove_target(existing[_names.ROOT_REF])

    def _remove_target(self, ref):
        try:
            obj = self._jar.load(ref)
        except ImportError:
            return
        self._jar.remove(obj)

    def __iter__(self):
        docs = self._collection_inst.find({}, {_names.ROOT_NAME: 1})
        return iter([doc[_names.ROOT_NAME] for doc in docs])

    def keys(self):
        return list(self)

    def __len__(self):
        return self._collection_inst.count_documents({})

    def __contains__(self, key):
        return self._entry(key) is not None

    def __repr__(self):
        return '<Root %s.%s>' % (self._db_name, self.collection)
