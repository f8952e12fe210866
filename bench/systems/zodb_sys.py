"""ZODB: a ``zope.container.btree.BTreeContainer`` on a ``FileStorage`` in
a temporary directory -- what a Zope application has without MongoDB.

Each workload starts with ``transaction.begin()`` and an empty object
cache (``connection.cacheMinimize()``), so objects are loaded from the
storage as zmongo's are from the server, and ends with
``transaction.commit()``.  Adding is ``c[key] = item``; the age query has
no index to use, so it scans ``values()`` (what ZODB offers without a
catalog); deleting is ``del c[key]``.  No MongoDB commands: its command
column is empty.
"""
import inspect
import shutil
import tempfile

import persistent
import transaction

from bench.systems.base import System
from bench.systems.base import row
from bench.systems.base import tally

try:
    import ZODB
    import ZODB.FileStorage
    from zope.container.btree import BTreeContainer
    from zope.container.contained import Contained
    IMPORT_ERROR = None
except ImportError as err:
    ZODB = None
    IMPORT_ERROR = "ZODB is not installed (pip install -e '.[bench]'): %s" % err

if ZODB is not None:
    class Item(Contained, persistent.Persistent):
        def __init__(self, name, age, email, score, tags):
            self.name = name
            self.age = age
            self.email = email
            self.score = score
            self.tags = tags


class ZODBSystem(System):
    name = 'zodb'
    description = ('ZODB BTreeContainer on a FileStorage (temp dir): '
                   'c[key] = obj, keys(), values() scan for the query')
    counts_commands = False

    @classmethod
    def unavailable(cls):
        return IMPORT_ERROR

    def connect(self, uri, client_options):
        pass

    def attach(self, client, counter, verify_client=None):
        pass

    def close(self):
        pass

    def setup(self, db_name):
        self.db_name = db_name
        self.dir = tempfile.mkdtemp(prefix='zmongo-bench-zodb-')
        self.storage = ZODB.FileStorage.FileStorage(self.dir + '/Data.fs')
        self.db = ZODB.DB(self.storage, cache_size=1000000)
        transaction.abort()
        self.conn = self.db.open()
        self.conn.root()['bench'] = BTreeContainer()
        transaction.commit()

    def teardown(self):
        transaction.abort()
        self.conn.close()
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def begin(self):
        transaction.begin()
        self.conn.cacheMinimize()

    def begin_warm(self):
        # The same connection, its object cache as the last transaction
        # left it (invalidations are applied when the transaction begins).
        transaction.begin()

    def change_outside(self, names, suffix):
        """Another connection (another transaction manager) commits the
        change; this one is told at its next transaction."""
        tm = transaction.TransactionManager()
        conn = self.db.open(transaction_manager=tm)
        try:
            c = conn.root()['bench']
            for name in names:
                c[name].name = c[name].name + ' ' + suffix
            tm.commit()
        finally:
            conn.close()

    @property
    def container(self):
        return self.conn.root()['bench']

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
        items = list(self.container.items())
        rows = [row(k, o) for k, o in items]
        transaction.commit()
        return rows, items

    def lookup(self, keys):
        c = self.container
        rows = [row(key, c[key]) for key in keys]
        transaction.commit()
        return rows

    def query_age_gt(self, age):
        rows = [row(o.__name__, o) for o in self.container.values()
                if o.age > age]
        transaction.commit()
        return rows

    def modify(self, values):
        c = self.container
        for key, score in values.items():
            c[key].score = score
        transaction.commit()

    def delete(self, keys):
        c = self.container
        for key in keys:
            del c[key]
        transaction.commit()

    def fill(self, items):
        # A walk runs with the cache size an application gets by default
        # (the workloads above use a cache that holds everything).
        self.db.setCacheSize(
            inspect.signature(ZODB.DB).parameters['cache_size'].default)
        super().fill(items)

    def end(self):
        transaction.commit()

    def walks(self):
        return [('values()', lambda: tally(self.container.values())),
                ('values(), cacheGC()', self._walk_gc)]

    def _walk_gc(self):
        """ZODB frees loaded objects only when asked (``cacheGC()``, a
        savepoint or the end of the transaction): a long walk asks every
        ``cache_size`` objects (what a savepoint would also do)."""
        every = self.db.getCacheSize()
        gc = self.conn.cacheGC

        def objects():
            for i, obj in enumerate(self.container.values(), 1):
                yield obj
                if i % every == 0:
                    gc()
        return tally(objects())

    def stored(self):
        conn = self.db.open(transaction_manager=transaction.TransactionManager())
        try:
            return {k: (o.name, o.age, o.email, o.score, list(o.tags))
                    for k, o in conn.root()['bench'].items()}
        finally:
            conn.transaction_manager.abort()
            conn.close()
