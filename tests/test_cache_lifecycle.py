"""The lifecycle scenarios again, with a document cache shared by every
writer of a backend (what a provider's data managers share).

``tests/test_lifecycle.py`` and ``tests/test_lifecycle_attacks.py`` check
objects across transactions against ZODB; here every zmongo writer of a
scenario (server-transaction mode, where the cache works) gets the same
``DocumentCache``, so the objects the scenarios load and reload come from
it whenever it can serve them: held objects, aborts, savepoints, conflicts
and removals must come out exactly as without it.
"""
import collections

import pytest

from tests import lifecycle_support
from tests.test_lifecycle import *           # noqa: F401,F403 (scenarios)
from tests.test_lifecycle_attacks import *   # noqa: F401,F403 (scenarios)
from zmongo._cache import DocumentCache


class CachedBackend(lifecycle_support.MongoBackend):
    """zmongo with server transactions, one document cache for all."""

    def __init__(self):
        super().__init__('transactions')
        self.cache = DocumentCache()

    def open(self, **options):
        options.setdefault('document_cache', self.cache)
        return super().open(**options)

    def close(self):
        try:
            super().close()
        finally:
            self.cache.close()


#: What the caches of this module's scenarios did, summed.
SERVED = collections.Counter()


def _backend(request):
    if request.param != 'transactions+cache':
        # A scenario pinned to one mode (standalone: no cache there).
        return lifecycle_support.make_backend(request.param)
    return CachedBackend()


@pytest.fixture(params=['transactions+cache'])
def backend(request):
    backend = _backend(request)
    try:
        yield backend
    finally:
        backend.close()
        if isinstance(backend, CachedBackend):
            SERVED.update(backend.cache.stats)


@pytest.fixture(params=['transactions+cache'])
def mongo_backend(request):
    backend = _backend(request)
    try:
        yield backend
    finally:
        backend.close()
        if isinstance(backend, CachedBackend):
            SERVED.update(backend.cache.stats)


def test_the_scenarios_were_served_from_the_cache():
    """Runs after the scenarios above (pytest keeps the module's order):
    the cache did serve them, so they did test it."""
    assert SERVED['hits'] >= 10, SERVED
