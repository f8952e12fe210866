"""One object per document: the identity map of a data manager.

ZODB's ``Connection`` keeps its objects in a pickle cache that holds
unmodified objects weakly, so a transaction that walks a large collection
without keeping what it loaded stays within bounded memory, and an object
the application holds keeps its identity across transactions.  This map
does the same for a data manager: every object is held weakly (changed ones
are kept alive by the data manager's unit of work, not here).  Objects that
cannot be weakly referenced (``__slots__`` without ``__weakref__``) are held
strongly, for good (as ghosts between transactions): nothing tells when the
application lets go of them, and a second object for their document would
be worse than the memory.

When an object is collected, its ``DBRef`` is queued; the data manager
calls :meth:`IdentityMap.take_collected` at points of its choosing to drop
what it kept about those documents, never from inside the garbage
collector.
"""
import weakref


class IdentityMap:

    def __init__(self):
        self._refs = {}
        self._strong = {}
        self._collected = []
        collected = self._collected
        refs = self._refs

        def on_collect(ref, refs=refs, collected=collected):
            key = ref.key
            if refs.get(key) is ref:
                del refs[key]
                collected.append(key)

        self._on_collect = on_collect

    def get(self, dbref, default=None):
        ref = self._refs.get(dbref)
        if ref is not None:
            obj = ref()
            if obj is not None:
                return obj
        return self._strong.get(dbref, default)

    def __getitem__(self, dbref):
        obj = self.get(dbref)
        if obj is None:
            raise KeyError(dbref)
        return obj

    def __contains__(self, dbref):
        return self.get(dbref) is not None

    def __setitem__(self, dbref, obj):
        try:
            ref = weakref.KeyedRef(obj, self._on_collect, dbref)
        except TypeError:
            self._refs.pop(dbref, None)
            self._strong[dbref] = obj
            return
        self._strong.pop(dbref, None)
        self._refs[dbref] = ref

    def pop(self, dbref, default=None):
        obj = self.get(dbref)
        self._refs.pop(dbref, None)
        self._strong.pop(dbref, None)
        return default if obj is None else obj

    def items(self):
        """(dbref, object) of every object alive, as a list."""
        # A copy first, in one step: building a list of the items could
        # let the garbage collector run in the middle, and the callbacks of
        # what it frees would change the dict while it is read.
        found = [(key, ref()) for key, ref in self._refs.copy().items()]
        found = [(key, obj) for key, obj in found if obj is not None]
        return found + list(self._strong.items())

    def values(self):
        return [obj for _, obj in self.items()]

    def keys(self):
        return [key for key, _ in self.items()]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.items())

    def take_collected(self):
        """The ``DBRef``\\ s whose objects were collected since the last
        call (and have no object now)."""
        if not self._collected:
            return ()
        keys, self._collected[:] = list(self._collected), []
        return [key for key in keys if self.get(key) is None]

    def clear(self):
        self._refs.clear()
        self._strong.clear()
        self._collected[:] = []
