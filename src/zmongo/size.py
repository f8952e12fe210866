"""``zope.size`` for Mongo containers: item counts, no items loaded.

:class:`MongoContainerSized` is registered by ``configure.zcml`` as the
``ISized`` adapter of every zmongo container.  The count is the container's
``len()``: for the containers over a collection that is one ``count``
command answered by the server (or none at all when the container's
per-transaction cache already holds every item, see
:data:`zmongo.container.USE_CONTAINER_CACHE`); no item is ever loaded.  For
:class:`zmongo.container.SimpleMongoContainer` it is the size of its
``data`` mapping (its one document).

Sorting and display follow ``zope.container.size.ContainerSized``, with the
same translatable messages, so listings mixing zmongo containers and ZODB
containers sort and read alike.
"""
from zope.component import adapter
from zope.container.i18n import ZopeMessageFactory as _
from zope.container.interfaces import IReadContainer
from zope.interface import implementer
from zope.size.interfaces import ISized

__all__ = ['MongoContainerSized']


@implementer(ISized)
@adapter(IReadContainer)
class MongoContainerSized:
    """``ISized`` for a zmongo container: ``('item', number of items)``."""

    def __init__(self, container):
        self.context = container

    def itemCount(self):
        """The number of items (one count command, no item loaded)."""
        return len(self.context)

    def sizeForSorting(self):
        """See ``ISized``."""
        return ('item', self.itemCount())

    def sizeForDisplay(self):
        """See ``ISized``."""
        count = self.itemCount()
        if count == 1:
            return _('1 item')
        return _('${items} items', mapping={'items': str(count)})
