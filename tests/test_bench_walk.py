"""Walking a collection in one transaction keeps bounded memory (issue 20).

These run the measurement of ``python -m bench --walk`` (``bench/walk.py``)
at a small N on a server in a process of its own -- ``tracemalloc`` traces
the whole process, and an embedded server in a thread of the test process
would be counted as the client's -- and assert what the weak identity map
promises: after a transaction read every document of a collection as
objects and kept none, zmongo holds (almost) nothing of them, before the
transaction ends as after.  The bound is per document, far below what one
object with its state takes, so keeping anything per document fails.

A walk that keeps its objects is measured the same way, so the bound is
shown to fail when memory is kept: the measurement itself can fail.
"""
import os

import pytest

from bench import harness
from bench import walk
from bench.run import CLIENT_OPTIONS
from bench.run import EMBEDDED_OPTIONS
from bench.server import Server
from bench.systems import zmongo_sys
from bench.systems.base import tally
from zmongo.testing import ENV_URI

#: Large enough that anything kept per document outweighs the constant
#: costs of a first walk (cursor and session objects, caches of pymongo).
N = 2000
#: One loaded item with its state takes over a kilobyte (the bench's
#: figures); a weak identity map keeps nothing per document.
BYTES_PER_ITEM = 100


@pytest.fixture(scope='module')
def server():
    """``(uri, client options)`` of a server in a process of its own."""
    uri = os.environ.get(ENV_URI)
    if uri:     # a real server: never in this process
        yield uri, dict(CLIENT_OPTIONS)
        return
    with Server() as embedded:
        yield embedded.uri, dict(CLIENT_OPTIONS, **EMBEDDED_OPTIONS)


def walked(system, server):
    """``{walk label: figures}`` of ``system``'s walks over N items."""
    uri, options = server
    system.connect(uri, options)
    try:
        results = walk.walk_system(system, N,
                                   harness.db_name(system.name, N, 0))
    finally:
        system.close()
    return {r['walk']: r for r in results}


class KeepingDataManagerSystem(zmongo_sys.DataManagerSystem):
    """The data manager's walks, and one that keeps every object."""

    def walks(self):
        def keeping():
            kept.extend(self.coll.find_objects({}))
            return tally(kept)
        kept = []
        return super().walks() + [('kept', keeping)]


@pytest.fixture(scope='module')
def datamanager_walks(server):
    return walked(KeepingDataManagerSystem(), server)


def assert_bounded(figures):
    assert figures['n'] == N
    for field in ('retained_bytes', 'after_end_bytes'):
        assert figures[field] < BYTES_PER_ITEM * N, (field, figures)


def test_a_datamanager_walk_keeps_nothing_per_document(datamanager_walks):
    walks = [w for w in datamanager_walks if w != 'kept']
    assert 'find_objects()' in walks
    for label in walks:
        assert_bounded(datamanager_walks[label])


def test_the_measurement_sees_what_a_walk_keeps(datamanager_walks):
    kept = datamanager_walks['kept']
    assert kept['retained_bytes'] > BYTES_PER_ITEM * N * 10, kept


def test_a_container_walk_without_item_cache_keeps_nothing(server):
    if zmongo_sys.CONTAINER_ERROR:
        pytest.fail(zmongo_sys.CONTAINER_ERROR)

    class System(zmongo_sys.ContainerSystem):
        def walks(self):
            return [w for w in super().walks()
                    if w[0] == 'find(), item cache off']

    figures = walked(System(), server)
    assert list(figures) == ['find(), item cache off']
    assert_bounded(figures['find(), item cache off'])
