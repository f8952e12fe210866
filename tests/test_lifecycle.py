"""Objects across transactions, as ZODB's ``Connection`` keeps them.

Every scenario runs on ZODB (the reference) and on zmongo in both commit
modes, in one parametrized test: where the outcomes must agree, ZODB shows
what is right.
"""
import gc
import threading
import tracemalloc

import pytest
import transaction.interfaces

from zmongo import interfaces
from tests.lifecycle_models import Item, Payload
from tests.lifecycle_support import (  # noqa: F401  (fixtures)
    backend, make_backend, mongo_backend, read, stored)



@pytest.fixture(params=['created', 'loaded'])
def how(request):
    return request.param == 'loaded'


# -- abort -------------------------------------------------------------------

def test_aborted_state_never_comes_back(backend, how):
    writer, foo = stored(backend, loaded=how)
    foo.name = 'ABORTED'
    writer.flush()
    writer.abort()
    assert foo.name == 'original'
    foo.other = 1                    # an unrelated change, committed
    writer.commit()
    assert read(backend, 'foo') == 'original'
    assert read(backend, 'foo', 'other') == 1


def test_aborted_state_never_comes_back_unflushed(backend, how):
    writer, foo = stored(backend, loaded=how)
    foo.name = 'ABORTED'
    writer.abort()
    assert foo.name == 'original'
    writer.commit()
    assert read(backend, 'foo') == 'original'


def test_abort_after_two_flushes(backend, how):
    writer, foo = stored(backend, loaded=how)
    foo.name = 'first'
    writer.flush()
    foo.name = 'second'
    writer.flush()
    writer.abort()
    assert foo.name == 'original'


def test_abort_detaches_objects_added_in_the_transaction(backend):
    writer, foo = stored(backend)
    bar = writer.root['bar'] = Item('bar')
    writer.flush()
    writer.abort()
    assert bar._p_oid is None and bar._p_jar is None
    assert 'bar' not in writer.root
    assert read(backend, 'bar') is None


# -- held objects ------------------------------------------------------------

def test_held_objects_see_other_commits(backend, how):
    a, foo = stored(backend, loaded=how)
    b = backend.open()
    b.root['foo'].name = 'B'
    b.commit()
    a.tm.begin()
    assert foo.name == 'B'


def test_held_objects_never_write_stale_state(backend, how):
    a, foo = stored(backend, loaded=how)
    assert foo.name == 'original'
    b = backend.open()
    b.root['foo'].name = 'B'
    b.commit()
    a.tm.begin()
    foo.other = 'A'                  # an unrelated change by the holder
    a.commit()
    assert read(backend, 'foo') == 'B'
    assert read(backend, 'foo', 'other') == 'A'


def test_identity_is_kept_across_transactions(backend):
    writer, foo = stored(backend)
    writer.commit()
    assert writer.root['foo'] is foo
    writer.abort()
    assert writer.root['foo'] is foo


# -- failed writes -----------------------------------------------------------

def test_a_failed_flush_dooms_the_transaction(backend):
    writer, foo = stored(backend)
    foo.name = 'changed'
    foo.bad = threading.Lock()       # neither pickle nor BSON stores it
    with pytest.raises(Exception) as failure:
        writer.flush()
    assert not isinstance(failure.value,
                          transaction.interfaces.TransactionFailedError)
    try:
        del foo.bad                  # "fixed"; but the flush had failed
    except transaction.interfaces.TransactionFailedError:
        pass                         # ZODB refuses even that
    with pytest.raises(transaction.interfaces.TransactionFailedError):
        writer.commit()
    writer.abort()
    assert read(backend, 'foo') == 'original'


def test_the_refusal_names_the_first_error(mongo_backend):
    writer, foo = stored(mongo_backend)
    foo.bad = threading.Lock()
    with pytest.raises(interfaces.SerializationError):
        writer.flush()
    with pytest.raises(transaction.interfaces.TransactionFailedError,
                       match="cannot store attribute bad of <Item original>"
                       ) as refusal:
        writer.commit()
    assert isinstance(refusal.value.__cause__, interfaces.SerializationError)
    writer.abort()
    # The next transaction is a fresh start.
    foo.name = 'next'
    writer.commit()
    assert read(mongo_backend, 'foo') == 'next'


# -- sub-objects -------------------------------------------------------------

def test_in_place_changes_of_sub_objects_survive_deactivation(backend):
    writer = backend.open()
    writer.root['foo'] = Item('original', items=backend.List([1]))
    writer.commit()
    foo = writer.root['foo']
    foo.items.append(2)
    foo._p_deactivate()
    writer.commit()
    assert read(backend, 'foo', 'items') == [1, 2]


def test_in_place_changes_of_sub_objects_mark_the_owner(mongo_backend):
    writer = mongo_backend.open()
    writer.root['foo'] = Item('original', items=mongo_backend.List([1]),
                              data=__import__('zmongo.serialize').serialize
                              .PersistentDict(a=1))
    writer.commit()
    foo = writer.root['foo']
    items = foo.items
    assert foo._p_changed is False
    items.append(2)
    assert foo._p_changed is True
    writer.commit()
    assert not foo._p_changed
    foo.data['b'] = 2
    assert foo._p_changed is True
    writer.commit()
    assert read(mongo_backend, 'foo', 'items') == [1, 2]
    assert read(mongo_backend, 'foo', 'data') == {'a': 1, 'b': 2}


# -- removed objects ---------------------------------------------------------

def test_a_removed_object_stays_removed(mongo_backend):
    writer = mongo_backend.open()
    dm = writer.jar
    foo = Item('foo')
    dm.insert(foo)
    dm.remove(foo)
    foo.name = 'bar'
    writer.commit()
    assert list(mongo_backend.db['items'].find()) == []


def test_a_removed_stored_object_stays_removed(backend):
    writer, foo = stored(backend)
    del writer.root['foo']
    if backend.name != 'zodb':
        writer.jar.remove(foo)
    foo.name = 'changed after removal'
    writer.commit()
    assert read(backend, 'foo') is None
    if backend.name != 'zodb':
        assert list(backend.db['items'].find()) == []


# -- memory ------------------------------------------------------------------

N_WALK = 1000


def walk(backend, writer):
    """Load every Payload once, keeping none."""
    total = 0
    if backend.name == 'zodb':
        for oid in writer.root['oids']:
            total += writer.jar.get(oid).number
    else:
        coll = writer.jar.get_collection('%s' % backend.fixture.db_name,
                                         'payloads')
        for obj in coll.find_objects():
            total += obj.number
    return total


def fill(backend):
    writer = backend.open()
    if backend.name == 'zodb':
        objs = [Payload(i) for i in range(N_WALK)]
        writer.root['all'] = objs    # reachable, so they get oids
        writer.commit()
        writer.root['oids'] = [o._p_oid for o in objs]
        del writer.root['all']
        # Keep them reachable through a persistent list of their own.
        writer.root['keep'] = persistent_list(objs)
    else:
        for i in range(N_WALK):
            writer.jar.insert(Payload(i))
    writer.commit()
    writer.jar.cacheMinimize()
    return writer


def persistent_list(objs):
    import persistent.list
    return persistent.list.PersistentList(objs)


def live_payloads():
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is Payload)


def test_walking_a_collection_keeps_nothing_alive(backend):
    writer = fill(backend)
    del writer
    gc.collect()
    writer = backend.open()
    before = live_payloads()
    tracemalloc.start(10)
    try:
        assert walk(backend, writer) == N_WALK * (N_WALK - 1) // 2
        writer.jar.cacheMinimize()
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # The embedded server runs in this process: what it keeps (its open
    # transaction, its replies) is not the client's.
    snapshot = snapshot.filter_traces([
        tracemalloc.Filter(False, '*/secantus/*', all_frames=True)])
    kept = sum(stat.size for stat in snapshot.statistics('filename'))
    # ZODB keeps ghosts of what it loaded (weakly, so none once dropped);
    # zmongo keeps nothing.
    assert live_payloads() - before == 0
    assert kept < 200 * N_WALK       # well under the 1 KB per document
    writer.abort()


def test_deactivate_frees_the_state(backend):
    writer, foo = stored(backend, text='y' * 1000)
    assert foo.text
    foo._p_deactivate()
    assert foo._p_status == 'ghost'
    assert foo.__dict__ == {}
    assert foo.name == 'original'


def test_cache_minimize_keeps_changed_objects(backend):
    writer, foo = stored(backend)
    foo.name = 'changed'
    writer.jar.cacheMinimize()
    assert foo._p_changed
    writer.commit()
    assert read(backend, 'foo') == 'changed'


def test_cache_gc(backend):
    writer, foo = stored(backend)
    assert foo.name
    writer.jar.cacheGC()
    writer.commit()
    assert read(backend, 'foo') == 'original'
# -- savepoints --------------------------------------------------------------

def test_savepoint_rollback(backend):
    writer, foo = stored(backend)
    foo.name = 'before savepoint'
    writer.root['kept'] = Item('kept')
    savepoint = writer.tm.savepoint()
    foo.name = 'after savepoint'
    gone = writer.root['gone'] = Item('gone')
    writer.flush()
    savepoint.rollback()
    assert foo.name == 'before savepoint'
    assert 'gone' not in writer.root
    assert gone._p_oid is None and gone._p_jar is None
    assert writer.root['kept'].name == 'kept'
    writer.commit()
    assert read(backend, 'foo') == 'before savepoint'
    assert read(backend, 'kept') == 'kept'
    assert read(backend, 'gone') is None


def test_savepoint_rollback_twice_and_nested(backend):
    writer, foo = stored(backend)
    first = writer.tm.savepoint()
    foo.name = 'one'
    second = writer.tm.savepoint()
    foo.name = 'two'
    second.rollback()
    assert foo.name == 'one'
    foo.name = 'three'
    second.rollback()
    assert foo.name == 'one'
    first.rollback()
    assert foo.name == 'original'
    foo.name = 'four'
    writer.commit()
    assert read(backend, 'foo') == 'four'


def test_savepoint_rollback_hides_writes_from_queries(mongo_backend):
    writer, foo = stored(mongo_backend)
    coll = writer.jar.get_collection_from_object(foo)
    savepoint = writer.tm.savepoint()
    writer.jar.insert(Item('later'))
    assert coll.count_documents({}) == 2
    savepoint.rollback()
    assert coll.count_documents({}) == 1
    assert [o.name for o in coll.find_objects()] == ['original']


def test_optimistic_savepoint_flushes(mongo_backend):
    writer, foo = stored(mongo_backend)
    foo.name = 'flushed'
    writer.tm.savepoint(optimistic=True)
    assert not foo._p_changed
    writer.abort()
    assert read(mongo_backend, 'foo') == 'original'


def test_savepoint_then_abort(backend):
    writer, foo = stored(backend)
    foo.name = 'x'
    writer.tm.savepoint()
    foo.name = 'y'
    writer.abort()
    assert foo.name == 'original'
    assert read(backend, 'foo') == 'original'




def test_savepoint_rollback_restores_removed_objects(backend):
    writer, foo = stored(backend)
    savepoint = writer.tm.savepoint()
    del writer.root['foo']
    if backend.name != 'zodb':
        writer.jar.remove(foo)
    writer.flush()
    savepoint.rollback()
    assert writer.root['foo'] is foo
    assert foo.name == 'original'
    foo.name = 'kept'
    writer.commit()
    assert read(backend, 'foo') == 'kept'


def test_savepoint_rollback_in_a_container(mongo_backend):
    """A container stored in MongoDB: what was added after the savepoint
    is gone from it, what was added before stays."""
    from zmongo.container import MongoContainer
    from tests.container_models import Item as Contained
    writer = mongo_backend.open()
    box = writer.root['box'] = MongoContainer('boxitems')
    writer.commit()
    box['a'] = Contained('a')
    savepoint = writer.tm.savepoint()
    box['b'] = Contained('b')
    assert sorted(box.keys()) == ['a', 'b']
    savepoint.rollback()
    assert sorted(box.keys()) == ['a']
    assert 'b' not in box
    writer.commit()
    assert sorted(d['key'] for d in mongo_backend.db['boxitems'].find()) \
        == ['a']
