"""Who wins when two transactions write the same document.

The data manager asks its handler for the filter of every replacing write
(:meth:`write_filter`).  The serial handlers put the serial this transaction
read into that filter, so a document another transaction wrote in the
meantime simply does not match: the conflict is detected by the write
itself, with no window between a check and the write.  (In server-transaction
mode the server also reports concurrent writers as ``WriteConflict``; the data
manager turns both into :class:`~zmongo.interfaces.ConflictError`.)

``has_conflicts`` / ``check_conflicts`` remain for callers that want to ask
beforehand; they read, so their answer can be stale by the time of commit.
"""
import struct

import zope.interface

from zmongo import _names
from zmongo import interfaces


def p64(v):
    """Pack an int into 8 big-endian bytes (``_p_serial``'s format)."""
    return struct.pack('>Q', v)


def u64(v):
    """Unpack 8 big-endian bytes into an int."""
    return struct.unpack('>Q', v)[0]


def create_conflict_error(obj, orig_doc, cur_doc, new_doc):
    return interfaces.ConflictError(None, obj, orig_doc, cur_doc, new_doc)


@zope.interface.implementer(interfaces.IConflictHandler)
class NoCheckConflictHandler:
    """Last writer wins; documents carry no serial."""

    #: Replacing writes create the document again if someone deleted it.
    upsert = True
    #: Whether a write that matched nothing means a conflict.
    detects_conflicts = False
    field_name = None

    def __init__(self, datamanager):
        self.datamanager = datamanager

    def on_before_set_state(self, obj, state):
        pass

    def on_before_store(self, obj, state):
        pass

    def on_after_store(self, obj, state):
        pass

    def on_modified(self, obj):
        pass

    def is_same(self, obj, orig_state, new_state):
        return orig_state == new_state

    def write_filter(self, obj, orig_state=None):
        return {_names.ID: obj._p_oid.id}

    def has_conflicts(self, objs):
        return False

    def check_conflicts(self, objs):
        pass


@zope.interface.implementer(interfaces.IResolvingConflictHandler)
class SerialConflictHandler:
    """Documents carry ``_py_serial``; a write must find the serial it read."""

    field_name = _names.PY_SERIAL
    upsert = False
    detects_conflicts = True
    conflict_error_factory = staticmethod(create_conflict_error)

    def __init__(self, datamanager):
        self.datamanager = datamanager

    def on_before_set_state(self, obj, state):
        obj._p_serial = p64(state.pop(self.field_name, 0) or 0)

    def on_before_store(self, obj, state):
        state[self.field_name] = self.serial_of(obj) + 1

    def on_after_store(self, obj, state):
        obj._p_serial = p64(state[self.field_name])

    def on_modified(self, obj):
        pass

    @staticmethod
    def serial_of(obj):
        serial = getattr(obj, '_p_serial', None)
        return u64(serial) if serial else 0

    def _without_serial(self, state):
        state = dict(state)
        state.pop(self.field_name, None)
        return state

    def is_same(self, obj, orig_state, new_state):
        if orig_state is None:
            return False
        return self._without_serial(orig_state) == \
            self._without_serial(new_state)

    def write_filter(self, obj, orig_state=None):
        expected = self.serial_of(obj)
        # Documents written without a serial (by mongopersist's NoCheck
        # handler, or by hand) count as serial 0.
        return {_names.ID: obj._p_oid.id,
                self.field_name: expected if expected else {'$in': [0, None]}}

    def resolve(self, obj, orig_doc, cur_doc, new_doc):
        raise NotImplementedError

    def check_conflict(self, obj):
        """Return a ``ConflictError`` if ``obj``'s document moved on since it
        was read (and cannot be resolved), else None.  One query."""
        if obj._p_oid is None:
            return None
        coll = self.datamanager.raw_collection(
            obj._p_oid.database, obj._p_oid.collection)
        cur_doc = coll.find_one({_names.ID: obj._p_oid.id},
                                session=self.datamanager.op_session())
        if cur_doc is None:
            return None
        if (cur_doc.get(self.field_name) or 0) == self.serial_of(obj):
            return None
        orig_doc = self.datamanager.original_state(obj._p_oid)
        new_doc = self.datamanager.writer.get_full_state(obj)
        if self.resolve(obj, orig_doc, cur_doc, new_doc):
            return None
        return self.conflict_error_factory(obj, orig_doc, cur_doc, new_doc)

    def has_conflicts(self, objs):
        for obj in objs:
            try:
                if self.check_conflict(obj) is not None:
                    return True
            except interfaces.ConflictError:
                return True
        return False

    def check_conflicts(self, objs):
        for obj in objs:
            err = self.check_conflict(obj)
            if err is not None:
                raise err


class SimpleSerialConflictHandler(SerialConflictHandler):
    """Serial checks; the second writer always loses."""

    def resolve(self, obj, orig_doc, cur_doc, new_doc):
        return False


class ResolvingSerialConflictHandler(SerialConflictHandler):
    """Serial checks; ``obj._p_resolveConflict(orig, cur, new)`` may merge.

    It returns the merged document (or None to give up); the merged state
    becomes the object's state and is written over the current document.
    """

    def resolve(self, obj, orig_doc, cur_doc, new_doc):
        resolver = getattr(obj, '_p_resolveConflict', None)
        if resolver is None or cur_doc is None:
            return False
        doc = resolver(orig_doc, cur_doc, new_doc)
        if doc is None:
            return False
        doc = dict(doc)
        doc[self.field_name] = cur_doc.get(self.field_name, 0)
        doc[_names.ID] = obj._p_oid.id
        self.datamanager.reader.set_ghost_state(obj, doc)
        return True
