"""What every part of zmongo does: interfaces and exceptions.

The implementations point here; the contracts live in these docstrings.
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

    A ``TransientError``: ``transaction.manager.attempts()`` and ``run()``
    retry it.  It carries the evidence: the ``object``, its state as this
    transaction first read it (``orig_state``), as it is in the database now
    (``cur_state``, ``None`` when the document was deleted meanwhile), and as
    this transaction wanted to write it (``new_state``), with the three
    serials taken from those documents.
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
        return self._serial(self.orig_state)

    @property
    def cur_serial(self):
        return self._serial(self.cur_state)

    @property
    def new_serial(self):
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
    cycle among them has no finite document.  Make one of them persistent
    (it then gets its own document and is stored by reference) to break it.
    """


class SerializationError(TypeError):
    """An object cannot be written to MongoDB; the message says which and why.
    """


class UnsafeDocumentError(ValueError):
    """A document names code the loader refuses to run.

    Raised instead of calling a ``_py_factory`` that is neither a class nor a
    factory the application registered (see
    :func:`zmongo.serialize.register_factory`).  Nothing was called.
    """


class DocumentLoadError(ValueError):
    """A stored document cannot be turned back into an object.

    The message names the collection, the ``_id`` and what was wrong
    (a missing class, a malformed field, ...).
    """


class DocumentNotFoundError(LookupError):
    """A reference (``DBRef``) points to a document that does not exist."""


class DuplicateKeyError(ValueError):
    """A write would have created a second document with a unique key."""


# Types BSON stores natively; everything else goes through the serializer.
# Kept here for mongopersist compatibility (it exported the same tuple).
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

    Registered serializers are asked, in order, before the generic rules of
    :mod:`zmongo.serialize`; the first that says yes wins.
    """

    def can_read(state):
        """True if ``state`` (a value read from MongoDB) is this serializer's.
        """

    def read(state):
        """Turn ``state`` back into the object. Only called after
        ``can_read(state)`` said yes."""

    def can_write(obj):
        """True if this serializer stores ``obj``."""

    def write(obj):
        """Return the BSON-able value that stores ``obj``."""


class IObjectWriter(zope.interface.Interface):
    """Turns Python objects into MongoDB documents (no I/O of its own)."""

    def get_collection_name(obj):
        """Return ``(database, collection)`` where ``obj``'s document lives.

        Objects that already have an oid stay where they are; new ones go to
        ``_p_mongo_database``/``_p_mongo_collection`` or, by default, to the
        data manager's default database and a collection named after the
        class's dotted path.
        """

    def get_state(obj, pobj=None):
        """Return the BSON-able value for ``obj``.

        ``pobj`` is the persistent object whose document will hold the value.
        Raises ``CircularReferenceError`` for a cycle of non-persistent
        objects and ``SerializationError`` for what cannot be stored.
        """

    def get_full_state(obj):
        """Return the complete document for persistent ``obj``, ``_id`` and
        meta-data included."""

    def store(obj):
        """Schedule ``obj`` to be written and return its ``DBRef``."""


class IObjectReader(zope.interface.Interface):
    """Turns MongoDB documents back into Python objects.

    Never calls code a document names unless it is a class or a factory the
    application registered (``UnsafeDocumentError`` otherwise).
    """

    def resolve(dbref):
        """Return the class of the object ``dbref`` points to.

        Raises ``ImportError`` when the collection cannot be mapped to a
        class.
        """

    def get_object(state, obj):
        """Convert ``state`` (a value read from MongoDB) into an object.

        ``obj`` is the persistent object whose document holds the value.
        """

    def set_ghost_state(obj, doc=None):
        """Load ``doc`` (or the stored document) into the ghost ``obj``."""

    def get_ghost(dbref, klass=None):
        """Return the object for ``dbref``, a ghost if not yet loaded."""


# --------------------------------------------------------------------------
# Conflicts
# --------------------------------------------------------------------------

class IConflictHandler(zope.interface.Interface):
    """Decides who wins when two transactions write the same document."""

    datamanager = zope.interface.Attribute(
        'The data manager whose writes this handler watches.')

    def on_before_set_state(obj, state):
        """Called with the document just before it becomes ``obj``'s state;
        may remove meta-data fields from ``state``."""

    def on_before_store(obj, state):
        """Called with the document about to be written for ``obj``; may add
        meta-data fields to ``state``."""

    def on_after_store(obj, state):
        """Called after ``state`` was written for ``obj``."""

    def on_modified(obj):
        """Called when ``obj`` is registered as changed."""

    def is_same(obj, orig_state, new_state):
        """True if the two documents differ only in meta-data, so that the
        write can be skipped."""

    def write_filter(obj, orig_state):
        """Return the filter that the replacing write of ``obj`` must match.

        This is how conflicts are detected inside the write itself: a filter
        on the expected serial matches nothing when another transaction
        wrote the document first."""

    def has_conflicts(objs):
        """Return True if any of ``objs`` was changed in the database since
        it was read.  Costs one query per object; the commit path does not
        use it (it detects conflicts inside its writes)."""

    def check_conflicts(objs):
        """Raise ``ConflictError`` for the first of ``objs`` changed in the
        database since it was read (see ``has_conflicts``)."""


class IResolvingConflictHandler(IConflictHandler):
    """A conflict handler that can merge the two writers' changes."""

    def resolve(obj, orig_doc, cur_doc, new_doc):
        """Try to merge; return True if ``obj`` now holds the merged state
        and may be written over ``cur_doc``, False otherwise."""


# --------------------------------------------------------------------------
# Data manager
# --------------------------------------------------------------------------

class IMongoDataManager(persistent.interfaces.IPersistentDataManager):
    """A persistent data manager that stores objects in MongoDB.

    It also implements ``transaction.interfaces.IDataManager`` as a one-phase
    resource: every write and conflict check is done by ``tpc_vote``, where
    the server transaction (if the server supports them) commits;
    ``tpc_finish`` only forgets state, and ``sortKey`` sorts it after every
    other data manager.
    """

    root = zope.interface.Attribute(
        'A mapping of named root objects, stored in ``persistence_root``.')

    conflict_handler = zope.interface.Attribute(
        'The ``IConflictHandler`` deciding who wins concurrent writes.')

    default_database = zope.interface.Attribute(
        'Name of the database for objects that do not name one.')

    def get_collection(db_name, coll_name):
        """Return a ``CollectionWrapper`` for the named collection: pending
        changes are flushed before every query, and every operation runs in
        this data manager's session (and server transaction)."""

    def get_collection_from_object(obj):
        """Return the wrapped collection holding ``obj``'s document."""

    def reset():
        """Forget all per-transaction state; options are kept."""

    def dump(obj):
        """Write ``obj`` now (within the transaction) and return its DBRef;
        clears ``_p_changed``."""

    def load(dbref, klass=None):
        """Return the object ``dbref`` points to, a ghost if not yet loaded.
        Within one transaction the same ``DBRef`` always gives the same
        Python object."""

    def flush():
        """Write every pending change (within the transaction).  Called
        before every query so queries see the transaction's own changes."""

    def insert(obj, oid=None):
        """Add the new persistent ``obj`` and return its ``DBRef``.

        ``oid`` may be any ``_id`` value; by default a new ``ObjectId``.
        Raises ``ValueError`` if ``obj`` already has an oid.  An abort undoes
        it."""

    def remove(obj):
        """Delete ``obj``'s document.  Raises ``ValueError`` if ``obj`` has
        no oid.  An abort undoes it."""

    def should_retry(error):
        """True if ``error`` is worth retrying the whole transaction for
        (conflicts and errors labelled ``TransientTransactionError``)."""


class IMongoDataManagerProvider(zope.interface.Interface):
    """Gives each thread and transaction its data manager.

    Sites register one as a utility (in ZCML); containers find their data
    manager through it.
    """

    def get():
        """Return the data manager for the current thread and transaction."""


class IMongoSpecProcessor(zope.interface.Interface):
    """Hook called with every query filter of wrapped collections.

    Looked up as an adapter of ``None``; useful for logging or for adding
    conditions (a tenant id, say) to every query.
    """

    def process(collection, spec):
        """Return the filter to use instead of ``spec``."""


# --------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------

class IMongoContained(IContained):
    """An item of a Mongo container.

    ``__name__`` and ``__parent__`` come from attributes of the document (or
    getter/setter functions), so an item loaded straight from a query still
    knows where it lives.
    """


class IMongoContainer(IContainer):
    """A Zope container whose items are the documents of a collection."""

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
        description='The document field holding the item\'s name.',
        default='key',
        required=False)

    _m_parent_key = zope.schema.ASCIILine(
        title='Parent key',
        description='The document field holding the container reference.',
        default='parent',
        required=False)

    _m_remove_documents = zope.schema.Bool(
        title='Remove documents',
        description='Delete an item\'s document when it leaves the container.',
        default=True)

    def get_collection():
        """Return the wrapped collection of the items."""

    def add(value, key=None):
        """Add ``value``; without ``key`` its name comes from the mapping-key
        attribute (or, for id-named containers, its ``_id``)."""

    def find(spec=None, **kwargs):
        """Yield the items matching ``spec`` within this container."""

    def find_one(spec_or_id=None, **kwargs):
        """Return the first item matching ``spec_or_id`` (an ``_id`` if not a
        dict) within this container, or None."""

    def raw_find(spec=None, **kwargs):
        """Like ``find`` but yields documents."""

    def raw_find_one(spec_or_id=None, **kwargs):
        """Like ``find_one`` but returns a document."""

    def clear():
        """Remove every item."""
