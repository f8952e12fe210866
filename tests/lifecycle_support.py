"""ZODB and zmongo side by side: the reference shows the right outcome.

A *backend* opens *writers*: a transaction manager of its own and the root
mapping of a connection (ZODB) or a data manager (zmongo), so two writers
are two concurrent transactions, deterministically, without threads.
``flush()`` is what makes a transaction's changes reach the store before
commit: a savepoint in ZODB (its temporary storage), ``dm.flush()`` in
zmongo (what a query does).
"""
import persistent.list
import pytest
import transaction
import ZODB
import ZODB.MappingStorage

from zmongo import serialize
from zmongo import testing
from tests.lifecycle_models import Item

BACKENDS = ['zodb', 'transactions', 'standalone']
MONGO = ['transactions', 'standalone']


class Writer:

    def __init__(self, tm, root, jar, flush):
        self.tm = tm
        self.root = root
        self.jar = jar
        self._flush = flush

    def flush(self):
        self._flush()

    def commit(self):
        self.tm.commit()

    def abort(self):
        self.tm.abort()


class ZODBBackend:
    name = 'zodb'
    #: A list whose in-place changes are stored with its owner.
    List = persistent.list.PersistentList

    def __init__(self):
        self.db = ZODB.DB(ZODB.MappingStorage.MappingStorage())
        self._connections = []

    def open(self):
        tm = transaction.TransactionManager()
        conn = self.db.open(transaction_manager=tm)
        self._connections.append((tm, conn))
        return Writer(tm, conn.root(), conn, tm.savepoint)

    def close(self):
        for tm, conn in self._connections:
            tm.abort()
            conn.close()
        self.db.close()


class MongoBackend:
    List = serialize.PersistentList

    def __init__(self, mode):
        self.name = mode
        self.fixture = testing.MongoFixture(
            testing.get_test_uri(standalone=mode == 'standalone')).setUp()
        self._writers = []

    @property
    def db(self):
        return self.fixture.db

    def open(self, **options):
        tm = transaction.TransactionManager()
        dm = self.fixture.make_datamanager(
            transactions=self.name == 'transactions', transaction_manager=tm,
            **options)
        writer = Writer(tm, dm.root, dm, dm.flush)
        self._writers.append(writer)
        return writer

    def close(self):
        for writer in self._writers:
            writer.abort()
        self.fixture.tearDown()


def make_backend(name):
    return ZODBBackend() if name == 'zodb' else MongoBackend(name)


def read(backend, key, attr='name'):
    """What a new reader sees of ``root[key].<attr>`` (None if absent)."""
    writer = backend.open()
    try:
        obj = writer.root.get(key)
        return None if obj is None else getattr(obj, attr, None)
    finally:
        writer.abort()


def stored(backend, key='foo', loaded=False, **attrs):
    """``root[key]`` committed by a writer that stays open, and the object
    it holds: the one it created, or (``loaded``) the one it loaded in a
    later transaction."""
    writer = backend.open()
    item = writer.root[key] = Item('original', **attrs)
    writer.commit()
    if loaded:
        writer.abort()
        item = writer.root[key]
        assert item.name == 'original'
    return writer, item


# Fixtures of the modules that import them.

@pytest.fixture(params=BACKENDS)
def backend(request):
    """ZODB, and zmongo in both commit modes."""
    backend = make_backend(request.param)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(params=MONGO)
def mongo_backend(request):
    """zmongo in both commit modes."""
    backend = make_backend(request.param)
    try:
        yield backend
    finally:
        backend.close()
