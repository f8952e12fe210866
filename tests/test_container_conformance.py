"""zope.container's conformance suite, for every container class.

``BaseTestIContainer`` runs against each class, with the item cache on and
off, and with the data manager in both of its modes.
"""
import unittest

import bson
import pytest
import transaction
from zope.container.tests.test_icontainer import BaseTestIContainer

from tests import container_models as models
from tests.container_support import KINDS, Home
from zmongo import container


class _Conformance(BaseTestIContainer):
    """Mixed into ``unittest.TestCase`` for one kind and mode."""

    kind = None
    use_cache = True
    transactions = False

    @pytest.fixture(autouse=True)
    def _datamanager(self, mongo):
        old = container.USE_CONTAINER_CACHE
        container.USE_CONTAINER_CACHE = self.use_cache
        self.dm = mongo.make_datamanager(transactions=self.transactions)
        self.created = 0
        try:
            yield
        finally:
            transaction.abort()
            container.USE_CONTAINER_CACHE = old

    def makeTestObject(self):
        # Every call must give a new, empty container: all-items containers
        # see a whole collection, so each gets its own.
        self.created += 1
        return Home(self.kind, self.dm, 'items%d' % self.created).get()

    def _name(self, i):
        if self.kind == 'idnames':
            return str(bson.ObjectId())
        return str(i)

    def makeTestData(self):
        return [(self._name(i), models.Item('item %d' % i))
                for i in (3, 2, 4, 6, 0, 5, 1, 8, 7, 9)]

    def getUnknownKey(self):
        return self._name(10)

    def getBadKeyTypes(self):
        # None is not bad here: it means "take the name from the item".
        return [[b'foo'], 1, b'\xf3abc', {'$ne': None}, ('a',)]


for _kind in KINDS:
    for _cache in (True, False):
        for _transactions in (False, True):
            _name = 'Test%s%s%s' % (
                _kind.capitalize(), 'Cache' if _cache else 'NoCache',
                'Transactions' if _transactions else 'Standalone')
            globals()[_name] = type(_name, (_Conformance, unittest.TestCase), {
                'kind': _kind, 'use_cache': _cache,
                'transactions': _transactions,
                '__module__': __name__,
            })
del _kind, _cache, _transactions, _name


def test_every_container_class_runs_the_suite():
    classes = {(c.kind, c.use_cache, c.transactions)
               for c in globals().values()
               if isinstance(c, type) and issubclass(c, _Conformance) and
               issubclass(c, unittest.TestCase)}
    assert len(classes) == len(KINDS) * 4
