"""When things are written: the Mongo data manager.

A ``MongoDataManager`` is a persistent data manager (objects load through
it) and a one-phase transaction resource (``transaction.interfaces.
IDataManager``).  Changes are collected as a unit of work and written in one
``bulk_write`` per collection, whenever a query needs them (``flush``) and at
commit.  How a commit becomes durable depends on the server:

* **server-transaction mode** (replica sets, sharded clusters; chosen from
  the server's ``hello`` answer, or forced with ``transactions=True``): every
  read and write of the data manager runs in one client session and one
  server transaction, started by its first operation.  Other readers see
  nothing until ``tpc_vote`` commits it; an abort is the server's rollback;
  a crash before the commit leaves nothing behind.
* **standalone mode** (``transactions=False``, or a standalone server):
  writes land as they are flushed, and an abort undoes them from the
  documents as they were before the transaction -- exactly, and only for
  documents this transaction wrote.

Either way all writes and conflict checks are done by ``tpc_vote``, the data
manager sorts after every other resource (so a failure here still rolls back
ZODB and the rest), and ``tpc_finish`` only forgets state.

Objects live as in ZODB's ``Connection``:

* one Python object per document, kept (weakly) across transactions; at the
  end of every transaction each loaded object becomes a ghost, so its next
  use reloads the document: a held object never writes state older than
  the last commit;
* abort (and savepoint rollback) turn everything the transaction touched,
  flushed or not, back into ghosts; objects added in it lose their oid;
* a flush that failed dooms the transaction;
* in-place changes of sub-objects mark their owner;
* a removed object stays removed for the rest of the transaction.

The parts, each in a module of its own: the identity map
(``_identitymap``), the documents behind the objects (``_documents``), the
unit of work and its planning (``_unitofwork``), sending writes and reading
the server's answer (``_bulk``), the write log for rollbacks
(``_writelog``), and the client session and server transaction
(``_sessions``; data managers of one client in one transaction share
them: one commit, sent by the last to vote).  This module is the
``IDataManager`` face over them.
"""
import logging
import types
import weakref

import bson
import bson.errors
from bson.raw_bson import RawBSONDocument
import pymongo.errors
import transaction
import transaction.interfaces
import zope.interface
from pymongo.write_concern import WriteConcern

from zmongo import _cache
from zmongo import _direct
from zmongo import _names
from zmongo import _oid
from zmongo import _safety
from zmongo import _sharding
from zmongo import conflict
from zmongo import interfaces
from zmongo import serialize
from zmongo._bulk import BulkWriter
from zmongo._bulk import TransactionLost
from zmongo._bulk import bulk_error
from zmongo._bulk import lost_transaction
from zmongo._bulk import replay_bulks
from zmongo._bulk import replay_missed
from zmongo._collection import CollectionWrapper
from zmongo._collection import process_spec  # noqa: F401  (compatibility)
from zmongo._documents import DocumentStates
from zmongo._documents import decode_batches
from zmongo._documents import decode_many
from zmongo._identitymap import IdentityMap
from zmongo._namemap import BoundNameMap
from zmongo._namemap import NameMap
from zmongo._root import Root
from zmongo._sessions import UNREACHED_UNDO
from zmongo._sessions import ServerTransaction
from zmongo._sessions import restartable
from zmongo._sessions import server_supports_transactions
from zmongo._sessions import shared_server_transaction
from zmongo._unitofwork import UnitOfWork
from zmongo._unitofwork import document_owner
from zmongo._unitofwork import plan_writes
from zmongo._writelog import WriteLog

__all__ = ['MongoDataManager', 'Root', 'CollectionWrapper']

LOG = logging.getLogger(__name__)


def log_not_undone(db_name, coll_name, ops, result):
    """Standalone undo writes match a document only while it is as this
    transaction wrote it (see ``_bulk``): one that matched nothing found a
    later commit (or a delete) and left it alone.  That is right -- a
    later commit is never undone -- but the documents keep what this
    transaction wrote under the later change, so it is logged (a
    warning, naming the documents) for the application to look at."""
    expected = len(ops)
    changed = result.matched_count + result.deleted_count + \
        len(result.upserted_ids or {})
    if changed >= expected:
        return
    LOG.warning('%d of %d undo writes of an aborted transaction to %s.%s '
                'found their document changed by a later commit and left '
                'it as that commit wrote it (undo writes: %.2000r): those '
                'documents keep what the aborted transaction had written '
                'before that '
                'commit', expected - changed, expected, db_name, coll_name,
                ops)


#: How often one flush or commit starts a lost server transaction again
#: before it gives up with a (retryable) ConflictError.
MAX_RESTARTS = 3


#: How many bytes of ``_id``\ s one query of the snapshot check names
#: (well under the 16 MB a command may have: a walk of some 800,000
#: ObjectIds, or fewer long ids, is read in more than one query).
CHECK_BATCH_BYTES = 8 * 1024 * 1024


def _id_batches(ids, budget=CHECK_BATCH_BYTES):
    """``ids`` in lists whose BSON stays under ``budget`` bytes."""
    batch, size = [], 0
    for id_ in ids:
        # An ObjectId array element: type, index key, 12 bytes.
        length = 24 if type(id_) is bson.ObjectId else \
            len(bson.encode({'0': id_})) + 8
        if batch and size + length > budget:
            yield batch
            batch, size = [], 0
        batch.append(id_)
        size += length
    if batch:
        yield batch


def _usable_id(oid):
    """Arrays and regexes cannot be ``_id``s; the identity map needs ids
    to be hashable."""
    if isinstance(oid, (list, tuple, dict, set, bson.Regex)):
        return False
    try:
        hash(oid)
    except TypeError:
        return False
    return True


def _cacheable_id(oid):
    """Whether the shared document cache may key a document by ``oid``:
    a usable ``_id`` that no other BSON value equals in Python.  MongoDB
    keeps ``{_id: true}`` and ``{_id: 1}`` apart; Python's ``True == 1``
    (and equal hashes) would serve one's document for the other."""
    return _usable_id(oid) and not isinstance(oid, bool)


def _chosen_write_concern(client):
    """The write concern the client was given (in its URI or options), as
    given; if it was given none, majority + journal, so an acknowledged
    commit survives the loss of any minority of the members."""
    concern = getattr(client, 'write_concern', None)
    if concern is not None and not concern.is_server_default:
        return concern
    return WriteConcern('majority', j=True)


#: Where a container put an item (``zmongo.container.MongoContained``):
#: volatile, so a ghost loses it, but it is not the document's to restore.
_LOCATION_ATTRIBUTES = _V_NAME, _V_PARENT = ('_v_name', '_v_parent')
_NO_LOCATION = (None, None)
_NO_STATE = types.MappingProxyType({})


@zope.interface.implementer(interfaces.IMongoDataManager,
                            transaction.interfaces.IDataManager)
class MongoDataManager:
    """Stores persistent objects in MongoDB at transaction boundaries.

    ``conn`` is a ``pymongo.MongoClient``.  Options beyond mongopersist's:
    ``transactions`` ('auto', True or False), ``write_concern`` (default:
    the client's, when its URI or options set one, else majority with
    journal),
    ``read_concern``, ``read_preference``, ``transaction_timeout`` (seconds
    a commit may take), ``transaction_manager``, ``serializers`` (instead of
    :data:`zmongo.serialize.SERIALIZERS`), ``factories`` (extra factories
    documents may call), ``trusted_modules`` (module prefixes whose classes
    documents may hold, beside :func:`zmongo.serialize.trust_modules`),
    ``name_map`` (a shared :class:`zmongo._namemap.NameMap` cache),
    ``cache_size`` (how many unchanged objects ``cacheGC()`` leaves with
    their state) and ``document_cache`` (a
    :class:`zmongo._cache.DocumentCache` shared with other data managers
    of the client, as a provider hands out: committed documents and
    container answers served across transactions, see "The cache" in
    ``docs/transactions.rst``).
    """

    default_database = _names.DEFAULT_DATABASE
    name_map_collection = _names.NAME_MAP_COLLECTION
    conflict_handler = None

    def __init__(self, conn, default_database=None, root_database=None,
                 root_collection=None, name_map_collection=None,
                 conflict_handler_factory=conflict.NoCheckConflictHandler,
                 *, transactions='auto', write_concern=None,
                 read_concern=None, read_preference=None,
                 transaction_timeout=None, transaction_manager=None,
                 serializers=None, factories=(), trusted_modules=(),
                 name_map=None, cache_size=400, document_cache=None):
        if transactions not in ('auto', True, False):
            raise ValueError("transactions must be 'auto', True or False, "
                             "not %r" % (transactions,))
        self._conn = conn
        if default_database is not None:
            self.default_database = default_database
        if name_map_collection is not None:
            self.name_map_collection = name_map_collection
        self.conflict_handler = conflict_handler_factory(self)
        self.transaction_manager = transaction_manager or transaction.manager
        self.serializers = serializers
        self.factories = _safety.FactoryRegistry(factories)
        #: Module prefixes this data manager trusts (read by its reader).
        self.trusted_modules = _safety.prefixes(trusted_modules)
        self._transactions = None if transactions == 'auto' else transactions
        self.write_concern = write_concern or _chosen_write_concern(conn)
        self.read_concern = read_concern
        self.read_preference = read_preference
        self.transaction_timeout = transaction_timeout
        #: How many unchanged objects with state ``cacheGC()`` leaves.
        self.cache_size = cache_size
        self._name_map = BoundNameMap(name_map or NameMap(), self)
        self._reader = serialize.ObjectReader(self)
        self._writer = serialize.ObjectWriter(self)
        self.root = Root(self, root_database, root_collection)
        self._document_cache = document_cache
        # Until it joins a transaction; then the one it shares with the
        # other data managers of its client in that transaction.
        self._server = self._new_server_transaction()
        # Outlives transactions, as a ZODB Connection's cache does: objects
        # keep their identity (never their state) from one to the next.
        self._identity = IdentityMap()
        # Where containers had put the objects that became ghosts.
        self._locations = {}
        # What a sharded cluster's config says of the collections used.
        self._shards = _sharding.shard_keys(conn)
        # Whole documents are kept where undo writes need them (standalone)
        # and where a serial handler needs the document as read (for the
        # evidence of its ConflictError, and to merge).
        self._states = DocumentStates(
            self.conflict_handler,
            lambda: not self.uses_transactions or
            self.conflict_handler.detects_conflicts,
            shard_fields=self._shards.fields)
        self._clear_transaction_state()

    def _clear_transaction_state(self):
        self._needs_to_join = True
        self._joined_transaction = None
        self._work = UnitOfWork()
        self._states.clear()
        # Every write sent, with its undo in standalone mode: for abort and
        # savepoint rollback.
        self._log = WriteLog()
        #: What other parts (containers) remember for this transaction.
        self.annotations = {}
        # What this transaction may take from (and give to) the shared
        # document cache.
        view = getattr(self, '_view', None)
        if view is not None:
            view.close()
        cache = getattr(self, '_document_cache', None)
        self._view = None if cache is None else _cache.CacheView(cache)

    # -- what the other parts of zmongo use ------------------------------------

    @property
    def reader(self):
        """The ``IObjectReader`` that builds objects for this data manager."""
        return self._reader

    @property
    def writer(self):
        """The ``IObjectWriter`` that turns objects into documents."""
        return self._writer

    @property
    def name_map(self):
        """The collection -> class map, bound to this data manager."""
        return self._name_map

    def cached_object(self, dbref):
        """The object already in the identity map for ``dbref``, or None."""
        return self._identity.get(dbref)

    def add_to_cache(self, dbref, obj):
        """Make ``obj`` the one object of ``dbref`` (a new ghost)."""
        self._identity[dbref] = obj

    def original_state(self, dbref):
        """The document as this transaction first read it, or None."""
        return self._states.original(dbref)

    def latest_state(self, dbref):
        """The latest document known for ``dbref`` (read or written by this
        transaction), or None."""
        return self._states.latest(dbref)

    def remember_original(self, dbref, doc):
        """``doc`` was just loaded into the object of ``dbref``."""
        self._states.remember_loaded(dbref, doc)

    @property
    def dirty_for_queries(self):
        """True if a query must flush pending changes first."""
        return self._work.dirty_for_queries

    @dirty_for_queries.setter
    def dirty_for_queries(self, value):
        self._work.dirty_for_queries = value

    @property
    def _cache(self):
        """The identity map: one object per ``DBRef``
        (``IPersistentDataManager`` names it ``_cache``)."""
        return self._identity

    # -- the identity map and ZODB's cache methods ---------------------------

    def reset(self):
        """Forget all per-transaction state (options and caches stay).

        Every object loaded becomes a ghost, keeping its identity: nothing
        it held can be known to be current any more.
        """
        self._server.leave(self)
        self._clear_transaction_state()
        self._invalidate(self._identity.values(), 'the transaction')
        self._identity.take_collected()

    def _forget_collected(self):
        """Drop what was kept about documents whose objects are gone."""
        for dbref in self._identity.take_collected():
            self._let_go_of(dbref)
            self._locations.pop(dbref, None)

    def _invalidate(self, objects, why):
        """Turn ``objects`` into ghosts: their next use reloads them.

        Where a container put an item stays (its ``_v_name`` and
        ``_v_parent``), as a ``__name__`` stored in ZODB would: the item
        gets it back when it is loaded again.
        """
        for obj in objects:
            if obj._p_oid is None or obj._p_changed is None:
                continue
            state = getattr(obj, '__dict__', None) or _NO_STATE
            location = (state.get(_V_NAME), state.get(_V_PARENT))
            try:
                obj._p_invalidate()
            except Exception:  # an object that refuses must not stop us
                LOG.debug('cannot invalidate %r after %s', obj, why,
                          exc_info=True)
                continue
            if location != _NO_LOCATION:
                try:
                    ref = weakref.ref(obj)
                except TypeError:
                    continue
                self._locations[obj._p_oid] = (ref, location)

    def _restore_location(self, obj):
        entry = self._locations.pop(obj._p_oid, None)
        if entry is None or entry[0]() is not obj:
            return
        state = obj.__dict__
        for name, value in zip(_LOCATION_ATTRIBUTES, entry[1]):
            if value is not None and name not in state:
                state[name] = value

    def _unmodified(self, obj):
        return obj._p_changed is False and id(obj) not in self._work.touched

    def _deactivate(self, dbref, obj):
        state = getattr(obj, '__dict__', None) or {}
        if any(getattr(value, _names.P_SUB_OBJECT, False)
               for value in state.values()):
            # Its sub-objects (stored in its document) may be held by the
            # application; a ghost would reload new ones, and the held
            # ones' changes could not be stored any more.  Within the
            # transaction nothing makes it stale: it keeps its state.
            return
        obj._p_deactivate()
        if obj._p_changed is None:
            self._let_go_of(dbref)

    def _let_go_of(self, dbref):
        """The object of ``dbref`` is gone, or a ghost: its document need
        not be kept -- but in server-transaction mode what it was read as
        is checked when a new server transaction starts."""
        if self._transactions:
            self._states.let_go(dbref)
        else:
            self._states.forget(dbref)

    def cacheMinimize(self):
        """Turn every unchanged object into a ghost and forget the
        documents it was loaded from (as ``Connection.cacheMinimize``):
        afterwards zmongo keeps no unchanged object alive."""
        self._forget_collected()
        for dbref, obj in self._identity.items():
            if self._unmodified(obj):
                self._deactivate(dbref, obj)

    def cacheGC(self):
        """Leave at most ``cache_size`` unchanged objects with their state,
        the most recently loaded ones (as ``Connection.cacheGC``)."""
        self._forget_collected()
        active = [(dbref, obj) for dbref, obj in self._identity.items()
                  if self._unmodified(obj)]
        excess = len(active) - max(self.cache_size or 0, 0)
        for dbref, obj in active[:max(excess, 0)]:
            self._deactivate(dbref, obj)

    # -- server, sessions -------------------------------------------------------

    @property
    def uses_transactions(self):
        """True if this data manager commits through server transactions."""
        if self._transactions is None:
            self._transactions = server_supports_transactions(self._conn)
        return self._transactions

    def op_session(self, writing=False):
        """The session every operation of this data manager runs in; opens
        the server transaction on first use.  Callers that write say so
        (``writing``): a server transaction that only read is not
        committed."""
        if UNREACHED_UNDO:
            UNREACHED_UNDO.send(self._conn, self.raw_collection)
        self._join()
        if self._server.broken is not None and self.uses_transactions:
            self._restart_broken()
        session = self._server.session(self.uses_transactions, writing)
        if self._view is not None:
            self._view.begin(self._conn, session, self._server.started,
                             self.uses_transactions)
        return session

    def read(self, method, *args, **kwargs):
        """``method(*args, **kwargs)``, a reading method of a pymongo
        collection, in this data manager's session.

        In server-transaction mode a read that finds the server transaction
        lost (expired after the server's transaction lifetime, aborted by a
        write conflict) starts a new one as a flush does -- the write log
        sent again, the objects read so far checked -- and is sent again,
        at most ``MAX_RESTARTS`` times.  A cursor (``find``) does so at any
        batch, passing over what it had returned if the new snapshot
        returns the same (see ``_sessions.RestartingCursor``); so does an
        ``aggregate`` cursor, whose pipeline is sent again.
        """
        kwargs['session'] = self.op_session()
        if not self.uses_transactions:
            return method(*args, **kwargs)
        restarts = 0

        def send():
            # A command cursor's query (aggregate) sent again.
            kwargs['session'] = self.op_session()
            return method(*args, **kwargs)
        while True:
            try:
                return restartable(method(*args, **kwargs),
                                   self._read_lost, self._generation, send)
            except pymongo.errors.OperationFailure as err:
                restarts += 1
                if not self._read_lost(err, restarts):
                    raise
                kwargs['session'] = self.op_session()

    def _generation(self):
        """How many server transactions were started so far (a cursor
        open across a new one must be sent again)."""
        return self._server.started

    def _read_lost(self, err, restarts, torn=False):
        """A read met ``err``: if it says the server transaction was lost,
        start a new one (True: send the read again).  A query that had
        returned documents and whose new answer does not begin with them
        (``torn``: True, or what the query is; ``err`` None when another
        operation had started the new server transaction) is a retryable ``ConflictError`` that
        dooms the transaction."""
        if err is None and torn:
            reason = 'a new server transaction was started while it was ' \
                'open'
        elif not lost_transaction(err) or not self.uses_transactions:
            return False
        else:
            reason = str(err)[:300]
        if not torn:
            self._refuse_if_failed()
        try:
            if torn:
                raise interfaces.ConflictError(
                    'the server transaction was lost in the middle of %s '
                    '(%s), and in the new one the query does not return '
                    'what it had returned: the rest would come from '
                    'another snapshot; retry the transaction' % (
                        torn if isinstance(torn, str) else 'a query',
                        reason)) from err
            self._restart(reason, restarts, cause=err)
        except BaseException as failed:
            self._work.failure = failed
            raise
        return True

    def _restart_broken(self):
        reason, self._server.broken = self._server.broken, None
        try:
            self._restart(reason, 1)
        except BaseException as failed:
            self._work.failure = failed
            raise

    @property
    def in_server_transaction(self):
        """True while a server transaction of this data manager is open
        (what cannot run inside one, an index build, must wait)."""
        return self._server.in_transaction

    def raw_collection(self, db_name, coll_name, check=True):
        """The pymongo collection with this data manager's write concern
        (outside transactions) and read settings; refuses a collection
        sharded on a key zmongo cannot write with (see ``_sharding``).

        ``check=False`` skips that check for now (it waits for the
        driver's handshake): for a caller about to send nothing yet, the
        collection wrapper, which calls ``check_collection`` before its
        first operation."""
        # Made once per data manager and collection: building pymongo's
        # Database and Collection objects costs more than a cache hit.
        settings = (self._conn, self.write_concern, self.read_concern,
                    self.read_preference)
        collections = self.__dict__.setdefault('_raw_collections', {})
        made = collections.get((db_name, coll_name))
        if made is not None and all(
                a is b for a, b in zip(made[0], settings)):
            if check and not made[2]:
                _sharding.check_collection(self, self._shards, db_name,
                                           coll_name)
                collections[(db_name, coll_name)] = (made[0], made[1], True)
            return made[1]
        if check:
            _sharding.check_collection(self, self._shards, db_name,
                                       coll_name)
        coll = self._conn[db_name].get_collection(
            coll_name, write_concern=self.write_concern,
            read_concern=self.read_concern,
            read_preference=self.read_preference)
        collections[(db_name, coll_name)] = (settings, coll, check)
        return coll

    def check_collection(self, db_name, coll_name):
        """Refuse (``UnsupportedShardKeyError``) collection ``db.coll`` if
        it is sharded on a key zmongo cannot write with; once per data
        manager and collection (see ``_sharding``)."""
        self.raw_collection(db_name, coll_name)

    def _new_server_transaction(self):
        return ServerTransaction(
            self._conn, write_concern=self.write_concern,
            read_concern=self.read_concern,
            read_preference=self.read_preference,
            timeout=self.transaction_timeout)

    def _join(self):
        if self._needs_to_join:
            txn = self.transaction_manager.get()
            server = shared_server_transaction(
                txn, self._conn, self._new_server_transaction)
            self._admit(server)
            txn.join(self)
            server.join(self)
            self._server = server
            self._joined_transaction = txn
            self._needs_to_join = False

    def _admit(self, server):
        """Data managers of one client in one transaction share its server
        transaction (one session, one commit): refuse one whose settings
        would need another."""
        others = [m for m in server.members if m is not self]
        if not others:
            return
        other = others[0]
        mine = self._new_server_transaction().settings
        mine['transactions'] = self.uses_transactions
        theirs = dict(server.settings,
                      transactions=other.uses_transactions)
        differ = sorted(k for k in mine if mine[k] != theirs[k])
        if differ:
            raise ValueError(
                'cannot join %r to the transaction: %r, on the same '
                'MongoClient, joined it first, and the data managers of one '
                'client in one transaction share one session and one server '
                'transaction (one commit), so they must agree on %s; '
                'theirs: %s, this one\'s: %s' % (
                    self, other, ', '.join(differ),
                    ', '.join('%s=%r' % (k, theirs[k]) for k in differ),
                    ', '.join('%s=%r' % (k, mine[k]) for k in differ)))

    # -- collections -----------------------------------------------------------

    def get_collection(self, db_name, coll_name):
        # Sends nothing: the sharding check waits for the wrapper's first
        # operation (it needs the server).
        return CollectionWrapper(
            self.raw_collection(db_name, coll_name, check=False), self)

    def get_collection_from_object(self, obj):
        db_name, coll_name = self._writer.get_collection_name(obj)
        return self.get_collection(db_name, coll_name)

    # mongopersist had both spellings in its interface.
    get_collection_of_object = get_collection_from_object

    # -- loading ---------------------------------------------------------------

    def load(self, dbref, klass=None):
        if not isinstance(dbref, bson.DBRef):
            raise TypeError('load() needs a bson.DBRef, not %s: %r'
                            % (type(dbref).__name__, dbref))
        if dbref.database is None:
            dbref = _oid.oid(dbref.collection, dbref.id,
                             self.default_database)
        self._join()
        return self._reader.get_ghost(dbref, klass)

    def load_from_document(self, dbref, doc):
        """The object of ``doc`` (just queried): no further query to load.

        An object already loaded in this transaction keeps the state it was
        built from: its serial must stay the one it was read with, or a
        later write could pass its conflict check against a newer document.
        """
        obj = self._identity.get(dbref)
        if obj is not None and obj._p_changed is not None:
            return obj
        self._forget_collected()
        if obj is None:
            self._join()
            klass = self._reader.resolve(dbref, doc)
            try:
                obj = self._reader.new_object(dbref, klass, doc)
            except Exception:
                # The ghost it leaves loads from this document next, as
                # one activated from it would.
                self._states.set_latest(_oid.as_oid(dbref), doc)
                raise
            if obj is not None:
                if self._locations:
                    # Kept for an object that is gone.
                    self._locations.pop(obj._p_oid, None)
                return obj
            obj = self._reader.new_ghost(dbref, klass)
        # Loaded now, from the document in hand: a ghost would have to keep
        # the document alive until first touched.
        self._states.set_latest(obj._p_oid, doc)
        obj._p_activate()
        return obj

    def load_document(self, dbref):
        """The document of ``dbref`` as this transaction sees it."""
        doc = self._states.latest(dbref)
        if doc is not None:
            return doc
        view = self._readable_view()
        namespace = (dbref.database, dbref.collection)
        if view is not None and view.ready() and _cacheable_id(dbref.id):
            raws = view.cache.get_documents(view.epoch, view.lo, namespace,
                                            (dbref.id,))
            if raws is not None:
                doc = bson.decode(raws[0], self._conn.codec_options)
                self._states.set_latest(dbref, doc)
                return doc
        if view is None:
            coll = self.raw_collection(dbref.database, dbref.collection)
        else:
            coll = self._raw_bson_collection(dbref.database,
                                             dbref.collection)
        doc = self.read(coll.find_one, {_names.ID: dbref.id})
        if doc is None:
            raise interfaces.DocumentNotFoundError(
                'no document with _id %r in %s.%s' % (
                    dbref.id, dbref.database, dbref.collection))
        if view is not None:
            raw = doc.raw
            doc = bson.decode(raw, self._conn.codec_options)
            if self._readable_view() is view and view.after_read() and \
                    _cacheable_id(dbref.id):
                view.cache.put_documents(view.epoch, view.lo, namespace,
                                         [(dbref.id, raw)])
        self._states.set_latest(dbref, doc)
        return doc

    # -- the shared document cache -----------------------------------------

    def _raw_bson_collection(self, db_name, coll_name):
        """``raw_collection``, returning ``RawBSONDocument``\\ s (what the
        document cache keeps), made once per collection."""
        coll = self.raw_collection(db_name, coll_name)
        made = self.__dict__.setdefault('_raw_bson_collections', {})
        found = made.get((db_name, coll_name))
        if found is not None and found[0] is coll:
            return found[1]
        raw = coll.with_options(codec_options=coll.codec_options.with_options(
            document_class=RawBSONDocument))
        made[(db_name, coll_name)] = (coll, raw)
        return raw

    def _readable_view(self):
        """The cache view, while this transaction may use it: server-
        transaction mode, and nothing written yet (what it reads after a
        write may be its own, uncommitted writes)."""
        view = self._view
        if view is None or view.dead:
            return None
        if self._log or self._server.wrote or self._work.failure or (
                view.session is not None and (
                    not self._server.in_transaction or
                    self._server.started != view.started)):
            # Wrote, or the server transaction the view began with is
            # over (a savepoint rollback, a lost transaction): the next
            # read has another snapshot.
            view.dead = True
            return None
        return view

    def find_cached(self, db_name, coll_name, spec, projection=None,
                    one=False, flush=True, unique=False):
        """The documents ``find(spec, projection)`` (``find_one`` if
        ``one``) returns in this transaction, as a list: from the shared
        document cache when it has a valid answer, else read in the
        transaction's session (and the answer kept there, where allowed).
        ``flush``: write pending changes first (as the collection wrapper
        does); a lookup that answers for pending changes itself passes
        False.  ``spec`` is sent as given (spec processors already run).
        ``unique``: at most one document can ever match ``spec`` (a unique
        index says so), so a document found stays the answer until it
        changes itself."""
        if flush:
            self.flush()
        view = self._readable_view()
        namespace = (db_name, coll_name)
        codec = self._conn.codec_options
        query = None
        if view is not None:
            # Encoded as the client encodes the query (its UUID
            # representation, its type registry).
            query = ('find', bson.encode(
                {'s': spec, 'p': projection, 'o': one},
                codec_options=codec))
            if view.ready():
                found = view.cache.get_answer(view.epoch, view.lo,
                                              namespace, query)
                if found is not None:
                    return decode_many(found[1], codec)
        coll = self.raw_collection(db_name, coll_name)
        if view is None:
            if one:
                doc = self.read(coll.find_one, spec, projection)
                return [] if doc is None else [doc]
            return list(self.read(coll.find, spec, projection))

        def batches(spec, projection, session):
            # Read whole: a lost server transaction then sends it again,
            # with nothing of the old snapshot handed out.
            cursor = coll.find_raw_batches(spec, projection, session=session)
            if one:
                cursor = cursor.limit(-1)
            return list(cursor)
        docs, raws = decode_batches(self.read(batches, spec, projection),
                                    codec)
        if self._readable_view() is view and view.after_read():
            if projection is None:
                pairs = [(doc[_names.ID], raw)
                         for doc, raw in zip(docs, raws)]
                if all(_cacheable_id(id_) for id_, _ in pairs):
                    ids = tuple(id_ for id_, _ in pairs)
                    view.cache.put_answer(
                        view.epoch, view.lo, namespace, query, 'ids', ids,
                        len(query[1]) + 16 * len(ids), pairs,
                        unique=unique)
            else:
                view.cache.put_answer(
                    view.epoch, view.lo, namespace, query, 'docs',
                    tuple(raws), len(query[1]) + sum(map(len, raws)))
        return docs

    def count_cached(self, db_name, coll_name, spec, flush=True):
        """``count_documents(spec)`` in this transaction, from the shared
        document cache when it has a valid answer (see
        :meth:`find_cached`)."""
        if flush:
            self.flush()
        view = self._readable_view()
        namespace = (db_name, coll_name)
        query = None
        if view is not None:
            query = ('count', bson.encode(
                {'s': spec}, codec_options=self._conn.codec_options))
            if view.ready():
                found = view.cache.get_answer(view.epoch, view.lo,
                                              namespace, query)
                if found is not None:
                    return found[1]
        coll = self.raw_collection(db_name, coll_name)
        count = self.read(coll.count_documents, spec)
        if view is not None and self._readable_view() is view and \
                view.after_read():
            view.cache.put_answer(view.epoch, view.lo, namespace, query,
                                  'count', count, len(query[1]))
        return count

    def _committed_to_cache(self):
        """After a commit: the documents it wrote leave the shared cache
        (their change events would too, at the next transaction's start;
        this makes it certain), with the commit's time."""
        cache = self._document_cache
        if cache is None or not cache.enabled or not self._log:
            return
        when = self._server.operation_time
        written = {}
        for entry in self._log.since(0):
            ids = written.setdefault(entry.namespace, set())
            if ids is None:
                continue
            if entry.dbref is None:
                written[entry.namespace] = None
            else:
                ids.add(entry.dbref.id)
        if when is None:
            cache.clear()
            return
        for namespace, ids in written.items():
            cache.invalidate(namespace, ids, when)

    def setstate(self, obj, doc=None):
        self._join()
        self._forget_collected()
        registered = self._work.registered
        was_registered = id(obj) in registered
        if doc is None:
            doc = self._states.latest(obj._p_oid)
        self._reader.set_ghost_state(obj, doc)
        if self._locations:
            self._restore_location(obj)
        if not was_registered:
            # Loading never counts as a change, whatever __setstate__ did.
            registered.pop(id(obj), None)
            if obj._p_changed:
                obj._p_changed = False

    def oldstate(self, obj, tid):
        # No history is kept.
        raise KeyError(tid)

    # -- changes ---------------------------------------------------------------

    def register(self, obj):
        self._join()
        owner = document_owner(obj)
        if owner is None:
            # A sub-object not stored anywhere yet: its owner's write will
            # pick it up.
            return
        if self._work.is_removed(owner):
            return
        if owner is not obj:
            if owner._p_jar is not self:
                # Its owner is not (or no longer: an aborted insert) stored
                # through this data manager.
                return
            if owner._p_changed is None:
                raise interfaces.StaleSubObjectError(
                    'cannot store a change of %r: it belongs to the state '
                    '%r had before it became a ghost (the end of a '
                    'transaction, a savepoint, cacheMinimize), and %r loads '
                    'new sub-objects now; get it from %r again and change '
                    'that' % (obj, owner, owner, owner))
        if owner._p_oid is None:
            self.insert(owner)
        self._work.add_changed(obj, owner)
        self.conflict_handler.on_modified(owner)
        if owner is not obj and owner._p_changed is False:
            # The change is stored with the owner's document: the owner is
            # changed, so that it is not deactivated with it unsaved.
            owner._p_changed = True

    def insert(self, obj, oid=None):
        if getattr(obj, '_p_oid', None) is not None:
            raise ValueError('cannot insert %r: it already has the oid %r'
                             % (obj, obj._p_oid))
        if getattr(obj, _names.P_SUB_OBJECT, False):
            raise ValueError('cannot insert %r: it is a sub-object '
                             '(_p_mongo_sub_object) stored inside its '
                             'parent\'s document' % (obj,))
        if obj._p_jar is not None and obj._p_jar is not self:
            raise ValueError('cannot insert %r: it belongs to another data '
                             'manager (%r)' % (obj, obj._p_jar))
        if oid is not None and not _usable_id(oid):
            raise ValueError(
                '%r cannot be the _id of %r: use a str, int, ObjectId or '
                'another hashable, non-array BSON value' % (oid, obj))
        db_name, coll_name = self._writer.get_collection_name(obj)
        dbref = _oid.oid(coll_name,
                         bson.ObjectId() if oid is None else oid, db_name)
        if self._identity.get(dbref) not in (None, obj):
            raise ValueError('cannot insert %r: %r is already used by %r in '
                             'this transaction'
                             % (obj, dbref, self._identity[dbref]))
        self._join()
        obj._p_jar = self
        obj._p_oid = dbref
        self._identity[dbref] = obj
        self._work.add_new(obj)
        return dbref

    def remove(self, obj):
        self._remove(obj, False)

    def remove_query_neutral(self, obj):
        """``remove()`` for a caller that answers keyed lookups of ``obj``
        itself until its delete is written (a container, for the items it
        deletes: it drops their documents from what its lookups find, see
        ``is_removed``): the removal does not make those lookups flush, so
        deleting K items is one delete at commit, not K."""
        self._remove(obj, True)

    def is_removed(self, obj):
        """True if ``obj`` was removed in this transaction (and not put
        back with ``cancel_removal``)."""
        return self._work.is_removed(obj)

    def _remove(self, obj, query_neutral):
        if getattr(obj, '_p_oid', None) is None:
            raise ValueError('cannot remove %r: it has no oid (it was never '
                             'stored)' % (obj,))
        self._join()
        if obj._p_changed is None:
            # The delete is filtered on the serial the object was read with;
            # and a removal that is cancelled (a move) writes the state.
            obj._p_activate()
        if self._identity.get(obj._p_oid) is obj:
            self._identity.pop(obj._p_oid)
        self._work.add_removed(obj, query_neutral)

    def cancel_removal(self, obj):
        """Undo ``remove(obj)`` of this transaction: ``obj`` was moved (say,
        to another root name), not deleted."""
        if not self._work.is_removed(obj):
            return
        self._work.cancel_removal(obj)
        if self._identity.get(obj._p_oid) is None:
            self._identity[obj._p_oid] = obj

    def dump(self, obj):
        if obj._p_oid is None:
            self.insert(obj)
        else:
            self.register(obj)
        self.flush()
        return obj._p_oid

    def insert_query_neutral(self, obj, oid=None):
        """``insert()`` for a caller that answers lookups of ``obj`` itself
        until it is written (a container, for its new items): the insert
        does not make keyed queries flush first."""
        self._work.query_neutral.add(id(obj))
        try:
            return self.insert(obj, oid)
        except BaseException:
            self._work.query_neutral.discard(id(obj))
            raise

    def is_query_neutral(self, obj):
        """True while ``obj`` is a new object a container answers for."""
        return id(obj) in self._work.query_neutral

    def query_relevant(self, obj):
        """``obj`` changed in a way queries must see (it moved between
        containers, say): the next query flushes first."""
        self._work.query_neutral.discard(id(obj))
        self._work.dirty_for_queries = True

    def queue_write(self, db_name, coll_name, op, undo_op):
        """Add a raw write (and its inverse, for standalone aborts) to the
        unit of work."""
        self._join()
        self._work.add_raw_write((db_name, coll_name), op, undo_op)

    def direct_write(self, collection, name, method, args, kwargs):
        """Run a writing method of a collection wrapper (``name``, the
        pymongo ``method`` of ``collection``) as part of the transaction:
        into the write log (see ``_direct``), and the objects loaded from
        the documents it changed become ghosts, so their next use shows the
        write and a later change of theirs is stored on top of it instead
        of replacing it."""
        self._join()
        namespace = (collection.database.name, collection.name)
        restarts = 0
        while True:
            write = _direct.DirectWrite(collection, name, method, args,
                                        kwargs, not self.uses_transactions)
            mark = self._log.mark()
            try:
                write.prepare()
                if write.prediction is not None:
                    # Write-ahead: undone even if no answer comes back.
                    for op in write.undo_ops(write.prediction.after):
                        self._log.append(namespace, None, op, op)
                result = write.call()
                break
            except pymongo.errors.OperationFailure as err:
                if write.prediction is not None:
                    # Standalone, answered: part of it may have been
                    # applied (a bulk, an update_many); what is read.
                    self._log.truncate(mark)
                    details = getattr(err, 'details', None) or {}
                    upserted = [u['_id'] for u in
                                details.get('upserted') or ()
                                if isinstance(u, dict) and '_id' in u]
                    self._log_direct_undo(write, kwargs, namespace,
                                          upserted)
                    raise
                # A lost server transaction applied none of it: start a
                # new one and send it again (in our session only).
                restarts += 1
                if kwargs.get('session') is not self._server.current or \
                        not self._read_lost(err, restarts):
                    raise
                kwargs['session'] = self.op_session(writing=True)
            except pymongo.errors.PyMongoError:
                # No answer: any part of it may have been applied; the
                # write-ahead undo writes (if any) stay in the log.
                self._invalidate_written(collection, write.touched_ids(None))
                raise
        if self.uses_transactions:
            ids = write.touched_ids(result)
            touched = [_oid.oid(collection.name, id_,
                                collection.database.name) for id_ in ids]
            for op in write.replay_ops(result):
                self._log.append(namespace, None, op, None, touched=touched)
            # The latest documents kept for them are from before the write
            # (a serial handler keeps whole documents): their objects must
            # read them again, and so must the shard key values a later
            # write of theirs filters on.
            for dbref in touched:
                self._states.forget_written(dbref)
            self._invalidate_written(collection, ids)
        else:
            self._log.truncate(mark)
            self._log_direct_undo(write, kwargs, namespace,
                                  extra=write.touched_ids(result))
        return result

    def _log_direct_undo(self, write, kwargs, namespace, extra=()):
        """Standalone mode: read the documents ``write`` changed, as it left
        them, and log the writes that undo exactly that."""
        collection = write.collection
        ids = list(dict.fromkeys(write.touched_ids(None) + list(extra)))
        after = {}
        if ids:
            after = {doc[_names.ID]: doc for doc in collection.find(
                {_names.ID: {'$in': ids}}, session=kwargs.get('session'))}
        touched = [_oid.oid(collection.name, id_, collection.database.name)
                   for id_ in ids]
        for op in write.undo_ops(after):
            self._log.append(namespace, None, op, op, touched=touched)
        for id_ in ids:
            dbref = _oid.oid(collection.name, id_, collection.database.name)
            if self._states.latest(dbref) is not None and id_ in after:
                self._states.set_latest(dbref, after[id_])
        self._invalidate_written(collection, ids)

    def _invalidate_written(self, collection, ids):
        stale = []
        for id_ in ids:
            obj = self._identity.get(_oid.oid(collection.name, id_,
                                              collection.database.name))
            if obj is not None:
                stale.append(obj)
        self._invalidate(stale, 'a write through the collection wrapper')

    # -- flushing --------------------------------------------------------------

    def flush(self):
        """Write all pending changes: one ``bulk_write`` per collection.

        A flush that fails dooms the transaction, as a failed savepoint
        does in ZODB: some of its writes may have been sent and others not,
        so no later flush or commit of this transaction is allowed.
        """
        self._refuse_if_failed()
        if not self._work.has_pending():
            return
        try:
            self._flush()
        except BaseException as err:
            self._work.failure = err
            raise

    def _refuse_if_failed(self):
        failure = self._work.failure
        if failure is not None:
            raise transaction.interfaces.TransactionFailedError(
                'an earlier write of this transaction failed, so it cannot '
                'write or commit any more; abort it (and retry): %s: %s' % (
                    type(failure).__name__, failure)) from failure

    def _flush(self):
        plan, processed = plan_writes(self._work, self._writer, self._states,
                                      self.conflict_handler)
        pending = [(namespace, writes) for namespace, writes in plan.items()
                   if writes]
        session = self.op_session(writing=bool(pending))
        if not self.uses_transactions:
            self._fetch_missing_originals(plan, session)
        writer = self._bulk_writer()
        restarts = 0
        while pending:
            (db_name, coll_name), writes = pending[0]
            if not writes:
                # Its one write became a merge (written below).
                pending.pop(0)
                continue
            try:
                conflicts, unapplied = writer.execute(
                    db_name, coll_name, writes, session)
            except TransactionLost as lost:
                # What this flush sent before is in the log, and is sent
                # again; this collection's writes are sent anew.
                restarts += 1
                session = self._restart(lost.reason, restarts, pending,
                                        lost.__cause__)
                continue
            pending.pop(0)
            self._settle_conflicts(conflicts, unapplied)
        for obj in processed:
            if obj._p_changed:
                obj._p_changed = False
        if self._work.registered:
            # Merged by the handler while the log was sent again.
            self._flush()
        self._work.query_neutral.clear()
        self._work.dirty_for_queries = self._work.has_pending()

    def _bulk_writer(self):
        return BulkWriter(self.raw_collection, self.conflict_handler,
                          self._states, self._log,
                          standalone=not self.uses_transactions,
                          shard_fields=self._shards.fields)

    def _fetch_missing_originals(self, plan, session):
        """Standalone mode undoes writes from the original documents; read
        the few we have not seen (objects changed without being loaded)."""
        for (db_name, coll_name), writes in plan.items():
            missing = [obj._p_oid.id for obj, _ in writes.deletes] + \
                      [obj._p_oid.id for obj, _, _ in writes.replaces]
            missing = [i for i in missing if not self._states.has_original(
                _oid.oid(coll_name, i, db_name))]
            if not missing:
                continue
            coll = self.raw_collection(db_name, coll_name)
            for doc in coll.find({_names.ID: {'$in': missing}},
                                 session=session):
                self._states.remember_loaded(
                    _oid.oid(coll_name, doc[_names.ID], db_name), doc)

    def _settle_conflicts(self, conflicts, unapplied):
        """Let the handler merge what it can; raise for the rest.

        Writes after a conflicting one in the same bulk were not made; they
        are registered again and written by the next flush.
        """
        handler = self.conflict_handler
        registered = self._work.registered
        for obj, cur_doc, new_doc in conflicts:
            orig_doc = self._states.original(obj._p_oid)
            if cur_doc is not None and \
                    handler.resolve(obj, orig_doc, cur_doc, new_doc):
                registered[id(obj)] = obj
                self._states.set_latest(obj._p_oid, cur_doc)
                continue
            raise handler.conflict_error_factory(
                obj, orig_doc, cur_doc, new_doc)
        for obj in unapplied:
            registered[id(obj)] = obj
        if registered:
            self._flush()

    # -- rolling back ------------------------------------------------------------

    def _undo_writes(self, mark, queue_unreached=True):
        """Standalone mode: put back what this transaction wrote after
        ``mark`` (a position in the write log), newest first.

        An abort that cannot reach the server leaves the undo writes to be
        sent before the client's next operation (``queue_unreached``); a
        savepoint rollback raises instead, as the transaction goes on.
        """
        batches = self._log.undo_batches(mark)
        if queue_unreached:
            self._log.truncate(mark)
        for (db_name, coll_name), ops in batches:
            try:
                result = self.raw_collection(db_name, coll_name).bulk_write(
                    ops, ordered=True)
                log_not_undone(db_name, coll_name, ops, result)
            except (pymongo.errors.PyMongoError,
                    bson.errors.InvalidDocument) as err:
                if not queue_unreached:
                    # The log keeps them: the abort that must follow sends
                    # them again (each undo write is conditional, so those
                    # already sent change nothing the second time).
                    raise
                if not isinstance(err, pymongo.errors.PyMongoError) or \
                        isinstance(err, pymongo.errors.BulkWriteError):
                    # The server refused one of them, or pymongo could not
                    # encode one: sending them again would not help.
                    LOG.error('could not undo all writes of an aborted '
                              'transaction to %s.%s', db_name, coll_name,
                              exc_info=True)
                    continue
                # Every undo write is conditional, so all of them can
                # simply be sent again once the server answers.
                LOG.error('could not undo the writes of an aborted '
                          'transaction to %s.%s; they are sent again before '
                          'this client\'s next operation', db_name,
                          coll_name, exc_info=True)
                UNREACHED_UNDO.keep(self._conn, (db_name, coll_name, ops))
        self._log.truncate(mark)

    def _detach(self, objects):
        """Objects added in what is rolled back are new objects again."""
        for obj in objects:
            if self._identity.get(obj._p_oid) is obj:
                self._identity.pop(obj._p_oid)
            try:
                obj._p_jar = None
                obj._p_oid = None
            except ValueError:
                LOG.debug('cannot detach %r', obj)

    def _restore(self, objects):
        """Objects removed in what is rolled back are back."""
        for obj in objects:
            if obj._p_oid is not None and \
                    self._identity.get(obj._p_oid) is None:
                self._identity[obj._p_oid] = obj

    # -- savepoints --------------------------------------------------------------

    def savepoint(self):
        """A savepoint (``transaction.interfaces.IDataManagerSavepoint``).

        Pending changes are written first, so the savepoint is a position
        in the write log; ``rollback()`` restores the database to it (the
        undo writes after it in standalone mode; in server-transaction mode,
        which has no partial rollback, a new server transaction that is sent
        the writes up to it again) and turns every object the transaction
        touched into a ghost, so it reloads the state of the savepoint.
        Objects added after it are new objects again.  Like
        ``savepoint(optimistic=True)`` in ZODB, it also lets the cache
        shrink (``cacheGC``).
        """
        self.flush()
        state = self._work.savepoint_state(self._log.mark())
        self.cacheGC()
        return _Savepoint(self, state)

    def _rollback_to(self, state):
        self._refuse_if_failed()
        work = self._work
        # Changed since the savepoint: pending changes, and documents
        # written after it.  Only these go back to the savepoint's state
        # (as in ZODB); what an object held from before is still right.
        changed = list(work.registered.values()) + \
            list(work.inserted.values()) + list(work.removed.values())
        written = set()
        direct = set()
        for entry in self._log.since(state.mark):
            direct.update(entry.touched)
            for dbref in ((entry.dbref,) if entry.dbref is not None
                          else ()) + entry.touched:
                written.add(dbref)
                self._states.forget_written(dbref)
        if direct:
            # What was read of them after a write through the collection
            # wrapper was that write, now rolled back.
            self._states.drop_let_go(direct)
        work.drop_pending()
        try:
            if self.uses_transactions:
                self._log.truncate(state.mark)
                if self._server.in_transaction:
                    # MongoDB has no partial rollback: a new server
                    # transaction, sent the log up to the savepoint.  Its
                    # snapshot is a new one, so what was read before is
                    # checked in it: ZODB's snapshot does not move.
                    self._restart('savepoint rollback', 0)
            else:
                self._undo_writes(state.mark, queue_unreached=False)
        except BaseException as err:
            work.failure = err
            raise
        added, removed, touched = work.roll_back_to(state)
        self._detach(added)
        self._restore(removed)
        # What containers remembered in this transaction may be newer than
        # the savepoint.
        self.annotations.clear()
        changed += [obj for obj in touched if id(obj) not in state.touched]
        changed += [obj for obj in map(self._identity.get, written)
                    if obj is not None]
        self._invalidate(changed + removed, 'rollback')

    def _replay_log(self, pending=()):
        """Send the write log again, in a new server transaction.

        First one query per collection reads what the transaction read or
        wrote as the new snapshot holds it: a document read (and not
        written) that changed means the transaction would see a torn
        snapshot, a retryable ``ConflictError``; a document written (or
        about to be: ``pending`` are the running flush's ``[(namespace,
        CollectionWrites)]``) whose serial moved on is the handler's to
        decide (NoCheck writes anyway, Serial raises ``ConflictError``,
        Resolving merges and the merge is written by the flush).  Read and
        write are one snapshot: a commit in between makes the write fail
        with a write conflict, and the whole is done again.  Then every
        logged write is sent as it was first sent, filtered on its expected
        serial.  A ``NoCheck`` write that carries the shard key values its
        document had when first sent (a collection sharded on other fields
        than ``_id``) misses it if another transaction moved or deleted it
        meanwhile: the matched counts tell, and it is written again as the
        first send does (see ``_bulk.replay_missed``).
        """
        session = self.op_session(writing=bool(self._log or pending))
        self._check_snapshot(session, pending)
        nocheck = not self.conflict_handler.detects_conflicts
        for (db_name, coll_name), entries in self._log.runs():
            coll = self.raw_collection(db_name, coll_name)
            fields = self._shards.fields(db_name, coll_name) if nocheck \
                else ()
            try:
                for bulk in replay_bulks(entries, fields):
                    result = coll.bulk_write([e.op for e in bulk],
                                             ordered=True, session=session)
                    again = replay_missed(coll, bulk, result, fields,
                                          session) if fields else ()
                    if again:
                        coll.bulk_write(again, ordered=True,
                                        session=session)
            except pymongo.errors.PyMongoError as err:
                if lost_transaction(err):
                    raise TransactionLost((db_name, coll_name),
                                          str(err)[:300]) from err
                if isinstance(err, pymongo.errors.BulkWriteError):
                    raise bulk_error(db_name, coll_name, err) from err
                raise
        return session

    def _check_snapshot(self, session, pending=()):
        handler = self.conflict_handler
        self._forget_collected()        # (what they read is kept)
        written = self._log.written()
        # What the transaction read of documents it wrote through the
        # collection wrapper is its own write, sent again after the check.
        direct = self._log.touched()
        replaced = {}
        for _, writes in pending:
            for obj, _, doc in writes.replaces:
                replaced[obj._p_oid] = (writes, doc)
        writing = set(replaced)
        writing.update(obj._p_oid for _, writes in pending
                       for obj in writes.objects())
        writing.update(obj._p_oid for obj in self._work.registered.values())
        by_collection = {}

        def check(dbref):
            by_collection.setdefault(
                (dbref.database, dbref.collection), []).append(dbref)

        held = set()
        for dbref, obj in self._identity.items():
            if obj._p_changed is not None:
                held.add(dbref)
                if dbref not in written and dbref not in writing and \
                        dbref not in direct:
                    check(dbref)
        # Read, and let go of since (collected, or a ghost again).
        let_go = {}
        for dbref, mark in self._states.read_before():
            if dbref not in held and dbref not in written and \
                    dbref not in writing and dbref not in direct:
                if dbref not in let_go:
                    check(dbref)
                let_go[dbref] = mark
        if handler.detects_conflicts:
            for dbref in set(written) | set(replaced):
                if self._states.has_original(dbref) and \
                        written.get(dbref, True) is not None:
                    check(dbref)
        for (db_name, coll_name), dbrefs in by_collection.items():
            coll = self.raw_collection(db_name, coll_name)
            try:
                found = {}
                for ids in _id_batches([d.id for d in dbrefs]):
                    found.update((doc[_names.ID], doc) for doc in coll.find(
                        {_names.ID: {'$in': ids}}, session=session))
            except pymongo.errors.OperationFailure as err:
                if lost_transaction(err):
                    raise TransactionLost((db_name, coll_name),
                                          str(err)[:300]) from err
                raise
            for dbref in dbrefs:
                cur = found.get(dbref.id)
                same = self._states.read_as(dbref, cur)
                if same is None and dbref in let_go:
                    same = self._states.matches(let_go[dbref], cur)
                if same is not False:
                    continue
                obj = self._identity.get(dbref)
                orig = self._states.original(dbref)
                if dbref not in written and dbref not in replaced:
                    serial = None if orig is not None or \
                        dbref not in let_go else \
                        self._states.serial_of(let_go[dbref])
                    raise interfaces.ConflictError(
                        '%r (%r) changed in %s.%s since this transaction '
                        'read it%s, and the server transaction had to be '
                        'started again (%s): it would see a torn snapshot; '
                        'retry the transaction' % (
                            dbref if obj is None else obj, dbref.id,
                            db_name, coll_name,
                            '' if serial is None else ' (at serial %d, '
                            'then let go of it)' % serial,
                            self._restart_reason),
                        obj, orig, cur, None)
                writes, new = replaced.get(dbref, (None, written.get(dbref)))
                if cur is not None and handler.resolve(obj, orig, cur, new):
                    # The merge is written by the flush, on cur's serial.
                    self._log.drop(dbref)
                    if writes is not None:
                        writes.replaces[:] = [
                            r for r in writes.replaces if r[0] is not obj]
                    self._states.set_latest(dbref, cur)
                    self._work.registered[id(obj)] = obj
                    continue
                raise handler.conflict_error_factory(obj, orig, cur, new)

    #: Why the server transaction is being started again (for messages).
    _restart_reason = None

    def _restart(self, reason, restarts, pending=(), cause=None):
        """The server transaction was lost (``reason``, the server's
        ``cause``), or a savepoint rollback needs a new one: start a new
        one and send the log again (at most ``MAX_RESTARTS`` times in a
        flush, a read or a commit).  Data managers sharing the server
        transaction (one client, one transaction) lost their writes too:
        each sends its log again and checks what it read."""
        if restarts > MAX_RESTARTS:
            raise interfaces.ConflictError(
                'the server transaction was lost %d times in a row, the '
                'last time because of: %s; retry the transaction' % (
                    restarts, reason)) from cause
        if restarts:
            LOG.info('the server transaction was lost (%s); starting a new '
                     'one and sending the %d writes of this transaction '
                     'again (%d of at most %d)', reason, len(self._log),
                     restarts, MAX_RESTARTS)
        else:
            LOG.debug('starting a new server transaction (%s) and sending '
                      'the %d writes of this transaction again', reason,
                      len(self._log))
        self._server.abort()
        self._server.broken = None
        while True:
            try:
                return self._replay_all(reason, pending)
            except TransactionLost as lost:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise interfaces.ConflictError(
                        'the server transaction was lost %d times in a row, '
                        'the last time because of: %s; retry the '
                        'transaction' % (restarts, lost.reason)) \
                        from lost.__cause__
                LOG.info('the server transaction was lost again (%s); '
                         'starting a new one (%d of at most %d)',
                         lost.reason, restarts, MAX_RESTARTS)
                self._server.abort()
                reason = lost.reason

    def _replay_all(self, reason, pending):
        """Send the logs of every data manager in the server transaction
        again (this one's with the running flush's ``pending``)."""
        members = self._server.members
        if not any(m is self for m in members):
            members.append(self)
        session = None
        for member in members:
            member._restart_reason = reason
            try:
                found = member._replay_log(
                    pending if member is self else ())
            finally:
                member._restart_reason = None
            if member is self:
                session = found
        return session

    def _flush_sharers(self):
        """Write what other data managers of the server transaction have
        pending (merges their handlers made while their logs were sent
        again), so the commit holds all of it."""
        for member in self._server.members:
            if member is not self and member._work.has_pending():
                member.flush()

    # -- transaction.interfaces.IDataManager ---------------------------------

    def abort(self, transaction):
        try:
            self._server.abort_for(self)
            if self._log and not self.uses_transactions:
                self._undo_writes(0)
            work = self._work
            # Nothing aborted may come back: objects new in the transaction
            # are new objects again, removed ones are back, and everything
            # it touched becomes a ghost (``reset`` does that for all).
            self._detach(work.new.values())
            self._restore(obj for key, obj in work.removed_for_good.items()
                          if key not in work.new)
            self._invalidate(work.touched.values(), 'abort')
        finally:
            self.reset()

    def tpc_begin(self, transaction):
        pass

    def commit(self, transaction):
        self.flush()

    def tpc_vote(self, transaction):
        self.flush()
        if not self._server.vote(self):
            # Another data manager of the client shares the server
            # transaction and has not written everything yet: the last of
            # them to vote commits it, for all.
            return
        if self._server.broken is not None:
            self._restart_broken()
        self._flush_sharers()
        restarts = 0
        while True:
            try:
                self._server.commit()
                return
            except pymongo.errors.OperationFailure as err:
                if err.has_error_label('UnknownTransactionCommitResult') or \
                        not lost_transaction(err):
                    raise
                # Lost before it committed (expired, aborted by a
                # conflict): send the log again in a new one.
                restarts += 1
                try:
                    self._restart(str(err)[:300], restarts, cause=err)
                    if self._work.has_pending():
                        # Merges the handler made while the log was sent
                        # again.
                        self._flush()
                    self._flush_sharers()
                except BaseException as failed:
                    self._work.failure = failed
                    raise

    def tpc_finish(self, transaction):
        # Everything is durable since tpc_vote; only forget.  Removed
        # objects become ghosts too: a later change must not write their
        # document back (their next use finds it gone).
        self._invalidate(self._work.removed_for_good.values(), 'commit')
        try:
            self._committed_to_cache()
        except Exception:  # tpc_finish must not fail
            LOG.exception('could not update the document cache after a '
                          'commit')
        self.reset()

    def tpc_abort(self, transaction):
        self.abort(transaction)

    def sortKey(self):
        # '~' sorts after the names other data managers use (ZODB uses its
        # storage's name), so this one votes -- and commits -- last.
        return '~zmongo:%d' % id(self)

    def should_retry(self, error):
        if isinstance(error, transaction.interfaces.TransactionFailedError) \
                and error.__cause__ is not None:
            # A flush failed earlier: retry if what failed was retryable.
            return self.should_retry(error.__cause__)
        if isinstance(error, interfaces.ConflictError):
            return True
        if isinstance(error, pymongo.errors.PyMongoError):
            return error.has_error_label('TransientTransactionError')
        return False


@zope.interface.implementer(transaction.interfaces.IDataManagerSavepoint)
class _Savepoint:

    def __init__(self, datamanager, state):
        self._datamanager = datamanager
        self._state = state

    def rollback(self):
        self._datamanager._rollback_to(self._state)
