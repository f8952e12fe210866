"""The document cache shared by the data managers of one client.

Every test runs in both commit modes.  On a server with transactions the
cache serves; on a standalone server it is off (no change stream), and the
same scenarios check that nothing stale is served there either.  Readers
and writers are data managers with transaction managers of their own,
sharing one client (and, unless said otherwise, one cache): deterministic
interleavings, no threads, except in the stress test at the end.
"""
import logging
import threading
import time

import bson
import pytest
import transaction

from tests import container_models as models
from zmongo import interfaces
from zmongo._cache import DocumentCache
from zmongo.datamanager import MongoDataManager
from zmongo.testing import make_client


class Site:
    """Data managers on the test's database, each with its own
    transaction manager."""

    def __init__(self, mongo, transactions):
        self.mongo = mongo
        self.transactions = transactions
        self.cache = DocumentCache()
        self.caches = [self.cache]

    def open(self, cache=None, client=None, **options):
        tm = transaction.TransactionManager()
        options.update(
            transactions=self.transactions, transaction_manager=tm,
            document_cache=self.cache if cache is None else cache)
        if client is None:
            dm = self.mongo.make_datamanager(**options)
        else:
            dm = MongoDataManager(client, default_database=self.mongo.db_name,
                                  root_database=self.mongo.db_name,
                                  **options)
        return tm, dm

    def other_cache(self):
        cache = DocumentCache()
        self.caches.append(cache)
        return cache

    def close(self):
        for cache in self.caches:
            cache.close()


@pytest.fixture
def site(datamanager, mongo):
    site = Site(mongo, datamanager.uses_transactions)
    yield site
    site.close()


def seed(site, names=('a', 'b')):
    tm, dm = site.open()
    people = models.People()
    dm.root['people'] = people
    for name in names:
        people[name] = models.Person(name.upper() + '0')
    tm.commit()


def read_pair(dm):
    people = dm.root['people']
    return people['a'].name, people['b'].name


def read_committed(site, tm, dm, times=1):
    for _ in range(times):
        pair = read_pair(dm)
        tm.commit()
    return pair


def write_pair(site, how, value):
    """Set a and b to ``value`` in one transaction: through a data manager
    of the same cache, of another cache, or with raw pymongo."""
    if how == 'raw':
        coll = site.mongo.db['person']
        if site.transactions:
            with site.mongo.client.start_session() as session:
                with session.start_transaction():
                    for key in 'ab':
                        coll.update_one({'key': key}, {'$set': {
                            'name': key.upper() + value}}, session=session)
        else:
            for key in 'ab':
                coll.update_one({'key': key},
                                {'$set': {'name': key.upper() + value}})
        return
    cache = site.cache if how == 'same cache' else site.other_cache()
    tm, dm = site.open(cache)
    people = dm.root['people']
    people['a'].name = 'A' + value
    people['b'].name = 'B' + value
    tm.commit()


WRITERS = ['same cache', 'other cache', 'raw']


def served(site, dm, tm, func):
    """``func(dm)`` in a transaction of its own; (result, find commands)."""
    counter = site.mongo.commands
    counter.reset()
    result = func(dm)
    tm.commit()
    return result, counter.count('find')


# -- served with no command, and only when valid ---------------------------

def test_warm_lookups_send_no_command(site, caplog):
    caplog.set_level(logging.INFO, logger='zmongo._cache')
    seed(site, names=['k%d' % i for i in range(20)] + ['a', 'b'])
    tm, dm = site.open()
    keys = ['k%d' % i for i in range(20)]

    def lookups(dm):
        people = dm.root['people']
        return [people[key].name for key in keys * 10]

    first, _ = served(site, dm, tm, lookups)
    again, finds = served(site, dm, tm, lookups)
    assert again == first
    if site.transactions:
        # The root entry, which fixes the snapshot; the container's
        # document and the 20 keys are served (and their repeats by the
        # container's own per-transaction cache).
        assert finds == 1
        assert site.cache.stats['hits'] >= 19 * 2
        assert 'abortTransaction' in site.mongo.commands.names
        assert 'commitTransaction' not in site.mongo.commands.names
    else:
        assert finds == 2 + 20
        assert not site.cache.enabled
        assert 'document cache off' in caplog.text


def test_listing_len_and_keys_are_served_warm(site):
    seed(site, names=['k%d' % i for i in range(10)])
    tm, dm = site.open()

    def listing(dm):
        people = dm.root['people']
        return (len(people), sorted(people.keys()),
                sorted(p.name for p in people.values()))

    first, _ = served(site, dm, tm, listing)
    site.mongo.commands.reset()
    again = listing(dm)
    commands = site.mongo.commands.names
    tm.commit()
    assert again == first == (10, ['k%d' % i for i in range(10)],
                              ['K%d0' % i for i in range(10)])
    if site.transactions:
        # The root entry (it fixes the snapshot); the container's
        # document, the count, names and items are served.
        assert commands == ['find']
    else:
        assert commands == ['find', 'find', 'aggregate', 'find', 'find']


@pytest.mark.parametrize('how', WRITERS)
def test_a_commit_is_seen_by_the_next_transaction(site, how):
    seed(site)
    tm, dm = site.open()
    assert read_committed(site, tm, dm, times=3) == ('A0', 'B0')
    write_pair(site, how, '1')
    assert read_committed(site, tm, dm) == ('A1', 'B1')
    assert read_committed(site, tm, dm, times=2) == ('A1', 'B1')


@pytest.mark.parametrize('how', WRITERS)
def test_reader_never_sees_new_a_with_old_b(site, how):
    """The issue's test: a writer changes A and B in one transaction while
    a reader with a warm cache reads them, at every point of the
    reader's transaction."""
    seed(site)
    tm, dm = site.open()
    read_committed(site, tm, dm, times=3)
    # The write lands between the reader's reads of A and B.
    people = dm.root['people']
    a = people['a'].name
    write_pair(site, how, '1')
    b = people['b'].name
    a_again = dm.load(people['a']._p_oid).name
    tm.commit()
    if site.transactions:
        # One snapshot, from before the commit.
        assert (a, b, a_again) == ('A0', 'B0', 'A0')
    else:
        # No snapshots: B read after the commit is the new B.
        assert (a, b) == ('A0', 'B1')
    # The write lands before the reader's transaction reads anything.
    write_pair(site, how, '2')
    people = dm.root['people']
    a = people['a'].name
    write_pair(site, how, '3')
    b = people['b'].name
    tm.commit()
    if site.transactions:
        assert (a, b) == ('A2', 'B2')
    else:
        assert (a, b) == ('A2', 'B3')
    assert read_committed(site, tm, dm) == ('A3', 'B3')


@pytest.mark.parametrize('path', ['lookup', 'load'])
def test_concurrent_fills_with_different_snapshots(site, path):
    """X's snapshot is older than a commit Y has already seen: X's read
    of the old B must not go into the cache for Z."""
    seed(site)
    tm_x, x = site.open()
    tm_y, y = site.open()
    tm_z, z = site.open()
    b_oid = y.root['people']['b']._p_oid
    read_committed(site, tm_y, y, times=2)
    x_people = x.root['people']
    assert x_people['a'].name == 'A0'      # X's snapshot is fixed
    write_pair(site, 'other cache', '1')
    assert read_committed(site, tm_y, y) == ('A1', 'B1')   # Y drained
    if path == 'lookup':
        b_at_x = x_people['b'].name
    else:
        b_at_x = x.load(b_oid).name
    tm_x.commit()
    z_people = z.root['people']
    z_people._p_activate()              # Z's first read: its snapshot
    # Served, if the cache has it.
    if path == 'lookup':
        b_at_z = z_people['b'].name
    else:
        b_at_z = z.load(b_oid).name
    assert (z_people['a'].name, b_at_z) == ('A1', 'B1')
    tm_z.commit()
    assert read_committed(site, tm_z, z) == ('A1', 'B1')
    if site.transactions:
        assert b_at_x == 'B0'
        assert site.cache.stats['refused'] >= 1
    else:
        assert b_at_x == 'B1'


def test_a_later_snapshots_entry_is_not_served_to_an_earlier_one(site):
    seed(site)
    tm_x, x = site.open()
    tm_y, y = site.open()
    read_committed(site, tm_y, y, times=2)
    x_people = x.root['people']
    x_people['a'].name          # X's snapshot: before the write
    write_pair(site, 'same cache', '1')
    # Y fills the cache with the new documents ...
    assert read_committed(site, tm_y, y, times=2) == ('A1', 'B1')
    # ... which X, reading at its older snapshot, must not be given.
    b = x_people['b'].name
    a = x.load(x_people['a']._p_oid).name
    tm_x.commit()
    if site.transactions:
        assert (a, b) == ('A0', 'B0')
    else:
        assert b == 'B1'


def test_retried_attempts_see_the_commit(site):
    seed(site)
    tm, dm = site.open()
    read_committed(site, tm, dm, times=3)
    seen = []
    for attempt in tm.attempts(3):
        with attempt:
            people = dm.root['people']
            a = people['a'].name
            if not seen:
                write_pair(site, 'other cache', '1')
            seen.append((a, people['b'].name))
            if len(seen) == 1:
                raise interfaces.ConflictError('retry, please')
    if site.transactions:
        assert seen == [('A0', 'B0'), ('A1', 'B1')]
    else:
        assert seen == [('A0', 'B1'), ('A1', 'B1')]


def test_only_changed_documents_are_invalidated(site):
    seed(site, names=['a', 'b', 'c'])
    tm, dm = site.open()
    people = dm.root['people']
    oids = {key: people[key]._p_oid for key in 'abc'}
    tm.commit()

    def load_all(dm):
        dm.root['people']
        return {key: dm.load(oid).name for key, oid in oids.items()}

    served(site, dm, tm, load_all)
    served(site, dm, tm, load_all)
    site.mongo.db['person'].update_one({'key': 'b'},
                                       {'$set': {'name': 'changed'}})
    site.mongo.commands.reset()
    names = load_all(dm)
    finds = [cmd for name, _, cmd in site.mongo.commands.commands
             if name == 'find' and cmd['find'] == 'person']
    tm.commit()
    assert names == {'a': 'A0', 'b': 'changed', 'c': 'C0'}
    if site.transactions:
        # The root entry fixes the snapshot; b is read because it
        # changed; a and c are served.
        assert [cmd['filter']['_id'] for cmd in finds] == [oids['b'].id]
    else:
        assert len(finds) == 3


# -- never uncommitted state ----------------------------------------------

def test_an_abort_after_a_flush_leaves_nothing_in_the_cache(site):
    seed(site)
    tm, dm = site.open()
    read_committed(site, tm, dm, times=2)
    people = dm.root['people']
    people['a'].name = 'dirty'
    people['c'] = models.Person('C-dirty')
    dm.flush()
    assert dm.load(people['a']._p_oid).name == 'dirty'
    assert (len(people), sorted(people.keys())) == (3, ['a', 'b', 'c'])
    people['b'].name
    tm.abort()
    tm_r, reader = site.open()
    assert read_committed(site, tm_r, reader, times=2) == ('A0', 'B0')
    assert read_committed(site, tm, dm) == ('A0', 'B0')
    for _ in range(2):
        people = reader.root['people']
        assert (len(people), sorted(people.keys())) == (2, ['a', 'b'])
        tm_r.commit()


def test_a_savepoint_rollback_leaves_the_cache_right(site):
    seed(site)
    tm, dm = site.open()
    read_committed(site, tm, dm, times=2)
    people = dm.root['people']
    people['a'].name = 'A-sp'
    savepoint = tm.savepoint()
    people['a'].name = 'A-rolled-back'
    people['b'].name = 'B-rolled-back'
    dm.flush()
    savepoint.rollback()
    assert read_pair(dm) == ('A-sp', 'B0')
    tm.commit()
    tm_r, reader = site.open()
    assert read_committed(site, tm_r, reader, times=2) == ('A-sp', 'B0')


def test_writes_through_the_collection_wrapper(site):
    seed(site)
    tm, dm = site.open()
    read_committed(site, tm, dm, times=2)
    dm.root['people']
    coll = dm.get_collection(site.mongo.db_name, 'person')
    coll.update_one({'key': 'a'}, {'$set': {'name': 'wrapped'}})
    assert read_pair(dm) == ('wrapped', 'B0')
    tm.commit()
    tm_r, reader = site.open()
    assert read_committed(site, tm_r, reader, times=2) == ('wrapped', 'B0')
    coll = dm.get_collection(site.mongo.db_name, 'person')
    coll.update_one({'key': 'b'}, {'$set': {'name': 'not-kept'}})
    tm.abort()
    assert read_committed(site, tm_r, reader, times=2) == ('wrapped', 'B0')


def test_a_stale_object_is_never_written(site):
    """NoCheck (the default) writes without a serial check: an object built
    from a stale entry would overwrite a commit it never saw."""
    seed(site)
    tm, dm = site.open()
    read_committed(site, tm, dm, times=2)
    site.mongo.db['person'].update_one({'key': 'b'},
                                       {'$set': {'extra': 'outside'}})
    people = dm.root['people']
    people['a'].name
    people['b'].name = 'B-new'
    tm.commit()
    doc = site.mongo.db['person'].find_one({'key': 'b'})
    assert (doc['name'], doc['extra']) == ('B-new', 'outside')


# -- the change stream --------------------------------------------------------

def test_a_lost_stream_empties_the_cache(site, caplog):
    seed(site)
    tm, dm = site.open()
    read_committed(site, tm, dm, times=2)
    if not site.transactions:
        assert len(site.cache) == 0
        return
    assert len(site.cache) > 0
    epoch = site.cache.epoch
    feed = site.cache._feed
    feed._stream.close()        # as a dead connection would leave it
    site.mongo.db['person'].update_one({'key': 'b'},
                                       {'$set': {'name': 'B-lost'}})
    with caplog.at_level(logging.WARNING, logger='zmongo._cache'):
        assert read_committed(site, tm, dm) == ('A0', 'B-lost')
    assert 'change stream of the document cache broke' in caplog.text
    assert site.cache.epoch > epoch
    assert site.cache.stats['stream_losses'] == 1
    # A new stream, and a warm cache again.
    assert read_committed(site, tm, dm, times=2) == ('A0', 'B-lost')
    assert served(site, dm, tm, read_pair)[1] == 1


def test_resume_tokens_tell_the_streams_position():
    """MongoDB's documented resume token format: a hex key string whose
    first element is the event's cluster time (type byte 0x82)."""
    from bson.timestamp import Timestamp
    from zmongo._cache import token_time
    assert token_time({'_data': '8263515979000000022B0429296E1404'}) == \
        Timestamp(0x63515979, 2)
    # Other formats (the embedded server's) and junk: position unknown.
    assert token_time({'_data': '370000001073000200000011740006'}) is None
    assert token_time({'_data': '82zz'}) is None
    assert token_time({'_data': 12}) is None
    assert token_time(None) is None


@pytest.mark.parametrize('datamanager', ['transactions'], indirect=True)
def test_a_stream_behind_the_snapshot_serves_nothing(site):
    """An empty getMore is not proof the stream has read up to the
    transaction's snapshot: where the stream's resume token says it is
    still before it, the transaction reads from the server, and later
    ones are served again once the stream caught up."""
    from bson.timestamp import Timestamp
    seed(site)
    tm, dm = site.open()
    read_committed(site, tm, dm, times=2)
    assert served(site, dm, tm, read_pair) == (('A0', 'B0'), 1)
    feed = site.cache._feed
    drain = feed.drain

    def lagging():
        yield from drain()
        feed.position = Timestamp(1, 0)     # long before any snapshot
    feed.drain = lagging
    site.mongo.db['person'].update_one({'key': 'b'},
                                       {'$set': {'name': 'B-raw'}})
    behind = site.cache.stats['behind']
    # As cold: the root entry, the container, a and b read again.
    assert served(site, dm, tm, read_pair) == (('A0', 'B-raw'), 4)
    assert site.cache.stats['behind'] > behind
    feed.drain = drain
    read_committed(site, tm, dm, times=2)
    assert served(site, dm, tm, read_pair) == (('A0', 'B-raw'), 1)


def test_a_cut_connection_loses_no_change(site, mongo):
    """The stream's connection is reset: pymongo resumes it from its last
    token, so a change made meanwhile still arrives (or, if the resume
    fails, the cache is emptied): either way nothing stale is served."""
    from tests.tcpproxy import TCPProxy
    proxy = TCPProxy(mongo.client.address).start()
    client = make_client(proxy.uri, [])
    try:
        seed(site)
        tm, dm = site.open(client=client)
        read_committed(site, tm, dm, times=2)
        proxy.drop()
        site.mongo.db['person'].update_one({'key': 'b'},
                                           {'$set': {'name': 'B-cut'}})
        assert read_committed(site, tm, dm, times=2) == ('A0', 'B-cut')
    finally:
        transaction.abort()
        site.cache.close()
        client.close()
        proxy.stop()


def test_dropping_the_collection_empties_the_cache(site):
    seed(site)
    tm, dm = site.open()
    read_committed(site, tm, dm, times=2)
    site.mongo.db['person'].drop()
    people = dm.root['people']
    with pytest.raises(KeyError):
        people['a']
    tm.abort()


# -- bounds and options ------------------------------------------------------------

def test_entries_are_bounded_least_recently_used_first():
    cache = DocumentCache(size=3)
    ns, lo, epoch = ('db', 'coll'), bson.Timestamp(1, 1), cache.epoch

    def put(*ids):
        cache.put_documents(epoch, lo, ns, [(i, bson.encode({'_id': i}))
                                            for i in ids])

    def cached(i):
        return cache.get_documents(epoch, lo, ns, [i]) is not None

    put('a', 'b', 'c')
    assert cached('a')                  # a is now the most recently used
    put('d')
    assert [cached(i) for i in 'abcd'] == [True, False, True, True]
    assert len(cache) == 3 and cache.stats['evicted'] == 1
    small = DocumentCache(max_bytes=300)
    small.put_documents(small.epoch, lo, ns, [
        (i, bson.encode({'_id': i, 'x': 'y' * 100})) for i in range(3)])
    assert len(small) == 1 and small.nbytes <= 300
    assert small.get_documents(small.epoch, lo, ns, [2]) is not None


@pytest.mark.parametrize('datamanager', ['transactions'], indirect=True)
def test_a_document_beyond_the_byte_bound_is_not_kept(datamanager, mongo):
    site = Site(mongo, True)
    site.cache = DocumentCache(max_bytes=64 * 1024)
    site.caches = [site.cache]
    try:
        seed(site)
        tm, dm = site.open()
        people = dm.root['people']
        people['a'].blob = 'x' * (200 * 1024)
        tm.commit()
        for _ in range(2):
            assert read_pair(dm)[0] == 'A0'
            assert len(dm.root['people']['a'].blob) == 200 * 1024
            tm.commit()
        assert site.cache.stats['too_large'] >= 1
        assert site.cache.nbytes <= 64 * 1024
        _, finds = served(site, dm, tm, read_pair)
        assert finds == 2       # root (the snapshot), a (too large)
    finally:
        site.close()


def test_size_zero_turns_it_off(mongo):
    from zmongo.provider import MongoDataManagerProvider
    provider = MongoDataManagerProvider(
        client=mongo.client, default_database=mongo.db_name,
        root_database=mongo.db_name, cache_size=0)
    assert not provider.cache.enabled
    dm = provider.get()
    assert dm._document_cache is None
    with pytest.raises(ValueError, match='cache_size'):
        MongoDataManagerProvider(client=mongo.client, cache_size=-1)


def test_provider_shares_one_cache_across_threads(mongo):
    from zmongo.provider import MongoDataManagerProvider
    provider = MongoDataManagerProvider(
        client=mongo.client, default_database=mongo.db_name,
        root_database=mongo.db_name)
    try:
        dm = provider.get()
        assert dm._document_cache is provider.cache
        seen = []
        thread = threading.Thread(
            target=lambda: seen.append(provider.get()._document_cache))
        thread.start()
        thread.join()
        assert seen == [provider.cache]
    finally:
        transaction.abort()
        provider.close()


# -- many threads -------------------------------------------------------------

def test_stress_readers_and_a_writer(site):
    """A writer sets a and b to i, i (one transaction each); readers in
    other threads read them over and over.  With server transactions a
    reader always sees a pair of one commit; in both modes never a value
    older than the last commit before its transaction began."""
    seed(site)
    tm, dm = site.open()
    people = dm.root['people']
    people['a'].name = 'A0'
    people['b'].name = 'B0'
    tm.commit()
    committed = [0]
    failures = []
    stop = threading.Event()

    def writer():
        wtm, wdm = site.open()
        try:
            for i in range(1, 16):
                people = wdm.root['people']
                people['a'].name = 'A%d' % i
                people['b'].name = 'B%d' % i
                wtm.commit()
                committed[0] = i
                time.sleep(0.01)
        except Exception as err:    # pragma: no cover - reported below
            failures.append(('writer', repr(err)))
        finally:
            stop.set()

    def reader():
        rtm, rdm = site.open()
        while not stop.is_set():
            floor = committed[0]
            try:
                a, b = read_pair(rdm)
                rtm.commit()
            except Exception as err:    # pragma: no cover
                failures.append(('reader', repr(err)))
                rtm.abort()
                return
            a, b = int(a[1:]), int(b[1:])
            if a < floor or b < floor:
                failures.append(('stale', floor, a, b))
            if site.transactions and a != b:
                failures.append(('torn', a, b))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    threads.append(threading.Thread(target=writer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert committed[0] == 15
    if site.transactions:
        # The readers were served (hundreds of hits in a typical run).
        assert site.cache.stats['hits'] > 0


# -- configuration ---------------------------------------------------------------

ZCML = '''
<configure xmlns="http://namespaces.zope.org/zope"
           xmlns:mongo="http://namespaces.zope.org/mongo">
  <include package="zmongo" file="meta.zcml" />
  <mongo:provider uri="mongodb://127.0.0.1:9/" database="site" %s />
</configure>
'''


@pytest.mark.parametrize('attributes, size, max_bytes, enabled', [
    ('', 50000, 64 * 1024 * 1024, True),
    ('cache_size="100" cache_bytes="4096"', 100, 4096, True),
    ('cache_size="0"', 0, 64 * 1024 * 1024, False),
])
def test_the_zcml_directive_sizes_the_cache(attributes, size, max_bytes,
                                            enabled):
    import zope.component
    import zope.component.testing
    from zope.configuration import xmlconfig
    zope.component.testing.setUp()
    try:
        xmlconfig.string(ZCML % attributes)
        provider = zope.component.getUtility(
            interfaces.IMongoDataManagerProvider)
        assert (provider.cache.size, provider.cache.max_bytes,
                provider.cache.enabled) == (size, max_bytes, enabled)
        assert interfaces.IDocumentCache.providedBy(provider.cache)
    finally:
        zope.component.testing.tearDown()


def test_the_zcml_directive_refuses_a_negative_size():
    import zope.component.testing
    from zope.configuration import xmlconfig
    from zope.configuration.exceptions import ConfigurationError
    zope.component.testing.setUp()
    try:
        with pytest.raises(ConfigurationError, match='cache_size'):
            xmlconfig.string(ZCML % 'cache_size="-1"')
    finally:
        zope.component.testing.tearDown()


# -- container lookups pinned to the document they found --------------------------

def test_a_change_of_one_item_leaves_the_other_lookups_served(site):
    seed(site, names=['a', 'b', 'c'])
    tm, dm = site.open()

    def lookups(dm):
        people = dm.root['people']
        return [people[key].name for key in 'abc']

    served(site, dm, tm, lookups)
    served(site, dm, tm, lookups)
    site.mongo.db['person'].update_one({'key': 'b'},
                                       {'$set': {'name': 'changed'}})
    site.mongo.commands.reset()
    names = lookups(dm)
    finds = [cmd['filter'] for name, _, cmd in site.mongo.commands.commands
             if name == 'find' and cmd['find'] == 'person']
    tm.commit()
    assert names == ['A0', 'changed', 'C0']
    if site.transactions:
        # The container's document fixes the snapshot; then only b.
        assert [f.get('key') for f in finds] == ['b']
    else:
        assert [f.get('key') for f in finds] == ['a', 'b', 'c']


@pytest.mark.parametrize('how', ['raw', 'other cache'])
def test_renames_and_new_items_under_a_cached_name(site, how):
    """The lookup of 'a' is pinned to the document it found: renaming that
    document must drop it, and a new document named 'a' must be found."""
    seed(site)
    tm, dm = site.open()
    read_committed(site, tm, dm, times=3)
    coll = site.mongo.db['person']
    if how == 'raw':
        coll.update_one({'key': 'a'}, {'$set': {'key': 'z'}})
    else:
        wtm, writer = site.open(site.other_cache())
        people = writer.root['people']
        people['z'] = people['a']
        del people['a']
        wtm.commit()
    for _ in range(2):
        people = dm.root['people']
        assert 'a' not in people
        with pytest.raises(KeyError):
            people['a']
        assert people['z'].name == 'A0'
        tm.commit()
    wtm, writer = site.open(site.other_cache())
    writer.root['people']['a'] = models.Person('A-new')
    wtm.commit()
    for _ in range(2):
        people = dm.root['people']
        assert (people['a'].name, people['z'].name) == ('A-new', 'A0')
        assert sorted(people.keys()) == ['a', 'b', 'z']
        assert len(people) == 3
        tm.commit()


def test_a_renamed_documents_old_name_is_not_served(site):
    """After 'a' became 'z', the document is cached again (under 'z'):
    the lookup of 'a' must not find it through what it found before."""
    seed(site)
    tm, dm = site.open()
    read_committed(site, tm, dm, times=3)
    site.mongo.db['person'].update_one({'key': 'a'}, {'$set': {'key': 'z'}})
    for _ in range(3):
        assert dm.root['people']['z'].name == 'A0'
        tm.commit()
    people = dm.root['people']
    with pytest.raises(KeyError):
        people['a']
    tm.commit()


def test_a_new_server_transaction_stops_using_the_cache(site):
    """A savepoint rollback of a transaction that wrote nothing ends its
    server transaction and starts a new one (which checks what was read):
    a new snapshot, so entries valid in the old one must not be served.
    Here only ``b`` changed between the two: ``a``'s check passes, and
    ``b`` must be read as the new snapshot has it, not as the cache kept
    it."""
    seed(site)
    tm, dm = site.open()
    read_committed(site, tm, dm, times=3)
    people = dm.root['people']
    assert people['a'].name == 'A0'
    other_tm, other_dm = site.open(site.other_cache())
    other_dm.root['people']['b'].name = 'B1'
    other_tm.commit()
    tm.savepoint().rollback()
    b = dm.root['people']['b'].name
    tm.commit()
    assert b == 'B1'
    assert read_committed(site, tm, dm, times=2) == ('A0', 'B1')


@pytest.mark.parametrize('datamanager', ['transactions'], indirect=True)
def test_a_server_restart(datamanager, tmp_path):
    """The server goes away and comes back (same data, same port): the
    stream's cursor is gone; nothing changed meanwhile may be missed."""
    from zmongo.testing import EmbeddedServer
    server = EmbeddedServer(str(tmp_path)).start()
    host, port = server.address
    client = make_client(server.uri, [], timeoutMS=10000,
                         serverSelectionTimeoutMS=10000)
    cache = DocumentCache()
    tms = []

    def open_dm():
        tm = transaction.TransactionManager()
        tms.append(tm)
        return tm, MongoDataManager(client, default_database='restart',
                                    root_database='restart',
                                    transaction_manager=tm,
                                    document_cache=cache)
    try:
        tm, dm = open_dm()
        people = dm.root['people'] = models.People()
        people['a'] = models.Person('A0')
        people['b'] = models.Person('B0')
        tm.commit()
        for _ in range(3):
            assert read_pair(dm) == ('A0', 'B0')
            tm.commit()
        hits = cache.stats['hits']
        assert hits > 0
        server.stop()
        server = EmbeddedServer(str(tmp_path), port=port).start()
        raw = make_client(server.uri, [])
        raw['restart']['person'].update_one({'key': 'b'},
                                            {'$set': {'name': 'B-restart'}})
        raw.close()
        for _ in range(3):
            for attempt in tm.attempts(5):
                with attempt:
                    pair = read_pair(dm)
            assert pair == ('A0', 'B-restart'), dict(cache.stats)
        # Still served: the stream resumed (or was opened anew).
        assert read_pair(dm) == ('A0', 'B-restart')
        tm.commit()
        assert cache.stats['hits'] > hits
    finally:
        for tm in tms:
            tm.abort()
        cache.close()
        client.close()
        server.stop()


def test_a_fill_before_the_change_is_read_is_removed_by_it(site):
    """X reads B at its old snapshot before anyone read the change event:
    nothing refuses the fill, so the event must remove it."""
    seed(site)
    tm_x, x = site.open()
    tm_z, z = site.open()
    b_oid = x.root['people']['b']._p_oid
    tm_x.commit()
    x_people = x.root['people']
    x_people._p_activate()                  # X's snapshot: before
    write_pair(site, 'other cache', '1')
    # Read (and, with server transactions, kept); no snapshot without.
    assert x.load(b_oid).name == ('B0' if site.transactions else 'B1')
    tm_x.commit()
    for _ in range(2):
        z_people = z.root['people']
        z_people._p_activate()
        assert z.load(b_oid).name == 'B1'
        tm_z.commit()


def test_a_deleted_item_is_gone_for_the_next_transaction(site):
    seed(site, names=['a', 'b', 'c'])
    tm, dm = site.open()

    def listing(dm):
        people = dm.root['people']
        return sorted(people.keys()), len(people), people.get('b')

    served(site, dm, tm, listing)
    served(site, dm, tm, listing)
    site.mongo.db['person'].delete_one({'key': 'b'})
    for _ in range(2):
        names, count, b = listing(dm)
        tm.commit()
        assert (names, count, b) == (['a', 'c'], 2, None)
