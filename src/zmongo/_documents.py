"""What a transaction knows of the documents it read and wrote.

Two things need the documents behind objects: telling an object that was
only marked changed from one that really changed (unchanged objects are
never written), and, in standalone mode, undoing a write (the document as
it was before).  In server-transaction mode the server undoes an abort and
the serial lives on the object, so only a digest of each document read is
kept: holding every document beside the object built from it would double
the memory a load takes -- unless the conflict handler checks serials: its
``ConflictError`` carries the document as read, and
``_p_resolveConflict(orig, cur, new)`` needs it.

On a collection sharded on fields other than ``_id``, the values of those
fields are kept too (a few per document, whatever the mode): a replace or
delete must carry them for MongoDB to route it (see ``_sharding``).

A record lives as long as the object it belongs to: the data manager
forgets the records of collected objects (see ``_identitymap``), and all of
them at the end of the transaction.
"""
import hashlib
import struct

import bson
from bson.raw_bson import RawBSONDocument

from zmongo import _names
from zmongo import _oid

#: References whose BSON a digest reuses (kept per data manager, emptied
#: when it grows past this).
_ENCODED_REFERENCES = 256
_REFERENCE_TYPES = (bson.DBRef, _oid.HashedDBRef)
_INT32 = struct.Struct('<i')


def decode_batches(batches, codec_options):
    """``(documents, raws)``: the documents of ``batches`` (a cursor's raw
    BSON batches, ``find_raw_batches``), decoded, and the BSON of each.
    One C call decodes a whole batch; a ``RawBSONDocument`` per document
    and a decode of each cost twice as much."""
    docs = []
    raws = []
    append = raws.append
    unpack = _INT32.unpack_from
    for batch in batches:
        docs.extend(bson.decode_all(batch, codec_options))
        pos, end = 0, len(batch)
        while pos < end:
            size = unpack(batch, pos)[0]
            append(batch[pos:pos + size])
            pos += size
    return docs, raws


def decode_many(raws, codec_options):
    """The documents of ``raws`` (BSON each), decoded in one C call."""
    return bson.decode_all(b''.join(raws), codec_options)


class DocumentStates:

    def __init__(self, conflict_handler, keep_documents, shard_fields=None):
        #: ``keep_documents()``: True when whole documents are needed
        #: (standalone mode), asked when a transaction remembers its first
        #: document.
        self._handler = conflict_handler
        self._keep_documents = keep_documents
        #: ``shard_fields(db, coll)``: the shard key fields (besides
        #: ``_id``) whose values writes must carry; () for none.
        self._shard_fields = shard_fields
        self.clear()

    def clear(self):
        # Documents as this transaction first saw them, and the latest
        # version known (read, or written by it).
        self._original = {}
        self._latest = {}
        self._digests = {}
        self._shard_values = {}
        self._encoded_references = {}
        # What documents read were, whose objects were let go (see
        # ``let_go``): {(database, collection): _Reads}.
        self._let_go = {}
        self._last_reference = (None, None)
        # keep_documents(), asked once per transaction (neither the mode
        # nor the conflict handler changes within one).
        self._keep = None

    # -- reading ---------------------------------------------------------------

    def original(self, dbref):
        """The document as this transaction first read it, or None."""
        return self._original.get(dbref)

    def has_original(self, dbref):
        return dbref in self._original

    def latest(self, dbref):
        """The latest version known (read or written), or None."""
        return self._latest.get(dbref)

    def shard_values(self, dbref):
        """``{field: value}`` of the shard key fields of the document as
        last read or written, or None (unsharded, or not known)."""
        return self._shard_values.get(dbref)

    def _note_shard_values(self, dbref, doc):
        if self._shard_fields is None:
            return
        fields = self._shard_fields(dbref.database, dbref.collection)
        if fields:
            self._shard_values[dbref] = {f: doc.get(f) for f in fields}

    # -- recording -------------------------------------------------------------

    def set_latest(self, dbref, doc):
        self._latest[dbref] = doc
        self._note_shard_values(dbref, doc)

    def remember_loaded(self, dbref, doc):
        """``doc`` was loaded into its object."""
        self._note_shard_values(dbref, doc)
        keep = self._keep
        if keep is None:
            keep = self._keep = bool(self._keep_documents())
        if not keep:
            self._latest.pop(dbref, None)
            self._digests[dbref] = self._digest(doc)
            return
        self._original.setdefault(dbref, doc)
        self._latest.setdefault(dbref, doc)

    def forget(self, dbref):
        """The object of ``dbref`` is gone or a ghost again."""
        self._latest.pop(dbref, None)
        self._original.pop(dbref, None)
        self._digests.pop(dbref, None)
        self._shard_values.pop(dbref, None)

    def let_go(self, dbref):
        """Like ``forget``, but what the document was as this transaction
        read it is kept, compactly, until the transaction ends: in
        server-transaction mode a new server transaction checks everything
        the transaction read, objects it let go of included."""
        doc = self._original.get(dbref)
        field = self._handler.field_name
        if doc is None:
            digest = self._digests.get(dbref)
            mark = None if digest is None else b'd' + digest[:8]
        elif field and isinstance(doc.get(field), int):
            # A version number is cheaper than a digest of the document.
            mark = b's' + struct.pack('>q', doc[field])
        else:
            mark = b'd' + self._digest(doc)[:8]
        self.forget(dbref)
        if mark is not None:
            key = (dbref.database, dbref.collection)
            reads = self._let_go.get(key)
            if reads is None:
                reads = self._let_go[key] = _Reads()
            reads.add(dbref.id, mark)

    def drop_let_go(self, dbrefs):
        """Forget what was kept of ``dbrefs`` let go of: what the
        transaction read of them was its own write, rolled back."""
        by_namespace = {}
        for dbref in dbrefs:
            by_namespace.setdefault(
                (dbref.database, dbref.collection), []).append(dbref.id)
        for key, ids in by_namespace.items():
            reads = self._let_go.get(key)
            if reads is not None:
                reads.drop(ids)

    def read_before(self):
        """``(DBRef, mark)`` of the documents read whose objects were let
        go (a document let go twice may come twice)."""
        for (db_name, coll_name), reads in self._let_go.items():
            for id_, mark in reads.items():
                yield bson.DBRef(coll_name, id_, db_name), mark

    def matches(self, mark, doc):
        """Whether ``doc`` (found now) is the document ``mark`` (from
        ``read_before``) was taken of."""
        if doc is None:
            return False
        if mark[:1] == b's':
            serial = doc.get(self._handler.field_name)
            return isinstance(serial, int) and \
                struct.pack('>q', serial) == mark[1:]
        return self._digest(doc)[:8] == mark[1:]

    @staticmethod
    def serial_of(mark):
        """The serial a mark (from ``read_before``) was taken of, or None
        (a digest)."""
        if mark[:1] == b's':
            return struct.unpack('>q', mark[1:])[0]
        return None

    def forget_written(self, dbref):
        """What this transaction wrote to ``dbref`` was rolled back, or a
        write through the collection wrapper changed it: its latest version
        must be read again."""
        self._latest.pop(dbref, None)
        self._digests.pop(dbref, None)
        self._shard_values.pop(dbref, None)

    # -- comparing -------------------------------------------------------------

    def _digest(self, doc):
        """A digest of what ``doc`` stores, its ``_id`` and serial aside.

        Its BSON, hashed.  A ``DBRef`` field (every item of a container
        has one, its parent) encodes in Python, through a ``SON``, which
        made up half the cost of a digest: the BSON of the references seen
        is kept and inserted as it is, the same bytes."""
        skip = (_names.ID, self._handler.field_name)
        refs = _REFERENCE_TYPES
        state = {}
        for name, value in doc.items():
            if name in skip:
                continue
            if type(value) in refs:
                value = self._encoded_reference(value)
            state[name] = value
        return hashlib.blake2b(bson.encode(state), digest_size=16).digest()

    def _encoded_reference(self, ref):
        """``ref`` as a ``RawBSONDocument`` of the same BSON (or itself)."""
        last = self._last_reference
        if last[0] is ref:
            # The items of a listing share one parent reference object.
            return last[1]
        raw = self._encode_reference(ref)
        self._last_reference = (ref, raw)
        return raw

    def _encode_reference(self, ref):
        if ref._DBRef__kwargs:
            return ref
        id_ = ref.id
        # The type too: 1, 1.0 and True are equal keys, not equal BSON.
        key = (ref.collection, type(id_), id_, ref.database)
        known = self._encoded_references
        try:
            raw = known.get(key)
        except TypeError:       # an unhashable _id (a sub-document)
            return ref
        if raw is None:
            if len(known) >= _ENCODED_REFERENCES:
                known.clear()
            raw = known[key] = RawBSONDocument(bson.encode(ref.as_doc()))
        return raw

    def read_as(self, dbref, doc):
        """Whether ``doc`` (found now) is the document this transaction
        read for ``dbref``: True, False, or None if nothing was kept.  The
        serial counts where documents carry one."""
        original = self._original.get(dbref)
        if original is not None:
            return original == doc
        digest = self._digests.get(dbref)
        if digest is None:
            return None
        return doc is not None and digest == self._digest(doc)

    def unchanged(self, obj, doc):
        """True if ``doc``, the state of ``obj`` to write, is what was
        read: such a write is left out."""
        latest = self._latest.get(obj._p_oid)
        if latest is not None:
            return self._handler.is_same(obj, latest, doc)
        digest = self._digests.get(obj._p_oid)
        return digest is not None and digest == self._digest(doc)


class _Reads:
    """Documents of one collection that a transaction read and let go of,
    with a 9-byte mark each (a serial or a digest), packed: a transaction
    that walks a collection keeps about 21 bytes per document of it, not
    a ``DBRef`` and a record."""

    __slots__ = ('_oids', '_marks', '_others')

    def __init__(self):
        self._oids = bytearray()        # 12 bytes per ObjectId
        self._marks = bytearray()       # 9 bytes per ObjectId
        self._others = {}               # other _ids: {id: mark}

    def add(self, id_, mark):
        if type(id_) is bson.ObjectId:
            self._oids += id_.binary
            self._marks += mark
        else:
            self._others.setdefault(id_, mark)

    def drop(self, ids):
        """Forget the documents ``ids``."""
        gone = {id_.binary for id_ in ids if type(id_) is bson.ObjectId}
        if gone:
            oids, marks = bytes(self._oids), bytes(self._marks)
            self._oids, self._marks = bytearray(), bytearray()
            for i in range(len(oids) // 12):
                oid = oids[12 * i:12 * i + 12]
                if oid not in gone:
                    self._oids += oid
                    self._marks += marks[9 * i:9 * i + 9]
        for id_ in ids:
            if type(id_) is not bson.ObjectId:
                self._others.pop(id_, None)

    def items(self):
        oids, marks = bytes(self._oids), bytes(self._marks)
        for i in range(len(oids) // 12):
            yield (bson.ObjectId(oids[12 * i:12 * i + 12]),
                   marks[9 * i:9 * i + 9])
        yield from self._others.items()
