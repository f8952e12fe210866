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
  sends the entries up to the savepoint again (:meth:`WriteLog.replay`);
  so does a server transaction the server lost (a write conflict, its
  transaction lifetime, a transient error).  Each replace and delete is
  sent as it was first sent, filtered on the serial it expected.

A savepoint is a position in the log (:meth:`WriteLog.mark`).
"""
import collections

LogEntry = collections.namedtuple(
    'LogEntry', ['namespace', 'dbref', 'op', 'undo', 'doc', 'touched'],
    defaults=((),))
LogEntry.__doc__ = """One write sent: ``namespace`` is ``(database,
collection)``, ``dbref`` the document's (None for raw writes), ``op`` the
pymongo write as sent, ``undo`` the write that reverses it (or None),
``doc`` the document it wrote (None for deletes and raw writes),
``touched`` the ``DBRef``\\ s of the documents a raw write (one through the
collection wrapper) may have changed: a rollback of it must reload their
objects, and what the transaction read of them after it is its own
write, not the snapshot's."""


class WriteLog:

    def __init__(self):
        self._entries = []

    def __len__(self):
        return len(self._entries)

    def __bool__(self):
        return bool(self._entries)

    def append(self, namespace, dbref, op, undo, doc=None, touched=()):
        self._entries.append(LogEntry(namespace, dbref, op, undo, doc,
                                      tuple(touched)))

    def touched(self):
        """The ``DBRef``\\ s raw writes in the log may have changed."""
        found = set()
        for entry in self._entries:
            found.update(entry.touched)
        return found

    def written(self):
        """``{dbref: last document written (None: deleted)}`` for every
        document a logged write of an object touched."""
        found = {}
        for entry in self._entries:
            if entry.dbref is not None:
                found[entry.dbref] = entry.doc
        return found

    def drop(self, dbref):
        """Forget the writes of ``dbref`` (its object is written anew: a
        merge after a conflict found when sending the log again)."""
        self._entries = [e for e in self._entries if e.dbref != dbref]

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
        return [(namespace, [entry.op for entry in entries])
                for namespace, entries in self.runs(mark)]

    def runs(self, mark=None):
        """``[(namespace, [LogEntry, ...]), ...]``: like :meth:`replay`,
        with the whole entries (what each wrote, for checking)."""
        runs = []
        for entry in self._entries[:mark]:
            if runs and runs[-1][0] == entry.namespace:
                runs[-1][1].append(entry)
            else:
                runs.append((entry.namespace, [entry]))
        return runs
