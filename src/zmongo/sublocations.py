"""``ISublocations`` for Mongo containers.

zope.container's configuration dispatches the moved, added and removed
events of a container to its sublocations (``dispatchToSublocations``), and
its generic adapter finds them as ``for key in c: yield c[key]`` -- one query
for the names and one more per item.  In a site that loads that
configuration (every Zope Toolkit or Grok site does), merely adding a new
Mongo container to a folder in ZODB would list the items of a container
stored nowhere yet, which fails: its items cannot refer to it before it has
a ``_p_oid``.

:class:`MongoContainerSublocations`, registered by ``configure.zcml`` for
``IMongoContainer``, instead gives

* nothing for a container stored nowhere yet (it cannot have items);
* nothing for an :class:`zmongo.container.AllItemsMongoContainer`: it shows
  items that belong to other containers, so moving or removing it is no
  event of theirs (a catalog would otherwise unindex the whole collection);
* otherwise the container's items, read with one command (``values()``).

A copy of a Mongo container (``zope.copy``, ``IObjectCopier``) holds the
copies of its original's items until it is added somewhere; Zope dispatches
the copy's ``ObjectAddedEvent`` to its sublocations, so they are stored
first (``zmongo._copypaste.store_copied_items``) and then listed: each item
copy gets its event, and a container copied inside the copy stores its own
when the dispatch reaches it.

An item is never given as a sublocation of a container it contains (the
container itself or one of its ``__parent__`` chain): such a cycle cannot
be made through zmongo (moving a container into its own item is refused),
but a database written by other means could hold one, and dispatching into
it would recurse without end.
"""
from zope.component import adapter
from zope.interface import implementer
from zope.location.interfaces import ISublocations

from zmongo._copypaste import store_copied_items
from zmongo.container import AllItemsMongoContainer
from zmongo.interfaces import IMongoContainer

__all__ = ['MongoContainerSublocations']


@implementer(ISublocations)
@adapter(IMongoContainer)
class MongoContainerSublocations:
    """The items of a Mongo container, for event dispatching."""

    def __init__(self, container):
        self.container = container

    def _is_stored(self):
        try:
            self.container._m_get_parent_key_value()
        except ValueError:
            return False
        return True

    def _is_in_its_parent(self):
        """Whether the container is an item of its ``__parent__`` already:
        a copy's items can be stored then, not while the copy is only
        copied (zope.copypastemove dispatches its ``ObjectCopiedEvent``
        before adding it anywhere)."""
        container = self.container
        parent = getattr(container, '__parent__', None)
        name = getattr(container, '__name__', None)
        get = getattr(parent, 'get', None)
        if name is None or get is None:
            return False    # not an item of a container (yet)
        return get(name) is container

    def sublocations(self):
        container = self.container
        if isinstance(container, AllItemsMongoContainer):
            return
        if self._is_in_its_parent():
            store_copied_items(container)
        if not self._is_stored():
            return
        above = self._chain()
        for item in container.values():
            if id(item) not in above:
                yield item

    def _chain(self, limit=10000):
        """The ids of the container and of its ``__parent__`` chain."""
        seen = set()
        obj = self.container
        while obj is not None and id(obj) not in seen and len(seen) < limit:
            seen.add(id(obj))
            obj = getattr(obj, '__parent__', None)
        return seen
