"""What the Zope Toolkit's copy, paste and removal need from zmongo.

``configure.zcml`` registers these; see the "Renaming, moving and copying"
section of ``docs/containers.rst`` for the behaviour they give.

* :class:`IdNamesNameChooser` -- the ``INameChooser`` of id-named
  containers: an item already stored in the container's collection keeps
  its ``_id`` as its name, a new object gets a fresh ``ObjectId``.
* :class:`MongoObjectCopier` -- ``zope.copypastemove``'s ``ObjectCopier``
  for objects stored in MongoDB, except that it asks about the *copy*.
  zope.copypastemove asks the target's ``INameChooser`` and its
  ``__setitem__`` precondition about the original, so neither can tell a
  copy (a new object: a new name, a new document in any collection) from a
  move (which keeps its name and its document): an id-named container must
  give a copy a fresh ``_id``, and a container over another collection
  refuses the original but welcomes a copy of it.
* :class:`MongoObjectMover` -- ``zope.copypastemove``'s ``ObjectMover`` for
  objects stored in MongoDB, except that ``moveableTo()`` says False (and
  ``moveTo()`` raises ``RefusedItemError`` before anything changes) for a
  target that cannot hold a document of MongoDB: a container whose items
  are pickled into ZODB (a ``BTreeContainer``, a folder, a
  ``SimpleMongoContainer`` stored in ZODB).  ZODB cannot refer to an
  object of another database; the move would fail at commit.
* :func:`contained_copier` and :func:`contained_mover` -- the same two for
  plain ``zope.container.contained.Contained`` objects (zope.copypastemove
  adapts their ``IContained``; zmongo registers these for the ``Contained``
  class, which comes first): zmongo's for an object stored in MongoDB,
  zope.copypastemove's own, unchanged, for any other.
* :class:`MongoContainerCopyHook` and :class:`SimpleContainerCopyHook` --
  ``zope.copy`` hooks.  A Mongo container's items are documents of a
  collection, not part of its state, so pickling it (what ``zope.copy``
  does) would give an empty copy; the hook copies the items too and the
  copy stores them when it is added somewhere (:func:`store_copied_items`,
  before the ``ObjectAddedEvent`` reaches the items, so each item copy gets
  it, as in a ``BTreeContainer``'s copy).  A :class:`~zmongo.container.
  SimpleMongoContainer` keeps its items in its state; its hook only makes
  sure they are located in it, so ``zope.location``'s hook copies them
  rather than sharing them.
* :func:`remove_with_container` -- when a container is removed, Zope
  dispatches its ``ObjectRemovedEvent`` to its items (sublocations); the
  items of a Mongo container whose ``_m_remove_documents`` is set lose
  their documents with it (one ``delete`` command at the next flush, undone
  by an abort).
"""
import bson
import zope.copy
import zope.interface
from zope.component import adapter
from zope.container.constraints import checkObject
from zope.interface import Invalid
from zope.container.contained import ContainedProxy
from zope.container.contained import getProxiedObject
from zope.container.interfaces import INameChooser
from zope.copy.interfaces import ICopyHook
from zope.copy.interfaces import ResumeCopy
from zope.copypastemove import ObjectCopier
from zope.copypastemove import ObjectMover
from zope.copypastemove.interfaces import IObjectCopier
from zope.copypastemove.interfaces import IObjectMover
from zope.event import notify
from zope.lifecycleevent import ObjectCopiedEvent
from zope.lifecycleevent.interfaces import IObjectAddedEvent
from zope.lifecycleevent.interfaces import IObjectRemovedEvent
from zope.location.interfaces import ILocation
from zope.location.location import inside

from zmongo import _moves
from zmongo import container as _container
from zmongo import interfaces

__all__ = [
    'IdNamesNameChooser', 'MongoObjectCopier', 'MongoObjectMover',
    'contained_copier', 'contained_mover', 'MongoContainerCopyHook',
    'SimpleContainerCopyHook', 'store_copied_items', 'adopt_copied_items',
    'remove_with_container',
]

#: The volatile attribute of a container copy holding its items' copies
#: until it is added somewhere.
_COPIED_ITEMS = '_v_m_copied_items'


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------

@zope.interface.implementer(INameChooser)
@adapter(_container.IdNamesMongoContainer)
class IdNamesNameChooser:
    """Names for an id-named container: an item is named by its ``_id``."""

    def __init__(self, context):
        self.context = context

    def _own_id(self, obj):
        """The ``_id`` of ``obj`` if it is stored in this container's
        collection, else None."""
        if not _container.stored_as_is(obj) or obj._p_oid is None:
            return None
        box = self.context
        jar = box._m_jar
        db_name, coll_name = box._m_location(jar)
        oid = obj._p_oid
        if isinstance(oid, bson.DBRef) and obj._p_jar is jar and \
                (oid.database, oid.collection) == (db_name, coll_name):
            return str(oid.id)
        return None

    def checkName(self, name, obj):
        """See ``INameChooser``: a stored item can only have its ``_id``;
        a new object any free name that could be an ``_id``."""
        name = _container.check_new_name(name)
        own = self._own_id(obj)
        if own is not None:
            if name != own:
                raise interfaces.RefusedItemError(
                    '%r cannot be named %r in %r: an id-named container '
                    'names items by their _id, %r' % (obj, name, self.context,
                                                      own))
            return True
        if name in self.context:
            raise KeyError(name)
        return True

    def chooseName(self, name, obj):
        """See ``INameChooser``: the ``_id`` of an item already stored in
        the collection (it is moving here), else a fresh ``ObjectId``.
        ``name`` is not used: the container names its items itself (it is
        an ``IContainerNamesContainer``)."""
        own = self._own_id(obj)
        if own is not None:
            return own
        return str(bson.ObjectId())


# --------------------------------------------------------------------------
# Copies
# --------------------------------------------------------------------------

def _mongo_jar(obj):
    """The data manager storing ``obj`` if it is stored in MongoDB."""
    jar = getattr(obj, '_p_jar', None)
    return jar if interfaces.IMongoDataManager.providedBy(jar) else None


def _check_copy(target, name, obj):
    """``checkObject`` for the copy of ``obj`` that will be added (see
    ``zmongo._moves.checking_copy_of``)."""
    with _moves.checking_copy_of(obj):
        checkObject(target, name, obj)


@zope.interface.implementer(IObjectCopier)
@adapter(interfaces.IMongoContained)
class MongoObjectCopier(ObjectCopier):
    """zope.copypastemove's copier, asking about the copy rather than the
    original (see the module docstring)."""

    def copyableTo(self, target, name=None):
        """Whether a copy can be added to ``target`` (as ``name``)."""
        if name is None:
            name = self.context.__name__
        try:
            _check_copy(target, name, self.context)
        except Invalid:
            return False
        return True

    def copyTo(self, target, new_name=None):
        """Copy the object into ``target``; return the copy's name."""
        obj = self.context
        if new_name is None:
            new_name = obj.__name__
        _check_copy(target, new_name, obj)
        new = zope.copy.copy(obj)
        # The copy is no item of the original's container (yet): it must not
        # carry the fields saying so, wherever it goes.
        release = getattr(getattr(obj, '__parent__', None),
                          '_m_release_fields', None)
        if release is not None and not isinstance(new, ContainedProxy):
            release(new, obj.__name__)
        new_name = INameChooser(target).chooseName(new_name, new)
        notify(ObjectCopiedEvent(new, obj))
        target[new_name] = new
        return new_name


def _storage_jar(target):
    """The data manager or ZODB connection that will store what is added
    to ``target``: the ``_p_jar`` of the target or of its nearest stored
    ancestor (None if none is stored yet)."""
    seen = 0
    while target is not None and seen < 1000:
        jar = getattr(target, '_p_jar', None)
        if jar is not None:
            return jar
        target = getattr(target, '__parent__', None)
        seen += 1
    return None


def check_destination(obj, target):
    """Refuse (``RefusedItemError``) to move ``obj``, stored in MongoDB,
    into ``target`` when ``target`` cannot hold an object of MongoDB.

    A Mongo container decides for itself (its ``__setitem__``
    precondition: the same collection).  Any other container stores its
    items where it is stored itself: in the same data manager it can hold
    ``obj``; in ZODB (or another data manager) it cannot -- ZODB refuses
    to refer to an object of another database, at commit.
    """
    jar = _mongo_jar(obj)
    if jar is None or interfaces.IMongoContainer.providedBy(target):
        return
    where = _storage_jar(target)
    if where is None or where is jar:
        return
    raise interfaces.RefusedItemError(
        '%r cannot move into %r: it is stored in MongoDB (as %r), and that '
        'container keeps its items in %r, which cannot refer to an object of '
        'another database; copy it there instead (IObjectCopier.copyTo), or '
        'move it into a container stored in MongoDB or a Mongo container '
        'over its collection' % (obj, target, obj._p_oid, where))


@zope.interface.implementer(IObjectMover)
@adapter(interfaces.IMongoContained)
class MongoObjectMover(ObjectMover):
    """zope.copypastemove's mover, refusing targets that cannot hold an
    object stored in MongoDB (see :func:`check_destination`)."""

    def moveableTo(self, target, name=None):
        """Whether the object can move into ``target`` (as ``name``)."""
        try:
            check_destination(self.context, target)
        except Invalid:
            return False
        return super().moveableTo(target, name)

    def moveTo(self, target, new_name=None):
        """Move the object into ``target``; return its new name."""
        check_destination(self.context, target)
        return super().moveTo(target, new_name)


def contained_copier(obj):
    """The ``IObjectCopier`` of a ``zope.container.contained.Contained``
    object: zmongo's if it is stored in MongoDB, else zope.copypastemove's
    (see the module docstring)."""
    if _mongo_jar(obj) is not None:
        return MongoObjectCopier(obj)
    return ObjectCopier(obj)


def contained_mover(obj):
    """The ``IObjectMover`` of a ``zope.container.contained.Contained``
    object: zmongo's if it is stored in MongoDB, else zope.copypastemove's
    (see the module docstring)."""
    if _mongo_jar(obj) is not None:
        return MongoObjectMover(obj)
    return ObjectMover(obj)


@zope.interface.implementer(ICopyHook)
class _ContainerCopyHook:
    """What both container hooks do: a container outside what is copied
    is referred to (as zope.location's own hook decides); one inside is
    prepared (``_prepare``) and then copied as usual."""

    def __init__(self, context):
        self.context = context

    def __call__(self, toplevel, register):
        box = self.context
        if not inside(box, toplevel):
            return box
        self._prepare(register)
        raise ResumeCopy


@adapter(interfaces.IMongoContainer)
class MongoContainerCopyHook(_ContainerCopyHook):
    """Copies a Mongo container's items along with it."""

    def _prepare(self, register):
        register(self._copy_items)

    def _copy_items(self, translate):
        original = self.context
        copy = translate(original)
        if isinstance(copy, _container.SubDocumentMongoContainer):
            # Its items must not refer to the original's id.
            copy._m_container_id = bson.ObjectId()
        if isinstance(original, _container.AllItemsMongoContainer):
            # It shows the items of other containers; it owns none.
            return
        try:
            items = original.items()
        except ValueError:
            # Stored nowhere yet: it has no items.
            return
        id_named = isinstance(original, _container.IdNamesMongoContainer)
        copies = []
        for name, item in items:
            if isinstance(item, ContainedProxy):
                item = getProxiedObject(item)
            copies.append((None if id_named else name, zope.copy.copy(item)))
        setattr(copy, _COPIED_ITEMS, copies)


@adapter(_container.SimpleMongoContainer)
class SimpleContainerCopyHook(_ContainerCopyHook):
    """Locates a simple container's items in it before it is copied, so
    that they are copied with it (their location may be volatile)."""

    def _prepare(self, register):
        self.context.items()


def store_copied_items(box):
    """Store in ``box`` the copies of its original's items that
    :class:`MongoContainerCopyHook` left on it, if any (no events of their
    own: the ``ObjectAddedEvent`` of the copy reaches them next, as it
    reaches a ``BTreeContainer`` copy's items).  Return True if there were
    some.

    Called by :class:`zmongo.sublocations.MongoContainerSublocations` when
    Zope dispatches that event to the copy's items: zope.container's
    dispatcher may run before :func:`adopt_copied_items` (both subscribe to
    the same event), and it must find the items stored -- at every level of
    a copied tree, each container copy storing its own as the dispatch
    reaches it."""
    copies = box.__dict__.pop(_COPIED_ITEMS, None)
    if not copies:
        return False
    try:
        box._m_get_parent_key_value()
    except ValueError:
        # Added to a ZODB container: its items refer to its ZODB oid, which
        # it gets now rather than at commit (what the commit would do).
        parent_jar = getattr(box.__parent__, '_p_jar', None)
        if parent_jar is None or not hasattr(parent_jar, 'add'):
            box.__dict__[_COPIED_ITEMS] = copies
            raise
        parent_jar.add(box)
    for name, item in copies:
        box._m_adopt(name, item)
    return True


@adapter(interfaces.IMongoContainer, IObjectAddedEvent)
def adopt_copied_items(box, event):
    """A container copy was added: store the copies of its items in it
    (:func:`store_copied_items`).  In a site without zope.container's
    sublocation dispatcher, this is what stores them; with it, the
    dispatcher has usually stored them already (through
    ``MongoContainerSublocations``), and this finds nothing left to do."""
    store_copied_items(box)


# --------------------------------------------------------------------------
# Removal
# --------------------------------------------------------------------------

@adapter(ILocation, IObjectRemovedEvent)
def remove_with_container(item, event):
    """``item``'s container (or one of its ancestors) was removed: delete
    its document if its container says so (``_m_remove_documents``)."""
    if item is event.object:
        return      # removed from its own container, which did the work
    box = item.__parent__
    if isinstance(box, _container.MongoContainer):
        if isinstance(box, _container.AllItemsMongoContainer) or \
                not box._m_remove_documents:
            return
        jar = box._m_jar
        stored = item
        if not _container.stored_as_is(item):
            stored = box._m_stored(item.__name__, jar)
        if stored._p_oid is not None and stored._p_jar is jar:
            jar.remove(stored)
    elif isinstance(box, _container.SimpleMongoContainer):
        stored = getProxiedObject(item)
        jar = getattr(box, '_p_jar', None)
        if box._m_remove_documents and \
                interfaces.IMongoDataManager.providedBy(jar) and \
                getattr(stored, '_p_oid', None) is not None and \
                stored._p_jar is jar and \
                not getattr(stored, '_p_mongo_sub_object', False):
            jar.remove(stored)
