"""Indexes zmongo relies on (the containers' name indexes, the root's
unique name index): created once per client and collection, outside any
server transaction.

``ensure_index(jar, raw_collection, keys, **options)`` makes sure of one.
"""
import logging
import threading
import weakref

import pymongo.errors

from zmongo import _sharding

LOG = logging.getLogger(__name__)


class _ClientIndexes:
    """What the registry knows about one client."""

    __slots__ = ('client_ref', 'done', 'pending', 'failed')

    def __init__(self, client):
        self.client_ref = weakref.ref(client)
        self.done = set()       # {(db, collection, keys)}
        self.failed = set()     # those of done the server refused
        self.pending = {}       # {(db, collection, keys): weakref to txn}


class _IndexRegistry:
    """The indexes made sure of in this process, per client object.

    An index is created outside any transaction.  When the data manager's
    server transaction is already open it is created right after that
    transaction ends instead: mongod would make the index build wait for
    the very transaction asking for it, and the embedded test server would
    not maintain the new index for that transaction's writes.
    """

    def __init__(self):
        self._lock = threading.Lock()
        # By identity (pymongo clients compare equal by their settings, and
        # an equal client may be another connection pool); dead ones are
        # dropped when a new client turns up.
        self._clients = {}

    def _state(self, client):
        with self._lock:
            state = self._clients.get(id(client))
            if state is None or state.client_ref() is not client:
                for key in [key for key, known in self._clients.items()
                            if known.client_ref() is None]:
                    del self._clients[key]
                state = self._clients[id(client)] = _ClientIndexes(client)
            return state

    def ensure(self, jar, raw_collection, keys, **options):
        state = self._state(raw_collection.database.client)
        entry = (raw_collection.database.name, raw_collection.name,
                 tuple(keys))
        if entry in state.done:
            return
        if options.get('unique'):
            # Behind a mongos: refused unless the shard key can enforce it.
            _sharding.check_unique_index(raw_collection, keys)
        # Index builds cannot run inside a server transaction: if one is
        # running, build it when the transaction is over.
        if not getattr(jar, 'in_server_transaction', False):
            self._create(state, entry, raw_collection, options)
            return
        txn = jar.transaction_manager.get()
        with self._lock:
            waiting = state.pending.get(entry)
            if waiting is not None and waiting() is txn:
                return
            state.pending[entry] = weakref.ref(txn)
        args = (state, entry, raw_collection, options)
        txn.addAfterCommitHook(self._after_commit, args)
        txn.addAfterAbortHook(self._create, args)

    def _after_commit(self, status, *args):
        self._create(*args)

    def _create(self, state, entry, raw_collection, options):
        if entry in state.done:
            return
        _, _, keys = entry
        try:
            # No session: index builds cannot run inside a transaction.
            raw_collection.create_index(list(keys), **options)
        except pymongo.errors.OperationFailure as err:
            # Existing data or an index of the same keys with other options:
            # the container still works, without this index's guarantees.
            LOG.warning('could not create the index %s on %s.%s: %s',
                        options.get('name'), raw_collection.database.name,
                        raw_collection.name, err)
            with self._lock:
                state.failed.add(entry)
        with self._lock:
            state.done.add(entry)
            state.pending.pop(entry, None)


    def made(self, raw_collection, keys):
        """True if this process made sure of the index (it exists)."""
        state = self._state(raw_collection.database.client)
        entry = (raw_collection.database.name, raw_collection.name,
                 tuple(keys))
        return entry in state.done and entry not in state.failed


_registry = _IndexRegistry()


def ensure_index(jar, raw_collection, keys, **options):
    """Create the index ``keys`` (with ``options``) on ``raw_collection``
    unless this process did already: now, or after ``jar``'s server
    transaction if one is open (see :class:`_IndexRegistry`)."""
    _registry.ensure(jar, raw_collection, keys, **options)


def index_made(raw_collection, keys):
    """True if ``ensure_index`` made the index ``keys`` on
    ``raw_collection`` in this process (the server did not refuse it):
    what it guarantees holds (the document cache relies on a unique one)."""
    return _registry.made(raw_collection, keys)
