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
"""
import collections
import hashlib
import logging
import threading
import weakref

import bson
import bson.errors
import pymongo
import pymongo.errors
import transaction
import transaction.interfaces
import zope.interface
from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateOne
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from zmongo import _names
from zmongo import _oid
from zmongo import conflict
from zmongo import interfaces
from zmongo import serialize
from zmongo._collection import CollectionWrapper
from zmongo._identitymap import IdentityMap
from zmongo._collection import process_spec  # noqa: F401  (compatibility)
from zmongo._namemap import BoundNameMap
from zmongo._namemap import NameMap
from zmongo._root import Root
from zmongo._writelog import WriteLog

__all__ = ['MongoDataManager', 'Root', 'CollectionWrapper']

LOG = logging.getLogger(__name__)

#: Standalone mode: undo writes of aborted transactions that could not reach
#: the server, per client.  They are replayed before that client's next
#: operation through any data manager, so once the server is back the
#: database holds none of the aborted transaction.  (A process that dies
#: first takes them along: that is what server-transaction mode is for.)
#: Keyed by the client's identity (pymongo clients compare equal by their
#: settings, so a WeakKeyDictionary would mix two clients up); an entry is
#: dropped when its client is collected.
_UNREACHED_UNDO = {}
_UNREACHED_UNDO_LOCK = threading.Lock()


def _keep_unreached_undo(client, entry):
    with _UNREACHED_UNDO_LOCK:
        key = id(client)
        if key not in _UNREACHED_UNDO:
            _UNREACHED_UNDO[key] = []
            weakref.finalize(client, _UNREACHED_UNDO.pop, key, None)
        _UNREACHED_UNDO[key].append(entry)


def _take_unreached_undo(client):
    with _UNREACHED_UNDO_LOCK:
        return _UNREACHED_UNDO.pop(id(client), None)

_WRITE_CONFLICT = 112
_DUPLICATE_KEY = (11000, 11001)
_TOO_LARGE = (10334, 17419, 17420)
_TRANSACTION_TOPOLOGIES = frozenset({
    'ReplicaSetWithPrimary', 'Sharded', 'LoadBalanced'})
_TRANSACTION_SERVERS = frozenset({'RSPrimary', 'Mongos', 'LoadBalancer'})


def _unencodable_path(value, path=()):
    """Where in a document a string is that BSON (UTF-8) cannot hold."""
    if isinstance(value, str):
        try:
            value.encode('utf-8')
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unencodable_path(key, path + (key,)) if \
                isinstance(key, str) else None
            if found is None:
                found = _unencodable_path(item, path + (key,))
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _unencodable_path(item, path + (index,))
            if found is not None:
                return found
    return None


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


class _CollectionWrites:
    """The writes of one flush to one collection, in order."""

    __slots__ = ('deletes', 'inserts', 'replaces', 'raw')

    def __init__(self):
        self.deletes = []    # (obj, filter)
        self.inserts = []    # (obj, doc)
        self.replaces = []   # (obj, filter, doc)
        self.raw = []        # (op, undo op)

    def __bool__(self):
        return bool(self.deletes or self.inserts or self.replaces or self.raw)


@zope.interface.implementer(interfaces.IMongoDataManager,
                            transaction.interfaces.IDataManager)
class MongoDataManager:
    """Stores persistent objects in MongoDB at transaction boundaries.

    ``conn`` is a ``pymongo.MongoClient``.  Options beyond mongopersist's:
    ``transactions`` ('auto', True or False), ``write_concern``,
    ``read_concern``, ``read_preference``, ``transaction_timeout`` (seconds
    a commit may take), ``transaction_manager``, ``serializers`` (instead of
    :data:`zmongo.serialize.SERIALIZERS`), ``factories`` (extra factories
    documents may call), ``trusted_modules`` (module prefixes whose classes
    documents may hold, beside :func:`zmongo.serialize.trust_modules`) and
    ``name_map`` (a shared :class:`zmongo._namemap.NameMap` cache).
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
                 name_map=None, cache_size=400):
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
        self.factories = serialize._safety.FactoryRegistry(factories)
        #: Module prefixes this data manager trusts (read by its reader).
        self.trusted_modules = serialize._safety.prefixes(trusted_modules)
        self._transactions_option = transactions
        self._transactions = None if transactions == 'auto' else transactions
        self.write_concern = write_concern or WriteConcern('majority', j=True)
        self.read_concern = read_concern
        self.read_preference = read_preference
        self.transaction_timeout = transaction_timeout
        self._name_map = BoundNameMap(name_map or NameMap(), self)
        self._reader = serialize.ObjectReader(self)
        self._writer = serialize.ObjectWriter(self)
        self.root = Root(self, root_database, root_collection)
        #: How many unmodified objects with state ``cacheGC()`` leaves.
        self.cache_size = cache_size
        self._session = None
        # Outlives transactions, as a ZODB Connection's cache does: objects
        # keep their identity (never their state) from one to the next.
        self._identity = IdentityMap()
        self._clear_transaction_state()

    # -- per-transaction state ------------------------------------------------

    def _clear_transaction_state(self):
        self._needs_to_join = True
        self._joined_transaction = None
        # Keyed by id(): containment tests must not call an object's __eq__.
        self._registered_objects = {}
        self._inserted_objects = {}   # new, not yet written
        self._new_objects = {}        # got their oid in this transaction
        self._removed_objects = {}    # to delete, not yet written
        # Removed in this transaction: stays removed whatever happens to
        # the object later in it.
        self._removed_for_good = {}
        # Everything this transaction changed, inserted or removed, flushed
        # or not: kept alive until its end, so an abort can invalidate it.
        self._touched = {}
        # The error of a flush that failed: the transaction cannot commit.
        self._failure = None
        self._raw_writes = collections.OrderedDict()
        # Pending changes a query can depend on.  New objects a container
        # inserted (and answers lookups for itself) are ``query-neutral``:
        # while they are all that is pending, keyed lookups need no flush,
        # so adding K items is one insert at commit, not K.
        self._query_neutral = set()
        self.dirty_for_queries = False
        # Documents as this transaction first saw them, and the latest
        # version known (read, or written by us).
        self._original_states = {}
        self._latest_states = {}
        # Server-transaction mode keeps, instead of the documents it read,
        # a digest of each: enough to tell an object marked changed from
        # one that really is.
        self._loaded_digests = {}
        # Every write sent, with its undo in standalone mode: for abort and
        # savepoint rollback.
        self._log = WriteLog()
        self.annotations = {}

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
        return self._original_states.get(dbref)

    def latest_state(self, dbref):
        """The latest document known for ``dbref`` (read or written by this
        transaction), or None."""
        return self._latest_states.get(dbref)

    @property
    def _cache(self):
        """The identity map: one object per ``DBRef``
        (``IPersistentDataManager`` names it ``_cache``)."""
        return self._identity

    _object_cache = _cache

    def reset(self):
        """Forget all per-transaction state (options and caches stay).

        Every object loaded becomes a ghost, keeping its identity: nothing
        it held can be known to be current any more.
        """
        self._end_session()
        self._clear_transaction_state()
        self._ghostify_all()

    def _ghostify_all(self):
        for obj in self._identity.values():
            if obj._p_changed is None:
                continue
            try:
                obj._p_invalidate()
            except Exception:  # an object that refuses must not stop us
                LOG.debug('cannot invalidate %r', obj, exc_info=True)
        self._identity.discard_unreferenced(lambda obj: False)
        self._identity.take_collected()

    def _forget_collected(self):
        """Drop what was kept about documents whose objects are gone."""
        for dbref in self._identity.take_collected():
            self._latest_states.pop(dbref, None)
            self._original_states.pop(dbref, None)
            self._loaded_digests.pop(dbref, None)

    # -- ZODB's cache methods ----------------------------------------------------

    def _unmodified(self, obj):
        return obj._p_changed is False and id(obj) not in self._touched

    def cacheMinimize(self):
        """Turn every unmodified object into a ghost and forget the
        documents it was loaded from (as ``Connection.cacheMinimize``):
        afterwards zmongo keeps no unmodified object alive."""
        self._forget_collected()
        for dbref, obj in self._identity.items():
            if self._unmodified(obj):
                self._deactivate(dbref, obj)
        self._identity.discard_unreferenced(
            lambda obj: obj._p_changed is not None)

    def cacheGC(self):
        """Leave at most ``cache_size`` unmodified objects with their state,
        the most recently loaded ones (as ``Connection.cacheGC``)."""
        self._forget_collected()
        active = [(dbref, obj) for dbref, obj in self._identity.items()
                  if self._unmodified(obj)]
        excess = len(active) - max(self.cache_size or 0, 0)
        for dbref, obj in active[:max(excess, 0)]:
            self._deactivate(dbref, obj)

    def _deactivate(self, dbref, obj):
        obj._p_deactivate()
        if obj._p_changed is None:
            self._latest_states.pop(dbref, None)
            self._original_states.pop(dbref, None)
            self._loaded_digests.pop(dbref, None)

    # -- server, sessions -------------------------------------------------------

    @property
    def uses_transactions(self):
        """True if this data manager commits through server transactions."""
        if self._transactions is None:
            self._transactions = self._server_supports_transactions()
        return self._transactions

    def _server_supports_transactions(self):
        client = self._conn
        # Selecting a writable server runs the handshake (``hello``) if it
        # has not happened yet; its answer is in the topology description.
        # Server selection only heeds the client's ``timeoutMS`` inside a
        # timeout block: without one an unreachable server would block for
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

    def op_session(self):
        """The session every operation of this data manager runs in; opens
        the server transaction on first use."""
        if _UNREACHED_UNDO:
            self._replay_unreached_undo()
        self._join()
        if self._session is None:
            self._session = self._conn.start_session(causal_consistency=True)
        if self.uses_transactions and not self._session.in_transaction:
            self._session.start_transaction(
                read_concern=self.read_concern or ReadConcern('snapshot'),
                write_concern=self.write_concern,
                read_preference=self.read_preference,
                max_commit_time_ms=(int(self.transaction_timeout * 1000)
                                    if self.transaction_timeout else None))
        return self._session

    def _end_session(self):
        session, self._session = self._session, None
        if session is None:
            return
        try:
            session.end_session()
        except pymongo.errors.PyMongoError:
            LOG.warning('could not end MongoDB session', exc_info=True)

    def raw_collection(self, db_name, coll_name):
        """The pymongo collection with this data manager's write concern
        (outside transactions) and read settings."""
        return self._conn[db_name].get_collection(
            coll_name, write_concern=self.write_concern,
            read_concern=self.read_concern,
            read_preference=self.read_preference)

    # -- joining the Zope transaction -------------------------------------

    def _join(self):
        if self._needs_to_join:
            txn = self.transaction_manager.get()
            txn.join(self)
            self._joined_transaction = txn
            self._needs_to_join = False

    # -- collections -----------------------------------------------------------

    def get_collection(self, db_name, coll_name):
        return CollectionWrapper(self.raw_collection(db_name, coll_name),
                                 self)

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
            obj = self._reader.new_ghost(
                dbref, self._reader.resolve(dbref, doc))
        # Loaded now, from the document in hand: a ghost would have to keep
        # the document alive until first touched.
        self._latest_states[obj._p_oid] = doc
        obj._p_activate()
        return obj

    def load_document(self, dbref):
        doc = self._latest_states.get(dbref)
        if doc is not None:
            return doc
        coll = self.raw_collection(dbref.database, dbref.collection)
        doc = coll.find_one({_names.ID: dbref.id}, session=self.op_session())
        if doc is None:
            raise interfaces.DocumentNotFoundError(
                'no document with _id %r in %s.%s' % (
                    dbref.id, dbref.database, dbref.collection))
        self._latest_states[dbref] = doc
        return doc

    def remember_original(self, dbref, doc):
        if self.uses_transactions:
            # The server undoes an abort and the serial is kept on the
            # object: holding every document read, beside the object built
            # from it, would double the memory a load takes (and the time:
            # the garbage collector walks them all).  A digest is kept to
            # tell unchanged objects from changed ones.
            self._latest_states.pop(dbref, None)
            self._loaded_digests[dbref] = self._state_digest(doc)
            return
        self._original_states.setdefault(dbref, doc)
        self._latest_states.setdefault(dbref, doc)

    def _state_digest(self, doc):
        """A digest of what ``doc`` stores, its ``_id`` and serial aside."""
        skip = (_names.ID, self.conflict_handler.field_name)
        data = bson.encode({k: v for k, v in doc.items() if k not in skip})
        return hashlib.blake2b(data, digest_size=16).digest()

    def _unchanged(self, obj, doc):
        """True if ``doc``, the state of ``obj`` to write, is what was
        read: such a write is left out."""
        orig = self._latest_states.get(obj._p_oid)
        if orig is not None:
            return self.conflict_handler.is_same(obj, orig, doc)
        digest = self._loaded_digests.get(obj._p_oid)
        return digest is not None and digest == self._state_digest(doc)

    def setstate(self, obj, doc=None):
        self._join()
        self._forget_collected()
        was_registered = id(obj) in self._registered_objects
        if doc is None:
            doc = self._latest_states.get(obj._p_oid)
        self._reader.set_ghost_state(obj, doc)
        if not was_registered:
            # Loading never counts as a change, whatever __setstate__ did.
            self._registered_objects.pop(id(obj), None)
            if obj._p_changed:
                obj._p_changed = False

    def oldstate(self, obj, tid):
        # No history is kept.
        raise KeyError(tid)

    # -- changes ---------------------------------------------------------------

    @staticmethod
    def _get_doc_object(obj):
        """The object whose document holds ``obj`` (itself if it has one)."""
        seen = []
        while getattr(obj, _names.P_SUB_OBJECT, False):
            if any(o is obj for o in seen):
                raise interfaces.CircularReferenceError(obj)
            seen.append(obj)
            parent = getattr(obj, _names.P_DOC_OBJECT, None)
            if parent is None:
                return None
            obj = parent
        return obj

    def register(self, obj):
        self._join()
        doc_obj = self._get_doc_object(obj)
        if doc_obj is None:
            # A sub-object not stored anywhere yet: its owner's write will
            # pick it up.
            return
        if id(doc_obj) in self._removed_for_good:
            return
        if doc_obj._p_oid is None:
            self.insert(doc_obj)
        if id(doc_obj) not in self._query_neutral:
            self.dirty_for_queries = True
        self._registered_objects[id(obj)] = obj
        self._registered_objects[id(doc_obj)] = doc_obj
        self._touched[id(doc_obj)] = doc_obj
        self.conflict_handler.on_modified(doc_obj)
        if doc_obj is not obj and doc_obj._p_changed is False:
            # The change is stored with the owner's document: the owner is
            # changed, so that it is not deactivated with it unsaved.
            doc_obj._p_changed = True

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
        if id(obj) not in self._query_neutral:
            self.dirty_for_queries = True
        obj._p_jar = self
        obj._p_oid = dbref
        self._identity[dbref] = obj
        self._inserted_objects[id(obj)] = obj
        self._new_objects[id(obj)] = obj
        self._touched[id(obj)] = obj
        return dbref

    def remove(self, obj):
        if getattr(obj, '_p_oid', None) is None:
            raise ValueError('cannot remove %r: it has no oid (it was never '
                             'stored)' % (obj,))
        self._join()
        self.dirty_for_queries = True
        if obj._p_changed is None and self.conflict_handler.detects_conflicts:
            # The delete is filtered on the serial the object was read with.
            obj._p_activate()
        dbref = obj._p_oid
        if self._identity.get(dbref) is obj:
            self._identity.pop(dbref)
        self._removed_for_good[id(obj)] = obj
        self._touched[id(obj)] = obj
        for key, reg in list(self._registered_objects.items()):
            if self._get_doc_object(reg) is obj:
                del self._registered_objects[key]
        if self._inserted_objects.pop(id(obj), None) is not None:
            # Never written: nothing to delete.
            return
        self._removed_objects[id(obj)] = obj

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
        self._query_neutral.add(id(obj))
        return self.insert(obj, oid)

    def is_query_neutral(self, obj):
        """True while ``obj`` is a new object a container answers for."""
        return id(obj) in self._query_neutral

    def query_relevant(self, obj):
        """``obj`` changed in a way queries must see (it moved between
        containers, say): the next query flushes first."""
        self._query_neutral.discard(id(obj))
        self.dirty_for_queries = True

    def queue_write(self, db_name, coll_name, op, undo_op):
        """Add a raw write (and its inverse, for standalone aborts) to the
        unit of work."""
        self._join()
        self.dirty_for_queries = True
        self._raw_writes.setdefault((db_name, coll_name), []).append(
            (op, undo_op))

    # -- flushing --------------------------------------------------------------

    def _has_pending(self):
        return bool(self._registered_objects or self._inserted_objects or
                    self._removed_objects or self._raw_writes)

    def flush(self):
        """Write all pending changes: one ``bulk_write`` per collection.

        A flush that fails dooms the transaction, as a failed savepoint
        does in ZODB: some of its writes may have been sent and others not,
        so no later flush or commit of this transaction is allowed.
        """
        self._refuse_if_failed()
        if not self._has_pending():
            return
        try:
            self._flush()
        except BaseException as err:
            self._failure = err
            raise

    def _refuse_if_failed(self):
        if self._failure is not None:
            raise transaction.interfaces.TransactionFailedError(
                'an earlier write of this transaction failed, so it cannot '
                'write or commit any more; abort it (and retry): %s: %s' % (
                    type(self._failure).__name__, self._failure)
            ) from self._failure

    def _flush(self):
        plan, processed = self._plan_writes()
        if self.uses_transactions:
            session = self.op_session()
        else:
            session = self.op_session()
            self._fetch_missing_originals(plan, session)
        for (db_name, coll_name), writes in plan.items():
            if writes:
                self._execute(db_name, coll_name, writes, session)
        for obj in processed:
            if obj._p_changed:
                obj._p_changed = False
        self._query_neutral.clear()
        self.dirty_for_queries = bool(self._has_pending())

    def _plan_writes(self):
        """Serialize every pending object into per-collection writes.

        Serializing can add objects (new persistent objects referenced for
        the first time), so this runs until nothing new turns up.
        """
        plan = collections.OrderedDict()
        processed = []
        done = set()

        def writes_for(oid):
            return plan.setdefault((oid.database, oid.collection),
                                   _CollectionWrites())

        for obj in list(self._removed_objects.values()):
            orig = self._latest_states.get(obj._p_oid)
            writes_for(obj._p_oid).deletes.append(
                (obj, self.conflict_handler.write_filter(obj, orig)))
        self._removed_objects = {}
        while True:
            pending = [o for o in list(self._inserted_objects.values()) +
                       list(self._registered_objects.values())
                       if id(o) not in done]
            if not pending:
                break
            for obj in pending:
                if id(obj) in done:
                    continue
                done.add(id(obj))
                processed.append(obj)
                doc_obj = self._get_doc_object(obj)
                if doc_obj is None or doc_obj is not obj:
                    if doc_obj is not None and id(doc_obj) not in done:
                        pending.append(doc_obj)
                    continue
                doc = self._writer.get_full_state(obj)
                writes = writes_for(obj._p_oid)
                if id(obj) in self._inserted_objects:
                    writes.inserts.append((obj, doc))
                    continue
                if self._unchanged(obj, doc):
                    continue
                orig = self._latest_states.get(obj._p_oid)
                writes.replaces.append((
                    obj, self.conflict_handler.write_filter(obj, orig), doc))
        self._inserted_objects = {}
        self._registered_objects = {}
        for (db_name, coll_name), ops in self._raw_writes.items():
            plan.setdefault((db_name, coll_name),
                            _CollectionWrites()).raw.extend(ops)
        self._raw_writes = collections.OrderedDict()
        return plan, processed

    def _fetch_missing_originals(self, plan, session):
        """Standalone mode undoes writes from the original documents; read
        the few we have not seen (objects changed without being loaded)."""
        for (db_name, coll_name), writes in plan.items():
            missing = [obj._p_oid.id for obj, _ in writes.deletes] + \
                      [obj._p_oid.id for obj, _, _ in writes.replaces]
            missing = [i for i in missing if _oid.oid(
                coll_name, i, db_name) not in self._original_states]
            if not missing:
                continue
            coll = self.raw_collection(db_name, coll_name)
            for doc in coll.find({_names.ID: {'$in': missing}},
                                 session=session):
                self.remember_original(
                    _oid.oid(coll_name, doc[_names.ID], db_name), doc)

    def _execute(self, db_name, coll_name, writes, session):
        """One ordered ``bulk_write`` for the collection.

        Replacing writes filter on the serial the object was read with and
        upsert: when another transaction wrote the document first, the
        upsert collides with the existing ``_id`` (a duplicate-key error at
        exactly that write), and when it deleted the document the write
        shows up as an upsert.  Either is a conflict, detected by the write
        itself.
        """
        ops = []
        undo = []   # (dbref or None, the write that reverses it)
        standalone = not self.uses_transactions
        for obj, filter_ in writes.deletes:
            ops.append(DeleteOne(filter_))
            undo.append((obj._p_oid, standalone and self._undo_delete(obj)))
        for op, undo_op in writes.raw:
            ops.append(op)
            undo.append((None, undo_op))
        for obj, doc in writes.inserts:
            ops.append(InsertOne(doc))
            undo.append((obj._p_oid, standalone and DeleteOne(
                self._written_filter(obj, doc))))
        first_replace = len(ops)
        for obj, filter_, doc in writes.replaces:
            ops.append(ReplaceOne(filter_, doc, upsert=True))
            undo.append((obj._p_oid, standalone and self._undo_replace(
                obj, doc)))
        coll = self.raw_collection(db_name, coll_name)
        applied, error, upserted = len(ops), None, {}
        try:
            result = coll.bulk_write(ops, ordered=True, session=session)
            upserted = result.upserted_ids or {}
            deleted = result.deleted_count
        except pymongo.errors.BulkWriteError as err:
            error = err
            details = err.details
            applied = (details.get('writeErrors') or [{}])[0].get('index', 0)
            upserted = {u['index']: u['_id']
                        for u in details.get('upserted') or ()}
            deleted = details.get('nRemoved', 0)
        except pymongo.errors.OperationFailure as err:
            if err.code == _WRITE_CONFLICT or \
                    err.has_error_label('TransientTransactionError'):
                raise interfaces.ConflictError(
                    'write conflict in %s.%s (another transaction wrote the '
                    'same documents)' % (db_name, coll_name)) from err
            raise
        except (pymongo.errors.DocumentTooLarge, bson.errors.InvalidDocument,
                bson.errors.InvalidStringData, UnicodeEncodeError) as err:
            # pymongo refused a document while encoding it, possibly after
            # earlier batches of this bulk were sent: undo all of it.
            self._log_writes(db_name, coll_name, ops, undo)
            raise self._unencodable(writes, err) from err
        for i in upserted:
            if i >= first_replace and standalone:
                # Deleted meanwhile, so the upsert created it: undone by
                # deleting exactly what was written.
                obj, _, doc = writes.replaces[i - first_replace]
                undo[i] = (undo[i][0], DeleteOne(
                    self._written_filter(obj, doc)))
        self._log_writes(db_name, coll_name, ops[:applied], undo[:applied])
        handler = self.conflict_handler
        conflicts = []
        for i in sorted(upserted):
            if i >= first_replace and handler.detects_conflicts:
                obj, _, doc = writes.replaces[i - first_replace]
                conflicts.append((obj, None, doc))
                # Deleted meanwhile, so the upsert re-created it: an abort
                # must delete exactly what was written.
                self._latest_states[obj._p_oid] = doc
        if error is not None:
            index = applied
            first = error.details['writeErrors'][0]
            conflict = None
            if index >= first_replace and handler.detects_conflicts and \
                    first.get('code') in _DUPLICATE_KEY:
                conflict = self._stale_serial(
                    db_name, coll_name, writes.replaces[index - first_replace],
                    session)
            if conflict is None:
                raise self._bulk_error(db_name, coll_name, ops, error, writes)
            conflicts.append(conflict)
        self._after_write(writes, applied - first_replace, conflicts)
        if handler.detects_conflicts and writes.deletes and \
                deleted < len(writes.deletes):
            cur = self._current_docs(
                db_name, coll_name, [o._p_oid.id for o, _ in writes.deletes],
                session)
            for obj, _ in writes.deletes:
                if obj._p_oid.id in cur:
                    raise handler.conflict_error_factory(
                        obj, self._original_states.get(obj._p_oid),
                        cur[obj._p_oid.id], None)
        unapplied = [obj for obj, _, _ in
                     writes.replaces[max(applied - first_replace + 1, 0):]]
        self._settle_conflicts(conflicts, unapplied)

    def _stale_serial(self, db_name, coll_name, replace, session):
        """A replacing write failed on a unique index: a conflict if the
        document moved on from the serial it was read with (the upsert
        then collided with it -- on ``_id`` or on whichever unique index
        the server checked first), else None (a real duplicate key)."""
        obj, _, doc = replace
        cur = self._current_docs(db_name, coll_name, [obj._p_oid.id],
                                 session).get(obj._p_oid.id)
        field = self.conflict_handler.field_name
        expected = self.conflict_handler.serial_of(obj)
        if cur is not None and (cur.get(field) or 0) != expected:
            return obj, cur, doc
        return None

    def _log_writes(self, db_name, coll_name, ops, undo):
        namespace = (db_name, coll_name)
        for op, (dbref, undo_op) in zip(ops, undo):
            self._log.append(namespace, dbref, op, undo_op or None)

    def _written_filter(self, obj, doc):
        """Matches ``doc`` as this write stored it, and nothing written
        over it later (by its serial, where documents carry one)."""
        found = {_names.ID: obj._p_oid.id}
        field = self.conflict_handler.field_name
        if field and field in doc:
            found[field] = doc[field]
        return found

    def _undo_replace(self, obj, doc):
        before = self._latest_states.get(obj._p_oid)
        if before is None:
            return DeleteOne(self._written_filter(obj, doc))
        return ReplaceOne(self._written_filter(obj, doc), before)

    def _undo_delete(self, obj):
        before = self._latest_states.get(obj._p_oid)
        if before is None:
            before = self._original_states.get(obj._p_oid)
        if before is None:
            return None
        # Re-create it only if it is really gone: a delete that lost a
        # conflict deleted nothing.
        body = {k: v for k, v in before.items() if k != _names.ID}
        return UpdateOne({_names.ID: obj._p_oid.id}, {'$setOnInsert': body},
                         upsert=True)

    def _unencodable(self, writes, err):
        if isinstance(err, pymongo.errors.DocumentTooLarge):
            return self._too_large(writes, err)
        for obj, doc in [(o, d) for o, d in writes.inserts] + \
                [(o, d) for o, _, d in writes.replaces]:
            path = _unencodable_path(doc)
            if path is not None:
                return interfaces.SerializationError(
                    'cannot store attribute %s of %r: %s' % (
                        serialize._format_path(list(path)), obj, err))
        return interfaces.SerializationError(
            'a document could not be encoded as BSON: %s' % err)

    def _too_large(self, writes, err):
        for obj, doc in [(o, d) for o, d in writes.inserts] + \
                [(o, d) for o, _, d in writes.replaces]:
            size = len(bson.encode(doc))
            if size > _names.MAX_BSON_SIZE:
                return interfaces.SerializationError(
                    'cannot store %r: its document is %d bytes, more than '
                    'the %d MongoDB allows; move large values into objects '
                    'of their own or GridFS' % (obj, size,
                                                _names.MAX_BSON_SIZE))
        return interfaces.SerializationError(
            'a document is larger than MongoDB allows: %s' % str(err)[:300])

    def _bulk_error(self, db_name, coll_name, ops, err, writes=None):
        first = (err.details.get('writeErrors') or [{}])[0]
        if first.get('code') in _TOO_LARGE and writes is not None:
            return self._too_large(writes, err)
        if first.get('code') in _DUPLICATE_KEY:
            return interfaces.DuplicateKeyError(
                'duplicate key in %s.%s: %s is already taken (%s)' % (
                    db_name, coll_name, first.get('keyValue'),
                    first.get('errmsg')))
        if first.get('code') == _WRITE_CONFLICT:
            return interfaces.ConflictError(
                'write conflict in %s.%s: %s' % (db_name, coll_name,
                                                  first.get('errmsg')))
        return err

    def _after_write(self, writes, replaces_applied, conflicts):
        handler = self.conflict_handler
        conflicted = {id(obj) for obj, _, _ in conflicts}
        for obj, doc in writes.inserts:
            self._latest_states[obj._p_oid] = doc
            handler.on_after_store(obj, doc)
        for obj, _, doc in writes.replaces[:max(replaces_applied, 0)]:
            if id(obj) not in conflicted:
                self._latest_states[obj._p_oid] = doc
                handler.on_after_store(obj, doc)
        for obj, _ in writes.deletes:
            self._latest_states.pop(obj._p_oid, None)

    def _current_docs(self, db_name, coll_name, ids, session):
        coll = self.raw_collection(db_name, coll_name)
        return {doc[_names.ID]: doc for doc in coll.find(
            {_names.ID: {'$in': ids}}, session=session)}

    def _settle_conflicts(self, conflicts, unapplied):
        """Let the handler merge what it can; raise for the rest.

        Writes after a conflicting one in the same bulk were not made; they
        are registered again and written by the next flush.
        """
        handler = self.conflict_handler
        for obj, cur_doc, new_doc in conflicts:
            orig_doc = self._original_states.get(obj._p_oid)
            if cur_doc is not None and not self.uses_transactions and \
                    handler.resolve(obj, orig_doc, cur_doc, new_doc):
                self._registered_objects[id(obj)] = obj
                self._latest_states[obj._p_oid] = cur_doc
                continue
            raise handler.conflict_error_factory(
                obj, orig_doc, cur_doc, new_doc)
        for obj in unapplied:
            self._registered_objects[id(obj)] = obj
        if self._registered_objects:
            self._flush()

    # -- rolling back ------------------------------------------------------------

    def _rollback(self):
        if self._session is not None and self._session.in_transaction:
            try:
                self._session.abort_transaction()
            except pymongo.errors.PyMongoError:
                LOG.warning('aborting the MongoDB transaction failed; the '
                            'server discards it when it times out',
                            exc_info=True)
        if self._log and not self.uses_transactions:
            self._undo_writes(0)
        self._log.clear()

    def _undo_writes(self, mark):
        """Standalone mode: put back what this transaction wrote after
        ``mark`` (a position in the write log), newest first."""
        batches = self._log.undo_batches(mark)
        self._log.truncate(mark)
        for (db_name, coll_name), ops in batches:
            try:
                self.raw_collection(db_name, coll_name).bulk_write(
                    ops, ordered=True)
            except pymongo.errors.BulkWriteError:
                # The server refused one of them: sending it again would
                # not help.
                LOG.error('could not undo all writes of a rolled back '
                          'transaction to %s.%s', db_name, coll_name,
                          exc_info=True)
            except pymongo.errors.PyMongoError:
                # Every undo write is conditional, so all of them can simply
                # be sent again once the server answers.
                LOG.error('could not undo the writes of an aborted '
                          'transaction to %s.%s; they are sent again before '
                          'this client\'s next operation', db_name,
                          coll_name, exc_info=True)
                _keep_unreached_undo(self._conn, (db_name, coll_name, ops))

    def _replay_unreached_undo(self):
        pending = _take_unreached_undo(self._conn)
        while pending:
            db_name, coll_name, ops = pending[0]
            try:
                self.raw_collection(db_name, coll_name).bulk_write(
                    ops, ordered=True)
            except pymongo.errors.PyMongoError:
                for entry in pending:
                    _keep_unreached_undo(self._conn, entry)
                raise
            pending.pop(0)
            LOG.info('undid the writes of an aborted transaction to %s.%s '
                     'now that the server answers', db_name, coll_name)

    def _invalidate_after_abort(self):
        """Nothing aborted may come back: objects new in the transaction
        are new objects again; every other object it touched becomes a
        ghost (``reset`` does that for all), removed ones included."""
        for obj in self._new_objects.values():
            if self._identity.get(obj._p_oid) is obj:
                self._identity.pop(obj._p_oid)
            try:
                obj._p_jar = None
                obj._p_oid = None
            except ValueError:
                LOG.debug('cannot detach %r after abort', obj)
        for obj in self._removed_for_good.values():
            if id(obj) in self._new_objects or obj._p_oid is None:
                continue
            if self._identity.get(obj._p_oid) is None:
                self._identity[obj._p_oid] = obj
        for obj in self._touched.values():
            if obj._p_oid is not None and obj._p_changed is not None:
                try:
                    obj._p_invalidate()
                except Exception:  # one that refuses must not stop abort
                    LOG.debug('cannot invalidate %r after abort', obj,
                              exc_info=True)

    # -- transaction.interfaces.IDataManager ---------------------------------

    def abort(self, transaction):
        try:
            self._rollback()
            self._invalidate_after_abort()
        finally:
            self.reset()

    def tpc_begin(self, transaction):
        pass

    def commit(self, transaction):
        self.flush()

    def tpc_vote(self, transaction):
        self.flush()
        session = self._session
        if session is None or not session.in_transaction:
            return
        try:
            if self.transaction_timeout:
                # Clients with timeoutMS derive maxTimeMS from the time
                # left; pymongo.timeout() bounds it for this commit.
                with pymongo.timeout(self.transaction_timeout):
                    session.commit_transaction()
            else:
                session.commit_transaction()
        except pymongo.errors.OperationFailure as err:
            if err.code == _WRITE_CONFLICT:
                raise interfaces.ConflictError(
                    'write conflict at commit: %s' % err) from err
            raise

    def tpc_finish(self, transaction):
        # Everything is durable since tpc_vote; only forget.
        self.reset()

    def tpc_abort(self, transaction):
        self.abort(transaction)

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
        state = _SavepointState(
            mark=self._log.mark(),
            touched=dict(self._touched),
            new=dict(self._new_objects),
            removed=dict(self._removed_for_good))
        self.cacheGC()
        return _Savepoint(self, state)

    def _rollback_to(self, state):
        self._refuse_if_failed()
        try:
            self._restore_database(state.mark)
        except BaseException as err:
            self._failure = err
            raise
        self._restore_objects(state)

    def _restore_database(self, mark):
        # Pending changes made after the savepoint are dropped unsent.
        self._registered_objects = {}
        self._inserted_objects = {}
        self._removed_objects = {}
        self._raw_writes = collections.OrderedDict()
        self._query_neutral.clear()
        self.dirty_for_queries = False
        rolled_back = self._log.since(mark)
        for entry in rolled_back:
            if entry.dbref is not None:
                self._latest_states.pop(entry.dbref, None)
                self._loaded_digests.pop(entry.dbref, None)
        if not self.uses_transactions:
            self._undo_writes(mark)
            return
        self._log.truncate(mark)
        if self._session is None or not self._session.in_transaction:
            return
        self._session.abort_transaction()
        if self._log:
            self._replay_log()

    def _replay_log(self):
        """Send the write log again, in a new server transaction."""
        session = self.op_session()
        for (db_name, coll_name), ops in self._log.replay():
            coll = self.raw_collection(db_name, coll_name)
            try:
                coll.bulk_write(ops, ordered=True, session=session)
            except pymongo.errors.BulkWriteError as err:
                first = (err.details.get('writeErrors') or [{}])[0]
                raise interfaces.ConflictError(
                    'cannot roll back to the savepoint: writing %s.%s again '
                    'in a new server transaction failed (%s); another '
                    'transaction wrote the same documents' % (
                        db_name, coll_name, first.get('errmsg'))) from err
            except pymongo.errors.OperationFailure as err:
                if err.code == _WRITE_CONFLICT or \
                        err.has_error_label('TransientTransactionError'):
                    raise interfaces.ConflictError(
                        'cannot roll back to the savepoint: write conflict '
                        'in %s.%s' % (db_name, coll_name)) from err
                raise

    def _restore_objects(self, state):
        for key, obj in list(self._new_objects.items()):
            if key in state.new:
                continue
            # Added after the savepoint: a new object again.
            if self._identity.get(obj._p_oid) is obj:
                self._identity.pop(obj._p_oid)
            del self._new_objects[key]
            try:
                obj._p_jar = None
                obj._p_oid = None
            except ValueError:
                LOG.debug('cannot detach %r after rollback', obj)
        for key, obj in list(self._removed_for_good.items()):
            if key in state.removed:
                continue
            del self._removed_for_good[key]
            if obj._p_oid is not None and \
                    self._identity.get(obj._p_oid) is None:
                self._identity[obj._p_oid] = obj
        touched = list(self._touched.values())
        self._touched = dict(state.touched)
        # What containers remembered in this transaction may be newer than
        # the savepoint.
        self.annotations.clear()
        for obj in touched + self._identity.values():
            if obj._p_oid is not None and obj._p_changed is not None:
                try:
                    obj._p_invalidate()
                except Exception:  # one that refuses must not stop us
                    LOG.debug('cannot invalidate %r after rollback', obj,
                              exc_info=True)

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


_SavepointState = collections.namedtuple(
    '_SavepointState', ['mark', 'touched', 'new', 'removed'])


@zope.interface.implementer(transaction.interfaces.IDataManagerSavepoint)
class _Savepoint:

    def __init__(self, datamanager, state):
        self._datamanager = datamanager
        self._state = state

    def rollback(self):
        self._datamanager._rollback_to(self._state)
