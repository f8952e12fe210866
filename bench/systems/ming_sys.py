"""Ming's ODM (``ming.odm``): mapped classes, an identity map and a unit of
work flushed by ``session.flush()``.

Each workload starts with ``session.clear()`` (a fresh unit of work) and
ends with ``session.flush()`` (Ming's commit).  Adding flushes one insert
per new object (Ming's unit of work has no bulk insert); modifying loads
the items with one ``find({'key': {'$in': ...}})`` and flushes one update
per changed object; deleting uses Ming's bulk ``Item.query.remove(spec)``
(one command, no objects loaded).
"""
from bench.systems.base import System
from bench.systems.base import row
from bench.systems.base import tally

try:
    import ming
    from ming import schema as S
    from ming.datastore import DataStore
    from ming.odm import FieldProperty
    from ming.odm import MappedClass
    from ming.odm import ODMSession
    from ming.odm import mapper
    IMPORT_ERROR = None
except ImportError as err:
    ming = None
    IMPORT_ERROR = "Ming is not installed (pip install -e '.[bench]'): %s" % err

COLLECTION = 'items'

if ming is not None:
    session = ODMSession(bind=None)

    class Item(MappedClass):
        class __mongometa__:
            session = session
            name = COLLECTION
            unique_indexes = [('key',)]

        _id = FieldProperty(S.ObjectId)
        key = FieldProperty(str)
        name = FieldProperty(str)
        age = FieldProperty(int)
        email = FieldProperty(str)
        score = FieldProperty(float)
        tags = FieldProperty([str])


class MingSystem(System):
    name = 'ming'
    description = ('Ming ODM: MappedClass objects, session.flush(); '
                   'query.find / query.get; bulk query.remove')

    @classmethod
    def unavailable(cls):
        return IMPORT_ERROR

    def connect(self, uri, client_options):
        super().connect(uri, client_options)
        # Ming's engine, on this system's own (counted) client.
        self.engine = ming.create_engine(uri, use_class=lambda *a, **k:
                                         self.client)

    def attach(self, client, counter, verify_client=None):
        super().attach(client, counter, verify_client)
        self.engine = ming.create_engine(use_class=lambda *a, **k: client)

    def setup(self, db_name):
        super().setup(db_name)
        session.impl.bind = DataStore(self.engine, db_name)
        session.clear()
        session.impl.ensure_indexes(mapper(Item).collection)

    def teardown(self):
        session.clear()
        super().teardown()

    def begin(self):
        session.clear()

    def add(self, items):
        for item in items:
            Item(**item)
        session.flush()
        return {item['key']: item['key'] for item in items}

    def keys(self):
        keys = [d['key'] for d in session.db[COLLECTION].find(
            {}, {'key': 1, '_id': 0})]
        session.flush()
        return keys

    def load_all(self):
        objs = Item.query.find().all()
        rows = [row(o.key, o) for o in objs]
        session.flush()
        return rows, objs

    def lookup(self, keys):
        get = Item.query.get
        rows = [row(key, get(key=key)) for key in keys]
        session.flush()
        return rows

    def query_age_gt(self, age):
        rows = [row(o.key, o)
                for o in Item.query.find({'age': {'$gt': age}}).all()]
        session.flush()
        return rows

    def modify(self, values):
        for obj in Item.query.find({'key': {'$in': list(values)}}).all():
            obj.score = values[obj.key]
        session.flush()

    def delete(self, keys):
        Item.query.remove({'key': {'$in': list(keys)}})
        session.flush()

    def fill(self, items):
        # Ming's unit of work inserts one document per command: 100,000
        # round trips before a walk would measure nothing the walk is
        # about.  The same documents (_id and the six fields) in one.
        session.db[COLLECTION].insert_many([dict(item) for item in items])

    def walks(self):
        return [('query.find()', lambda: tally(Item.query.find()))]

    def end(self):
        session.flush()

    def stored(self):
        return self.stored_docs(COLLECTION)
