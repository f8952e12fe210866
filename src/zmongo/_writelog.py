"""The log of the writes a transaction sent, for rollbacks.

A data manager appends every write it sent (after the server accepted it)
with the collection it went to and, in standalone mode, the write that
undoes it: the document as it was before (filtered on the serial this
write stored, so an undo never lands on a document someone else wrote
since).  The log serves two kinds of rollback:

* **standalone mode**: abort and savepoint rollback send the undo writes of
  the entries after the point rolled back to, newest first;
* **server-transaction mode**: MongoDB has no partial rollback, so a
  savepoint rollback aborts the server transaction, starts a new one and
  sends the entries up to the savepoint again (:meth:`WriteLog.replay`).

A savepoint is a position in the log (:meth:`WriteLog.mark`).
"""
import collections

LogEntry = collections.namedtuple(
    'LogEntry', ['namespace', 'dbref', 'op', 'undo'])
LogEntry.__doc__ = """One write sent: ``namespace`` is ``(database,
collection)``, ``dbref`` the document's (None for raw writes), ``op`` the
pymongo write as sent, ``undo`` the write that reverses it (or None)."""


class WriteLog:

    def __init__(self):
        self._entries = []

    def __len__(self):
        return len(self._entries)

    def __bool__(self):
        return bool(self._entries)

    def append(self, namespace, dbref, op, undo):
        self._entries.append(LogEntry(namespace, dbref, op, undo))

    def mark(self):
        """The current position (what a savepoint remembers)."""
        return len(self._entries)

    def since(self, mark):
        """The entries written after ``mark``, oldest first."""
        return list(self._entries[mark:])

    def truncate(self, mark):
        """Forget the entries after ``mark`` (they were rolled back)."""
        del self._entries[mark:]

    def clear(self):
        self._entries = []

    def undo_batches(self, mark=0):
        """``[(namespace, [undo op, ...]), ...]``: what reverses the entries
        after ``mark``, newest first within each collection (writes to
        different collections never depend on each other)."""
        by_namespace = collections.OrderedDict()
        for entry in reversed(self._entries[mark:]):
            if entry.undo is not None:
                by_namespace.setdefault(entry.namespace, []).append(
                    entry.undo)
        return list(by_namespace.items())

    def replay(self, mark=None):
        """``[(namespace, [op, ...]), ...]``: the entries up to ``mark`` as
        consecutive runs per collection, in the order they were sent."""
        runs = []
        for entry in self._entries[:mark]:
            if runs and runs[-1][0] == entry.namespace:
                runs[-1][1].append(entry.op)
            else:
                runs.append((entry.namespace, [entry.op]))
        return runs
