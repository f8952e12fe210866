"""What a transaction changed, and the writes that store it.

The unit of work holds, for the current transaction, the objects changed
(registered), added (inserted) and removed and not yet written, the raw
writes queued by helpers (named roots), and -- until the transaction ends
-- every object the transaction touched at all, so that an abort or a
savepoint rollback can turn each of them back into a ghost.  Objects are
keyed by ``id()``: membership tests must never call an application's
``__eq__``; the unit of work holds them strongly, so their ids cannot be
reused while they are in it.

:func:`plan_writes` turns the pending changes into one
:class:`CollectionWrites` per collection.
"""
import collections

from zmongo import _names
from zmongo import interfaces

SavepointState = collections.namedtuple(
    'SavepointState', ['mark', 'touched', 'new', 'removed'])


def document_owner(obj):
    """The object whose document holds ``obj`` (itself if it has one of
    its own), or None for a sub-object not stored anywhere yet."""
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


class UnitOfWork:

    def __init__(self):
        self.registered = {}    # changed, not yet written
        self.inserted = {}      # new, not yet written
        self.new = {}           # got their oid in this transaction
        self.removed = {}       # to delete, not yet written
        # Removed in this transaction: stays removed whatever happens to
        # the object later in it.
        self.removed_for_good = {}
        # Everything changed, inserted or removed, written or not.
        self.touched = {}
        self.raw_writes = collections.OrderedDict()
        # New objects a container inserted and answers lookups for itself:
        # while they are all that is pending, keyed lookups need no flush,
        # so adding K items is one insert at commit, not K.
        self.query_neutral = set()
        # Why a keyed lookup must flush first: a change no container
        # answers for (``_dirty``), or changed objects (by id) -- kept apart
        # because a container that deletes one of them answers for it
        # again (see ``add_removed``), so deleting K items is one delete
        # at commit, not K.
        self._dirty = False
        self._dirty_owners = set()
        #: The error of a flush that failed: the transaction cannot commit.
        self.failure = None

    @property
    def dirty_for_queries(self):
        """Whether a keyed lookup must flush first."""
        return self._dirty or bool(self._dirty_owners)

    @dirty_for_queries.setter
    def dirty_for_queries(self, value):
        self._dirty = bool(value)
        if not value:
            self._dirty_owners.clear()

    def has_pending(self):
        return bool(self.registered or self.inserted or self.removed or
                    self.raw_writes)

    # -- recording changes -------------------------------------------------------

    def add_changed(self, obj, owner):
        if id(owner) not in self.query_neutral:
            self._dirty_owners.add(id(owner))
        self.registered[id(obj)] = obj
        self.registered[id(owner)] = owner
        self.touched[id(owner)] = owner

    def add_new(self, obj):
        if id(obj) not in self.query_neutral:
            self._dirty = True
        self.inserted[id(obj)] = obj
        self.new[id(obj)] = obj
        self.touched[id(obj)] = obj

    def add_removed(self, obj, query_neutral=False):
        """Returns False if ``obj`` was never written (nothing to delete).

        ``query_neutral``: the caller (a container) answers keyed lookups
        for the removed document itself until the delete is written, so
        neither the removal nor the changes of ``obj`` before it (the
        events of its removal clear its ``__parent__``) make those lookups
        flush."""
        if query_neutral:
            self._dirty_owners.discard(id(obj))
        else:
            self._dirty = True
        self.removed_for_good[id(obj)] = obj
        self.touched[id(obj)] = obj
        for key, changed in list(self.registered.items()):
            if document_owner(changed) is obj:
                del self.registered[key]
        if self.inserted.pop(id(obj), None) is not None:
            return False
        self.removed[id(obj)] = obj
        return True

    def is_removed(self, obj):
        return id(obj) in self.removed_for_good

    def cancel_removal(self, obj):
        """``obj`` was removed in this transaction and is stored again
        (moved): it is not removed any more, and if its delete was already
        written, it is written anew."""
        self.removed_for_good.pop(id(obj), None)
        self._dirty = True
        if self.removed.pop(id(obj), None) is None:
            self.inserted[id(obj)] = obj

    def add_raw_write(self, namespace, op, undo_op):
        self._dirty = True
        self.raw_writes.setdefault(namespace, []).append((op, undo_op))

    # -- savepoints ----------------------------------------------------------------

    def savepoint_state(self, mark):
        return SavepointState(mark, dict(self.touched), dict(self.new),
                              dict(self.removed_for_good))

    def drop_pending(self):
        """Forget what was not written yet (a savepoint rollback)."""
        self.registered = {}
        self.inserted = {}
        self.removed = {}
        self.raw_writes = collections.OrderedDict()
        self.query_neutral.clear()
        self.dirty_for_queries = False

    def roll_back_to(self, state):
        """Back to ``state``: returns the objects added since (to detach),
        the objects removed since (to restore) and every object touched
        (to invalidate)."""
        added = [obj for key, obj in self.new.items() if key not in state.new]
        removed = [obj for key, obj in self.removed_for_good.items()
                   if key not in state.removed]
        touched = list(self.touched.values())
        self.new = dict(state.new)
        self.removed_for_good = dict(state.removed)
        self.touched = dict(state.touched)
        return added, removed, touched


class CollectionWrites:
    """The writes of one flush to one collection, in order."""

    __slots__ = ('deletes', 'inserts', 'replaces', 'raw')

    def __init__(self):
        self.deletes = []    # (obj, filter)
        self.inserts = []    # (obj, doc)
        self.replaces = []   # (obj, filter, doc)
        self.raw = []        # (op, undo op)

    def __bool__(self):
        return bool(self.deletes or self.inserts or self.replaces or self.raw)

    def objects(self):
        """The objects these writes store or delete."""
        return [w[0] for w in self.deletes + self.inserts + self.replaces]


def plan_writes(work, writer, states, handler):
    """Serialize every pending object into per-collection writes; returns
    ``({(db, coll): CollectionWrites}, [objects processed])`` and leaves
    nothing pending.

    Serializing can add objects (new persistent objects referenced for the
    first time), so this runs until nothing new turns up.
    """
    plan = collections.OrderedDict()
    processed = []
    done = set()

    def writes_for(oid):
        return plan.setdefault((oid.database, oid.collection),
                               CollectionWrites())

    for obj in list(work.removed.values()):
        latest = states.latest(obj._p_oid)
        writes_for(obj._p_oid).deletes.append(
            (obj, handler.write_filter(obj, latest)))
    work.removed = {}
    while True:
        pending = [o for o in list(work.inserted.values()) +
                   list(work.registered.values()) if id(o) not in done]
        if not pending:
            break
        for obj in pending:
            if id(obj) in done:
                continue
            done.add(id(obj))
            processed.append(obj)
            owner = document_owner(obj)
            if owner is None or owner is not obj:
                if owner is not None and id(owner) not in done:
                    pending.append(owner)
                continue
            doc = writer.get_full_state(obj)
            writes = writes_for(obj._p_oid)
            if id(obj) in work.inserted:
                writes.inserts.append((obj, doc))
                continue
            if states.unchanged(obj, doc):
                continue
            latest = states.latest(obj._p_oid)
            writes.replaces.append(
                (obj, handler.write_filter(obj, latest), doc))
    work.inserted = {}
    work.registered = {}
    for namespace, ops in work.raw_writes.items():
        plan.setdefault(namespace, CollectionWrites()).raw.extend(ops)
    work.raw_writes = collections.OrderedDict()
    return plan, processed
