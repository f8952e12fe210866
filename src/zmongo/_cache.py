"""Committed documents shared by the data managers of one client.

A :class:`DocumentCache` belongs to a provider (one client, every thread).
It holds only what a server transaction read from the server before it
wrote anything -- committed documents, as raw BSON (immutable, so threads
can share them; each data manager builds its own objects from them), and
the answers of container queries (the ``_id`` a key leads to, a listing, a
count).  It is bounded (entries and bytes, least recently used first) and
thread-safe.  ``docs/transactions.rst`` ("The cache") gives the rules; in
short:

* **Invalidation** comes from one change stream on the client
  (:class:`ChangeFeed`).  Each event removes the document's entry and every
  query answer of its collection, and is remembered as *the last change
  time* of the document (and of the collection), bounded: what falls out
  of that memory raises a per-collection floor instead.
* **Snapshots.**  A data manager's view of the cache
  (:class:`CacheView`) knows two bounds of its server transaction's
  snapshot: ``lo``, a cluster time the snapshot is known to be at or after
  (sent as ``afterClusterTime`` with the transaction's first command), and
  ``hi``, the ``operationTime`` of a reply in the transaction (the snapshot
  is at or before it).  Before it serves anything it has the change stream
  read up to ``hi`` (one ``getMore`` sent after that reply, unless another
  transaction already did).
* **Filling** from a read at a snapshot in ``[lo, hi]`` is refused when a
  change of the document (or collection, for query answers) later than
  ``lo`` is known; the entry keeps ``since``, the last change known
  before it (at most ``lo``).
* **Serving** an entry needs ``since <= lo``: the reader's snapshot is
  after the document's last change, and any later change would have
  removed the entry by the time the stream was read up to ``hi``.
* A lost or broken stream empties the cache and starts a new *epoch*;
  views of an older epoch neither fill nor serve.
"""
import collections
import logging
import threading
import time

import pymongo.errors
import zope.interface
from bson.timestamp import Timestamp

from zmongo import interfaces

LOG = logging.getLogger(__name__)

#: Default bounds of a provider's cache: entries (documents and query
#: answers) and bytes of raw BSON.
DEFAULT_SIZE = 50000
DEFAULT_BYTES = 64 * 1024 * 1024
#: What one entry costs besides its BSON (key, bookkeeping), for the bound.
ENTRY_OVERHEAD = 120
#: How many per-document change times are remembered (beyond, a
#: per-collection floor is raised).
RECENT_CHANGES = 20000
#: Change events that only touch one document.
_DOCUMENT_EVENTS = frozenset({'insert', 'update', 'replace', 'delete'})
#: How long a ``getMore`` on the change stream may wait for events (ms):
#: draining must not wait for events that are not there.
MAX_AWAIT_MS = 1

#: Server error codes that say change streams will never work for this
#: client: Unauthorized, IllegalOperation, CommandNotSupported, and
#: "$changeStream is only supported on replica sets" (two codes).
_NO_CHANGE_STREAMS = frozenset({13, 20, 115, 40573, 40602})

#: How many more ``getMore``\ s a drain may send while the stream's own
#: position (its post-batch resume token) is still before the snapshot.
MAX_BEHIND_DRAINS = 20

_ZERO = Timestamp(0, 0)
_DOCUMENT = 'd'
_ANSWER = 'a'


class _Entry:
    __slots__ = ('value', 'since', 'size', 'namespace', 'pins')

    def __init__(self, value, since, size, namespace, pins=None):
        self.value = value
        self.since = since
        self.size = size
        self.namespace = namespace
        #: The ``_id``s a pinned answer depends on alone (see put_answer).
        self.pins = pins


@zope.interface.implementer(interfaces.IDocumentCache)
class DocumentCache:
    """The shared layer: entries, change times, the change stream."""

    def __init__(self, size=DEFAULT_SIZE, max_bytes=DEFAULT_BYTES):
        if size is None or size < 0 or max_bytes is None or max_bytes < 0:
            raise ValueError('cache_size and cache_bytes must be numbers '
                             '>= 0 (0 turns the cache off), not %r and %r'
                             % (size, max_bytes))
        self.size = int(size)
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        # Held while the stream is read (a network round trip): cache hits
        # of other threads only wait for ``_lock``.
        self._stream_lock = threading.Lock()
        self._entries = collections.OrderedDict()
        self._by_namespace = {}     # namespace -> set of answer keys
        self._pinned = {}           # (namespace, _id) -> pinned answer keys
        self._bytes = 0
        self._recent = {}           # (namespace, _id) -> last change time
        self._changed = {}          # namespace -> last change time
        self._floor = {}            # namespace -> times forgotten below
        self._global_floor = _ZERO
        self._applied = None        # every event up to this time applied
        self._latest = None         # the latest cluster time a reply had
        # lo -> how many views of running transactions began with it: the
        # change times older than all of them (and than _latest, what the
        # next view begins with) can no longer refuse a fill; forgotten.
        self._active = {}
        self._epoch = 0
        self._feed = None
        self._off_reason = None
        self.stats = collections.Counter()

    @property
    def enabled(self):
        return self.size > 0 and self.max_bytes > 0 and \
            self._off_reason is None

    @property
    def epoch(self):
        return self._epoch

    def __len__(self):
        return len(self._entries)

    @property
    def nbytes(self):
        return self._bytes

    # -- the change stream ------------------------------------------------

    def start(self, client, transactions):
        """Make sure the change stream runs (``transactions``: whether the
        data managers use server transactions).  False if the cache cannot
        be used with this client."""
        if not self.enabled:
            return False
        if not transactions:
            self.turn_off('its data managers do not use server '
                          'transactions (a standalone server, or '
                          'transactions=False): without snapshots and a '
                          'change stream nothing can tell a cached '
                          'document is current')
            return False
        feed = self._feed
        if feed is not None and feed.client is client:
            return True
        with self._lock:
            if self._feed is not None:
                if self._feed.client is client:
                    return True
                # Another client (the provider made a new one): its
                # stream, and what was cached through the old one, go.
                self._close_feed_locked()
                self._clear_locked()
                self._epoch += 1
            feed = ChangeFeed(client)
            try:
                feed.open()
            except pymongo.errors.PyMongoError as err:
                if isinstance(err, pymongo.errors.OperationFailure) and \
                        err.code in _NO_CHANGE_STREAMS:
                    self._turn_off_locked(
                        'the server refused a change stream on the whole '
                        'deployment (%s)' % (str(err)[:200],))
                else:
                    LOG.warning('could not open the change stream of the '
                                'document cache (%s); it serves nothing '
                                'until it can', err)
                return False
            self._clear_locked()
            self._epoch += 1
            self._feed = feed
            # A change before the stream's start is never an event: the
            # epoch's transactions ask for snapshots at or after it.
            self._latest = feed.opened_at
        return True

    def turn_off(self, why):
        with self._lock:
            self._turn_off_locked(why)

    def _turn_off_locked(self, why):
        if self._off_reason is None:
            LOG.info('zmongo document cache off: %s', why)
            self._off_reason = why
        self._clear_locked()
        self._epoch += 1
        self._close_feed_locked()

    def _close_feed_locked(self):
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.close()

    def close(self):
        with self._lock:
            self._clear_locked()
            self._epoch += 1
            self._close_feed_locked()

    def applied_through(self, epoch):
        """The time up to which every change is applied, in ``epoch``."""
        if epoch != self._epoch:
            return None
        return self._applied

    def latest_time(self, epoch):
        """The latest cluster time a reply of this epoch carried (a
        transaction's snapshot is asked to be at or after it)."""
        if epoch != self._epoch:
            return None
        return self._latest

    def enter(self, epoch):
        """A transaction begins in ``epoch``: its ``lo`` (the latest time
        known, or the zero time), counted as running until
        :meth:`leave`; None if the epoch is over."""
        with self._lock:
            if epoch != self._epoch:
                return None
            lo = self._latest or _ZERO
            self._active[lo] = self._active.get(lo, 0) + 1
            return lo

    def leave(self, lo):
        """The transaction that began with ``lo`` is over."""
        with self._lock:
            count = self._active.get(lo, 0) - 1
            if count > 0:
                self._active[lo] = count
            else:
                self._active.pop(lo, None)

    def _forget_old_changes_locked(self):
        """Drop the change times no running or later transaction can be
        older than (they refuse nothing any more)."""
        recent = self._recent
        if not recent:
            return
        oldest = self._latest or _ZERO
        if self._active:
            oldest = min(oldest, min(self._active))
        # A new dict: one emptied by deletions keeps its table.
        self._recent = {k: when for k, when in recent.items()
                        if when > oldest}

    def _note_locked(self, when):
        if self._latest is None or when > self._latest:
            self._latest = when

    def catch_up(self, epoch, hi):
        """Read the change stream up to (at least) ``hi``, a cluster time
        some reply carried; False if the stream broke (the cache is then
        empty, in a new epoch)."""
        if epoch != self._epoch:
            return False
        applied = self._applied
        if applied is not None and applied >= hi:
            return True
        with self._stream_lock:
            with self._lock:
                if epoch != self._epoch or self._feed is None:
                    return False
                applied = self._applied
                if applied is not None and applied >= hi:
                    return True
                feed = self._feed
            t0 = time.perf_counter()
            try:
                events = list(feed.drain())
                # An empty batch is not proof the stream has passed
                # ``hi`` (a real server's stream can lag the snapshot its
                # transactions read): where the stream tells its position,
                # read on until it is at ``hi``.
                for _ in range(MAX_BEHIND_DRAINS):
                    if feed.position is None or feed.position >= hi:
                        break
                    events.extend(feed.drain())
            except (pymongo.errors.PyMongoError, _StreamInvalid) as err:
                self._lost(epoch, err)
                return False
            behind = feed.position is not None and feed.position < hi
            with self._lock:
                if epoch != self._epoch:
                    return False
                try:
                    for event in events:
                        self._apply_locked(event)
                except _StreamInvalid as err:
                    self._lost_locked(err)
                    return False
                if behind:
                    # Applied only up to the stream's position: this
                    # transaction is not served; a later one may be.
                    self.stats['behind'] += 1
                    return False
                if self._applied is None or hi > self._applied:
                    self._applied = hi
                self._note_locked(hi)
                self._forget_old_changes_locked()
                self.stats['drains'] += 1
                self.stats['drain_ns'] += int(
                    (time.perf_counter() - t0) * 1e9)
            return True

    def _lost(self, epoch, err):
        with self._lock:
            if epoch == self._epoch:
                self._lost_locked(err)

    def _lost_locked(self, err):
        LOG.warning('the change stream of the document cache broke (%s): '
                    'the cache is emptied and a new stream is opened',
                    str(err)[:300])
        self.stats['stream_losses'] += 1
        self._clear_locked()
        self._epoch += 1
        self._close_feed_locked()

    def _apply_locked(self, event):
        kind = event.get('operationType')
        when = event.get('clusterTime')
        if not isinstance(when, Timestamp):
            raise _StreamInvalid('an event without clusterTime: %r'
                                 % (kind,))
        self.stats['events'] += 1
        ns = event.get('ns') or {}
        namespace = (ns.get('db'), ns.get('coll'))
        key = event.get('documentKey') or {}
        if kind in _DOCUMENT_EVENTS and '_id' in key and \
                namespace[1] is not None:
            self._changed_locked(namespace, [key['_id']], when)
            return
        if kind == 'invalidate':
            raise _StreamInvalid('the change stream was invalidated')
        # drop, rename, dropDatabase, anything else: forget everything.
        self.stats['invalidated'] += len(self._entries)
        self._clear_locked()
        if when > self._global_floor:
            self._global_floor = when

    def invalidate(self, namespace, ids, when):
        """This process committed writes to ``ids`` of ``namespace`` (all
        of it, if ``ids`` is None) at or before ``when``."""
        with self._lock:
            self._changed_locked(namespace, ids, when)
            self._note_locked(when)
            self._forget_old_changes_locked()

    def _changed_locked(self, namespace, ids, when):
        if self._changed.get(namespace, _ZERO) < when:
            self._changed[namespace] = when
        for key in list(self._by_namespace.pop(namespace, ())):
            self._drop_locked(key)
        if ids is None:
            if self._floor.get(namespace, _ZERO) < when:
                self._floor[namespace] = when
            for key in [k for k, e in self._entries.items()
                        if e.namespace == namespace]:
                self._drop_locked(key)
            return
        recent = self._recent
        for id_ in ids:
            try:
                doc_key = (_DOCUMENT, namespace, id_)
                hash(doc_key)
            except TypeError:
                continue
            self._drop_locked(doc_key)
            for key in list(self._pinned.get((namespace, id_), ())):
                self._drop_locked(key)
            rkey = (namespace, id_)
            old = recent.pop(rkey, _ZERO)
            recent[rkey] = max(old, when)
        while len(recent) > RECENT_CHANGES:
            (ns, id_), forgotten = next(iter(recent.items()))
            del recent[(ns, id_)]
            if self._floor.get(ns, _ZERO) < forgotten:
                self._floor[ns] = forgotten

    # -- entries ----------------------------------------------------------

    def _last_change(self, namespace, id_=None):
        """The last change known of the document (or of the collection,
        if ``id_`` is None)."""
        when = max(self._global_floor, self._floor.get(namespace, _ZERO))
        if id_ is None:
            return max(when, self._changed.get(namespace, _ZERO))
        return max(when, self._recent.get((namespace, id_), _ZERO))

    def _drop_locked(self, key):
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= entry.size
        self.stats['invalidated'] += 1
        self._unindex_locked(key, entry)

    def _unindex_locked(self, key, entry):
        if key[0] != _ANSWER:
            return
        if entry.pins is not None:
            for id_ in entry.pins:
                keys = self._pinned.get((entry.namespace, id_))
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._pinned[(entry.namespace, id_)]
            return
        keys = self._by_namespace.get(entry.namespace)
        if keys is not None:
            keys.discard(key)

    def _clear_locked(self):
        self._entries.clear()
        self._by_namespace.clear()
        self._pinned.clear()
        self._bytes = 0
        self._recent = {}
        self._changed.clear()
        self._floor.clear()
        self._applied = None
        self._latest = None

    def clear(self):
        """Forget every entry (the stream goes on)."""
        with self._lock:
            latest = self._latest
            self._clear_locked()
            # The change times are forgotten: the next transactions must
            # not read snapshots older than the changes already applied.
            self._latest = latest
            self._epoch += 1
            # The stream goes on, but views of the old epoch stop here.
            if self._feed is not None:
                self._applied = None

    def _get_locked(self, key, lo):
        entry = self._entries.get(key)
        if entry is None or entry.since > lo:
            return None
        self._entries.move_to_end(key)
        return entry

    def _put_locked(self, key, value, size, since, namespace, pins=None):
        size += ENTRY_OVERHEAD
        if size > self.max_bytes:
            self.stats['too_large'] += 1
            return False
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
            self._unindex_locked(key, old)
        self._entries[key] = _Entry(value, since, size, namespace, pins)
        self._bytes += size
        if key[0] == _ANSWER:
            if pins is None:
                self._by_namespace.setdefault(namespace, set()).add(key)
            else:
                for id_ in pins:
                    self._pinned.setdefault((namespace, id_), set()).add(key)
        self.stats['fills'] += 1
        while len(self._entries) > self.size or self._bytes > self.max_bytes:
            old_key, old = self._entries.popitem(last=False)
            self._bytes -= old.size
            self.stats['evicted'] += 1
            self._unindex_locked(old_key, old)
        return True

    def get_documents(self, epoch, lo, namespace, ids):
        """The raw documents of ``ids`` as of a snapshot at or after
        ``lo``, or None unless all of them are cached."""
        with self._lock:
            if epoch != self._epoch:
                return None
            found = []
            for id_ in ids:
                entry = self._get_locked((_DOCUMENT, namespace, id_), lo)
                if entry is None:
                    self.stats['misses'] += 1
                    return None
                found.append(entry.value)
            self.stats['hits'] += len(found)
            return found

    def put_documents(self, epoch, lo, namespace, raws):
        """Documents (raw BSON) read at a snapshot at or after ``lo``."""
        with self._lock:
            if epoch != self._epoch:
                return
            for id_, raw in raws:
                key = (_DOCUMENT, namespace, id_)
                since = self._last_change(namespace, id_)
                if since > lo:
                    self.stats['refused'] += 1
                    continue
                self._put_locked(key, raw, len(raw), since, namespace)

    def get_answer(self, epoch, lo, namespace, query):
        """``(kind, value)`` stored for ``query``, if valid at ``lo``;
        an ``ids`` answer is returned with its documents, all or
        nothing."""
        with self._lock:
            if epoch != self._epoch:
                return None
            entry = self._get_locked((_ANSWER, namespace, query), lo)
            if entry is None:
                self.stats['misses'] += 1
                return None
            kind, value = entry.value
            if kind == 'ids':
                docs = []
                for id_ in value:
                    doc = self._get_locked((_DOCUMENT, namespace, id_), lo)
                    if doc is None:
                        self.stats['misses'] += 1
                        return None
                    docs.append(doc.value)
                self.stats['hits'] += 1 + len(docs)
                return 'docs', docs
            self.stats['hits'] += 1
            return kind, value

    def put_answer(self, epoch, lo, namespace, query, kind, value, size,
                   docs=(), unique=False):
        """A query answer read at a snapshot at or after ``lo``; ``docs``
        (``[(_id, raw)]``) are put first (an ``ids`` answer needs them).

        Any change in the collection removes an answer -- except a
        ``unique`` one: a query at most one document can ever match (on
        ``_id``, or on the fields of a unique index), which found one.  As
        long as that document does not change it stays the one match, so
        only its changes remove the answer."""
        with self._lock:
            if epoch != self._epoch:
                return
            pins = None
            if unique and kind == 'ids' and len(value) == 1:
                pins = tuple(value)
                since = self._last_change(namespace, value[0])
            else:
                since = self._last_change(namespace)
            if since > lo:
                self.stats['refused'] += 1
                return
            for id_, raw in docs:
                key = (_DOCUMENT, namespace, id_)
                doc_since = self._last_change(namespace, id_)
                if doc_since > lo:
                    self.stats['refused'] += 1
                    return
                if not self._put_locked(key, raw, len(raw), doc_since,
                                        namespace):
                    return      # too large: the answer could not serve
            self._put_locked((_ANSWER, namespace, query), (kind, value),
                             size, since, namespace, pins)


def token_time(token):
    """The cluster time a MongoDB resume token stands for, or None when
    the token is not in the server's documented format (a ``_data`` hex
    string whose first key-string element is a timestamp: type byte 0x82,
    then seconds and increment, big-endian).  Servers with other tokens
    (the embedded test server) get None: their stream position is then
    taken to be the reply's time, as before."""
    data = token.get('_data') if isinstance(token, dict) else None
    if not isinstance(data, str) or len(data) < 18 or \
            data[:2].lower() != '82':
        return None
    try:
        return Timestamp(int(data[2:10], 16), int(data[10:18], 16))
    except ValueError:
        return None


class _StreamInvalid(Exception):
    """The change stream cannot be trusted any more."""


class ChangeFeed:
    """One change stream on the whole deployment: only what identifies a
    change (kind, collection, ``_id``, time) is sent."""

    PIPELINE = [{'$project': {'operationType': 1, 'ns': 1,
                              'documentKey': 1, 'clusterTime': 1}}]

    def __init__(self, client):
        self.client = client
        self._stream = None
        self._session = None
        #: The cluster time the stream starts at (its opening's
        #: ``operationTime``; None if the server sent none).
        self.opened_at = None
        #: How far the stream has read, from its post-batch resume token,
        #: after the last drain (None where the token's format is not
        #: known).
        self.position = None

    def open(self):
        # In a session of its own: its operationTime after the opening is
        # where the stream starts.
        self._session = self.client.start_session(causal_consistency=False)
        self._stream = self.client.watch(
            self.PIPELINE, max_await_time_ms=MAX_AWAIT_MS,
            session=self._session)
        self.opened_at = self._session.operation_time

    def drain(self):
        """The events waiting now (at least one ``getMore``)."""
        stream = self._stream
        if stream is None or not stream.alive:
            raise _StreamInvalid('the change stream is closed')
        while True:
            event = stream.try_next()
            if event is None:
                if not stream.alive:
                    raise _StreamInvalid('the change stream ended')
                self.position = token_time(stream.resume_token)
                return
            yield event

    def close(self):
        stream, self._stream = self._stream, None
        session, self._session = self._session, None
        if stream is not None:
            try:
                stream.close()
            except pymongo.errors.PyMongoError:
                LOG.debug('closing the change stream failed', exc_info=True)
        if session is not None:
            try:
                session.end_session()
            except pymongo.errors.PyMongoError:
                LOG.debug('ending the change stream\'s session failed',
                          exc_info=True)


class CacheView:
    """What one data manager's current server transaction may use.

    Made when the transaction begins (the cache's ``epoch`` then).
    ``begin(session, started)`` runs before each command: the first time,
    before the transaction's first command, it sets ``lo`` and advances the
    session to it, so that command asks the server for a snapshot at or
    after ``lo``.  ``after_read()`` follows a read of the transaction: its
    reply's ``operationTime`` is ``hi``, and the change stream is read up
    to it.  Then entries may be served and filled.  The view is dead for
    the rest of the transaction once the data manager wrote, the server
    transaction was started again (a new snapshot), or the cache began a
    new epoch.
    """

    __slots__ = ('cache', 'epoch', 'lo', 'hi', 'dead', 'session',
                 'started')

    def __init__(self, cache):
        self.cache = cache
        self.epoch = cache.epoch
        self.lo = None
        self.hi = None
        self.dead = not cache.enabled
        self.session = None
        self.started = None

    def begin(self, client, session, started, transactions):
        """``session`` is about to send a command; ``started`` counts the
        server transactions the data manager started; ``transactions``:
        whether it uses server transactions."""
        if self.dead:
            return
        if self.session is None:
            self.session = session
            self.started = started
            cache = self.cache
            if session.operation_time is not None or \
                    not cache.start(client, transactions):
                # Used before a bound could be set, or no cache here.
                self.dead = True
                return
            # The stream runs now, before this transaction's first command.
            self.epoch = cache.epoch
            lo = cache.enter(self.epoch)
            if lo is None:
                self.dead = True
                return
            if lo != _ZERO:
                session.advance_operation_time(lo)
            self.lo = lo
        elif session is not self.session or started != self.started:
            self.dead = True

    def close(self):
        """The transaction is over."""
        if self.lo is not None:
            self.cache.leave(self.lo)
            self.lo = None
        self.dead = True

    def ready(self):
        """True if entries may be served now."""
        return self.hi is not None and not self.dead and \
            self.cache.epoch == self.epoch

    def after_read(self):
        """A read of this transaction was answered: True if its result
        may be put in the cache (the stream is read up to the snapshot)."""
        if self.dead or self.lo is None:
            return False
        if self.hi is None:
            hi = self.session.operation_time
            if hi is None or not self.cache.catch_up(self.epoch, hi):
                self.dead = True
                return False
            self.hi = hi
        return self.cache.epoch == self.epoch
