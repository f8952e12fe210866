"""The cost contract of SPEC.md, pinned in MongoDB commands (not timed).

These run the benchmark harness's own systems (``bench/``) on the test
server at small N -- the same code ``python -m bench`` measures -- and
assert what must hold whatever the machine: how many commands each
workload sends, against hand-written pymongo (the floor) and as the
number of changed objects grows.  The harness checks every result too, so
no count here comes from doing less.

Commands that only close a server transaction (``commitTransaction`` for
a workload that wrote, ``abortTransaction`` for one that only read; none
on a standalone server), the name-map lookups of a collection's
first write (``persistence_name_map``) and the opening of the document
cache's change stream are the constant overheads zmongo adds; they are
counted apart and bounded.
"""
import gc

import pytest

from bench import data as bench_data
from bench import harness
from bench.systems import zmongo_sys
from bench.systems.pymongo_sys import PyMongoSystem

ITEMS = 'items'
TXN = frozenset({'commitTransaction', 'abortTransaction'})
WRITES = frozenset({'insert', 'update', 'delete'})
NAME_MAP = 'persistence_name_map'
CURSOR = frozenset({'getMore'})
#: The workloads that write; the others only read.
WRITING = frozenset({'add', 'modify', 'delete'})


def _target(name, command):
    value = command.get(name)
    return value if isinstance(value, str) else None


def _opens_change_stream(name, command):
    pipeline = command.get('pipeline') if name == 'aggregate' else None
    return bool(pipeline) and '$changeStream' in pipeline[0]


class Costs:
    """The commands one workload sent, sorted out."""

    def __init__(self, commands):
        #: The document cache's change stream, opened once per cache by
        #: the first transaction that reads (a constant overhead).
        self.stream = [name for name, _, cmd in commands
                       if _opens_change_stream(name, cmd)]
        commands = [(name, db, cmd) for name, db, cmd in commands
                    if not _opens_change_stream(name, cmd)]
        self.all = [(name, _target(name, cmd)) for name, _, cmd in commands]
        self.txn = [n for n, _ in self.all if n in TXN]
        self.name_map = [n for n, t in self.all if t == NAME_MAP]
        #: What the workload asked of its items (cursor batches aside).
        self.items = sorted(n for n, t in self.all
                            if t == ITEMS and n not in CURSOR)
        other = [(n, t) for n, t in self.all
                 if n not in TXN and n not in CURSOR and
                 t not in (ITEMS, NAME_MAP)]
        #: The container the workload holds from an earlier transaction
        #: is a ghost at the start of this one (nothing tells zmongo yet
        #: that it is still current) and reloads its own document: one
        #: find, first thing.
        self.reload = other[:1] if other[:1] and other[0][0] == 'find' \
            and self.all[0] == other[0] else []
        self.other = other[len(self.reload):]

    def __repr__(self):
        return '<Costs %r>' % (self.all,)


def run(system, mongo, n, suffix):
    """Run every workload of size ``n`` on ``system`` (attached to the
    fixture's client); ``{workload: Costs}``."""
    captured = {}

    def wrap(name, func):
        def counted(*args):
            result = func(*args)
            captured[name] = Costs(list(mongo.commands.commands))
            return result
        return counted

    # Clients of earlier tests, equal to this one (pymongo compares clients
    # by their settings), must be gone before the container registers its
    # index: zmongo.container's index registry, a WeakKeyDictionary keyed
    # by client, forgets what it made when an *equal* client it first saw
    # is collected, and would then create the index again mid-workload.
    gc.collect()
    system.attach(mongo.client, mongo.commands)
    system.setup(mongo.db_name + suffix)
    try:
        harness.run_workloads(system, bench_data.Plan(n), wrap=wrap)
    finally:
        system.teardown()
    return captured


def require_container():
    """The zmongo containers must exist: fail (never skip) if they do not."""
    if zmongo_sys.CONTAINER_ERROR:
        pytest.fail('the cost contract of zmongo containers cannot be '
                    'checked: %s' % zmongo_sys.CONTAINER_ERROR)


@pytest.fixture(scope='module')
def floor():
    """What hand-written pymongo sends, per workload, at N=30 (no counts
    depend on the database, so one run serves every test)."""
    from zmongo.testing import MongoFixture
    with MongoFixture() as mongo:
        return run(PyMongoSystem(), mongo, 30, '_floor')


#: The workloads of 200 lookups (cold, warm, after a change).
LOOKUPS = frozenset({'lookup', 'lookup_warm', 'lookup_inval'})


def test_the_floor_is_one_command_per_workload(floor):
    for workload, costs in floor.items():
        expected = 200 if workload in LOOKUPS else 1
        assert len(costs.items) == expected, (workload, costs)
        assert not costs.txn and not costs.name_map and not costs.other


def _closing(mongo, workload):
    """The command that ends ``workload``'s server transaction: a commit
    if it wrote, an abort (no commit) if it only read."""
    if not mongo.make_datamanager().uses_transactions:
        return []
    return ['commitTransaction' if workload in WRITING else
            'abortTransaction']


def _assert_zmongo_costs(costs, floor, mongo, lookups_at_most=None):
    """zmongo's counts against the floor's (SPEC.md, "Cost contract")."""
    for workload, c in costs.items():
        # One command closes the transaction; nothing unexplained.
        assert c.txn == _closing(mongo, workload), (workload, c)
        assert not c.other, (workload, c)
        if workload != 'add':
            assert not c.name_map, (workload, c)
    # The document cache opens its change stream once.
    assert sum(len(c.stream) for c in costs.values()) <= 1, costs
    # A collection's first write asks the name map once (<= 3 commands).
    assert len(costs['add'].name_map) <= 3, costs['add']
    # Listing, loading everything, querying: one command, as pymongo.
    for workload in ('keys', 'load_all', 'query'):
        assert costs[workload].items == ['find'], (workload, costs[workload])
        assert costs[workload].items == floor[workload].items
    # Lookups: one command each (fewer if the same key comes again).
    assert set(costs['lookup'].items) == {'find'}
    assert len(costs['lookup'].items) <= (lookups_at_most or 200)
    # Modify / delete K objects: one query reads them (the objects are
    # needed: for their state, and for the removal events), then one write
    # -- the floor's one write, whatever K.
    assert costs['modify'].items == ['find', 'update'], costs['modify']
    assert costs['delete'].items == ['delete', 'find'], costs['delete']


def _assert_constant_in_k(small, large, workloads):
    """The same commands at 10x the items (cursor batches aside)."""
    for workload in workloads:
        assert small[workload].all and large[workload].all
        strip = [(n, t) for n, t in small[workload].all if n not in CURSOR]
        big = [(n, t) for n, t in large[workload].all if n not in CURSOR]
        assert strip == big, (workload, small[workload], large[workload])


def test_datamanager_matches_the_floor(mongo, floor):
    costs = run(zmongo_sys.DataManagerSystem(), mongo, 30, '')
    _assert_zmongo_costs(costs, floor, mongo)
    # Inserting N objects is one insert, as insert_many is.
    assert costs['add'].items == ['insert'], costs['add']
    assert len(costs['lookup'].items) == 200


def test_datamanager_commit_cost_does_not_grow_with_the_objects(mongo):
    # 3 and 30 changed objects (10% of N), 30 and 300 inserted ones.
    small = run(zmongo_sys.DataManagerSystem(), mongo, 30, '_small')
    large = run(zmongo_sys.DataManagerSystem(), mongo, 300, '_large')
    _assert_constant_in_k(small, large, ['add', 'keys', 'load_all', 'query',
                                         'modify', 'delete'])


# -- zmongo containers ----------------------------------------------------

def _container_systems():
    return [zmongo_sys.ContainerSystem, zmongo_sys.IdNamesSystem]


@pytest.mark.parametrize('kind', ['container', 'idnames'])
def test_containers_match_the_floor(kind, mongo, floor):
    require_container()
    system = dict(zip(['container', 'idnames'], _container_systems()))[kind]
    costs = run(system(), mongo, 30, '')
    plan = bench_data.Plan(30)
    # c[key] is one command; a key seen before in the transaction may be
    # answered from the container's cache.
    _assert_zmongo_costs(costs, floor, mongo, lookups_at_most=200)
    assert len(costs['lookup'].items) >= len(set(plan.lookup_keys))


@pytest.mark.parametrize('kind', ['container', 'idnames'])
def test_container_warm_reads_send_no_item_command(kind, mongo, floor):
    """The second time, in a new transaction, the document cache answers:
    the listing, loading everything and the 200 lookups send no command
    for the items (the container's own document fixes the snapshot); after
    another client changed 10 of the items, only those are read again."""
    require_container()
    system = dict(zip(['container', 'idnames'], _container_systems()))[kind]
    costs = run(system(), mongo, 30, '')
    for workload in ('keys_warm', 'load_warm', 'lookup_warm'):
        assert costs[workload].items == [], (workload, costs[workload])
        assert costs[workload].reload == [('find', None)] or \
            len(costs[workload].reload) == 1, costs[workload]
    changed = costs['lookup_inval'].items
    assert set(changed) <= {'find'}
    assert len(changed) <= harness.INVALIDATED, costs['lookup_inval']


@pytest.mark.parametrize('kind', ['container', 'idnames'])
def test_container_reads_and_commits_do_not_grow_with_the_items(
        kind, mongo):
    require_container()
    system = dict(zip(['container', 'idnames'], _container_systems()))[kind]
    small = run(system(), mongo, 30, '_small')
    large = run(system(), mongo, 300, '_large')
    _assert_constant_in_k(small, large, ['keys', 'load_all', 'query',
                                         'modify', 'delete'])


@pytest.mark.parametrize('kind', ['container', 'idnames'])
def test_adding_k_items_writes_a_constant_number_of_commands(kind, mongo):
    require_container()
    system = dict(zip(['container', 'idnames'], _container_systems()))[kind]
    for n in (30, 300):
        costs = run(system(), mongo, n, '_%d' % n)['add']
        # One insert for all K new items, as insert_many; the commit and
        # the name map's first look at the collection are constant.
        assert [c for c in costs.items if c in WRITES] == ['insert'], costs
        assert costs.txn == _closing(mongo, 'add'), costs
        assert len(costs.name_map) <= 3, costs
        assert not costs.other, costs
        # zope.container's setitem looks each new name up (the only thing
        # that grows with K: at most one read per item).
        assert set(costs.items) == {'insert', 'find'}, costs
        assert costs.items.count('find') <= n, costs
