"""Sharded collections: which shard keys zmongo's writes work with.

MongoDB routes a write on a sharded collection by the shard key in its
filter, and refuses what it cannot route or enforce (docs/scaling.rst has
the rules and the reasoning).  zmongo's own writes fit these shard keys:

* ``{_id: 1}`` or ``{_id: 'hashed'}``: every write zmongo sends filters on
  ``_id``, the whole shard key, so each goes to one shard, upserts
  included; in either commit mode.
* any other shard key of top-level fields, in server-transaction mode: the
  replaces and deletes of objects also carry the shard key values the
  document had when this transaction read or last wrote it (so a move
  that changes them is routable), and the ``NoCheck`` handler's replaces
  do not upsert (see ``_bulk``).

Refused, with an :class:`~zmongo.interfaces.UnsupportedShardKeyError`
naming the collection, its shard key and what would work:

* a shard key on a dotted (embedded) field;
* a shard key other than ``_id`` in standalone mode (its undo writes
  re-create documents by upserting on ``_id``), except on the name map
  (written outside any transaction, never undone);
* a ``config.collections`` entry whose ``key`` is not a document (zmongo
  cannot tell how the collection is sharded);
* a unique index zmongo needs (a container's ``(parent, key)``, the root's
  names) on a collection whose shard key's fields are not a prefix of it:
  MongoDB enforces uniqueness across shards only then (documents with
  equal values of those fields live in one chunk, ranged or hashed), and
  refuses to build the index otherwise;
* the name map collection sharded on anything but its own entry fields
  (its entries are written by upsert on them).

The shard keys come from the config server's ``config.collections``, read
once per client and collection (one ``find`` the first time a data manager
uses the collection), and only when the client talks to a ``mongos``: on a
replica set or a standalone server nothing is read and nothing changes.
An entry marked ``dropped`` or ``unsplittable`` is no sharded collection:
MongoDB 8.0 records the unsharded collections it moved or unsharded
(``moveCollection``, ``unshardCollection``) there too, as unsplittable
with the shard key ``{_id: 1}``, all on one shard.
"""
import collections.abc
import logging
import threading
import weakref

import pymongo
import pymongo.errors

from zmongo import _names
from zmongo import _sessions
from zmongo import interfaces

LOG = logging.getLogger(__name__)

ID_KEYS = ({_names.ID: 1}, {_names.ID: 'hashed'})
#: The fields the name map's entries are upserted on.
NAME_MAP_FIELDS = frozenset({_names.MAP_COLLECTION, _names.MAP_DATABASE,
                             _names.MAP_PATH})
_ROUTERS = frozenset({'Mongos', 'LoadBalancer'})


def routes_through_mongos(client):
    """True or False once the driver knows what ``client`` talks to (from
    the ``hello`` answers it already has: no command is sent), None while
    it does not know yet."""
    description = client.topology_description
    kind = description.topology_type_name
    if kind in ('Sharded', 'LoadBalanced'):
        return True
    known = [sd.server_type_name for sd in
             description.server_descriptions().values()
             if sd.server_type_name != 'Unknown']
    if not known:
        return None
    return any(name in _ROUTERS for name in known)


#: How long the first, short wait for the handshake lasts.
_HANDSHAKE_STEP = 0.05


def _select_server(client):
    """Wait for a server (selection), bounded by the client's ``timeoutMS``
    as any operation of it would be."""
    with _sessions.within_client_timeout(client):
        client.is_mongos


def _wait_for_handshake(client):
    """Wait until the driver knows any server of ``client``; the driver's
    ``ServerSelectionTimeoutError`` if it knows none within the client's
    timeouts.

    ``client.is_mongos`` waits for a writable server: a client of a
    replica set without a primary (an election, an outage) would never
    get to read from its secondaries.  So a secondary the driver found
    meanwhile ends the wait, after a short one or (on a slow network) the
    client's whole server selection timeout; a server that is down gives
    the driver's error as any operation would."""
    try:
        with pymongo.timeout(_HANDSHAKE_STEP):
            client.is_mongos
        return
    except pymongo.errors.ServerSelectionTimeoutError:
        if routes_through_mongos(client) is not None:
            return
    try:
        _select_server(client)
    except pymongo.errors.ServerSelectionTimeoutError:
        if routes_through_mongos(client) is None:
            raise


def format_key(key):
    return '{%s}' % ', '.join('%s: %r' % item for item in key.items())


def is_id_key(key):
    return isinstance(key, collections.abc.Mapping) and dict(key) in ID_KEYS


def key_fields(key):
    """The shard key's fields other than ``_id`` (whose values a write's
    filter must carry besides ``_id``); () for no key or an ``_id`` key."""
    if not isinstance(key, collections.abc.Mapping) or is_id_key(key):
        return ()
    return tuple(field for field in key if field != _names.ID)


def refusal(namespace, key, *, standalone=False, unique_fields=None,
            upsert_fields=None):
    """Why zmongo cannot work with collection ``namespace`` (``(db,
    coll)``) sharded on ``key``, or None.  ``unique_fields`` are the fields
    of a unique index zmongo needs there, ``upsert_fields`` those its
    upserts filter on (the name map)."""
    if key is None:
        return None
    name = '%s.%s' % namespace
    if not isinstance(key, collections.abc.Mapping):
        return ('collection %s has the shard key %r in config.collections, '
                'which is not a document: zmongo cannot tell how it is '
                'sharded; check the cluster\'s metadata (sh.status()) and '
                'shard it on a key document, or leave it unsharded' % (
                    name, key))
    shown = format_key(key)
    dotted = [field for field in key if '.' in field]
    if dotted:
        return ('collection %s is sharded on %s: zmongo cannot route writes '
                'by an embedded field (%s); shard it on top-level fields: '
                "{_id: 'hashed'} for objects, a prefix of the unique index "
                "for a container's items ({parent: 1}) or the root "
                '({name: 1}), or leave it unsharded' % (
                    name, shown, ', '.join(dotted)))
    if upsert_fields is not None and not set(key) <= set(upsert_fields):
        return ('collection %s is sharded on %s: zmongo writes its entries '
                'by upsert on %s, which must hold the whole shard key; '
                'leave it unsharded (it is small) or shard it on a prefix of '
                '{%s}' % (name, shown, ', '.join(sorted(upsert_fields)),
                          ', '.join('%s: 1' % f for f in sorted(
                              upsert_fields))))
    if unique_fields is not None:
        # MongoDB's rule (its shard key pattern's uniqueness check): the
        # shard key's field names are a prefix of the index's, whether
        # ranged or hashed.
        prefix = list(unique_fields)[:len(key)]
        if list(key) != prefix:
            options = ' or '.join(
                format_key(dict((f, 1) for f in unique_fields[:i + 1]))
                for i in range(len(unique_fields)))
            options += " or {%s: 'hashed'}" % unique_fields[0]
            return ('collection %s is sharded on %s: MongoDB enforces a '
                    'unique index across shards only when the shard key\'s '
                    'fields are a prefix of it, and zmongo needs the unique '
                    'index {%s}; shard it on %s with server transactions '
                    '(in standalone mode only an unsharded collection '
                    'serves it), or leave it unsharded' % (
                        name, shown,
                        ', '.join('%s: 1' % f for f in unique_fields),
                        options))
    if standalone and upsert_fields is None and not is_id_key(key):
        # (The name map is written outside any transaction, never undone.)
        return ('collection %s is sharded on %s: in standalone mode '
                '(transactions=False) zmongo undoes writes by upsert on _id, '
                'which MongoDB routes only with an _id shard key; use server '
                'transactions (transactions="auto"), leave it unsharded, or '
                "shard it on {_id: 'hashed'} -- unless it holds a "
                "container's items or the root: their unique indexes need "
                'another shard key, so in standalone mode they work only '
                'unsharded' % (name, shown))
    return None


class ShardKeys:
    """The shard keys of the collections one client uses, each read once
    (thread-safe: data managers of all threads share it)."""

    def __init__(self, client):
        self._client = weakref.ref(client)
        self._lock = threading.Lock()
        # Held while a shard key is read: threads first using the same
        # collection at once read it once (the others wait for it).
        self._reading = threading.Lock()
        self._mongos = None
        self._keys = {}     # {(db, coll): key dict or None}

    @property
    def client(self):
        return self._client()

    def through_mongos(self):
        """True if the client talks to a ``mongos``.  Known from the
        driver's handshake; if that has not happened yet, it happens now
        (the data manager is about to talk to the server anyway): a check
        that depended on the handshake's timing would let a refused
        collection through."""
        if self._mongos is None:
            client = self.client
            if client is None:
                return None
            found = routes_through_mongos(client)
            if found is None:
                _wait_for_handshake(client)
                found = routes_through_mongos(client)
            self._mongos = found
        return self._mongos

    def key(self, db_name, coll_name):
        """The shard key of ``db.coll`` (a dict, or what
        ``config.collections`` holds if that is no document), or None:
        unsharded, not behind a mongos, or not known yet."""
        namespace = (db_name, coll_name)
        try:
            return self._keys[namespace]
        except KeyError:
            pass
        mongos = self.through_mongos()
        if not mongos:
            return None
        with self._reading:
            try:
                return self._keys[namespace]
            except KeyError:
                pass
            key = self._read(namespace)
            with self._lock:
                self._keys[namespace] = key
        return key

    def _read(self, namespace):
        db_name, coll_name = namespace
        client = self.client
        # No session: the config database cannot be read in a transaction.
        entry = client['config']['collections'].find_one(
            {_names.ID: '%s.%s' % namespace},
            {'key': 1, 'dropped': 1, 'unsplittable': 1})
        key = None
        if entry is not None and not entry.get('dropped') and \
                not entry.get('unsplittable') and entry.get('key'):
            key = entry['key']
            if isinstance(key, collections.abc.Mapping):
                key = dict(key)
                LOG.info('collection %s.%s is sharded on %s', db_name,
                         coll_name, format_key(key))
        return key

    def fields(self, db_name, coll_name):
        """What a write's filter must carry besides ``_id`` (see
        :func:`key_fields`); never reads: () until the key is known."""
        key = self._keys.get((db_name, coll_name))
        # None (unsharded, or not known yet) is the common case: no call.
        return () if key is None else key_fields(key)

    def check(self, db_name, coll_name, **rules):
        """Raise ``UnsupportedShardKeyError`` if zmongo cannot work with
        the collection as it is sharded (``rules``: see :func:`refusal`)."""
        key = self.key(db_name, coll_name)
        reason = refusal((db_name, coll_name), key, **rules)
        if reason is not None:
            raise interfaces.UnsupportedShardKeyError(reason)


def check_collection(jar, shards, db_name, coll_name):
    """Refuse (``UnsupportedShardKeyError``) a collection data manager
    ``jar`` is about to use, if it is sharded in a way zmongo's writes do
    not work with.  Costs nothing unless the client talks to a mongos, and
    then one read per collection and client."""
    if not shards.through_mongos():
        return
    if shards.key(db_name, coll_name) is None:
        return
    name_map = coll_name == jar.name_map_collection and \
        db_name == jar.default_database
    shards.check(db_name, coll_name, standalone=not jar.uses_transactions,
                 upsert_fields=NAME_MAP_FIELDS if name_map else None)


def check_unique_index(raw_collection, keys):
    """Refuse a unique index zmongo needs (``keys``, ``[(field, 1),
    ...]``) on ``raw_collection`` if its shard key cannot enforce it."""
    shards = shard_keys(raw_collection.database.client)
    if not shards.through_mongos():
        return
    shards.check(raw_collection.database.name, raw_collection.name,
                 unique_fields=[field for field, _ in keys])


class _Registry:
    """One :class:`ShardKeys` per client object, for the process (by
    identity: pymongo clients compare equal by their settings); entries of
    collected clients are dropped when a new client turns up."""

    def __init__(self):
        self._lock = threading.Lock()
        self._clients = {}

    def __call__(self, client):
        with self._lock:
            found = self._clients.get(id(client))
            if found is None or found.client is not client:
                for key in [k for k, v in self._clients.items()
                            if v.client is None]:
                    del self._clients[key]
                found = self._clients[id(client)] = ShardKeys(client)
            return found


#: ``shard_keys(client)``: the :class:`ShardKeys` of ``client``.
shard_keys = _Registry()
