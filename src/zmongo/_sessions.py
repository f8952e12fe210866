"""The server side of a data manager's transaction.

:func:`server_supports_transactions` tells the two commit modes apart from
the server's ``hello`` answer.  :class:`ServerTransaction` owns the client
session every read and write of a data manager runs in and, in
server-transaction mode, the server transaction in it.

Standalone mode undoes an aborted transaction's writes itself; when the
server cannot be reached at that moment, the undo writes wait in
:class:`UnreachedUndo` (one per client) and are sent before that client's
next operation, so once the server is back the database holds none of the
aborted transaction.  (A process that dies first takes them along: that is
what server-transaction mode is for.)
"""
import logging
import threading
import weakref

import pymongo
import pymongo.errors
from pymongo.read_concern import ReadConcern

LOG = logging.getLogger('zmongo.datamanager')

_TRANSACTION_TOPOLOGIES = frozenset({
    'ReplicaSetWithPrimary', 'Sharded', 'LoadBalanced'})
_TRANSACTION_SERVERS = frozenset({'RSPrimary', 'Mongos', 'LoadBalancer'})


def server_supports_transactions(client):
    """True if ``client``'s server runs multi-document transactions."""
    # Selecting a writable server runs the handshake (``hello``) if it has
    # not happened yet; its answer is in the topology description.  Server
    # selection only heeds the client's ``timeoutMS`` inside a timeout
    # block: without one an unreachable server would block for
    # ``serverSelectionTimeoutMS`` (30 s by default) instead.
    timeout = getattr(client.options, 'timeout', None)
    if timeout:
        with pymongo.timeout(timeout):
            client.is_primary
    else:
        client.is_primary
    description = client.topology_description
    if description.topology_type_name in _TRANSACTION_TOPOLOGIES:
        return True
    return any(sd.server_type_name in _TRANSACTION_SERVERS and
               sd.logical_session_timeout_minutes is not None
               for sd in description.server_descriptions().values())


class ServerTransaction:
    """The client session of one data manager, and its server transaction
    (when ``transactional``)."""

    def __init__(self, client, *, write_concern, read_concern=None,
                 read_preference=None, timeout=None):
        self._client = client
        self._write_concern = write_concern
        self._read_concern = read_concern
        self._read_preference = read_preference
        self._timeout = timeout
        self._session = None
        # Whether the running server transaction was sent a write: one
        # that only read ends with abortTransaction, not commitTransaction
        # (SPEC.md, "Cost contract").
        self._wrote = False
        #: How many server transactions were started (a new one is a new
        #: snapshot: the document cache's view of the old one ends).
        self.started = 0

    @property
    def in_transaction(self):
        return self._session is not None and self._session.in_transaction

    def session(self, transactional, writing=False):
        """The session, with a server transaction started if
        ``transactional`` and none is running; ``writing`` says the caller
        is about to write in it."""
        if self._session is None:
            self._session = self._client.start_session(
                causal_consistency=True)
        if transactional and not self._session.in_transaction:
            self._wrote = False
            self.started += 1
            self._session.start_transaction(
                read_concern=self._read_concern or ReadConcern('snapshot'),
                write_concern=self._write_concern,
                read_preference=self._read_preference,
                max_commit_time_ms=(int(self._timeout * 1000)
                                    if self._timeout else None))
        if writing:
            self._wrote = True
        return self._session

    @property
    def operation_time(self):
        """The session's ``operationTime`` (None before any reply)."""
        session = self._session
        return None if session is None else session.operation_time

    @property
    def wrote(self):
        """True if the running server transaction was sent a write."""
        return self.in_transaction and self._wrote

    def commit(self):
        """Commit the server transaction if it wrote; one that only read
        has nothing to make durable, so it is aborted (which frees its
        snapshot on the server at once) instead."""
        if not self.in_transaction:
            return
        if not self._wrote:
            self.abort()
            return
        if self._timeout:
            # Clients with timeoutMS derive maxTimeMS from the time left;
            # pymongo.timeout() bounds it for this commit.
            with pymongo.timeout(self._timeout):
                self._session.commit_transaction()
        else:
            self._session.commit_transaction()

    def abort(self):
        """Abort the server transaction (the server forgets its writes)."""
        if not self.in_transaction:
            return
        try:
            self._session.abort_transaction()
        except pymongo.errors.PyMongoError:
            LOG.warning('aborting the MongoDB transaction failed; the '
                        'server discards it when it times out',
                        exc_info=True)

    def end(self):
        session, self._session = self._session, None
        if session is None:
            return
        try:
            session.end_session()
        except pymongo.errors.PyMongoError:
            LOG.warning('could not end MongoDB session', exc_info=True)


class UnreachedUndo:
    """Undo writes that could not reach the server, per client.

    Keyed by the client's identity (pymongo clients compare equal by their
    settings, so a ``WeakKeyDictionary`` would mix two clients up); an
    entry is dropped when its client is collected.
    """

    def __init__(self):
        self._pending = {}
        self._lock = threading.Lock()

    def __bool__(self):
        return bool(self._pending)

    def waiting(self, client):
        """True if undo writes wait to be sent through ``client``."""
        return id(client) in self._pending

    def keep(self, client, entry):
        with self._lock:
            key = id(client)
            if key not in self._pending:
                self._pending[key] = []
                weakref.finalize(client, self._pending.pop, key, None)
            self._pending[key].append(entry)

    def send(self, client, collection):
        """Send what waits for ``client`` (``collection(db, coll)`` gives
        the pymongo collection); raises, keeping the rest, if the server
        still cannot be reached."""
        with self._lock:
            pending = self._pending.pop(id(client), None)
        while pending:
            db_name, coll_name, ops = pending[0]
            try:
                collection(db_name, coll_name).bulk_write(ops, ordered=True)
            except pymongo.errors.PyMongoError:
                for entry in pending:
                    self.keep(client, entry)
                raise
            pending.pop(0)
            LOG.info('undid the writes of an aborted transaction to %s.%s '
                     'now that the server answers', db_name, coll_name)


#: The one queue of the process: undo writes belong to the server, not to
#: a data manager (any data manager of the client may send them).
UNREACHED_UNDO = UnreachedUndo()
