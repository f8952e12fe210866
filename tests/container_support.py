"""Fixtures and helpers shared by the container tests.

Test modules import the fixtures they use (pytest finds fixtures in a
module's namespace).
"""
import pytest
import zope.component
import zope.component.testing
from zope.interface.interfaces import IObjectEvent

from zmongo import container

#: Every container class, by a short name.
KINDS = ('mongo', 'idnames', 'allitems', 'subdocument', 'simple')
#: The classes whose items are documents of a collection.
COLLECTION_KINDS = ('mongo', 'idnames', 'allitems', 'subdocument')


@pytest.fixture(params=[True, False], ids=['cache', 'nocache'])
def container_cache(request):
    """Runs the test with USE_CONTAINER_CACHE on and off (and restores it)."""
    old = container.USE_CONTAINER_CACHE
    container.USE_CONTAINER_CACHE = request.param
    try:
        yield request.param
    finally:
        container.USE_CONTAINER_CACHE = old


@pytest.fixture
def registry():
    """A clean global component registry for the test."""
    zope.component.testing.setUp()
    try:
        yield zope.component.getGlobalSiteManager()
    finally:
        zope.component.testing.tearDown()


@pytest.fixture
def events(registry):
    """The object events fired during the test, in order."""
    log = []

    @zope.component.adapter(IObjectEvent)
    def record(event):
        log.append(event)

    zope.component.provideHandler(record)
    return log


def make(kind, collection='person'):
    """A new, empty container of ``kind`` (not stored anywhere yet)."""
    return {
        'mongo': container.MongoContainer,
        'idnames': container.IdNamesMongoContainer,
        'allitems': container.AllItemsMongoContainer,
        'subdocument': container.SubDocumentMongoContainer,
        'simple': lambda collection: container.SimpleMongoContainer(),
    }[kind](collection)


class Home:
    """A container of one kind stored in a data manager, and the way back
    to it in a later transaction."""

    def __init__(self, kind, dm, collection='person'):
        self.kind = kind
        self.dm = dm
        if kind == 'subdocument':
            holder = container.SimpleMongoContainer()
            self.ref = dm.insert(holder)
            box = make(kind, collection)
            # Located first: adding it fires no events (tests count them).
            box.__parent__, box.__name__ = holder, 'box'
            holder['box'] = box
        else:
            self.ref = dm.insert(make(kind, collection))

    def get(self):
        obj = self.dm.load(self.ref)
        if self.kind == 'subdocument':
            return obj['box']
        return obj

    def loaded(self):
        """The container, with its own document already read."""
        obj = self.dm.load(self.ref)
        obj._p_activate()
        if self.kind == 'subdocument':
            return obj['box']
        return obj

