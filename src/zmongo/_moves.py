"""Items that moved out of a container, until the container lets them go.

``zope.copypastemove`` (and the ZMI's Rename, Cut and Paste) move an item
in two steps: ``target[new] = obj`` and then ``del source[old]``.  A
``BTreeContainer`` keeps ``obj`` under ``old`` between the two steps, and
its ``del`` merely forgets the entry: ``uncontained`` sees that ``obj`` now
lives elsewhere and fires only the ``ContainerModifiedEvent`` of
``source``.

A Mongo container holds no list of its items: the first step already
re-pointed the item's document (its ``parent`` and ``key`` fields) at the
target, so ``source`` no longer finds ``old``, and deleting what it still
remembered under ``old`` would delete the moved item's document.  The first
step therefore records, for the rest of the transaction, that ``obj`` left
``source`` as ``old``; the second finds the record and, like a
``BTreeContainer``, only lets the entry go.

Records are kept in the data manager's per-transaction ``annotations``
(dropped at commit and abort), keyed by the container object (one object
per stored container in a transaction, so identity is the container).
"""

import contextlib
import contextvars

_ANNOTATION = 'zmongo.container.moved'


def _records(jar, create=False):
    annotations = getattr(jar, 'annotations', None)
    if annotations is None:
        return None
    if create:
        return annotations.setdefault(_ANNOTATION, {})
    return annotations.get(_ANNOTATION)


def record(jar, source, name, obj):
    """``obj`` (the stored object) left ``source``, where it was ``name``."""
    records = _records(jar, create=True)
    if records is None:
        return
    # The container is kept with the entry so that its id is not reused.
    records[(id(source), name)] = (source, obj)


def peek(jar, source, name):
    """The object that moved out of ``source`` as ``name`` and has not been
    let go since, or None; the record stays.  Until the second step, the
    old name is still taken, as in a ``BTreeContainer``."""
    records = _records(jar)
    if not records:
        return None
    entry = records.get((id(source), name))
    return None if entry is None else entry[1]


def take(jar, source, name):
    """The object that moved out of ``source`` as ``name`` and has not been
    let go since, or None (and the record is dropped either way)."""
    records = _records(jar)
    if not records:
        return None
    entry = records.pop((id(source), name), None)
    if entry is None:
        return None
    return entry[1]


def has_moved_away(obj, source, name):
    """True if the located object ``obj`` is no longer ``source``'s item
    ``name`` (a move gave it another parent or name)."""
    try:
        parent, current = obj.__parent__, obj.__name__
    except AttributeError:
        return False
    if parent is None or current is None:
        return False     # not located: nothing says it is elsewhere
    return parent is not source or current != name


# --------------------------------------------------------------------------
# Copies are not moves
# --------------------------------------------------------------------------
#
# zope.copypastemove checks a copy as it checks a move: it hands the
# *original* to ``zope.container.constraints.checkObject``, so a container's
# ``__setitem__`` precondition cannot tell "this object moves here" (which a
# Mongo container refuses for an object of another collection: its document
# cannot change collection) from "a copy of it will be added here" (a new
# object, welcome in any collection).  zmongo's copier runs that check inside
# ``checking_copy_of(original)``; the precondition then treats the original
# as the new object its copy will be.  A context variable, so a check in one
# thread or task never leaks into another.

_COPY_CHECKED = contextvars.ContextVar('zmongo_copy_checked', default=None)


@contextlib.contextmanager
def checking_copy_of(obj):
    """Within the block, preconditions check ``obj`` as a copy of it."""
    token = _COPY_CHECKED.set(obj)
    try:
        yield
    finally:
        _COPY_CHECKED.reset(token)


def checked_as_copy(obj):
    """True while ``obj`` is checked as the copy that will be added."""
    return obj is not None and _COPY_CHECKED.get() is obj
