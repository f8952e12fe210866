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
"""
from zope.component import adapter
from zope.interface import implementer
from zope.location.interfaces import ISublocations

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

    def sublocations(self):
        container = self.container
        if isinstance(container, AllItemsMongoContainer):
            return
        if not self._is_stored():
            return
        yield from container.values()
