"""What every part of zmongo does: interfaces and exceptions.

The implementations point here; the contracts live in these docstrings:
what each operation does, what it returns, what it raises and what it costs.

Costs are counted in MongoDB commands (``find``, ``insert``, ``update``,
``delete``, ``aggregate``, ``commitTransaction``, ...), which no machine's
noise changes; ``getMore`` batches of a long cursor are not counted apart.
The data manager runs in one of two modes, which differ in a few costs:

* **server-transaction mode** (replica sets, sharded clusters): every read
  and write of a data manager runs in one client session and one server
  transaction, which ``tpc_vote`` commits (one ``commitTransaction``) and an
  abort rolls back (one ``abortTransaction``);
* **standalone mode** (a standalone server, or ``transactions=False``):
  writes land when they are flushed; an abort writes the original documents
  back (one bulk write per collection written), and a flush reads the
  originals of documents it replaces or deletes that the transaction has
  not read (at most one ``find`` per collection).
"""
import datetime as _datetime
import decimal as _decimal

import bson as _bson
import persistent.interfaces
import transaction.interfaces
import zope.interface
import zope.schema
from zope.container.interfaces import IContainer
from zope.location.interfaces import IContained

from zmongo import _names


# --------------------------------------------------------------------------
# Exceptions
# --------------------------------------------------------------------------

class ConflictError(transaction.interfaces.TransientError):
    """Two transactions wrote the same document; this one lost.

    Raised at commit (by ``tpc_vote``, or by any earlier ``flush``) when a
    serial conflict handler finds that the document changed (or was deleted,
    or the object to delete changed) since this transaction read it, and in
    server-transaction mode when the server reports a ``WriteConflict`` or an
    error labelled ``TransientTransactionError``.  It is a
    ``transaction.interfaces.TransientError``, so
    ``transaction.manager.attempts()`` and ``run()`` abort the transaction
    and retry it (without them, call ``transaction.abort()``).

    Every constructor argument is optional; together they carry the
    evidence, as attributes:

    ``message``
        The text given, or ``'database conflict error'``.
    ``object``
        The persistent object whose write lost.
    ``orig_state``
        Its document as this transaction first read it (``None`` if it did
        not read it).
    ``cur_state``
        The document as the database holds it now (``None`` when another
        transaction deleted it).
    ``new_state``
        The document this transaction wanted to write (``None`` for a
        delete).
    ``orig_serial``, ``cur_serial``, ``new_serial``
        The ``_py_serial`` of those three documents (``None`` where the
        document is ``None`` or has no serial).

    In server-transaction mode a conflict the server reports loses the
    server transaction; the data manager starts a new one, sends its writes
    again and lets the handler decide with the same evidence.  Only when
    that fails three times in a row is the error the server's alone (just
    ``message``).  ``str()`` names the object's oid and class and the three
    serials.
    """

    def __init__(self, message=None, object=None,
                 orig_state=None, cur_state=None, new_state=None):
        self.message = message or 'database conflict error'
        self.object = object
        self.orig_state = orig_state
        self.cur_state = cur_state
        self.new_state = new_state
        super().__init__(self.message)

    @staticmethod
    def _serial(state):
        return state.get(_names.PY_SERIAL) if state else None

    @property
    def orig_serial(self):
        """The ``_py_serial`` of ``orig_state`` (an int), or ``None``."""
        return self._serial(self.orig_state)

    @property
    def cur_serial(self):
        """The ``_py_serial`` of ``cur_state`` (an int), or ``None``."""
        return self._serial(self.cur_state)

    @property
    def new_serial(self):
        """The ``_py_serial`` of ``new_state`` (an int), or ``None``."""
        return self._serial(self.new_state)

    def __str__(self):
        extras = []
        if self.object is not None:
            extras.append('oid %r' % (getattr(self.object, '_p_oid', None),))
            extras.append('class %s' % type(self.object).__name__)
        extras.append('orig serial %s' % self.orig_serial)
        extras.append('cur serial %s' % self.cur_serial)
        extras.append('new serial %s' % self.new_serial)
        return '%s (%s)' % (self.message, ', '.join(extras))

    def __repr__(self):
        return '%s: %s' % (type(self).__name__, self)


class CircularReferenceError(Exception):
    """A non-persistent object contains itself.

    Non-persistent objects are stored inside their parent's document, so a
    cycle among them has no finite document.  Raised while an object is
    serialized (``IObjectWriter.get_state`` / ``get_full_state``, so by
    ``flush``, ``dump`` and commit; the message names the attribute path
    where the cycle closes), and by ``IMongoDataManager.register`` when the
    owners of persistent sub-objects (``_p_mongo_sub_object``) form a loop.
    Nothing is written.  Make one of the objects persistent (it then gets
    its own document and is stored by reference) to break the cycle.
    Immutable values (dates, decimals, frozensets) may be shared without
    being a cycle.
    """


class SerializationError(TypeError):
    """An object cannot be written to MongoDB; the message says which and why.

    Raised before anything is written -- by the serializer (a value with no
    BSON form: an open file, an int beyond 64 bits, a class defined inside a
    function), or by a flush when pymongo cannot encode a document (a string
    that is not valid UTF-8, a document over MongoDB's 16 MiB limit).  A
    ``TypeError``, as pickling errors are.
    """


class UnsafeDocumentError(ValueError):
    """A document names code the loader refuses to run.

    Loading only makes persistent objects, enum members, the standard
    library's plain value types (from arguments of the shapes zmongo
    writes) and instances of classes the application trusts
    (``zmongo.serialize.register_type``, ``trust_modules``, a data
    manager's ``trusted_modules``), and only calls factories it registered
    (``register_factory``); it imports a module a document names only under
    a trusted prefix.  Anything else raises this, before anything was
    called or imported.  The message names the database, collection,
    ``_id`` and field, and the call that would allow it; the same facts are
    attributes: ``database``, ``collection``, ``document_id``, ``field``
    (the path in the document, such as ``phone._py_type``) and ``reason``.
    Other documents still load, and the transaction can still commit.
    """


class DocumentLoadError(ValueError):
    """A stored document cannot be turned back into an object.

    Raised when an object is loaded (its class resolved, its ghost
    activated, or ``setstate`` called): a class or module that does not
    exist, a malformed field, values nested deeper than MongoDB stores
    (100 levels), arguments a standard-library type rejects, a
    ``__setstate__`` that failed.  The message and the attributes name the
    document as for :class:`UnsafeDocumentError`.
    """


class DocumentNotFoundError(LookupError):
    """A reference (``DBRef``) points to a document that does not exist.

    Raised when a ghost is activated (or ``setstate`` is called) and the
    document it refers to is not in the collection (deleted, or a dangling
    reference).
    """


class StaleSubObjectError(ValueError):
    """A sub-object (a ``PersistentList`` or ``PersistentDict`` stored
    inside its owner's document) was changed after its owner became a
    ghost.

    The owner reloads its document into new sub-objects when it is used
    again, so a change to the old one could never be stored: instead of
    losing it silently, zmongo refuses it.  Get the sub-object from its
    owner again (``owner.tags.append(...)``) after a commit, an abort, a
    savepoint or ``cacheMinimize()``.
    """


class DuplicateKeyError(ValueError):
    """A write would have created a second document with a unique key.

    Raised by a flush (so at commit) when MongoDB refuses a write on a
    unique index: an ``_id`` already taken, or a name already used in a
    container (the containers' ``(parent, key)`` index is unique, so two
    transactions adding the same name at once cannot both succeed).  The
    message names the collection and the key.
    """


class NameConflictError(ConflictError, DuplicateKeyError):
    """Two transactions added the same name to a container; this one lost.

    Raised at commit when a container's unique ``(parent, key)`` index
    refuses this transaction's write: another transaction took the name
    first.  As for a ``BTreeContainer`` in ZODB, that is a conflict: a
    ``ConflictError`` (so ``transaction.manager.attempts()`` retries, and
    the retry gets a clean ``KeyError`` for the taken name), and still a
    ``DuplicateKeyError`` for code catching that.  The message names the
    collection, the container (its parent value) and the name.
    """


class UnsupportedShardKeyError(ValueError):
    """A collection zmongo uses is sharded on a key its writes cannot work
    with (see ``docs/scaling.rst``).

    Raised when a data manager first uses the collection through a
    ``mongos``, before anything is written to it.  The message names the
    collection, its shard key and a shard key that would work.
    """


class RefusedItemError(zope.interface.Invalid, ValueError):
    """A container cannot hold this (already stored) object.

    A Mongo container keeps its items in one collection, so an object whose
    document lives in another collection (or in ZODB, or in another data
    manager) cannot become its item, and an id-named container names each
    item by its ``_id``, so such an item cannot be renamed.  Raised by the
    precondition of ``IMongoContainer.__setitem__`` before anything changes
    -- so ``zope.container.constraints.checkObject`` reports it, and
    ``zope.copypastemove``'s ``moveableTo()`` / ``copyableTo()`` say False
    and the ZMI offers no Paste -- and by ``__setitem__`` itself.  The
    message names the object, its ``DBRef`` and the container's collection.
    A ``zope.interface.Invalid`` (what Zope's constraint checks catch) and,
    as before, a ``ValueError``.
    """


#: Types BSON stores natively; everything else goes through the serializer.
#: Kept here for mongopersist compatibility (it exported the same tuple).
MONGO_NATIVE_TYPES = (
    bool, int, float, str, bytes, type(None),
    _bson.ObjectId, _bson.DBRef, _bson.Int64, _bson.Decimal128,
    _bson.Regex, _bson.Timestamp, _bson.MinKey, _bson.MaxKey, _bson.Code,
    _bson.Binary,
)
#: Immutable non-native types: sharing them is never a cycle.
REFERENCE_SAFE_TYPES = (
    _datetime.date, _datetime.time, _datetime.timedelta, _datetime.datetime,
    _decimal.Decimal, frozenset,
)


# --------------------------------------------------------------------------
# Serialization
# --------------------------------------------------------------------------

class IObjectSerializer(zope.interface.Interface):
    """Custom storage for one kind of object.

    For values the generic rules of :mod:`zmongo.serialize` store badly or
    not at all.  Registered serializers (``zmongo.serialize.SERIALIZERS``,
    or a data manager's ``serializers`` option) are asked, in order, before
    the generic rules -- for every value except native BSON values (and
    ``DBRef`` references, when reading); the first that says yes wins.  No
    method talks to MongoDB.  ``zmongo.serialize.ObjectSerializer`` is a
    base class whose methods raise ``NotImplementedError``.
    """

    def can_read(state):
        """Return True if ``state`` (a value read from MongoDB) was written
        by this serializer and should be read by it.

        Must not raise for values it does not know: it is asked about many.
        """

    def read(state):
        """Return the object that ``state`` stores.

        Only called after ``can_read(state)`` returned True.
        """

    def can_write(obj):
        """Return True if this serializer stores ``obj``.

        Must not raise for objects it does not know: it is asked about many.
        """

    def write(obj):
        """Return the BSON-able value that stores ``obj``.

        Only called after ``can_write(obj)`` returned True; ``can_read``
        must recognize the value returned.
        """


class IObjectWriter(zope.interface.Interface):
    """Turns Python objects into MongoDB documents.

    Used by the data manager when it flushes; it writes nothing itself (new
    persistent objects it meets are handed to the data manager, to be
    written in the same flush).  The only commands it can cause are the
    name-map look-ups of a class stored under ``_p_mongo_collection``: at
    most three (a ``find`` and an upsert on ``persistence_name_map``, and a
    ``find`` again) the first time that class is stored in that collection,
    once per name map (a provider's data managers share one).
    """

    def get_collection_name(obj):
        """Return ``(database, collection)``: where ``obj``'s document lives.

        Objects that already have an oid stay where they are; new ones go to
        ``_p_mongo_database``/``_p_mongo_collection`` or, by default, to the
        data manager's default database and a collection named after the
        class's dotted path.  Raises ``SerializationError`` when the class
        cannot be imported by its dotted path (defined inside a function)
        and names no collection: it could never be loaded.  Registers the
        class in the name map (see above for the cost).
        """

    def get_state(obj, pobj=None):
        """Return the BSON-able value that stores ``obj``.

        ``pobj`` is the persistent object whose document will hold the
        value (it owns sub-objects, and error messages name it).  A
        persistent object becomes its ``DBRef`` (a new one is added to the
        data manager); anything else is stored inline.  Raises
        ``CircularReferenceError`` for a cycle of non-persistent objects and
        ``SerializationError`` for a value that cannot be stored; both name
        the attribute path.
        """

    def get_full_state(obj):
        """Return the complete document of the persistent ``obj``.

        The document includes ``_id`` (once ``obj`` has an oid),
        ``_py_persistent_type`` where its collection needs it, and whatever
        meta-data the conflict handler's ``on_before_store`` adds (the next
        ``_py_serial``).  Raises as ``get_state`` does.
        """

    def store(obj):
        """Schedule the persistent ``obj`` to be written; return its
        ``DBRef``.

        A new object is inserted (``IMongoDataManager.insert``), a stored
        one registered as changed.  No command: the write happens at the
        next flush.
        """


class IObjectReader(zope.interface.Interface):
    """Turns MongoDB documents back into Python objects.

    Used by the data manager when it loads.  A document only names classes
    and factories; the reader makes instances without calling their
    constructors, calls only factories the application registered, and
    imports no module a document names unless it is under a trusted prefix
    (``UnsafeDocumentError`` otherwise; the rules are in
    :mod:`zmongo.serialize`), so documents from an untrusted writer cannot
    run code.
    """

    def resolve(dbref):
        """Return the class of the object ``dbref`` points to.

        Tried in order: the document's ``_py_persistent_type`` (when it was
        already read), the class whose dotted path names the collection (no
        command), the name map (one ``find`` per collection, cached by the
        name map) and, when several classes share the collection, the
        document itself (one ``find``, which later loading reuses).  Raises
        ``ImportError`` when the collection maps to no persistent class,
        ``DocumentLoadError`` when the named class cannot be imported and
        ``UnsafeDocumentError`` when it is not an allowed
        ``persistent.Persistent`` class.
        """

    def get_object(state, obj):
        """Return the Python value stored as ``state`` (read from MongoDB).

        ``obj`` is the persistent object whose document holds the value:
        lists and dicts come back as ``PersistentList`` /
        ``PersistentDict`` owned by it (changing them marks ``obj``
        changed), and ``DBRef`` references as the objects they point to
        (ghosts: no command).  Raises ``DocumentLoadError`` for a malformed
        value and ``UnsafeDocumentError`` for one that names code it
        refuses to call.
        """

    def set_ghost_state(obj, doc=None):
        """Load ``doc`` into the ghost ``obj``.

        Without ``doc``, the document this transaction already read (when
        ``resolve`` needed it) or, failing that, one ``find`` reads it.  The
        conflict handler's ``on_before_set_state`` sees the document first
        (a serial handler takes ``_py_serial`` from it); in standalone mode
        the document is also kept as the original an abort restores.
        Raises ``DocumentNotFoundError`` when the document does not exist,
        ``DocumentLoadError`` when it cannot be turned into ``obj``'s state
        and ``UnsafeDocumentError`` when it names code it refuses to call.
        """

    def get_ghost(dbref, klass=None):
        """Return the object for ``dbref``: the one already loaded in this
        transaction (one Python object per ``DBRef``), or a new ghost of
        ``klass`` (by default, the class ``resolve`` finds, with its costs
        and errors).  Loading the ghost's state is left to its first use.
        """

    def new_object(dbref, klass, doc):
        """Return a new object of ``klass`` for ``dbref``, in the identity
        map and up to date with the state of ``doc`` (just read): a ghost
        activated at once, without the round trip through the data
        manager's ``setstate``.  None, with nothing done, where that round
        trip must run (a class with its own ``__setstate__``, a
        ``_py_state`` document).  Errors as ``set_ghost_state``; the
        object is then left as a ghost.
        """


# --------------------------------------------------------------------------
# Conflicts
# --------------------------------------------------------------------------

class IConflictHandler(zope.interface.Interface):
    """Decides who wins when two transactions write the same document.

    A data manager builds its handler as ``Handler(datamanager)``
    (``conflict_handler_factory``).  Handlers that detect conflicts keep a
    serial in each document and make every replacing or deleting write
    filter on the serial this transaction read (``write_filter``), so a
    write that lost matches nothing and the conflict is found by the write
    itself, with no extra command and no window between a check and the
    write.  The ``on_*`` hooks, ``is_same`` and ``write_filter`` are called
    by the serializer and the data manager and cost no command.
    """

    datamanager = zope.interface.Attribute(
        'The data manager whose writes this handler watches.')

    detects_conflicts = zope.interface.Attribute(
        'True if a write that matched no document means a conflict (the '
        'serial handlers), False if the last writer simply wins.  Handlers '
        'that say True must also offer ``serial_of(obj)`` (the serial '
        '``obj`` was read with, an int) and ``conflict_error_factory(obj, '
        'orig_state, cur_state, new_state)`` (builds the ``ConflictError``).')

    field_name = zope.interface.Attribute(
        'The document field holding the serial (``\'_py_serial\'``), or '
        '``None`` for handlers that keep none.')

    def on_before_set_state(obj, state):
        """Called with the document just before it becomes ``obj``'s state;
        may remove meta-data fields from ``state`` (a serial handler moves
        ``_py_serial`` to ``obj._p_serial``)."""

    def on_before_store(obj, state):
        """Called with the document about to be written for ``obj``; may add
        meta-data fields to ``state`` (a serial handler writes the next
        serial)."""

    def on_after_store(obj, state):
        """Called after ``state`` was written for ``obj`` (a serial handler
        sets ``obj._p_serial`` to the serial written)."""

    def on_modified(obj):
        """Called when ``obj`` is registered as changed."""

    def is_same(obj, orig_state, new_state):
        """Return True if the two documents differ only in meta-data, so
        that writing ``new_state`` over ``orig_state`` can be skipped (this
        is how unchanged objects are never written)."""

    def write_filter(obj, orig_state):
        """Return the filter that the replacing or deleting write of ``obj``
        must match.

        ``{'_id': ...}`` for handlers that do not detect conflicts; serial
        handlers add the serial ``obj`` was read with (documents without a
        serial count as serial 0), so a document another transaction wrote
        first matches nothing."""

    def has_conflicts(objs):
        """Return True if any of ``objs`` was changed in the database since
        it was read.

        For asking beforehand; the commit does not use it (its writes
        detect conflicts).  Costs one ``find`` per object with an oid,
        stopping at the first conflict (a document deleted meanwhile does
        not count); in server-transaction mode it reads the transaction's
        snapshot, so it cannot see later commits of others.  A resolving handler that can merge a conflict merges it
        into the object (see ``IResolvingConflictHandler.resolve``) and
        does not count it.  Always False for a handler that detects no
        conflicts (no command)."""

    def check_conflicts(objs):
        """Raise ``ConflictError`` (with the evidence) for the first of
        ``objs`` changed in the database since it was read; return None
        otherwise.  Costs and caveats as ``has_conflicts``."""


class IResolvingConflictHandler(IConflictHandler):
    """A conflict handler that can merge the two writers' changes.

    Consulted for conflicts found by a write in standalone mode (and by
    ``has_conflicts`` / ``check_conflicts``); in server-transaction mode
    the server reports the losing write as a ``WriteConflict``, which is
    always a ``ConflictError``.  The serial handlers of
    :mod:`zmongo.conflict` provide this interface;
    ``ResolvingSerialConflictHandler`` asks the object's
    ``_p_resolveConflict(orig, cur, new)`` for the merged document.
    """

    def resolve(obj, orig_doc, cur_doc, new_doc):
        """Try to merge the documents this transaction read (``orig_doc``),
        found in the database (``cur_doc``) and wanted to write
        (``new_doc``).

        Return True if ``obj`` now holds the merged state and may be written
        over ``cur_doc`` (the data manager writes it again, one more write
        in the same flush), False if the conflict stands (it then raises
        ``ConflictError``).  No command."""


# --------------------------------------------------------------------------
# Data manager
# --------------------------------------------------------------------------

class IMongoDataManager(persistent.interfaces.IPersistentDataManager):
    """A persistent data manager that stores objects in MongoDB.

    Objects load through it (``_p_jar``), and it collects their changes as
    a unit of work, written when a query needs them (``flush``) and at
    commit -- so a whole transaction costs a few bulk writes, not one write
    per object.  It also implements ``transaction.interfaces.IDataManager``
    as a one-phase resource: every write and conflict check is done by
    ``tpc_vote``, where the server transaction (if the server supports
    them) commits; ``tpc_finish`` only forgets state, and ``sortKey`` sorts
    it after every other data manager, so a failure here still rolls back
    ZODB and the rest.  Its first operation in a transaction joins the
    current transaction of its ``transaction_manager``.  Within one
    transaction each ``DBRef`` is one Python object; after a commit or an
    abort objects are loaded afresh.  See the module docstring for the two
    modes (server-transaction and standalone).
    """

    root = zope.interface.Attribute(
        'A mapping of named root objects (entry points of the object '
        'graph), one document ``{\'name\': ..., \'ref\': DBRef}`` per name '
        'in collection ``persistence_root``.  ``root[name]`` costs one '
        '``find`` and returns the object (a ghost); ``name in root`` and '
        '``len(root)`` cost one command each; ``root[name] = obj`` costs '
        'one ``find`` and writes the entry (and a new ``obj``) at the next '
        'flush.  Replacing or deleting a name removes the object it named.  '
        'An unknown name is a ``KeyError``, a name that is not a ``str`` a '
        '``TypeError``.')

    conflict_handler = zope.interface.Attribute(
        'The ``IConflictHandler`` deciding who wins concurrent writes, '
        'built from the ``conflict_handler_factory`` option (by default '
        '``NoCheckConflictHandler``: the last writer wins).')

    default_database = zope.interface.Attribute(
        'Name of the database for objects and containers that do not name '
        'one (and of the name map).')

    transaction_manager = zope.interface.Attribute(
        'The transaction manager whose transactions this data manager '
        'joins (``transaction.manager`` unless given).')

    def get_collection(db_name, coll_name):
        """Return a ``CollectionWrapper`` for the named collection.

        Behaves as the pymongo collection (its ``collection`` attribute)
        with three differences: pending changes are flushed before every
        query or write, so queries see this transaction's changes; every
        operation runs in this data manager's session (and server
        transaction); and query filters pass through the
        ``IMongoSpecProcessor``, if one is registered.
        ``find_objects(...)`` / ``find_one_object(...)`` return loaded
        objects instead of documents, with no further command per object.
        Getting it costs no command; each operation costs the flush (if
        anything is pending) plus what pymongo sends.  Writes made directly
        through it belong to the server transaction in server-transaction
        mode, but in standalone mode an abort does not undo them.
        """

    def get_collection_from_object(obj):
        """Return the wrapped collection (see ``get_collection``) holding
        ``obj``'s document, or where a new ``obj`` would be stored.

        Raises ``SerializationError`` for a new object whose class cannot
        be imported and names no collection.  No command, except the
        name-map look-ups of ``IObjectWriter``.
        """

    def load(dbref, klass=None):
        """Return the object ``dbref`` points to, a ghost if not yet loaded.

        Within one transaction the same ``DBRef`` always gives the same
        Python object: one already loaded (by a query through
        ``find_objects``, say) is returned as it is, at no cost.  A
        ``DBRef`` without a database points into ``default_database``.
        ``klass`` skips finding the class.  Making the ghost costs no
        command when the class is known (``klass``, a collection named
        after its class, or a name-map entry read before); see
        ``IObjectReader.resolve`` otherwise.  The ghost's first use loads
        its document: one ``find``.

        Raises ``TypeError`` if ``dbref`` is not a ``bson.DBRef``, and what
        ``IObjectReader.resolve`` raises; the first use of the ghost raises
        what ``setstate`` raises.
        """

    def setstate(obj, doc=None):
        """Load the state of the ghost ``obj`` (``persistent`` calls this on
        its first use).

        ``doc`` is the document to load; by default, the one this
        transaction read before or, failing that, one ``find``.  Works for
        an object that has a ``_p_oid`` but no ``_p_jar``.  Loading never
        marks the object changed.  Raises ``DocumentNotFoundError`` when
        the document does not exist, ``DocumentLoadError`` when it cannot
        be turned into the object's state, ``UnsafeDocumentError`` when it
        names code the loader refuses to call.
        """

    def register(obj):
        """Record that ``obj`` changed (``persistent`` calls this when
        ``_p_changed`` is first set).

        A new object (no oid) is inserted; a change to a sub-object stored
        in another object's document (``_p_mongo_sub_object``, or a
        ``PersistentDict``/``PersistentList`` attribute) registers that
        owner; changes to an object removed in this transaction are
        ignored.  No command: the write happens at the next flush.  Raises
        ``CircularReferenceError`` when sub-objects' owners form a loop,
        and what ``insert`` raises for a new object.
        """

    def oldstate(obj, tid):
        """Always raises ``KeyError(tid)``: no history is kept."""

    def insert(obj, oid=None):
        """Add the new persistent ``obj`` and return its ``DBRef``.

        ``oid`` is its ``_id``: any hashable BSON value that is not an
        array or a regex (a ``str``, an ``int``, ...); by default a new
        ``ObjectId``.  The document goes to ``obj``'s collection (see
        ``IObjectWriter.get_collection_name``) and is written at the next
        flush, with all other new objects of that collection in one
        ``insert`` command.  An abort undoes it and makes ``obj`` new again.
        No command, except the name-map look-ups of ``IObjectWriter``.

        Raises ``ValueError`` if ``obj`` already has an oid, is a sub-object
        (``_p_mongo_sub_object``), belongs to another data manager, if
        ``oid`` cannot be an ``_id``, or if its ``DBRef`` is already another
        object's in this transaction; ``SerializationError`` if its class
        cannot be imported and names no collection.  An ``_id`` already in
        the collection is a ``DuplicateKeyError`` at the flush.
        """

    def remove(obj):
        """Delete ``obj``'s document.

        Written at the next flush, with all other deletions of that
        collection in one ``delete`` command; an abort undoes it.  An object
        inserted in this transaction and not yet written is simply
        forgotten.  No command, except that a conflict-detecting handler
        needs the serial ``obj`` was read with: a ghost is loaded first
        (one ``find``).  Raises ``ValueError`` if ``obj`` has no oid (it was
        never stored).  Objects referring to ``obj`` keep their ``DBRef``.
        A removed object stays removed for the rest of the transaction,
        whatever is done to it (unless ``cancel_removal``); after the
        commit it is a ghost whose document is gone.
        """

    def cancel_removal(obj):
        """Undo ``remove(obj)`` of this transaction: ``obj`` was moved
        (another root name, another container), not deleted.  No command;
        if the delete was written already, the next flush writes the
        document again.
        """

    def cacheMinimize():
        """Turn every unchanged object into a ghost and forget the document
        it was loaded from, as ZODB's ``Connection.cacheMinimize``.  Objects
        whose sub-objects (``PersistentList``/``PersistentDict``) are stored
        in their document keep their state: the application may hold those.
        No command.
        """

    def cacheGC():
        """Leave at most ``cache_size`` unchanged objects with their state
        (the most recently loaded), as ``Connection.cacheGC``.  No command.
        """

    def savepoint():
        """A ``transaction.interfaces.IDataManagerSavepoint``: pending
        changes are written (one ``bulk_write`` per collection) and the
        place in the transaction's write log remembered.  Its
        ``rollback()`` puts the database back to that place (standalone:
        the undo writes after it, one command per collection;
        server-transaction mode: a new server transaction that is sent the
        log up to the savepoint again) and turns the objects changed after
        it into ghosts.  A rollback that cannot reach the server raises and
        dooms the transaction.
        """

    def dump(obj):
        """Write ``obj`` now, within the transaction, and return its
        ``DBRef``.

        A new ``obj`` is inserted, a stored one registered; then ``flush()``
        writes it -- together with every other pending change -- and
        clears ``_p_changed``.  The write joins the transaction: an abort
        undoes it, a commit keeps it.  Costs and raises what ``insert`` and
        ``flush`` do.
        """

    def flush():
        """Write every pending change, within the transaction.

        Called before every query through this data manager's collections
        (so queries see the transaction's own changes), by ``commit`` and
        by ``tpc_vote``.  Costs nothing when nothing is pending.  Otherwise,
        per collection with changes, one ordered bulk write, which pymongo
        sends as one command per kind of write: ``delete`` for removed
        objects, ``insert`` for new ones, ``update`` for changed ones
        (pymongo splits batches beyond 100,000 writes or 48 MB).  So the
        cost does not grow with the number of changed objects.  Unchanged
        objects (``IConflictHandler.is_same``) are not written.  Also, where
        needed: in standalone mode one ``find`` per collection reads the
        original documents, for the undo, of objects changed or removed
        without having been loaded; objects registered while still ghosts
        are loaded (one ``find`` each); a write that lost a serial conflict
        costs one ``find`` for the current document (and, when a resolving
        handler merges, the merged write).

        Raises ``ConflictError`` (another transaction wrote or deleted a
        document first), ``DuplicateKeyError`` (a unique index refused a
        write), ``SerializationError`` and ``CircularReferenceError`` (an
        object cannot be stored; nothing of that flush is written), or the
        pymongo error of a failing server.  After an error the transaction
        must be aborted.
        """

    def reset():
        """Forget all per-transaction state: the identity map, pending
        (unwritten) changes, remembered documents, the session.

        Options, the conflict handler and the name map stay.  Called by
        ``abort`` and ``tpc_finish``.  Called directly it drops pending
        changes without undoing flushed ones (in standalone mode they stay
        in the database; use ``transaction.abort()`` to undo).  No command,
        except one ``abortTransaction`` when a server transaction is open
        (ending the session aborts it).
        """

    def should_retry(error):
        """Return True if ``error`` is worth retrying the whole transaction
        for: a ``ConflictError``, or a pymongo error labelled
        ``TransientTransactionError``.  No command."""

    # transaction.interfaces.IDataManager, as zmongo implements it

    def abort(transaction):
        """Undo everything this transaction did, then ``reset()``.

        Server-transaction mode: one ``abortTransaction`` (if a server
        transaction was started).  Standalone mode: the documents this
        transaction wrote are put back exactly as they were -- one bulk
        write per collection written (root entries: one command each) --
        and only those.  Undo writes that cannot reach the server are kept
        and sent before the client's next operation through any data
        manager.  Objects loaded or changed become ghosts again; objects
        inserted become new again (``_p_oid`` and ``_p_jar`` are None).
        Server errors are logged, not raised.
        """

    def tpc_begin(transaction):
        """Start the two-phase commit: does nothing (no command)."""

    def commit(transaction):
        """Write every pending change (``flush``); nothing is durable
        before ``tpc_vote``.  Costs and raises what ``flush`` does."""

    def tpc_vote(transaction):
        """Make the transaction durable: flush what is left, then, in
        server-transaction mode, commit the server transaction (one
        ``commitTransaction``, bounded by the ``transaction_timeout``
        option).

        So a commit of K changed objects in one collection costs one bulk
        write (see ``flush``), plus ``commitTransaction`` in
        server-transaction mode, whatever K.  Raises what ``flush`` raises,
        and ``ConflictError`` when the server reports a write conflict at
        the commit; the ``transaction`` package then aborts every data
        manager of the transaction.
        """

    def tpc_finish(transaction):
        """Everything was durable at ``tpc_vote``: only forget the
        transaction's state (``reset()``; no command)."""

    def tpc_abort(transaction):
        """As ``abort``."""

    def sortKey():
        """Return a ``str`` (``'~zmongo:...'``) that sorts after the keys
        of other data managers (ZODB uses its storage's name), so this one
        votes last."""

    def find_cached(db_name, coll_name, spec, projection=None, one=False,
                    flush=True, unique=False):
        """The documents ``find(spec, projection)`` (``find_one`` if
        ``one``) gives in this transaction, as a list: from the shared
        document cache (``IDocumentCache``) when it holds a valid answer
        (no command), else read in the transaction's session and kept
        there where allowed.  ``flush``: write pending changes first (as
        the collection wrapper does); ``unique``: a unique index lets at
        most one document match ``spec``.  What containers' lookups and
        listings use."""

    def count_cached(db_name, coll_name, spec, flush=True):
        """``count_documents(spec)`` in this transaction, answered as
        ``find_cached`` answers."""


class IDocumentCache(zope.interface.Interface):
    """Committed documents shared by the data managers of one client.

    Holds raw BSON of documents and the answers of container queries, read
    by server transactions before they wrote anything, and serves them to
    later transactions of any thread only while the change stream shows
    them unchanged up to the reader's snapshot (see "The cache" in
    ``docs/transactions.rst``).  Thread-safe; bounded by ``size`` entries
    and ``max_bytes`` bytes, least recently used first.
    """

    size = zope.interface.Attribute('Most entries kept (0: off).')
    max_bytes = zope.interface.Attribute('Most bytes of BSON kept.')
    enabled = zope.interface.Attribute(
        'False when sized 0, or turned off (a standalone server, a '
        'deployment refusing change streams: logged once at INFO).')
    stats = zope.interface.Attribute(
        'A ``collections.Counter``: hits, misses, fills, refused (fills '
        'a later change made unsafe), invalidated, evicted, too_large, '
        'events, drains, drain_ns (time spent reading the change stream), '
        'stream_losses.')

    def clear():
        """Forget every entry (transactions running stop using it)."""

    def close():
        """Forget every entry and close the change stream (a later use
        opens a new one)."""


class IMongoDataManagerProvider(zope.interface.Interface):
    """Gives each thread and transaction its data manager.

    Sites register one as a utility (in ZCML, with the directive of
    ``meta.zcml``); containers that live in ZODB, and other code, find their
    data manager through it.  A data manager is bound to one thread and one
    transaction, so the provider makes a new one whenever the calling
    thread's transaction changes; the ``pymongo.MongoClient`` behind them
    is shared, and so is the document cache (``cache``).
    """

    cache = zope.interface.Attribute(
        'The ``IDocumentCache`` of its data managers (``cache_size`` and '
        '``cache_bytes`` options; ``cache_size=0`` turns it off).')

    def get():
        """Return the data manager for the current thread and transaction.

        The same one while the thread's current transaction is the same, a
        new one (with the provider's options) otherwise.  Sends no command;
        the first call creates the client, which may raise pymongo's
        ``ConfigurationError`` for a bad URI or client option.
        """


class IMongoSpecProcessor(zope.interface.Interface):
    """Hook called with every query filter of wrapped collections.

    Useful for logging, or for adding conditions (a tenant id, say) to every
    query.  Looked up as an adapter of ``None``
    (``registerAdapter(factory, (None,), IMongoSpecProcessor)``), and called
    by collections a data manager hands out for ``find``, ``find_one``,
    ``count_documents``, ``find_raw_batches`` and the ``find_one_and_*``
    methods -- and so for the queries of containers.
    """

    def process(collection, spec):
        """Return the filter to use instead of ``spec``.

        ``collection`` is the raw pymongo collection; ``spec`` is the filter
        given, or ``None`` for a ``find()`` without one.  Should not talk
        to MongoDB: it runs before every query.
        """


# --------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------

class IMongoContained(IContained):
    """An item of a Mongo container.

    Containers set ``__name__`` and ``__parent__`` when they hand an item
    out, without marking it changed.  An item loaded straight from a query
    (``find_objects``, a reference) still knows where it lives: its class
    names the document attributes holding its name and parent
    (``_m_name_attr``, ``_m_parent_attr``) or gives functions, called with
    the instance, that get and set them (``_m_name_getter``,
    ``_m_name_setter``, ``_m_parent_getter``, ``_m_parent_setter``).
    ``zmongo.container.MongoContained`` is the mix-in providing this; it
    does not subclass ``persistent.Persistent``, so it combines with it in
    either order.
    """


def _check_item_precondition(container, name, object):
    """The ``__setitem__`` precondition of Mongo containers (see
    ``IMongoContainer.__setitem__``): the container itself knows what it
    can hold."""
    check = getattr(container, '_m_check_item', None)
    if check is not None:
        check(name, object)


class IMongoContainer(IContainer):
    """A Zope container whose items are the documents of a collection.

    Each item is a document of ``_m_collection`` that names its container
    (field ``_m_parent_key``) and its name (field ``_m_mapping_key``); the
    container holds no list of its items, so several containers can share
    one collection.  Adding and removing fire exactly the events of
    ``zope.container`` (``ObjectAddedEvent`` / ``ObjectMovedEvent``,
    ``ObjectRemovedEvent``, ``ContainerModifiedEvent``), in every path.
    New items are visible at once, before commit.

    Names are ``str`` (ASCII ``bytes`` are converted); a name that is not
    (a dict such as ``{'$ne': None}``, say) is a ``TypeError`` and never
    reaches MongoDB, so it cannot act as a query operator.  Names that
    ``zope.container`` forbids (empty, containing ``/``, beginning with
    ``+`` or ``@``) or that begin with ``$`` (MongoDB reserves it) are
    refused when adding; anything else (``'index.html'``, ``'a$b'``) is an
    ordinary name.  A refused name or value changes nothing and costs no
    command.

    Costs: the container makes sure its collection has the index its
    lookups need (a unique ``(parent, key)`` index): one ``createIndexes``
    per collection and client, outside any transaction (after the current
    transaction if its server transaction is already open).  Each query
    first flushes the data manager's pending changes (see
    ``IMongoDataManager.flush``) -- except keyed lookups while the only
    pending changes are items containers added.  With
    ``zmongo.container.USE_CONTAINER_CACHE`` (read at call time) a
    container remembers, for the rest of the transaction, the items it has
    seen, and after ``items()`` or ``values()`` answers everything from
    memory (no command; not for an all-items container whose names
    repeat).

    Every method raises ``ValueError`` when the container names no
    ``_m_collection``, or when its items refer to it and it is stored
    nowhere yet, and ``zope.interface.interfaces.ComponentLookupError``
    when it lives outside MongoDB and no ``IMongoDataManagerProvider``
    utility is registered.
    """

    _m_database = zope.schema.ASCIILine(
        title='Database name',
        description='Where the items live; the data manager default if None.',
        required=False)

    _m_collection = zope.schema.ASCIILine(
        title='Collection name',
        description='The collection holding the items.',
        required=True)

    _m_mapping_key = zope.schema.ASCIILine(
        title='Mapping key',
        description='The document field holding the item\'s name.  None '
                    'for id-named containers, which name items by '
                    '``str(_id)``.',
        default='key',
        required=False)

    _m_parent_key = zope.schema.ASCIILine(
        title='Parent key',
        description='The document field holding the container reference '
                    '(its ``DBRef``, or ``\'zodb-<hex oid>\'`` for a '
                    'container stored in ZODB).  None for a container '
                    'showing the whole collection.',
        default='parent',
        required=False)

    _m_remove_documents = zope.schema.Bool(
        title='Remove documents',
        description='Delete an item\'s document when it leaves the '
                    'container; if False, only its name and parent fields '
                    'are removed.  Always True for id-named containers.',
        default=True)

    def __getitem__(key):
        """Return the item named ``key``, its ``__name__`` and
        ``__parent__`` set.

        One ``find`` served by the container's index; no command when the
        container's cache knows the name, or the item was added in this
        transaction and not yet written.  Raises ``KeyError`` if there is
        no such item (for id-named containers, also for a name that is not
        an ``_id``), ``TypeError`` if ``key`` is not a ``str``.
        """

    def get(key, default=None):
        """Return the item named ``key``, or ``default``.  Costs and
        ``TypeError`` as ``__getitem__``."""

    def __contains__(key):
        """Return True if an item is named ``key``.

        One ``find`` served by the index (no document is loaded); no command
        when the cache or the pending additions answer.  Raises
        ``TypeError`` if ``key`` is not a ``str``.
        """

    def keys():
        """Return the list of the items' names.

        One ``find`` (names only), however many items; no command once
        ``items()`` filled the cache."""

    def __iter__():
        """Iterate over the names, as ``keys()`` (same cost)."""

    def items():
        """Return the list of ``(name, item)`` pairs.

        One ``find``, however many items: the items are loaded from the
        documents read, with no further command, and remembered by the
        cache (no command on a second call)."""

    def values():
        """Return the list of items, as ``items()`` (same cost)."""

    def __len__():
        """Return the number of items: one ``count_documents`` command (an
        ``aggregate``); no command once ``items()`` filled the cache."""

    def __setitem__(name, object):  # noqa: N805 (an interface method)
        """Add ``object`` under ``name``, as ``zope.container``'s
        ``setitem`` does (events, ``__name__``, ``__parent__``).

        With ``name`` None, the name comes from the object's
        ``_m_mapping_key`` attribute (id-named containers: its ``_id``, or
        a new ``ObjectId``).  The item's name and parent fields are set; a
        new item is stored in the container's collection.  Values that are
        not persistent, locatable objects are kept in a small document and
        handed out in a ``ContainedProxy``.  Cost: ``setitem`` asks whether
        the name is free -- one ``find`` served by the index, none when the
        cache knows the name.  After three names found free in one
        transaction, a container with at most
        ``zmongo.container.NAME_SNAPSHOT_LIMIT`` (1,000) items reads all its
        names in one ``find`` and answers the next ones from memory, so
        adding K items costs four ``find`` commands, not K (with
        ``USE_CONTAINER_CACHE``).  At the next flush all new items go in one
        ``insert``.

        Raises ``KeyError`` if the name is taken, ``TypeError`` for a name
        that is not a ``str`` or a value providing ``ILocation`` but not
        ``IContained``, ``ValueError`` for a forbidden name, for no name and
        no attribute to take it from, or for a stored object that cannot be
        an item here (it lives in another collection, or an id-named
        container's name is not its ``_id``).  When two transactions add
        the same name at once, the second to commit gets a
        ``ConflictError`` (``NameConflictError`` when the unique index
        refused it, also a ``DuplicateKeyError``), which
        ``transaction.manager.attempts()`` retries; the retry then sees the
        name taken.

        Moving an item here from another container over the same
        collection (``target[new] = obj; del source[old]``, what
        ``zope.copypastemove`` does) re-parents its document -- one write
        at the next flush; ``del source[old]`` then fires only the
        ``ContainerModifiedEvent`` of ``source`` and deletes nothing.  A
        stored object of another collection, or renaming an item of an
        id-named container, is refused by the ``precondition`` tagged on
        this method (``RefusedItemError``), which Zope's ``checkObject``
        consults before it moves or copies anything.
        """

    __setitem__.precondition = _check_item_precondition

    def __delitem__(name):
        """Remove the item named ``name``, as ``zope.container``'s
        ``uncontained`` does (events).

        Its document is deleted at the next flush (one ``delete`` command
        for all removals of a collection) or, with ``_m_remove_documents``
        False, only its name and parent fields are removed.  Costs the
        lookup of ``__getitem__`` (none when the cache knows the name).
        Raises ``KeyError`` if there is no such item, ``TypeError`` if
        ``name`` is not a ``str``.
        """

    def get_collection():
        """Return the wrapped collection of the items (a ``CollectionWrapper``
        from ``IMongoDataManager.get_collection``).

        Makes sure the container's index exists (the one ``createIndexes``
        described above); otherwise no command.
        """

    def add(value, key=None):
        """Add ``value`` under ``key`` -- exactly as ``self[key] = value``
        (same events, costs and errors); without ``key`` the name comes
        from the mapping-key attribute (or, for id-named containers, the
        ``_id``)."""

    def find(spec=None, **kwargs):
        """Return an iterator over the items matching ``spec`` within this
        container, their ``__name__`` and ``__parent__`` set.

        ``spec`` is a MongoDB filter (a dict), combined with the
        container's own; ``kwargs`` go to pymongo's ``find`` (``sort``,
        ``limit``, ...).  One ``find`` (plus cursor batches); items are
        loaded from the documents read, with no further command.  Raises
        ``TypeError`` if ``spec`` is not a dict, or for a projection or
        positional arguments (items are whole objects: use ``raw_find``).
        """

    def find_one(spec_or_id=None, **kwargs):
        """Return the first item matching ``spec_or_id`` within this
        container, or None.

        ``spec_or_id`` is a filter, or an ``_id`` if it is not a dict.  One
        ``find``; raises as ``find``."""

    def raw_find(spec=None, *args, **kwargs):
        """Like ``find``, but return the pymongo cursor of the documents;
        ``args`` and ``kwargs`` (a projection, say) go to pymongo.  One
        ``find`` plus cursor batches."""

    def raw_find_one(spec_or_id=None, *args, **kwargs):
        """Like ``find_one``, but return the document (a dict) or None.  One
        ``find``."""

    def clear():
        """Remove every item, with the events of ``__delitem__`` for each.

        One ``find`` (none once ``items()`` filled the cache), then at the
        next flush one ``delete`` command for all of them."""
