"""The collection -> class map (``persistence_name_map``).

Collections named by ``_p_mongo_collection`` do not say which class their
documents are; the name map does, one entry per class.  Entries never change
once written, so they are cached for the life of the map: one query per
collection, shared by every data manager a provider hands out.

Entries are written outside any server transaction and by upsert: they are
idempotent meta-data, and a transaction that aborts must not leave a cache
that believes in an entry the database never got.
"""
import threading

from zmongo import _dotted
from zmongo import _names
from zmongo._dotted import get_dotted_name


def _names_another_class(coll_name, path):
    if coll_name == path or '.' not in coll_name:
        return False
    try:
        return isinstance(_dotted.resolve(coll_name), type)
    except ImportError:
        return False


class NameMap:

    def __init__(self):
        self._paths = {}
        self._lock = threading.Lock()

    def _collection(self, jar):
        return jar.raw_collection(jar.default_database,
                                   jar.name_map_collection)

    def paths(self, jar, db_name, coll_name):
        """``[(class path, doc_has_type), ...]`` for one collection."""
        key = (db_name, coll_name)
        try:
            return self._paths[key]
        except KeyError:
            pass
        seen = {}
        for entry in self._collection(jar).find(
                {_names.MAP_COLLECTION: coll_name,
                 _names.MAP_DATABASE: db_name}):
            path = entry.get(_names.MAP_PATH)
            if isinstance(path, str) and path not in seen:
                seen[path] = bool(entry.get(_names.MAP_DOC_HAS_TYPE))
        paths = list(seen.items())
        with self._lock:
            self._paths.setdefault(key, paths)
        return self._paths[key]

    def register(self, jar, db_name, coll_name, klass):
        """Make sure ``klass`` has an entry for the collection; True if
        this call wrote it (and emptied the collection's cached paths),
        False if the entry was known."""
        path = get_dotted_name(klass)
        paths = self.paths(jar, db_name, coll_name)
        if any(p == path for p, _ in paths):
            return False
        # A class joining a collection that already holds another class
        # (registered here, or the class the collection is named after)
        # must store its type in each document.
        has_type = bool(paths) or bool(
            getattr(klass, _names.P_STORE_TYPE, False)) or \
            _names_another_class(coll_name, path)
        self._collection(jar).update_one(
            {_names.MAP_COLLECTION: coll_name, _names.MAP_DATABASE: db_name,
             _names.MAP_PATH: path},
            {'$setOnInsert': {_names.MAP_DOC_HAS_TYPE: has_type}},
            upsert=True)
        with self._lock:
            self._paths.pop((db_name, coll_name), None)
        return True

    def doc_has_type(self, jar, db_name, coll_name, klass):
        path = get_dotted_name(klass)
        for p, has_type in self.paths(jar, db_name, coll_name):
            if p == path:
                return has_type
        return False


class BoundNameMap:
    """A name map seen through one data manager (which does the I/O)."""

    def __init__(self, name_map, jar):
        self.name_map = name_map
        self._jar = jar

    def paths(self, db_name, coll_name):
        return self.name_map.paths(self._jar, db_name, coll_name)

    def register(self, db_name, coll_name, klass):
        return self.name_map.register(self._jar, db_name, coll_name, klass)

    def doc_has_type(self, db_name, coll_name, klass):
        return self.name_map.doc_has_type(self._jar, db_name, coll_name,
                                          klass)
