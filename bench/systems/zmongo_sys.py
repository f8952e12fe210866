"""zmongo: its Zope containers, and its data manager used directly.

* ``zmongo-container``: ``zmongo.container.MongoContainer`` -- items keyed
  by their ``key`` attribute (``_m_mapping_key``), told apart from other
  containers' by their ``parent``.
* ``zmongo-idnames``: ``IdNamesMongoContainer`` -- items named by
  ``str(_id)``, added with ``container.add(item)``.
* ``zmongo-dm``: no container: ``dm.insert``, ``find_objects``,
  ``find_one_object`` and ``dm.remove`` on a collection of the data
  manager (what zmongo costs below the container layer).

Each uses one ``MongoDataManager`` with its default options (whatever they
cost: on a server with transactions, one server transaction per Zope
transaction, committed with ``w: majority, j: true``) and a document cache
of the default size, as ``MongoDataManagerProvider`` gives its data
managers (``cache_stats()`` reports it); every workload is one Zope
transaction, ended with ``transaction.commit()``.  The container
object is made and committed in ``setup`` and kept, as a Zope application
would have found it by traversal; what traversal costs is not measured.
Modifying and deleting first load the items concerned with one
``container.find({'key': {'$in': keys}})`` (deleting fires
``ObjectRemovedEvent``, which needs the object), then change or ``del``
them one by one.
"""
import bson
import persistent
import pymongo
import transaction

from bench.systems.base import WALK_BATCH_SIZE
from bench.systems.base import System
from bench.systems.base import row
from bench.systems.base import tally

try:
    from zmongo import container as _container
    CONTAINER_ERROR = None
except ImportError as err:      # being written: report, do not hide
    _container = None
    CONTAINER_ERROR = ('zmongo.container is not importable (%s): the '
                       'zmongo containers are not written yet' % err)

COLLECTION = 'items'


class DMItem(persistent.Persistent):
    """An item stored through the data manager alone."""

    _p_mongo_collection = COLLECTION

    def __init__(self, key, name, age, email, score, tags):
        self.key = key
        self.name = name
        self.age = age
        self.email = email
        self.score = score
        self.tags = tags


if _container is not None:
    class Item(_container.MongoContained, persistent.Persistent):
        """An item of a zmongo container (its key is set by the container)."""

        _p_mongo_collection = COLLECTION

        def __init__(self, name, age, email, score, tags):
            self.name = name
            self.age = age
            self.email = email
            self.score = score
            self.tags = tags


class _ZMongoSystem(System):
    def setup(self, db_name):
        super().setup(db_name)
        from zmongo.datamanager import MongoDataManager
        transaction.abort()
        try:
            from zmongo._cache import DocumentCache
        except ImportError:     # a zmongo without the document cache
            self.cache = None
        else:
            self.cache = DocumentCache()
        options = {} if self.cache is None else {
            'document_cache': self.cache}
        self.dm = MongoDataManager(self.client, default_database=db_name,
                                   root_database=db_name, **options)

    def teardown(self):
        transaction.abort()
        self.dm.reset()
        if self.cache is not None:
            self.cache.close()
        super().teardown()

    def cache_stats(self):
        if self.cache is None:
            return None
        return dict(self.cache.stats)

    def begin(self):
        transaction.begin()

    def end(self):
        transaction.commit()


class DataManagerSystem(_ZMongoSystem):
    name = 'zmongo-dm'
    description = ('zmongo MongoDataManager directly: dm.insert, '
                   'find_objects, find_one_object, dm.remove')

    def setup(self, db_name):
        super().setup(db_name)
        self.dm.raw_collection(db_name, COLLECTION).create_index(
            [('key', pymongo.ASCENDING)], unique=True)

    @property
    def coll(self):
        return self.dm.get_collection(self.db_name, COLLECTION)

    def add(self, items):
        insert = self.dm.insert
        for item in items:
            insert(DMItem(**item))
        transaction.commit()
        return {item['key']: item['key'] for item in items}

    def keys(self):
        keys = [doc['key'] for doc in self.coll.find({}, {'key': 1,
                                                          '_id': 0})]
        transaction.commit()
        return keys

    def load_all(self):
        objs = list(self.coll.find_objects({}))
        rows = [row(o.key, o) for o in objs]
        transaction.commit()
        return rows, objs

    def lookup(self, keys):
        coll = self.coll
        rows = []
        for key in keys:
            rows.append(row(key, coll.find_one_object({'key': key})))
        transaction.commit()
        return rows

    def query_age_gt(self, age):
        rows = [row(o.key, o) for o in
                self.coll.find_objects({'age': {'$gt': age}})]
        transaction.commit()
        return rows

    def modify(self, values):
        for obj in self.coll.find_objects({'key': {'$in': list(values)}}):
            obj.score = values[obj.key]
        transaction.commit()

    def delete(self, keys):
        remove = self.dm.remove
        for obj in list(self.coll.find_objects({'key': {'$in': list(keys)}})):
            remove(obj)
        transaction.commit()

    def walks(self):
        return [('find_objects()',
                 lambda: tally(self.coll.find_objects({}))),
                ('find_objects(batch_size=%d)' % WALK_BATCH_SIZE,
                 lambda: tally(self.coll.find_objects(
                     {}, batch_size=WALK_BATCH_SIZE)))]

    def stored(self):
        return self.stored_docs(COLLECTION)


class ContainerSystem(_ZMongoSystem):
    name = 'zmongo-container'
    description = ('zmongo MongoContainer (items keyed by their key '
                   'attribute): c[key] = obj, keys(), items(), c[key], '
                   'c.find(...), del c[key]')

    @classmethod
    def unavailable(cls):
        return CONTAINER_ERROR

    def make_container(self):
        return _container.MongoContainer(collection=COLLECTION,
                                         database=self.db_name)

    def setup(self, db_name):
        super().setup(db_name)
        self.container = self.make_container()
        self.dm.root['bench'] = self.container
        transaction.commit()
        # Its index is made once per collection and process, outside any
        # transaction: do it here, as for every other system.
        self.container.get_collection()
        transaction.abort()

    def add(self, items):
        c = self.container
        for item in items:
            data = dict(item)
            key = data.pop('key')
            c[key] = Item(**data)
        transaction.commit()
        return {item['key']: item['key'] for item in items}

    def keys(self):
        keys = list(self.container.keys())
        transaction.commit()
        return keys

    def load_all(self):
        items = self.container.items()
        rows = [row(k, o) for k, o in items]
        transaction.commit()
        return rows, items

    def lookup(self, keys):
        c = self.container
        rows = [row(key, c[key]) for key in keys]
        transaction.commit()
        return rows

    def query_age_gt(self, age):
        rows = [row(o.__name__, o) for o in
                self.container.find({'age': {'$gt': age}})]
        transaction.commit()
        return rows

    def _key_spec(self, keys):
        return {'key': {'$in': list(keys)}}

    def modify(self, values):
        for obj in self.container.find(self._key_spec(values)):
            obj.score = values[obj.__name__]
        transaction.commit()

    def delete(self, keys):
        c = self.container
        # One query loads them all (the removal events need the objects);
        # then each del is answered from what the container has seen.
        list(c.find(self._key_spec(keys)))
        for key in keys:
            del c[key]
        transaction.commit()

    def fill(self, items):
        # Filled in chunks (FILL_CHUNK), a container with more than
        # NAME_SNAPSHOT_LIMIT items would look each new name up with a
        # query: 90,000 of them for 100,000 items.  Not what is measured,
        # so the limit is lifted while filling.
        saved = _container.NAME_SNAPSHOT_LIMIT
        _container.NAME_SNAPSHOT_LIMIT = max(saved, len(items))
        try:
            super().fill(items)
        finally:
            _container.NAME_SNAPSHOT_LIMIT = saved

    def walks(self):
        # values() is a list (IReadContainer's), find() a generator; both
        # remember what they load in the container's per-transaction item
        # cache unless USE_CONTAINER_CACHE is off.
        return [('values()', lambda: tally(self.container.values())),
                ('find()', lambda: tally(self.container.find())),
                ('find(), item cache off', self._walk_uncached)]

    def _walk_uncached(self):
        saved = _container.USE_CONTAINER_CACHE
        _container.USE_CONTAINER_CACHE = False
        try:
            return tally(self.container.find())
        finally:
            _container.USE_CONTAINER_CACHE = saved

    def stored(self):
        return self.stored_docs(COLLECTION)


class IdNamesSystem(ContainerSystem):
    name = 'zmongo-idnames'
    description = ('zmongo IdNamesMongoContainer (items named str(_id)): '
                   'c.add(obj), keys(), items(), c[name], c.find(...), '
                   'del c[name]')

    def make_container(self):
        return _container.IdNamesMongoContainer(collection=COLLECTION,
                                                database=self.db_name)

    def add(self, items):
        c = self.container
        keymap = {}
        for item in items:
            data = dict(item)
            key = data.pop('key')
            obj = Item(**data)
            c.add(obj)
            keymap[key] = obj.__name__
        transaction.commit()
        return keymap

    def _key_spec(self, keys):
        return {'_id': {'$in': [bson.ObjectId(k) for k in keys]}}

    def key_filter(self, name):
        return {'_id': bson.ObjectId(name)}

    def stored(self):
        return self.stored_docs(COLLECTION, key_of=lambda d: str(d['_id']))
