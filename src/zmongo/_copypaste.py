"""What the Zope Toolkit's copy, paste and removal need from zmongo.

``configure.zcml`` registers these; see the "Renaming, moving and copying"
section of ``docs/containers.rst`` for the behaviour they give.

* :class:`IdNamesNameChooser` -- the ``INameChooser`` of id-named
  containers: an item already stored in the container's collection keeps
  its ``_id`` as its name, a new object gets a fresh ``ObjectId``.
* :class:`MongoObjectCopier` -- ``zope.copypastemove``'s ``ObjectCopier``
  for ``IMongoContained`` items, except that it asks the target's
  ``INameChooser`` for the name of the *copy*.  zope.copypastemove asks
  with the original, so a chooser cannot tell a copy (which needs a new
  name) from a move (which keeps it); an id-named container must know:
  a moved item keeps its ``_id``, a copy needs a new one.
* :class:`MongoContainerCopyHook` and :class:`SimpleContainerCopyHook` --
  ``zope.copy`` hooks.  A Mongo container's items are documents of a
  collection, not part of its state, so pickling it (what ``zope.copy``
  does) would give an empty copy; the hook copies the items too and the
  copy stores them when it is added somewhere (:func:`adopt_copied_items`,
  before the ``ObjectAddedEvent`` reaches the items, as it does for a
  ``BTreeContainer``'s copy).  A :class:`~zmongo.container.
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
from zope.container.contained import ContainedProxy
from zope.container.contained import getProxiedObject
from zope.container.interfaces import INameChooser
from zope.copy.interfaces import ICopyHook
from zope.copy.interfaces import ResumeCopy
from zope.copypastemove import ObjectCopier
from zope.copypastemove.interfaces import IObjectCopier
from zope.event import notify
from zope.lifecycleevent import ObjectCopiedEvent
from zope.lifecycleevent.interfaces import IObjectAddedEvent
from zope.lifecycleevent.interfaces import IObjectRemovedEvent
from zope.location.interfaces import ILocation
from zope.location.location import inside

from zmongo import container as _container
from zmongo import interfaces

__all__ = [
    'IdNamesNameChooser', 'MongoObjectCopier', 'MongoContainerCopyHook',
    'SimpleContainerCopyHook', 'adopt_copied_items', 'remove_with_container',
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
        if not _container._stored_as_is(obj) or obj._p_oid is None:
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
        name = _container._check_new_name(name)
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

@zope.interface.implementer(IObjectCopier)
@adapter(interfaces.IMongoContained)
class MongoObjectCopier(ObjectCopier):
    """zope.copypastemove's copier, naming the copy rather than the
    original (see the module docstring)."""

    def copyTo(self, target, new_name=None):
        """Copy the object into ``target``; return the copy's name."""
        obj = self.context
        if new_name is None:
            new_name = obj.__name__
        checkObject(target, new_name, obj)
        new = zope.copy.copy(obj)
        new_name = INameChooser(target).chooseName(new_name, new)
        notify(ObjectCopiedEvent(new, obj))
        target[new_name] = new
        return new_name


@zope.interface.implementer(ICopyHook)
@adapter(interfaces.IMongoContainer)
class MongoContainerCopyHook:
    """Copies a Mongo container's items along with it."""

    def __init__(self, context):
        self.context = context

    def __call__(self, toplevel, register):
        box = self.context
        if not inside(box, toplevel):
            # Outside what is copied: the copy refers to it (as
            # zope.location's own hook decides).
            return box
        register(self._copy_items)
        raise ResumeCopy

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


@zope.interface.implementer(ICopyHook)
@adapter(_container.SimpleMongoContainer)
class SimpleContainerCopyHook:
    """Locates a simple container's items in it before it is copied, so
    that they are copied with it (their location may be volatile)."""

    def __init__(self, context):
        self.context = context

    def __call__(self, toplevel, register):
        box = self.context
        if not inside(box, toplevel):
            # Outside what is copied: the copy refers to it (as
            # zope.location's own hook decides).
            return box
        box.items()
        raise ResumeCopy


@adapter(interfaces.IMongoContainer, IObjectAddedEvent)
def adopt_copied_items(box, event):
    """A container copy was added: store the copies of its items in it
    (no events of their own: Zope dispatches the ``ObjectAddedEvent`` of
    the copy to them next, as to a ``BTreeContainer`` copy's items).  Also
    called for a container copied inside a copy, when that event reaches
    it."""
    copies = box.__dict__.pop(_COPIED_ITEMS, None)
    if not copies:
        return
    try:
        box._m_get_parent_key_value()
    except ValueError:
        # Added to a ZODB container: its items refer to its ZODB oid, which
        # it gets now rather than at commit (what the commit would do).
        parent_jar = getattr(box.__parent__, '_p_jar', None)
        if parent_jar is None or not hasattr(parent_jar, 'add'):
            raise
        parent_jar.add(box)
    for name, item in copies:
        box._m_adopt(name, item)


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
        if not _container._stored_as_is(item):
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
