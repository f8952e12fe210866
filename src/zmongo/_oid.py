"""The ``_p_oid`` of objects zmongo loads and stores.

An oid is a ``bson.DBRef``, as in mongopersist: applications compare it,
store it and pass it to ``load()``.  The data manager looks objects up by
oid several times per object loaded (its identity map, the documents it
read), and ``DBRef.__hash__`` is pure Python that builds and sorts a tuple
each time -- in profiles of loading 10,000 objects it was the largest single
cost.  :class:`HashedDBRef` computes that hash once.  It equals, and hashes
like, the plain ``DBRef`` of the same document, so either finds the other in
a dict; it pickles and copies as a plain ``DBRef``.
"""
import bson


class HashedDBRef(bson.DBRef):
    """A ``DBRef`` (collection, id, database) whose hash is computed once."""

    __slots__ = ('_hash',)

    def __init__(self, collection, id, database):
        super().__init__(collection, id, database)
        self._hash = bson.DBRef.__hash__(self)

    def __hash__(self):
        return self._hash

    def __reduce__(self):
        return bson.DBRef, (self.collection, self.id, self.database)


_new = object.__new__
_NO_FIELDS = {}


def oid(collection, id, database):
    """The oid of document ``id`` in ``database.collection``.

    Called once per object loaded, with names that come from a collection
    (so are strings): it fills the slots ``DBRef.__init__`` would, without
    its checks, and the hash as ``DBRef.__hash__`` computes it.
    """
    ref = _new(HashedDBRef)
    ref._DBRef__collection = collection
    ref._DBRef__id = id
    ref._DBRef__database = database
    # One empty dict for all: DBRef only reads its extra fields, and an
    # oid has none (64 bytes per object loaded).
    ref._DBRef__kwargs = _NO_FIELDS
    ref._hash = hash((collection, id, database, ()))
    return ref


def as_oid(dbref):
    """``dbref`` as an oid (itself if it already is one)."""
    if type(dbref) is HashedDBRef:
        return dbref
    return HashedDBRef(dbref.collection, dbref.id, dbref.database)
