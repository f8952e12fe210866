"""Sending one collection's writes, and what the server's answer means.

One ordered ``bulk_write`` per collection and flush.  Replacing writes
filter on the serial the object was read with, so a document another
transaction wrote since does not match: the conflict is detected by the
write itself, with no window between a check and the write.

* **standalone mode**: replaces upsert; a document written by another
  transaction makes the upsert collide with its ``_id`` (a duplicate-key
  error at exactly that write), a deleted one shows up as an upsert.
* **server-transaction mode**: a write error aborts the server transaction,
  so replaces of serial handlers do not upsert (which also keeps them
  routable on a sharded collection); a replace that matched nothing shows
  in the matched count, and one query then tells which document moved on.
  On a collection sharded on fields other than ``_id`` (see
  ``_sharding``), replaces and deletes also filter on the shard key values
  the document had when last read or written, so MongoDB can route them
  (a move that changes them included), and no replace upserts: MongoDB
  routes an upsert only by the whole shard key.  A ``NoCheck`` replace
  that matched nothing then is sent again after one query: as an insert
  if another transaction deleted the document (what the upsert did), as a
  replace on the current shard key values if another transaction moved
  it (the last writer wins); a ``NoCheck`` delete that missed because
  another transaction moved the document is sent again on its current
  shard key values.
  When the server transaction itself is lost (``WriteConflict``,
  ``NoSuchTransaction`` after the server's transaction lifetime, an error
  labelled ``TransientTransactionError``) nothing of the bulk was applied:
  :class:`TransactionLost` tells the data manager to start a new server
  transaction and send the log again.

Every write the server accepted goes into the transaction's write log, in
standalone mode with the write that undoes it; in standalone mode a bulk
that got no answer (a cut connection, a lost reply) is logged whole, as
any of its writes may have been applied (each undo matches only what its
own write stored, so undoing one never applied changes nothing).  Errors become zmongo's:
``ConflictError``, ``DuplicateKeyError``, ``SerializationError`` naming the
object and the attribute that could not be stored.
"""
import logging
import re

import bson
import bson.errors
import pymongo.errors
from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateOne

from zmongo import _names
from zmongo import interfaces
from zmongo import serialize

WRITE_CONFLICT = 112
NO_SUCH_TRANSACTION = 251
DUPLICATE_KEY = (11000, 11001)
TOO_LARGE = (10334, 17419, 17420)

LOG = logging.getLogger(__name__)


class TransactionLost(Exception):
    """The server transaction is gone, with everything it wrote: the data
    manager starts a new one and sends its write log again.  ``reason`` is
    the server's error."""

    def __init__(self, namespace, reason):
        self.namespace = namespace
        self.reason = reason
        super().__init__('the server transaction was lost writing to %s.%s: '
                         '%s' % (namespace + (reason,)))


def lost_transaction(err):
    """True if the server says (``err``) that the server transaction is
    gone: aborted by a write conflict, expired, or cut by a transient
    error.  A server that does not answer is not a lost transaction: that
    error stays what it is (the transaction fails, and is retried if the
    error is retryable)."""
    if not isinstance(err, pymongo.errors.OperationFailure):
        return False
    if err.has_error_label('TransientTransactionError'):
        return True
    if isinstance(err, pymongo.errors.BulkWriteError):
        first = (err.details.get('writeErrors') or [{}])[0]
        return first.get('code') == WRITE_CONFLICT
    return isinstance(err, pymongo.errors.OperationFailure) and \
        err.code in (WRITE_CONFLICT, NO_SUCH_TRANSACTION)


def whole_document_filter(id_, doc):
    """A filter matching the document ``id_`` only while it is exactly
    ``doc``: every top-level field equal (an embedded document compares
    whole, in order, as it was written) and the same number of fields (so
    a field another writer added since makes it miss)."""
    found = {_names.ID: id_}
    count = 1
    for key, value in doc.items():
        if key == _names.ID:
            continue
        count += 1
        if value is None:
            # {key: None} also matches a missing field: ask for the type.
            found[key] = {'$type': 'null'}
        elif isinstance(value, (list, tuple)):
            # {key: [..]} also matches an array holding that array.
            found[key] = {'$eq': list(value), '$size': len(value)}
        else:
            found[key] = {'$eq': value}
    found['$expr'] = {'$eq': [{'$size': {'$objectToArray': '$$ROOT'}},
                              count]}
    return found


def same_document(collection, written, found):
    """True if ``found`` (read back) is the document ``written``: compared
    as the server stores them (BSON), so a tuple written reads back as the
    list it became."""
    if found is None:
        return False
    options = collection.codec_options
    return bson.decode(bson.encode(written, codec_options=options),
                       codec_options=options) == found


# -- the write log sent again ---------------------------------------------------

def replay_bulks(entries, fields):
    """The bulks (lists of ``WriteLog`` entries) that send ``entries``, a
    run of one collection's log entries, again.  With ``fields`` (a
    ``NoCheck`` handler on a collection sharded on those fields besides
    ``_id``) a new bulk starts where a raw write follows an object's write:
    what each bulk's object writes left is then checked (see
    :func:`replay_missed`) before a raw write can change those documents."""
    if not fields:
        return [entries]
    bulks = [[]]
    for entry in entries:
        if entry.dbref is None and bulks[-1] and \
                bulks[-1][-1].dbref is not None:
            bulks.append([])
        bulks[-1].append(entry)
    return bulks


def replay_missed(collection, entries, result, fields, session):
    """The writes that make the ``NoCheck`` object writes of ``entries``
    (a bulk just sent again; ``result`` its ``BulkWriteResult``) that
    missed their document, on a collection sharded on ``fields`` besides
    ``_id``: the logged replaces and deletes carry the shard key values the
    document had when first sent, and do not upsert, so if another
    transaction moved (changed those values) or deleted the document since
    then they matched nothing.  As on the first send (the last writer
    wins): an insert where the document is gone, a replace or delete on its
    current shard key values where it moved.  The counts tell whether any
    missed (a raw write in the bulk blurs them); then one query."""
    replaces = [e for e in entries
                if e.dbref is not None and isinstance(e.op, ReplaceOne)]
    deletes = [e for e in entries
               if e.dbref is not None and isinstance(e.op, DeleteOne)]
    raw = any(e.dbref is None for e in entries)
    check_replaces = bool(replaces) and (
        raw or result.matched_count < len(replaces))
    check_deletes = bool(deletes) and (
        raw or result.deleted_count < len(deletes))
    if not (check_replaces or check_deletes):
        return []
    last = {}       # {dbref: its last entry}: what the bulk leaves
    for entry in entries:
        if entry.dbref is not None:
            last[entry.dbref] = entry
    cur = {doc[_names.ID]: doc for doc in collection.find(
        {_names.ID: {'$in': [dbref.id for dbref in last]}},
        session=session)}
    again = []
    for dbref, entry in last.items():
        found = cur.get(dbref.id)
        if isinstance(entry.op, ReplaceOne) and check_replaces and \
                entry.doc is not None and \
                not same_document(collection, entry.doc, found):
            if found is None:
                LOG.info('%r was deleted by another transaction; NoCheck: '
                         'stored again', dbref)
                again.append(InsertOne(entry.doc))
                continue
            LOG.info('%r was moved by another transaction; NoCheck: stored '
                     'there', dbref)
            filter_ = {_names.ID: dbref.id}
            filter_.update((f, found.get(f)) for f in fields)
            again.append(ReplaceOne(filter_, entry.doc))
        elif isinstance(entry.op, DeleteOne) and check_deletes and \
                found is not None:
            LOG.info('%r was moved by another transaction; NoCheck: deleted '
                     'there', dbref)
            filter_ = {_names.ID: dbref.id}
            filter_.update((f, found.get(f)) for f in fields)
            again.append(DeleteOne(filter_))
    return again


class BulkWriter:
    """Writes for one data manager: ``raw_collection(db, coll)`` gives the
    collection, ``states`` what is known of the documents (a
    ``DocumentStates``), ``log`` the transaction's ``WriteLog``;
    ``standalone`` says whether writes need undo writes."""

    def __init__(self, raw_collection, conflict_handler, states, log,
                 standalone, shard_fields=None):
        self._collection = raw_collection
        self._handler = conflict_handler
        self._states = states
        self._log = log
        self._standalone = standalone
        #: ``shard_fields(db, coll)``: the shard key fields besides ``_id``
        #: that writes must carry (see ``_sharding``).
        self._shard_fields = shard_fields

    # -- routing on a sharded collection ---------------------------------------

    def _routed(self, obj, filter_, fields):
        """``filter_`` with the shard key values (``fields``) the document
        had when last read or written, so a sharded cluster can route the
        write to its shard."""
        if not fields:
            return filter_
        values = self._states.shard_values(obj._p_oid)
        if values is None:
            return filter_
        routed = dict(filter_)
        routed.update(values)
        return routed

    # -- undo writes -----------------------------------------------------------

    def _written_filter(self, obj, doc):
        """Matches ``doc`` as this write stored it, and nothing written
        over it later: by its serial, where documents carry one; else (the
        NoCheck handler) by the whole document -- each top-level field
        equal to what this write stored and no field more -- so an undo
        never puts an old state over another transaction's later commit,
        whichever attribute that commit changed."""
        found = {_names.ID: obj._p_oid.id}
        field = self._handler.field_name
        if field and field in doc:
            found[field] = doc[field]
            return found
        return whole_document_filter(obj._p_oid.id, doc)

    def _undo_insert(self, obj, doc):
        return DeleteOne(self._written_filter(obj, doc))

    def _undo_replace(self, obj, doc):
        before = self._states.latest(obj._p_oid)
        if before is None:
            return DeleteOne(self._written_filter(obj, doc))
        return ReplaceOne(self._written_filter(obj, doc), before)

    def _undo_delete(self, obj):
        before = self._states.latest(obj._p_oid)
        if before is None:
            before = self._states.original(obj._p_oid)
        if before is None:
            return None
        # Re-create it only if it is really gone: a delete that lost a
        # conflict deleted nothing.
        body = {k: v for k, v in before.items() if k != _names.ID}
        return UpdateOne({_names.ID: obj._p_oid.id}, {'$setOnInsert': body},
                         upsert=True)

    def _log_writes(self, namespace, ops, undo, skipped=(), writes=None,
                    first_replace=0):
        """Log the writes sent, each with the document it wrote (a replace
        that matched nothing, ``skipped``, wrote nothing)."""
        written = {}
        if writes is not None:
            first_insert = first_replace - len(writes.inserts)
            for i, (_, doc) in enumerate(writes.inserts):
                written[first_insert + i] = doc
            for i, (_, _, doc) in enumerate(writes.replaces):
                written[first_replace + i] = doc
        for i, (op, (dbref, undo_op)) in enumerate(zip(ops, undo)):
            if i not in skipped:
                self._log.append(namespace, dbref, op, undo_op or None,
                                 written.get(i))

    # -- writing ---------------------------------------------------------------

    def execute(self, db_name, coll_name, writes, session):
        """Send ``writes`` (a ``CollectionWrites``); returns ``(conflicts,
        unapplied)``: the replaces that met another transaction's write as
        ``(obj, current document or None, new document)``, and the objects
        whose replaces were not sent because an earlier one failed.

        Raises :class:`TransactionLost` (server-transaction mode) when the
        server transaction is gone; nothing is recorded then.
        """
        standalone = self._standalone
        fields = self._shard_fields(db_name, coll_name) \
            if self._shard_fields is not None else ()
        ops = []
        undo = []   # (dbref or None, the write that reverses it)
        for obj, filter_ in writes.deletes:
            ops.append(DeleteOne(self._routed(obj, filter_, fields)))
            undo.append((obj._p_oid, standalone and self._undo_delete(obj)))
        for op, undo_op in writes.raw:
            ops.append(op)
            undo.append((None, undo_op))
        first_replace_docs = len(ops)     # the writes without a document
        for obj, doc in writes.inserts:
            ops.append(InsertOne(doc))
            undo.append((obj._p_oid, standalone and
                         self._undo_insert(obj, doc)))
        first_replace = len(ops)
        # See the module docstring: in a server transaction a serial
        # handler's replace must not fail on a unique index.
        # On a collection sharded on other fields than _id, no upsert (see
        # the module docstring).
        upsert = (standalone or not self._handler.detects_conflicts) and \
            not fields
        for obj, filter_, doc in writes.replaces:
            ops.append(ReplaceOne(self._routed(obj, filter_, fields), doc,
                                  upsert=upsert))
            undo.append((obj._p_oid, standalone and
                         self._undo_replace(obj, doc)))
        namespace = (db_name, coll_name)
        coll = self._collection(db_name, coll_name)
        applied, error, upserted, matched = len(ops), None, {}, None
        try:
            result = coll.bulk_write(ops, ordered=True, session=session)
            upserted = result.upserted_ids or {}
            deleted = result.deleted_count
            matched = result.matched_count
        except pymongo.errors.PyMongoError as err:
            if not standalone and lost_transaction(err):
                # Nothing of it was applied: nothing to log or record.
                raise TransactionLost(namespace, str(err)[:300]) from err
            if not isinstance(err, pymongo.errors.BulkWriteError):
                if standalone:
                    # No answer (a cut connection, a lost reply): any of
                    # the writes may have been applied.  Each undo write
                    # matches only what its write stored, so logging all
                    # of them lets the abort undo exactly those applied.
                    self._log_writes(namespace, ops, undo)
                if lost_transaction(err):
                    raise interfaces.ConflictError(
                        'write conflict in %s.%s (another transaction wrote '
                        'the same documents): %s' % (
                            db_name, coll_name, err)) from err
                raise
            error = err
            details = err.details
            applied = (details.get('writeErrors') or [{}])[0].get('index', 0)
            upserted = {u['index']: u['_id']
                        for u in details.get('upserted') or ()}
            deleted = details.get('nRemoved', 0)
        except (pymongo.errors.DocumentTooLarge, bson.errors.InvalidDocument,
                bson.errors.InvalidStringData, UnicodeEncodeError) as err:
            # pymongo refused a document while encoding it, possibly after
            # earlier batches of this bulk were sent: undo those.  The
            # refused write and the ones after it were not sent (the bulk
            # is ordered), and their undo writes -- which hold the refused
            # document -- could not be sent either.
            sent = _first_unencodable(
                [None] * first_replace_docs + [d for _, d in writes.inserts]
                + [d for _, _, d in writes.replaces])
            self._log_writes(namespace, ops[:sent], undo[:sent])
            raise unencodable(writes, err) from err
        handler = self._handler
        conflicts = []
        skipped = set()     # indexes of writes that changed nothing
        rewrites = []       # NoCheck writes sent again: (obj, op, doc)
        if matched is not None and not upsert and writes.replaces and (
                writes.raw or matched < len(writes.replaces)) and \
                not handler.detects_conflicts:
            # A sharded collection's NoCheck replaces (no upsert): those
            # that matched nothing are written again, by one more bulk.
            rewrites = self._unmatched(db_name, coll_name, writes, session,
                                       first_replace, skipped)
        elif matched is not None and not upsert and writes.replaces and (
                writes.raw or matched < len(writes.replaces)):
            # Some replace found its document moved on (or gone): one query
            # tells which.
            cur = self._current_docs(
                db_name, coll_name,
                [o._p_oid.id for o, _, _ in writes.replaces], session)
            for i, (obj, _, doc) in enumerate(writes.replaces):
                found = cur.get(obj._p_oid.id)
                if not same_document(coll, doc, found):
                    conflicts.append((obj, found, doc))
                    skipped.add(first_replace + i)
        if matched is not None and fields and writes.deletes and (
                writes.raw or deleted < len(writes.deletes)) and \
                not handler.detects_conflicts:
            # A NoCheck delete carrying shard key values another
            # transaction changed (a move) missed: deleted again.
            rewrites += self._undeleted(db_name, coll_name, writes, session)
        for i in upserted:
            if i >= first_replace and standalone:
                # Deleted meanwhile, so the upsert created it: undone by
                # deleting exactly what was written.
                obj, _, doc = writes.replaces[i - first_replace]
                undo[i] = (undo[i][0], self._undo_insert(obj, doc))
        if rewrites:
            # Before anything is logged: a lost server transaction must
            # leave nothing of this bulk recorded.
            self._send_again(namespace, rewrites, session)
        self._log_writes(namespace, ops[:applied], undo[:applied], skipped,
                         writes, first_replace)
        for obj, op, doc in rewrites:
            self._log.append(namespace, obj._p_oid, op, None, doc)
        for i in sorted(upserted):
            if i >= first_replace and handler.detects_conflicts:
                obj, _, doc = writes.replaces[i - first_replace]
                conflicts.append((obj, None, doc))
                # Deleted meanwhile, so the upsert re-created it: an abort
                # must delete exactly what was written.
                self._states.set_latest(obj._p_oid, doc)
        if error is not None:
            first = error.details['writeErrors'][0]
            conflict = None
            if standalone and applied >= first_replace and \
                    handler.detects_conflicts and \
                    first.get('code') in DUPLICATE_KEY:
                conflict = self._stale_serial(
                    db_name, coll_name,
                    writes.replaces[applied - first_replace], session)
            if conflict is None:
                raise bulk_error(db_name, coll_name, error, writes)
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
                        obj, self._states.original(obj._p_oid),
                        cur[obj._p_oid.id], None)
        unapplied = [obj for obj, _, _ in
                     writes.replaces[max(applied - first_replace + 1, 0):]]
        return conflicts, unapplied

    def _unmatched(self, db_name, coll_name, writes, session, first_replace,
                   skipped):
        """The ``NoCheck`` replaces (not upserting) that matched nothing,
        as the writes that store them after all: an insert where the
        document is gone, a replace on the current shard key values where
        another transaction moved it.  One query; their indexes go into
        ``skipped`` (the first attempt wrote nothing)."""
        coll = self._collection(db_name, coll_name)
        cur = self._current_docs(
            db_name, coll_name,
            [o._p_oid.id for o, _, _ in writes.replaces], session)
        fields = self._shard_fields(db_name, coll_name)
        again = []
        for i, (obj, _, doc) in enumerate(writes.replaces):
            found = cur.get(obj._p_oid.id)
            if same_document(coll, doc, found):
                continue
            skipped.add(first_replace + i)
            if found is None:
                LOG.info('%r was deleted by another transaction; NoCheck: '
                         'stored again', obj)
                again.append((obj, InsertOne(doc), doc))
                continue
            filter_ = {_names.ID: obj._p_oid.id}
            filter_.update((f, found.get(f)) for f in fields)
            again.append((obj, ReplaceOne(filter_, doc), doc))
        return again

    def _undeleted(self, db_name, coll_name, writes, session):
        """The ``NoCheck`` deletes that missed because another transaction
        moved the document (changed its shard key values), as deletes on
        its current values (the last writer wins).  One query."""
        cur = self._current_docs(
            db_name, coll_name, [o._p_oid.id for o, _ in writes.deletes],
            session)
        fields = self._shard_fields(db_name, coll_name)
        again = []
        for obj, _ in writes.deletes:
            found = cur.get(obj._p_oid.id)
            if found is None:
                continue
            LOG.info('%r was moved by another transaction; NoCheck: deleted '
                     'there', obj)
            filter_ = {_names.ID: obj._p_oid.id}
            filter_.update((f, found.get(f)) for f in fields)
            again.append((obj, DeleteOne(filter_), None))
        return again

    def _send_again(self, namespace, rewrites, session):
        db_name, coll_name = namespace
        coll = self._collection(db_name, coll_name)
        try:
            coll.bulk_write([op for _, op, _ in rewrites], ordered=True,
                            session=session)
        except pymongo.errors.PyMongoError as err:
            if lost_transaction(err):
                raise TransactionLost(namespace, str(err)[:300]) from err
            if isinstance(err, pymongo.errors.BulkWriteError):
                raise bulk_error(db_name, coll_name, err) from err
            raise

    def _stale_serial(self, db_name, coll_name, replace, session):
        """A replacing write failed on a unique index: a conflict if the
        document moved on from the serial it was read with (the upsert
        then collided with it -- on ``_id`` or on whichever unique index
        the server checked first), else None (a real duplicate key)."""
        obj, _, doc = replace
        cur = self._current_docs(db_name, coll_name, [obj._p_oid.id],
                                 session).get(obj._p_oid.id)
        field = self._handler.field_name
        expected = self._handler.serial_of(obj)
        if cur is not None and (cur.get(field) or 0) != expected:
            return obj, cur, doc
        return None

    def _after_write(self, writes, replaces_applied, conflicts):
        handler = self._handler
        conflicted = {id(obj) for obj, _, _ in conflicts}
        for obj, doc in writes.inserts:
            self._states.set_latest(obj._p_oid, doc)
            handler.on_after_store(obj, doc)
        for obj, _, doc in writes.replaces[:max(replaces_applied, 0)]:
            if id(obj) not in conflicted:
                self._states.set_latest(obj._p_oid, doc)
                handler.on_after_store(obj, doc)
        for obj, _ in writes.deletes:
            self._states.forget_written(obj._p_oid)

    def _current_docs(self, db_name, coll_name, ids, session):
        coll = self._collection(db_name, coll_name)
        return {doc[_names.ID]: doc for doc in coll.find(
            {_names.ID: {'$in': ids}}, session=session)}


# -- errors ----------------------------------------------------------------------

def unencodable_path(value, path=()):
    """Where in a document a string is that BSON (UTF-8) cannot hold."""
    if isinstance(value, str):
        try:
            value.encode('utf-8')
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unencodable_path(key, path + (key,)) if \
                isinstance(key, str) else None
            if found is None:
                found = unencodable_path(item, path + (key,))
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = unencodable_path(item, path + (index,))
            if found is not None:
                return found
    return None


def _first_unencodable(docs):
    """The index of the first document (None: a write without one) that
    BSON cannot hold or that is larger than MongoDB allows; ``len(docs)``
    if there is none."""
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        try:
            size = len(bson.encode(doc))
        except (bson.errors.InvalidDocument, bson.errors.InvalidStringData,
                UnicodeEncodeError, OverflowError):
            return index
        if size > _names.MAX_BSON_SIZE:
            return index
    return len(docs)


def _documents(writes):
    return [(o, d) for o, d in writes.inserts] + \
        [(o, d) for o, _, d in writes.replaces]


def unencodable(writes, err):
    """The ``SerializationError`` for a document pymongo could not encode,
    naming the object and the attribute."""
    if isinstance(err, pymongo.errors.DocumentTooLarge):
        return too_large(writes, err)
    for obj, doc in _documents(writes):
        path = unencodable_path(doc)
        if path is not None:
            return interfaces.SerializationError(
                'cannot store attribute %s of %r: %s' % (
                    serialize.format_path(list(path)), obj, err))
    return interfaces.SerializationError(
        'a document could not be encoded as BSON: %s' % err)


def too_large(writes, err):
    for obj, doc in _documents(writes):
        size = len(bson.encode(doc))
        if size > _names.MAX_BSON_SIZE:
            return interfaces.SerializationError(
                'cannot store %r: its document is %d bytes, more than '
                'the %d MongoDB allows; move large values into objects '
                'of their own or GridFS' % (obj, size, _names.MAX_BSON_SIZE))
    return interfaces.SerializationError(
        'a document is larger than MongoDB allows: %s' % str(err)[:300])


def container_name_taken(db_name, coll_name, first):
    """The retryable ``NameConflictError`` for a duplicate key on the
    root's unique name index or on a container's unique ``(parent, key)``
    index (another transaction added
    the name first: a conflict, as in a ``BTreeContainer``), else None."""
    match = re.search(r'index: (\S+)', first.get('errmsg') or '')
    if match is None:
        return None
    index = match.group(1)
    if index == _names.ROOT_INDEX:
        what = 'a root entry of the same name'
    elif index.startswith(_names.CONTAINER_INDEX_PREFIX):
        what = 'an item of the same container with the same name'
    else:
        return None
    return interfaces.NameConflictError(
        'name conflict in %s.%s: another transaction added %s first (%s, '
        'index %s); retry the transaction (transaction.manager.attempts()):'
        ' the name is taken then' % (
            db_name, coll_name, what,
            first.get('keyValue') or first.get('errmsg'), index))


def bulk_error(db_name, coll_name, err, writes=None):
    first = (err.details.get('writeErrors') or [{}])[0]
    if first.get('code') in TOO_LARGE and writes is not None:
        return too_large(writes, err)
    if first.get('code') in DUPLICATE_KEY:
        name_taken = container_name_taken(db_name, coll_name, first)
        if name_taken is not None:
            return name_taken
        return interfaces.DuplicateKeyError(
            'duplicate key in %s.%s: %s is already taken (%s)' % (
                db_name, coll_name, first.get('keyValue'),
                first.get('errmsg')))
    if first.get('code') == WRITE_CONFLICT:
        return interfaces.ConflictError(
            'write conflict in %s.%s: %s' % (db_name, coll_name,
                                              first.get('errmsg')))
    return err
