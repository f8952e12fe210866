r"""The server side of a data manager's transaction.

:func:`server_supports_transactions` tells the two commit modes apart from
the server's ``hello`` answer.  :class:`ServerTransaction` owns the client
session every read and write of a data manager runs in and, in
server-transaction mode, the server transaction in it.

Several data managers over one client that join one transaction (two
``MongoDataManager``\ s, or two providers with one client) share one
``ServerTransaction`` (:func:`shared_server_transaction`, kept in the
transaction's own ``data``): one session, one server transaction, and one
``commitTransaction``, sent when the last of them has voted -- never two
commits on one client, the second of which could fail after the first.

:class:`RestartingCursor` runs a query in the server transaction and, when
the server lost that transaction (its transaction lifetime, a write
conflict), lets the data manager start a new one and sends the query
again, passing over what it had returned if the new snapshot returns the
same.

Standalone mode undoes an aborted transaction's writes itself; when the
server cannot be reached at that moment, the undo writes wait in
:class:`UnreachedUndo` (one per client) and are sent before that client's
next operation, so once the server is back the database holds none of the
aborted transaction.  (A process that dies first takes them along: that is
what server-transaction mode is for.)
"""
import contextlib
import hashlib
import logging
import threading
import weakref

import bson
import bson.errors

import pymongo
import pymongo.command_cursor
import pymongo.cursor
import pymongo.errors
from pymongo.read_concern import ReadConcern

LOG = logging.getLogger('zmongo.datamanager')

_TRANSACTION_TOPOLOGIES = frozenset({
    'ReplicaSetWithPrimary', 'Sharded', 'LoadBalanced'})
_TRANSACTION_SERVERS = frozenset({'RSPrimary', 'Mongos', 'LoadBalancer'})


def within_client_timeout(client):
    """A block in which server selection heeds the client's ``timeoutMS``
    (pymongo heeds it only inside a timeout block: without one an
    unreachable server blocks for ``serverSelectionTimeoutMS``, 30 s by
    default)."""
    timeout = getattr(client.options, 'timeout', None)
    return pymongo.timeout(timeout) if timeout else contextlib.nullcontext()


def server_supports_transactions(client):
    """True if ``client``'s server runs multi-document transactions."""
    # Selecting a writable server runs the handshake (``hello``) if it has
    # not happened yet; its answer is in the topology description.
    with within_client_timeout(client):
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
        # The data managers sharing it, in the order they joined, and the
        # ids of those that voted.
        self._members = []
        self._voted = set()
        #: Why the members must start a new server transaction (and send
        #: their logs again) before their next operation: one of them
        #: aborted while the others go on.  None when it is sound.
        self.broken = None

    @property
    def settings(self):
        """What a server transaction is started with: data managers that
        share one must agree on it."""
        return {'write_concern': self._write_concern,
                'read_concern': self._read_concern,
                'read_preference': self._read_preference,
                'transaction_timeout': self._timeout}

    # -- the data managers sharing it ------------------------------------------

    @property
    def members(self):
        """The data managers sharing this server transaction."""
        return list(self._members)

    def join(self, member):
        if not any(m is member for m in self._members):
            self._members.append(member)

    def leave(self, member):
        """``member`` is done with this transaction (it finished or
        aborted); the session ends with the last member."""
        self._members = [m for m in self._members if m is not member]
        self._voted.discard(id(member))
        if not self._members:
            self.end()

    def vote(self, member):
        """``member`` has written everything; True when every member has:
        then (and only then) the server transaction may commit."""
        self._voted.add(id(member))
        return all(id(m) in self._voted for m in self._members)

    def abort_for(self, member):
        """``member`` aborts.  The server transaction goes, with what every
        member wrote in it; members that go on (the transaction rolled
        back to a savepoint taken before ``member`` joined it) are told
        to start a new one first (:attr:`broken`)."""
        running = self.in_transaction
        self.abort()
        if running and any(m is not member for m in self._members):
            self.broken = '%r, which shared it, aborted' % (member,)

    @property
    def current(self):
        """The session, if one was started (else None)."""
        return self._session

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


#: Where a transaction's ``data`` keeps the server transactions of its
#: clients (``{id(client): ServerTransaction}``).
_SHARED = object()


def shared_server_transaction(txn, client, make):
    """The ``ServerTransaction`` that the data managers of ``client`` in
    the transaction ``txn`` share (``make()`` makes the first)."""
    try:
        shared = txn.data(_SHARED)
    except KeyError:
        shared = {}
        txn.set_data(_SHARED, shared)
    server = shared.get(id(client))
    if server is None or server._client is not client:
        server = shared[id(client)] = make()
    return server


def _mark(doc):
    """What a cursor remembers of a document it returned, to tell after a
    restart whether the new snapshot returns the same: its ``_id`` (cheap;
    what the objects loaded from it hold is checked by the data manager),
    else a digest of it."""
    try:
        return b'i' + repr(doc['_id']).encode('utf-8', 'replace')
    except (KeyError, TypeError, IndexError):
        return b'd' + _digest(doc)


class _Returned:
    """What a cursor returned, in constant memory: how many documents and
    a running hash of their marks."""

    def __init__(self):
        self.count = 0
        self._hash = hashlib.blake2b(digest_size=16)

    def add(self, doc):
        self.count += 1
        mark = _mark(doc)
        self._hash.update(len(mark).to_bytes(4, 'big') + mark)

    def digest(self):
        return self._hash.digest()


def _digest(doc):
    raw = doc if isinstance(doc, bytes) else getattr(doc, 'raw', None)
    if raw is None:
        try:
            raw = bson.encode(doc)
        except (bson.errors.BSONError, TypeError, ValueError):
            raw = repr(doc).encode('utf-8', 'replace')
    return hashlib.blake2b(raw, digest_size=16).digest()


class RestartingCursor:
    r"""A cursor of a data manager's session that outlives the loss of the
    server transaction it reads in.

    Server transactions end when the server says so -- after its
    transaction lifetime, or aborted by a write conflict.  When that meets
    a query, ``restart(error, restarts)`` starts a new server transaction
    (checking what the transaction read so far) and the query is sent
    again (a clone of it).  If it had returned documents already, the new
    answer must begin with the same documents (their ``_id``\ s, or a
    digest where a projection left out the ``_id``): they are passed over
    and the cursor goes on; if they differ, the
    consumer would see two snapshots, and ``restart(error, restarts,
    torn=True)`` decides (zmongo raises a retryable ``ConflictError``).
    ``restart`` returns False for an error that is not a lost server
    transaction: that error is raised as it is.

    A new server transaction started by something else while the cursor
    is open (a savepoint rollback, another read's restart; ``generation()``
    counts them) is met the same way before the next document: the
    cursor's batches belong to the old snapshot (a real server kills the
    cursor with the aborted transaction), so it is sent again, and its
    error is None.

    Everything else is the pymongo cursor's; its chaining methods
    (``sort``, ``limit``, ...) return this cursor.
    """

    def __init__(self, cursor, restart, generation=None):
        self._cursor = cursor
        self._restart = restart
        self._restarts = 0
        self._returned = _Returned()
        self._generation = generation
        self._started = None if generation is None else generation()

    @property
    def cursor(self):
        """The pymongo cursor in use now."""
        return self._cursor

    def __iter__(self):
        return self

    def _moved_on(self):
        """Another server transaction started since the query was sent:
        send it again in that one (passing over what it returned)."""
        started = self._generation()
        if started == self._started:
            return
        self._started = started
        self._cursor = self._cursor.clone()
        if self._returned.count and not self._same_start():
            self._restart(None, self._restarts, torn=self._query())

    def __next__(self):
        while True:
            if self._generation is not None:
                self._moved_on()
            try:
                doc = next(self._cursor)
            except pymongo.errors.OperationFailure as err:
                self._restarts += 1
                if not self._restart(err, self._restarts):
                    raise
                if self._generation is not None:
                    self._started = self._generation()
                self._cursor = self._cursor.clone()
                if self._returned.count and not self._same_start():
                    self._restart(err, self._restarts, torn=self._query())
                    raise
                continue
            self._returned.add(doc)
            return doc

    def _same_start(self):
        """Pass over what was returned before the restart, if the new
        snapshot returns exactly that."""
        again = _Returned()
        try:
            while again.count < self._returned.count:
                again.add(next(self._cursor))
        except (StopIteration, pymongo.errors.OperationFailure):
            return False
        return again.digest() == self._returned.digest()

    next = __next__

    def _query(self):
        """What the query is, for messages."""
        collection = getattr(self._cursor, 'collection', None)
        name = getattr(collection, 'full_name', None) or '?'
        return 'a query of %s' % (name,)

    def clone(self):
        return RestartingCursor(self._cursor.clone(), self._restart,
                                self._generation)

    def __getitem__(self, index):
        found = self._cursor[index]
        return self if found is self._cursor else found

    def __getattr__(self, name):
        attr = getattr(self._cursor, name)
        if not callable(attr):
            return attr

        def chained(*args, **kwargs):
            found = attr(*args, **kwargs)
            return self if found is self._cursor else found
        return chained

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._cursor.close()

    def __repr__(self):
        return '<RestartingCursor %r>' % (self._cursor,)


class _SentAgain:
    """A command cursor (``aggregate``) as a find cursor looks to
    :class:`RestartingCursor`: ``clone()`` is the command sent again
    (``send()``), when its first document is asked for."""

    def __init__(self, send, cursor=None):
        self._send = send
        self._cursor = cursor

    def _sent(self):
        if self._cursor is None:
            self._cursor = self._send()
        return self._cursor

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._sent())

    def clone(self):
        return _SentAgain(self._send)

    def close(self):
        if self._cursor is not None:
            self._cursor.close()

    def __getattr__(self, name):
        return getattr(self._sent(), name)


def restartable(result, restart, generation=None, send=None):
    """``result`` of a read, made to outlive a lost server transaction if
    it is a (lazy) pymongo cursor, or a command cursor that ``send()``
    sends again."""
    if isinstance(result, pymongo.cursor.Cursor):
        return RestartingCursor(result, restart, generation)
    if send is not None and isinstance(
            result, pymongo.command_cursor.CommandCursor):
        return RestartingCursor(_SentAgain(send, result), restart,
                                generation)
    return result


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
