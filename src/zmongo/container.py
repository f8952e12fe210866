"""How Zope sees a collection: containers whose items are documents.

A :class:`MongoContainer` is a Zope container (``IContainer``) over one
MongoDB collection.  It holds no list of its items: each item is a document
of the collection that names its container and its key::

    {'_id': ObjectId(...), 'key': 'stephan', 'name': 'Stephan',
     'parent': DBRef('myapp.People', ObjectId(...), 'app')}

* ``_m_collection`` / ``_m_database``: where the items live (the data
  manager's default database if ``_m_database`` is None).
* ``_m_mapping_key`` (default ``'key'``): the field holding the item's name.
  :class:`IdNamesMongoContainer` has none and names items by ``str(_id)``.
* ``_m_parent_key`` (default ``'parent'``): the field telling containers
  that share a collection apart.  Its value is the container's ``DBRef``
  when the container is stored in MongoDB, ``'zodb-<hex oid>'`` when it
  lives in ZODB, and, for a :class:`SubDocumentMongoContainer` (stored
  inside another object's document), an ``ObjectId`` the container keeps
  in its own state (containers written by mongopersist, which have none,
  use their stored state as before).  :class:`AllItemsMongoContainer` has
  no parent key and shows the whole collection.
* ``_m_remove_documents`` (default True): deleting an item deletes its
  document; otherwise only its key and parent fields are removed.

Adding and removing go through ``zope.container.contained.setitem`` and
``uncontained``, so the events are exactly those of zope.container's own
containers, whichever way an item is added (``c[key] = obj``,
``c[None] = obj``, ``c.add(obj)``).  New items are visible at once: every
query of the data manager's collections writes pending changes first.

Names must be ``str`` (ASCII ``bytes`` are converted), non-empty, must not
contain ``/`` nor begin with ``+``, ``@`` (zope.container's rules) or ``$``
(MongoDB reserves it); anything else -- ``'index.html'``, ``'price$'``,
``'{"$ne": null}'`` -- is an ordinary name.  A name only ever reaches
MongoDB as a string value, never as part of a query's structure: a lookup
with anything but a string (``{'$ne': None}``, say) is a ``TypeError`` and
asks the database nothing.

Costs: the container makes sure its collection has the index its lookups
need -- a unique ``(parent, key)`` index, partial on string keys (so a name
is unique within a container even when two transactions add it at once,
while objects in no container and id-named items may share the
collection), a ``key`` index for all-items containers, a ``(parent, _id)``
index for id-named ones -- once per collection and client, outside any
transaction (right after the current one when the data manager's server
transaction is already open).  Then ``c[key]`` and
``key in c`` cost one query served by that index, ``keys()``, ``items()``,
``values()`` and ``len()`` one command each, and ``items()`` loads its
objects from the documents it read.  With :data:`USE_CONTAINER_CACHE` (read
at call time) a container also remembers, for the rest of the transaction,
the items it has seen, and after ``items()`` answers everything from
memory.  The cache trusts that items enter and leave through containers;
a change made through one container forgets what the others over the same
collection remembered.

Values that are not persistent, locatable objects (``'FOO'``, ``1``, an
object without ``__parent__``) are wrapped by zope.container in a
``ContainedProxy``; a Mongo container keeps them in a small
:class:`ContainedValue` document of its collection and hands them out in a
``ContainedProxy`` again, as zope.container's containers do.

:class:`SimpleMongoContainer` is the other model: one document holding
``{'data': {name: DBRef(...)}}``, like a ``SampleContainer``.
"""
import collections.abc
import inspect
import logging

import bson
import persistent
import pymongo
import zope.component
import zope.interface
from zope.container import contained as _contained
from zope.container import sample as _sample
from zope.container.contained import ContainedProxy
from zope.container.contained import checkAndConvertName
from zope.container.contained import getProxiedObject
from zope.container.interfaces import IContainer
from zope.container.interfaces import IContainerNamesContainer
from zope.container.interfaces import INameChooser
from zope.location.interfaces import IContained
from zope.location.interfaces import ILocation

from zmongo import _indexes
from zmongo import _moves
from zmongo import _names
from zmongo import _oid
from zmongo import interfaces
from zmongo import serialize
from zmongo._collection import process_spec as _process_spec

__all__ = [
    'USE_CONTAINER_CACHE', 'MongoContained', 'MongoContainer',
    'IdNamesMongoContainer', 'AllItemsMongoContainer',
    'SubDocumentMongoContainer', 'SimpleMongoContainer', 'ContainedValue',
]

LOG = logging.getLogger(__name__)

#: Whether containers remember, per transaction, the items they have seen
#: (read each time it matters, so it can be switched at any moment).
USE_CONTAINER_CACHE = True

_SENTINEL = object()
_CACHE_ANNOTATION = 'zmongo.container.items'
_PENDING_ANNOTATION = 'zmongo.container.pending'
_REMOVED_ANNOTATION = 'zmongo.container.removed'
_ZODB_PREFIX = _names.ZODB_PARENT_PREFIX
_INDEX_PREFIX = _names.CONTAINER_INDEX_PREFIX


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------

def check_new_name(name):
    """The name an item may be added under (str), or the error zope.container
    raises for it: ``TypeError`` for what is not a string, ``ValueError`` for
    what is not an allowed name."""
    name = checkAndConvertName(name)
    if name[:1] in ('+', '@') or '/' in name:
        raise ValueError("Names cannot begin with '+' or '@' or contain "
                         "'/': %r" % (name,))
    if name[:1] == '$':
        raise ValueError("Names cannot begin with '$' (MongoDB reserves it "
                         "for operators): %r" % (name,))
    return name


def _lookup_name(key):
    """A key to look up: a str (ASCII bytes are converted).  Anything else
    could never be a name, and must never reach a query (a dict such as
    ``{'$ne': None}`` would be read as an operator)."""
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        try:
            return key.decode('ascii')
        except UnicodeError:
            raise TypeError('container names are str or ASCII bytes, not '
                            '%r' % (key,)) from None
    raise TypeError('container names are str, not %s: %r'
                    % (type(key).__name__, key))


def _call(obj, func, *args):
    """Call a ``_m_*_getter``/``_m_*_setter`` with the instance: set on the
    class it is already bound to it; set on the instance (or as a
    staticmethod) it is passed explicitly."""
    if inspect.ismethod(func) and func.__self__ is obj:
        return func(*args)
    return func(obj, *args)


# --------------------------------------------------------------------------
# Items
# --------------------------------------------------------------------------

@zope.interface.implementer(interfaces.IMongoContained)
class MongoContained:
    """A mix-in for items of Mongo containers (``IContained``).

    ``__name__`` and ``__parent__`` are volatile (``_v_name``,
    ``_v_parent``): containers set those when they hand an item out, which
    never marks it changed, and nothing of them is stored.  When they are
    unset (an item loaded straight from a query) they come from the
    attribute named by ``_m_name_attr`` / ``_m_parent_attr`` or from the
    functions ``_m_name_getter`` / ``_m_parent_getter``; assigning
    ``__name__`` / ``__parent__`` sets the volatile value and calls
    ``_m_name_setter`` / ``_m_parent_setter`` (all called with the
    instance), and leaves the ``_m_*_attr`` attributes alone.  Not a
    ``Persistent`` subclass: combine it with ``persistent.Persistent`` in
    either order.
    """

    _v_name = None
    _v_parent = None
    _m_name_attr = None
    _m_name_getter = None
    _m_name_setter = None
    _m_parent_attr = None
    _m_parent_getter = None
    _m_parent_setter = None

    @property
    def __name__(self):
        name = self._v_name
        if name is None:
            if self._m_name_attr is not None:
                name = getattr(self, self._m_name_attr, None)
            elif self._m_name_getter is not None:
                name = _call(self, self._m_name_getter)
        return name

    @__name__.setter
    def __name__(self, value):
        if self._m_name_setter is not None:
            _call(self, self._m_name_setter, value)
        self._v_name = value

    @property
    def __parent__(self):
        parent = self._v_parent
        if parent is None:
            if self._m_parent_attr is not None:
                parent = getattr(self, self._m_parent_attr, None)
            elif self._m_parent_getter is not None:
                parent = _call(self, self._m_parent_getter)
        return parent

    @__parent__.setter
    def __parent__(self, value):
        if self._m_parent_setter is not None:
            _call(self, self._m_parent_setter, value)
        self._v_parent = value


class ContainedValue(MongoContained, persistent.Persistent):
    """The document of a value that is not a persistent, locatable object,
    kept in the collection of the Mongo container it was added to."""

    _p_mongo_store_type = True
    _v_proxy = None

    def __init__(self, value):
        self.value = value

    def _m_present(self, container, name):
        value = self.value
        if IContained.providedBy(value):
            return value
        proxy = self._v_proxy
        if proxy is None or getProxiedObject(proxy) is not value:
            proxy = self._v_proxy = ContainedProxy(value)
        proxy.__parent__ = container
        proxy.__name__ = name
        self._v_parent, self._v_name = container, name
        _remember_holder(self, proxy)
        return proxy


_HOLDERS_ANNOTATION = 'zmongo.container.value_holders'


def _remember_holder(holder, proxy):
    """Keep, for the transaction, which ``ContainedValue`` handed ``proxy``
    out: the proxy is all a move gives the target container, and it does
    not hold its document (which the identity map holds weakly only)."""
    annotations = getattr(holder._p_jar, 'annotations', None)
    if annotations is not None:
        holders = annotations.setdefault(_HOLDERS_ANNOTATION, {})
        holders[id(proxy)] = (proxy, holder)


def _holder_of(jar, proxy):
    """The ``ContainedValue`` that handed ``proxy`` out in this
    transaction, or None."""
    holders = (getattr(jar, 'annotations', None) or {}).get(
        _HOLDERS_ANNOTATION) or {}
    entry = holders.get(id(proxy))
    if entry is None or entry[0] is not proxy:
        return None
    return entry[1]


def _locate(obj, container, name):
    """What the container hands out for the stored ``obj``."""
    if isinstance(obj, ContainedValue):
        return obj._m_present(container, name)
    if isinstance(obj, MongoContained):
        # Volatile attributes: handing an item out never changes it.
        obj._v_name = name
        obj._v_parent = container
    elif isinstance(obj, persistent.Persistent):
        _restore_parent(obj, container)
    return obj


def _restore_parent(obj, container):
    """Give a plain ``IContained`` item (one storing its own ``__parent__``,
    such as a Mongo container that is an item) its parent back when its
    document holds none: the container lives in ZODB, which MongoDB cannot
    refer to, so the serializer leaves ``__parent__`` out of the document
    when the document's parent field names that container
    (``'zodb-<hex oid>'``; see :mod:`zmongo.serialize`).  Set in the
    object's ``__dict__``: handing an item out never marks it changed."""
    if not IContained.providedBy(obj):
        return
    if obj._p_changed is None:
        obj._p_activate()
    state = getattr(obj, '__dict__', None)
    if state is not None and state.get('__parent__') is None:
        state['__parent__'] = container


def _stored_parents(obj):
    """The Mongo containers holding ``obj`` as an item by its stored parent
    field (each container names the field: ``_m_parent_key``)."""
    if isinstance(obj, persistent.Persistent) and obj._p_changed is None:
        obj._p_activate()
    state = getattr(obj, '__dict__', None) or {}
    return [value for field, value in list(state.items())
            if isinstance(value, MongoContainer) and
            value._m_parent_key == field]


def _is_inside(target, obj, limit=10000):
    """True if ``target`` is ``obj`` or lies inside it, following both the
    ``__parent__`` chain and the stored parent fields."""
    seen = {}       # id -> object: kept alive, so no id is reused meanwhile
    todo = [target]
    while todo and len(seen) < limit:
        current = todo.pop()
        if current is obj:
            return True
        if current is None or id(current) in seen:
            continue
        seen[id(current)] = current
        todo.append(getattr(current, '__parent__', None))
        todo.extend(_stored_parents(current))
    return False


def _check_value(value):
    """Refuse, before any event, a value zmongo could not store."""
    if ILocation.providedBy(value) and not IContained.providedBy(value):
        # zope.container would alsoProvides(value, IContained): a
        # declaration on the object itself, which no document can hold.
        raise TypeError(
            '%r provides ILocation but not IContained: declare IContained '
            'on its class (MongoContained does) -- zope.container would '
            'declare it on the object itself, and zmongo cannot store '
            'per-object interface declarations' % (value,))


def stored_as_is(value):
    """True if a Mongo container stores ``value`` as its own document (a
    persistent, ``IContained`` object)."""
    return (isinstance(value, persistent.Persistent) and
            not isinstance(value, ContainedProxy) and
            not getattr(value, _names.P_SUB_OBJECT, False) and
            IContained.providedBy(value))


def _storable(value):
    """The object a Mongo container stores for what ``containedEvent``
    handed it: the value itself, or a ``ContainedValue`` holding it."""
    if stored_as_is(value):
        return value
    proxy = None
    if isinstance(value, ContainedProxy):
        proxy, value = value, getProxiedObject(value)
    holder = ContainedValue(value)
    holder._v_proxy = proxy
    return holder


# --------------------------------------------------------------------------
# Indexes and the per-transaction item cache
# --------------------------------------------------------------------------



#: Lookups of absent names a container answers with a query each before it
#: reads all its names at once (in one query, if it has at most
#: ``NAME_SNAPSHOT_LIMIT`` items) and answers the next ones from memory.
NAME_SNAPSHOT_AFTER_MISSES = 3
NAME_SNAPSHOT_LIMIT = 1000


class _ItemCache:
    """What one container has seen in one transaction.

    ``names``, once known, is every name the container has (read in one
    query, plus those added through it since): a name outside it is
    absent with no query.  zope.container asks for every name it adds, so
    adding K items to a container costs a few queries, not K.
    """

    __slots__ = ('container', 'entries', 'complete', 'names', 'misses')

    def __init__(self, container):
        self.container = container   # keeps id(container) from being reused
        self.entries = {}
        self.complete = False
        self.names = None
        self.misses = 0

    def forget(self):
        self.entries = {}
        self.complete = False
        self.names = None


def _pending_names(jar, container, db_name, coll_name):
    """``{name: object}`` added through ``container`` in this transaction
    and not yet written (kept whatever ``USE_CONTAINER_CACHE`` says: lookups
    that skip the flush answer for these from here)."""
    annotations = getattr(jar, 'annotations', None)
    if annotations is None:
        return None
    pending = annotations.setdefault(_PENDING_ANNOTATION, {})
    # The container is kept with its dict so that its id is not reused.
    return pending.setdefault((db_name, coll_name, id(container)),
                              (container, {}))[1]


def _pending_removals(jar, db_name, coll_name, create=False):
    """``{_id: object}`` of the items containers over the collection
    removed in this transaction (their deletes maybe still unwritten):
    keyed lookups that skip the flush leave those documents out.  None when
    there are none (and ``create`` is false)."""
    annotations = getattr(jar, 'annotations', None)
    if annotations is None:
        return None
    removals = annotations.get(_REMOVED_ANNOTATION)
    if removals is None:
        if not create:
            return None
        removals = annotations[_REMOVED_ANNOTATION] = {}
    if create:
        return removals.setdefault((db_name, coll_name), {})
    return removals.get((db_name, coll_name)) or None


def _with_field(docs, field, value):
    for doc in docs:
        doc[field] = value
        yield doc


def _collection_caches(jar, db_name, coll_name):
    annotations = getattr(jar, 'annotations', None)
    if annotations is None:
        return None
    return annotations.setdefault(_CACHE_ANNOTATION, {}).setdefault(
        (db_name, coll_name), {})


# --------------------------------------------------------------------------
# Containers over a collection
# --------------------------------------------------------------------------

@zope.interface.implementer(interfaces.IMongoContainer)
class MongoContainer(_contained.Contained, persistent.Persistent):
    """A container whose items are the documents of one collection (see
    the module docstring and ``IMongoContainer``)."""

    _m_database = None
    _m_collection = None
    _m_mapping_key = 'key'
    _m_parent_key = 'parent'
    _m_remove_documents = True

    def __init__(self, collection=None, database=None,
                 mapping_key=None, parent_key=None):
        if collection:
            self._m_collection = collection
        if database:
            self._m_database = database
        if mapping_key is not None:
            self._m_mapping_key = mapping_key
        if parent_key is not None:
            self._m_parent_key = parent_key

    # -- where the items live -------------------------------------------------

    def _m_mongo_jar(self):
        """The data manager storing this container, if it is in MongoDB.

        A new container just added to an object stored in MongoDB is stored
        with it (its parent's next write would store it anyway); one that
        lives inside its parent's document simply uses the parent's.
        """
        jar = getattr(self, '_p_jar', None)
        if interfaces.IMongoDataManager.providedBy(jar):
            return jar
        if jar is not None:
            return None
        parent_jar = getattr(self.__parent__, '_p_jar', None)
        if not interfaces.IMongoDataManager.providedBy(parent_jar):
            return None
        if not getattr(self, _names.P_SUB_OBJECT, False):
            parent_jar.insert(self)
        return parent_jar

    @property
    def _m_jar(self):
        """The data manager of the items: the container's own when it is
        stored in MongoDB, else the one the ``IMongoDataManagerProvider``
        utility gives this thread and transaction."""
        jar = self._m_mongo_jar()
        if jar is not None:
            return jar
        return zope.component.getUtility(
            interfaces.IMongoDataManagerProvider).get()

    def _m_location(self, jar):
        if not self._m_collection:
            raise ValueError('%r has no _m_collection: name the collection '
                             'of its items' % (self,))
        return self._m_database or jar.default_database, self._m_collection

    def get_collection(self):
        jar = self._m_jar
        return self._m_get_collection(jar, *self._m_location(jar))

    def _m_get_collection(self, jar, db_name, coll_name):
        self._m_raw_collection(jar, db_name, coll_name)
        return jar.get_collection(db_name, coll_name)

    def _m_raw_collection(self, jar, db_name, coll_name):
        """The pymongo collection of the items, its index made sure of."""
        raw = jar.raw_collection(db_name, coll_name)
        keys = self._m_index_keys()
        if keys:
            _indexes.ensure_index(jar, raw, keys,
                                  **self._m_index_options(keys))
        return raw

    def _m_pending(self, jar, db_name, coll_name, key):
        """The new item added as ``key`` in this transaction, while it is
        still unwritten and nothing moved it (else None)."""
        pending = _pending_names(jar, self, db_name, coll_name)
        obj = pending.get(key) if pending else None
        if obj is not None and getattr(jar, 'is_query_neutral',
                                       lambda o: False)(obj):
            return obj
        return None

    def _m_find_one_by_key(self, jar, db_name, coll_name, key, *args):
        """One keyed query.  While the only pending changes are items
        containers added or removed (which they answer for themselves), it
        needs no flush: adding K items then costs one insert at commit, not
        K, and deleting K items K lookups and one delete."""
        filter_ = self._m_key_filter(key, jar)
        if self._m_must_flush(jar, db_name, coll_name):
            coll = self._m_get_collection(jar, db_name, coll_name)
            return coll.find_one(filter_, *args)
        raw = self._m_raw_collection(jar, db_name, coll_name)
        find_cached = getattr(jar, 'find_cached', None)
        if find_cached is not None:
            # Served by the shared document cache where it can.
            docs = find_cached(db_name, coll_name,
                               _process_spec(raw, filter_),
                               args[0] if args else None, one=True,
                               flush=False,
                               unique=self._m_unique_lookup(raw))
            doc = docs[0] if docs else None
        else:
            doc = jar.read(raw.find_one, _process_spec(raw, filter_), *args)
        if doc is None or not self._m_removed_here(jar, db_name, coll_name,
                                                   doc):
            return doc
        if self._m_unique_names():
            # The one document of that name is deleted.
            return None
        # Another document may bear the name (an all-items container over
        # several parents): ask the server once the deletes are written.
        coll = self._m_get_collection(jar, db_name, coll_name)
        return coll.find_one(filter_, *args)

    @staticmethod
    def _m_removed_here(jar, db_name, coll_name, doc):
        """Whether ``doc`` (just read) is of an item removed in this
        transaction."""
        removals = _pending_removals(jar, db_name, coll_name)
        obj = removals.get(doc.get(_names.ID)) if removals else None
        return obj is not None and jar.is_removed(obj)

    def _m_unique_names(self):
        """Whether at most one document of the collection has a given
        name of this container (its unique index says so)."""
        return self._m_parent_key is not None and \
            self._m_mapping_key is not None

    def _m_must_flush(self, jar, db_name, coll_name):
        """Whether a lookup must write pending changes first: when the data
        manager says so, or when another container over the collection has
        new items still unwritten (this one cannot answer for those: an
        all-items container sees every container's items).  The pending
        additions of other containers that are written already are dropped
        on the way, so this stays cheap."""
        if getattr(jar, 'dirty_for_queries', True):
            return True
        annotations = getattr(jar, 'annotations', None) or {}
        neutral = getattr(jar, 'is_query_neutral', lambda obj: False)
        for (db, coll, _), (container, names) in list(
                annotations.get(_PENDING_ANNOTATION, {}).items()):
            if (db, coll) != (db_name, coll_name) or container is self:
                continue
            for name, obj in list(names.items()):
                if neutral(obj):
                    return True
                del names[name]
        return False

    def _m_unique_lookup(self, raw_collection):
        """True if at most one document can match a lookup by name: names
        are ``_id``\\ s, or the unique ``(parent, name)`` index exists."""
        if self._m_name_field() == _names.ID:
            return True
        if self._m_parent_key is None or self._m_mapping_key is None:
            return False
        return _indexes.index_made(raw_collection, self._m_index_keys())

    def _m_index_keys(self):
        """The index serving ``self[key]`` and ``key in self``."""
        fields = [f for f in (self._m_parent_key, self._m_mapping_key)
                  if f is not None]
        return [(f, pymongo.ASCENDING) for f in fields]

    def _m_index_options(self, keys):
        options = {'name': _INDEX_PREFIX + '_'.join(f for f, _ in keys)}
        if self._m_parent_key is not None and self._m_mapping_key is not None:
            # A name is unique within a container, even when two
            # transactions add it at once.  Partial: only documents whose
            # name is a string are indexed, so objects in no container and
            # the items of id-named containers (which have no name field)
            # may share the collection.  A lookup by name (a string)
            # implies the filter, so the index serves it.
            options.update(unique=True, partialFilterExpression={
                self._m_mapping_key: {'$gte': ''}})
        return options

    # -- the parent reference -------------------------------------------------

    def _m_get_parent_key_value(self):
        """What items store in ``_m_parent_key``: this container when it is
        stored in MongoDB (written as its DBRef), ``'zodb-<hex oid>'`` when
        it is stored in ZODB.  ``ValueError`` while it is stored nowhere."""
        jar = getattr(self, '_p_jar', None)
        if jar is None:
            jar = self._m_mongo_jar()
        if jar is None:
            raise ValueError(
                '_p_jar not found: %r is stored nowhere yet, so its items '
                'cannot refer to it; add it to MongoDB or ZODB (and, in '
                'ZODB, commit or connection.add() it) first' % (self,))
        if interfaces.IMongoDataManager.providedBy(jar):
            return self
        oid = getattr(self, '_p_oid', None)
        if oid is None:
            raise ValueError('%r has no _p_oid yet: commit it or '
                             'connection.add() it first' % (self,))
        if isinstance(oid, str):
            oid = oid.encode('latin-1')
        return _ZODB_PREFIX + bytes(oid).hex()

    def _m_subdocument_parent_value(self, jar):
        raise ValueError('%r is stored inside another document; use '
                         'SubDocumentMongoContainer for that' % (self,))

    def _m_parent_value(self, jar):
        """The parent value as it is written and queried."""
        value = self._m_get_parent_key_value()
        if value is self:
            oid = getattr(self, '_p_oid', None)
            if oid is not None:
                return oid
            return self._m_subdocument_parent_value(jar)
        if isinstance(value, str):
            return value
        return serialize.ObjectWriter(jar).get_state(value)

    def _m_parent_attribute(self, jar):
        """The value set as the items' ``_m_parent_key`` attribute (the
        container itself when it has a document: items then load it)."""
        value = self._m_get_parent_key_value()
        if value is self and getattr(self, '_p_oid', None) is None:
            return self._m_subdocument_parent_value(jar)
        return value

    def _m_get_items_filter(self, jar=None):
        """The filter selecting this container's items."""
        if jar is None:
            jar = self._m_jar
        filter_ = {}
        if self._m_parent_key is not None:
            filter_[self._m_parent_key] = self._m_parent_value(jar)
        if self._m_mapping_key is not None:
            # "Has a name": names are strings, and this is the condition of
            # the partial unique index, so the index can serve listings.
            filter_[self._m_mapping_key] = {'$gte': ''}
        return filter_

    def _m_add_items_filter(self, spec, jar=None):
        """``spec`` restricted to this container's items (a new dict)."""
        base = self._m_get_items_filter(jar)
        if spec is None:
            return base
        if not isinstance(spec, collections.abc.Mapping):
            raise TypeError('a query filter is a dict, not %s: %r'
                            % (type(spec).__name__, spec))
        if not base:
            return dict(spec)
        if set(base) & set(spec):
            return {'$and': [base, dict(spec)]}
        merged = dict(spec)
        merged.update(base)
        return merged

    # -- names <-> documents ----------------------------------------------

    def _m_key_filter(self, key, jar):
        """The query for the item named ``key`` (a str: never an operator).
        Its fields are those of the container's index."""
        filter_ = {}
        if self._m_parent_key is not None:
            filter_[self._m_parent_key] = self._m_parent_value(jar)
        filter_[self._m_mapping_key] = key
        return filter_

    def _m_name_field(self):
        return self._m_mapping_key

    def _m_name_of(self, doc):
        return doc[self._m_mapping_key]

    def _m_key_for_new(self, value):
        """The name of ``value`` when it is added without one."""
        key = getattr(value, self._m_mapping_key, None)
        if key is None:
            raise ValueError(
                'no name given and %r has no %r attribute to take it from'
                % (value, self._m_mapping_key))
        return key

    def _m_oid_for_new(self, key):
        return None


    # -- the per-transaction cache --------------------------------------------

    def _m_cache(self, jar, db_name, coll_name):
        if not USE_CONTAINER_CACHE:
            return None
        caches = _collection_caches(jar, db_name, coll_name)
        if caches is None:
            return None
        cache = caches.get(id(self))
        if cache is None:
            cache = caches[id(self)] = _ItemCache(self)
        return cache

    def _m_changed(self, jar, db_name, coll_name):
        """An item entered or left through this container: what the other
        containers over the collection remember may be wrong now."""
        caches = _collection_caches(jar, db_name, coll_name)
        for cache in (caches or {}).values():
            if cache.container is not self:
                cache.forget()

    # -- loading --------------------------------------------------------------

    def _m_load(self, jar, db_name, coll_name, doc):
        """The object of ``doc`` (a whole document just read): no query."""
        # New, or a ghost: its state is this document.  An object already
        # loaded (maybe changed) in this transaction is left alone (as
        # load_from_document does).
        return jar.load_from_document(
            _oid.oid(coll_name, doc[_names.ID], db_name), doc)

    def _m_stored(self, key, jar=None):
        """The stored object named ``key`` (a str), or ``KeyError``."""
        if jar is None:
            jar = self._m_jar
        db_name, coll_name = self._m_location(jar)
        cache = self._m_cache(jar, db_name, coll_name)
        if cache is not None:
            obj = cache.entries.get(key)
            if obj is not None:
                return obj
            if cache.complete:
                raise KeyError(key)
        obj = self._m_pending(jar, db_name, coll_name, key)
        if obj is not None:
            return obj
        if self._m_known_absent(cache, key):
            raise KeyError(key)
        doc = self._m_find_one_by_key(jar, db_name, coll_name, key)
        if doc is None:
            self._m_missed(jar, db_name, coll_name, cache)
            raise KeyError(key)
        obj = self._m_load(jar, db_name, coll_name, doc)
        if cache is not None:
            cache.entries[key] = obj
        return obj

    def _m_stored_items(self):
        """``[(name, stored object), ...]``: one query, or none (a new
        list, the caller's to change)."""
        jar = self._m_jar
        db_name, coll_name = self._m_location(jar)
        cache = self._m_cache(jar, db_name, coll_name)
        if cache is not None and cache.complete:
            return list(cache.entries.items())
        coll = self._m_get_collection(jar, db_name, coll_name)
        result = []
        name_of = self._m_name_of
        load = jar.load_from_document
        oid = _oid.oid
        for doc in self._m_find_items(coll, self._m_get_items_filter(jar),
                                      jar=jar, location=(db_name, coll_name)):
            result.append((name_of(doc),
                           load(oid(coll_name, doc[_names.ID], db_name), doc)))
        if cache is not None:
            entries = dict(result)
            cache.entries = entries
            # Names repeat only in all-items containers over several
            # parents: then the cache cannot stand for the whole container.
            cache.complete = len(entries) == len(result)
        return result

    @staticmethod
    def _m_find_all(jar, db_name, coll_name, coll, filter_,
                    projection=None):
        """The documents of a listing: through the data manager's shared
        document cache where it has one (pending changes written first,
        as the collection wrapper does), else through the wrapper."""
        find_cached = getattr(jar, 'find_cached', None)
        if find_cached is None:
            return coll.find(filter_, projection)
        raw = coll.collection
        return find_cached(db_name, coll_name, _process_spec(raw, filter_),
                           projection)

    # -- IReadContainer -------------------------------------------------------

    def __getitem__(self, key):
        key = _lookup_name(key)
        jar = self._m_jar
        moved = self._m_moved_away(jar, key)
        if moved is not None:
            return moved
        return _locate(self._m_stored(key, jar), self, key)

    def _m_moved_away(self, jar, key):
        """The item that moved out of this container as ``key`` in the first
        step of a move (``target[new] = obj``) and is not let go yet (``del
        self[key]``), as it is now located; else None.  Like a
        ``BTreeContainer``, the container keeps it under its old name until
        the second step: the name is taken (adding there is a
        ``KeyError``) and lookups give the moved object, left where it is.
        """
        moved = _moves.peek(jar, self, key)
        if moved is None or not _moves.has_moved_away(moved, self, key):
            return None
        if isinstance(moved, ContainedValue):
            return moved._v_proxy
        return moved

    def get(self, key, default=None):
        key = _lookup_name(key)
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key):
        key = _lookup_name(key)
        jar = self._m_jar
        if self._m_moved_away(jar, key) is not None:
            return True
        db_name, coll_name = self._m_location(jar)
        cache = self._m_cache(jar, db_name, coll_name)
        if cache is not None:
            if key in cache.entries:
                return True
            if cache.complete:
                return False
        if self._m_pending(jar, db_name, coll_name, key) is not None:
            return True
        if self._m_known_absent(cache, key):
            return False
        if self._m_find_one_by_key(
                jar, db_name, coll_name, key, {_names.ID: 1}) is not None:
            return True
        self._m_missed(jar, db_name, coll_name, cache)
        return False

    @staticmethod
    def _m_known_absent(cache, key):
        return cache is not None and cache.names is not None and \
            key not in cache.names

    def _m_missed(self, jar, db_name, coll_name, cache):
        """A lookup found nothing.  After a few, read all the names (one
        query) if there are not too many of them."""
        if cache is None or cache.names is not None:
            return
        cache.misses += 1
        if cache.misses != NAME_SNAPSHOT_AFTER_MISSES:
            return
        field = self._m_name_field()
        filter_ = self._m_get_items_filter(jar)
        projection = {field: 1} if field == _names.ID else \
            {field: 1, _names.ID: 0}
        coll = self._m_get_collection(jar, db_name, coll_name)
        if self._m_must_flush(jar, db_name, coll_name) or \
                _pending_removals(jar, db_name, coll_name):
            # Removed names must not be among them: written first.
            docs = coll.find(filter_, projection)
        else:
            # Like keyed lookups: what is pending is new items containers
            # answer for themselves (added to the names below).
            raw = coll.collection
            docs = jar.read(raw.find, _process_spec(raw, filter_),
                            projection)
        names = {self._m_name_of(doc)
                 for doc in docs.limit(NAME_SNAPSHOT_LIMIT + 1)}
        if len(names) > NAME_SNAPSHOT_LIMIT:
            return
        names.update(_pending_names(jar, self, db_name, coll_name) or ())
        cache.names = names

    def keys(self):
        jar = self._m_jar
        db_name, coll_name = self._m_location(jar)
        cache = self._m_cache(jar, db_name, coll_name)
        if cache is not None and cache.complete:
            return list(cache.entries)
        coll = self._m_get_collection(jar, db_name, coll_name)
        docs = self._m_find_all(jar, db_name, coll_name, coll,
                                self._m_get_items_filter(jar),
                                {self._m_name_field(): 1})
        return [self._m_name_of(doc) for doc in docs]

    def __iter__(self):
        return iter(self.keys())

    def items(self):
        # In place: a second list of 10,000 pairs would be alive at once.
        result = self._m_stored_items()
        for index, (key, obj) in enumerate(result):
            located = _locate(obj, self, key)
            if located is not obj:
                result[index] = (key, located)
        return result

    def values(self):
        return [item for _, item in self.items()]

    def __len__(self):
        jar = self._m_jar
        db_name, coll_name = self._m_location(jar)
        cache = self._m_cache(jar, db_name, coll_name)
        if cache is not None and cache.complete:
            return len(cache.entries)
        coll = self._m_get_collection(jar, db_name, coll_name)
        count_cached = getattr(jar, 'count_cached', None)
        if count_cached is not None:
            raw = coll.collection
            return count_cached(db_name, coll_name, _process_spec(
                raw, self._m_get_items_filter(jar)))
        return coll.count_documents(self._m_get_items_filter(jar))

    # -- IWriteContainer ------------------------------------------------------

    def __setitem__(self, key, value):
        if key is None:
            key = self._m_key_for_new(value)
        key = check_new_name(key)
        _check_value(value)
        origin = None
        holder = None
        if stored_as_is(value) and value._p_oid is not None:
            # Checked before any event: a refused item stays as it was.
            self._m_check_item(key, value, setting=True)
            # Where it is now: if this is a move, the old container lets it
            # go at ``del old_container[old_name]`` (see zmongo._moves).
            origin = (value.__parent__, value.__name__)
        elif isinstance(value, ContainedProxy):
            holder = self._m_holder_of(value)
            if holder is not None:
                # A plain value moving (or renamed) within the collection:
                # its document moves with it, as a stored item's does.
                origin = (value.__parent__, value.__name__)

        def setitemf(key, value):
            self._m_setitemf(key, value, origin, holder)

        _contained.setitem(self, setitemf, key, value)

    def _m_check_item(self, name, value, setting=False):
        """Refuse (``RefusedItemError``) a stored object this container
        cannot hold: one of another collection, data manager or database.

        The precondition of ``IMongoContainer.__setitem__`` (so Zope's
        ``checkObject``, ``moveableTo()`` and ``copyableTo()`` ask it
        before anything changes) and the check of ``__setitem__`` itself
        (``setting``).  New objects are always welcome: they get a document
        in the container's collection -- and so is a stored object that
        zmongo's copier checks for its copy (``_moves.checking_copy_of``):
        what will be added is a new object, not this one.
        """
        if not (stored_as_is(value) and value._p_oid is not None):
            return
        if not setting and _moves.checked_as_copy(value):
            return
        jar = self._m_jar
        self._m_check_collection(value, jar)
        self._m_check_name(value, name, setting)
        self._m_check_not_inside(value)

    def _m_check_not_inside(self, value):
        """Refuse (``TypeError``, as Zope's ``checkObject`` does) to move
        ``value`` into this container when this container is ``value`` or
        lies inside it.

        Zope only walks the ``__parent__`` chain, which is where the
        container was reached from: through an ``AllItemsMongoContainer``
        an item of ``value`` has that container as its parent, and the
        move would make ``value`` its own ancestor (a cycle: stored, it
        would vanish from every path; dispatching its events would recurse
        without end).  So the stored chain is walked too: an item of a
        Mongo container holds that container in its parent field."""
        if _is_inside(self, value):
            raise TypeError(
                'cannot move %r into %r: that container is %r itself or '
                'one of its items (at any depth, following the parent '
                'fields of the documents), and an object cannot be added '
                'to itself or its children; move it somewhere outside it'
                % (value, self, value))

    def _m_check_name(self, value, name, setting):
        """Raise if the stored ``value`` cannot be named ``name`` here."""

    def add(self, value, key=None):
        """Add ``value`` under ``key`` or, without one, under the name it
        carries (its ``_m_mapping_key`` attribute, or its ``_id`` for
        id-named containers)."""
        self[key] = value

    def _m_holder_of(self, proxy):
        """The ``ContainedValue`` document behind ``proxy`` (a plain value a
        Mongo container handed out), if it can simply move here: it is an
        item of a container over this collection and data manager.  Else
        None (the value then gets a new document here)."""
        source = getattr(proxy, '__parent__', None)
        name = getattr(proxy, '__name__', None)
        if not isinstance(source, MongoContainer) or name is None or \
                isinstance(source, IdNamesMongoContainer) or \
                isinstance(self, IdNamesMongoContainer):
            # Id-named: a document's name is its _id, which cannot change.
            return None
        jar = self._m_jar
        if source._m_jar is not jar or \
                source._m_location(jar) != self._m_location(jar):
            return None
        holder = _holder_of(jar, proxy)
        if holder is None or holder._v_proxy is not proxy or \
                holder._p_jar is not jar:
            return None
        try:
            # Still that item (not removed since it was handed out).
            current = source._m_stored(name, jar)
        except KeyError:
            return None
        return holder if current is holder else None

    def _m_setitemf(self, key, value, origin=None, stored=None):
        """Store ``value`` (as ``containedEvent`` made it) under ``key``;
        ``origin`` is the ``(parent, name)`` it had if it was stored
        already, ``stored`` the document object to keep for it (the
        ``ContainedValue`` of a plain value moving here), if any."""
        jar = self._m_jar
        db_name, coll_name = self._m_location(jar)
        if stored is None:
            stored = _storable(value)
        if isinstance(stored, ContainedValue):
            # Where its value is handed out now (tells a move's second step
            # that it moved away: ``_moves.has_moved_away``).
            stored._v_parent, stored._v_name = self, key
        if origin is not None and origin[0] is not None and \
                origin != (self, key):
            _moves.record(jar, origin[0], origin[1], stored)
            if origin[0] is self:
                # A rename: the old name is no longer this container's.
                self._m_forget_name(jar, db_name, coll_name, origin[1])
        if stored._p_oid is None:
            # Set before the insert: on an object of no data manager yet
            # that registers no change (the insert writes them anyway).
            self._m_set_fields(stored, key, jar)
            self._m_place(stored, jar, db_name, coll_name)
            insert = getattr(jar, 'insert_query_neutral', jar.insert)
            insert(stored, self._m_oid_for_new(key))
            pending = _pending_names(jar, self, db_name, coll_name)
            if pending is not None:
                pending[key] = stored
            removals = _pending_removals(jar, db_name, coll_name)
            if removals:
                # A new document with the _id of one deleted before it
                # (an id-named item added again): lookups find it.
                removals.pop(stored._p_oid.id, None)
        else:
            if hasattr(jar, 'query_relevant'):
                # An item moving in from elsewhere: lookups must see the
                # move.
                jar.query_relevant(stored)
            self._m_set_fields(stored, key, jar)
        self._m_changed(jar, db_name, coll_name)
        cache = self._m_cache(jar, db_name, coll_name)
        if cache is not None:
            cache.entries[key] = stored
            if cache.names is not None:
                cache.names.add(key)

    def _m_set_fields(self, stored, key, jar):
        """Give ``stored`` this container's name and parent fields."""
        if self._m_mapping_key is not None:
            setattr(stored, self._m_mapping_key, key)
        if self._m_parent_key is not None:
            setattr(stored, self._m_parent_key,
                    self._m_parent_attribute(jar))

    def _m_adopt(self, key, value):
        """Store ``value`` as an item without events: the copy of an item
        of the container this one is a copy of (see zmongo._copypaste).
        ``key`` None: the name a new item gets (id-named: a fresh _id)."""
        if key is None:
            key = self._m_key_for_new(value)
        key = check_new_name(key)
        if not stored_as_is(value):
            value = ContainedProxy(value)
        value.__parent__ = self
        value.__name__ = key
        self._m_setitemf(key, value)

    def _m_place(self, obj, jar, db_name, coll_name):
        """Make a new object's document go to the container's collection."""
        own_db = getattr(obj, _names.P_DATABASE, None) or jar.default_database
        own_coll = getattr(obj, _names.P_COLLECTION, None) or \
            serialize.get_dotted_name(type(obj))
        if own_coll != coll_name:
            setattr(obj, _names.P_COLLECTION, coll_name)
        if own_db != db_name:
            setattr(obj, _names.P_DATABASE, db_name)

    def _m_check_collection(self, value, jar):
        db_name, coll_name = self._m_location(jar)
        oid = value._p_oid
        if not isinstance(oid, bson.DBRef) or value._p_jar is not jar or \
                (oid.database, oid.collection) != (db_name, coll_name):
            raise interfaces.RefusedItemError(
                '%r cannot be added to %r: it is stored as %r, and the '
                'container keeps its items in %s.%s; move it only between '
                'containers over that collection, or add a copy '
                '(zope.copy.copy) instead' % (value, self, oid, db_name,
                                              coll_name))

    def _m_forget_name(self, jar, db_name, coll_name, key):
        """``key`` is no longer an item of this container."""
        cache = self._m_cache(jar, db_name, coll_name)
        if cache is not None:
            cache.entries.pop(key, None)
            if cache.names is not None:
                cache.names.discard(key)
        pending = _pending_names(jar, self, db_name, coll_name)
        if pending:
            pending.pop(key, None)

    def __delitem__(self, key):
        key = _lookup_name(key)
        jar = self._m_jar
        moved = _moves.take(jar, self, key)
        if moved is not None and _moves.has_moved_away(moved, self, key):
            self._m_let_go(jar, key, moved)
            return
        stored = self._m_stored(key, jar)
        self._m_remove(jar, key, stored)

    def _m_let_go(self, jar, key, stored):
        """The second half of a move (see zmongo._moves): ``stored``, once
        this container's ``key``, is now elsewhere.  Like a BTreeContainer,
        fire only this container's ``ContainerModifiedEvent``; delete
        nothing, except the name and parent fields still naming this
        container (an item that moved to a container keeping no such
        fields)."""
        db_name, coll_name = self._m_location(jar)
        self._m_release_fields(stored, key, jar)
        _contained.uncontained(stored, self, key)
        self._m_forget_name(jar, db_name, coll_name, key)
        self._m_changed(jar, db_name, coll_name)

    def _m_release_fields(self, obj, key, jar=None):
        """Remove from ``obj`` the name and parent fields that still make it
        this container's item ``key``: ``obj`` left for a container keeping
        no such fields, or is a copy of the item (``zope.copy`` copies the
        fields too, and a copy going to ZODB must not refer to this
        container)."""
        if self._m_parent_key is None:
            return
        if jar is None:
            jar = self._m_jar
        still_ours = getattr(obj, self._m_parent_key, None) == \
            self._m_parent_attribute(jar) and \
            (self._m_mapping_key is None or
             getattr(obj, self._m_mapping_key, None) == key)
        if not still_ours:
            return
        for field in (self._m_mapping_key, self._m_parent_key):
            if field is not None:
                try:
                    delattr(obj, field)
                except AttributeError:
                    # A class attribute, or a property we do not control.
                    pass

    def _m_remove(self, jar, key, stored):
        _contained.uncontained(_locate(stored, self, key), self, key)
        db_name, coll_name = self._m_location(jar)
        if self._m_remove_documents:
            remove = getattr(jar, 'remove_query_neutral', None)
            if remove is None or stored._p_oid is None:
                jar.remove(stored)
            else:
                # Keyed lookups leave its document out until the delete is
                # written (``_m_find_one_by_key``): no flush before them.
                _pending_removals(jar, db_name, coll_name, create=True)[
                    stored._p_oid.id] = stored
                remove(stored)
        else:
            for field in (self._m_mapping_key, self._m_parent_key):
                if field is None:
                    continue
                try:
                    delattr(stored, field)
                except AttributeError:
                    # A class attribute, or a property we do not control.
                    pass
        self._m_changed(jar, db_name, coll_name)
        cache = self._m_cache(jar, db_name, coll_name)
        if cache is not None:
            cache.entries.pop(key, None)
        pending = _pending_names(jar, self, db_name, coll_name)
        if pending:
            pending.pop(key, None)

    def clear(self):
        """Remove every item (one query, and the removals at the next
        flush)."""
        jar = self._m_jar
        for key, stored in self._m_stored_items():
            self._m_remove(jar, key, stored)

    # -- queries --------------------------------------------------------------

    def raw_find(self, spec=None, *args, **kwargs):
        """The documents of this container's items matching ``spec``."""
        return self.get_collection().find(
            self._m_add_items_filter(spec), *args, **kwargs)

    def raw_find_one(self, spec_or_id=None, *args, **kwargs):
        """The first document matching ``spec_or_id`` (an ``_id`` if it is
        not a dict) among this container's items, or None."""
        if spec_or_id is not None and \
                not isinstance(spec_or_id, collections.abc.Mapping):
            spec_or_id = {_names.ID: spec_or_id}
        return self.get_collection().find_one(
            self._m_add_items_filter(spec_or_id), *args, **kwargs)

    @staticmethod
    def _m_check_whole(args, kwargs):
        if args or kwargs.get('projection') is not None:
            raise TypeError('find() and find_one() load whole objects; use '
                            'raw_find() / raw_find_one() with a projection')

    def find(self, spec=None, *args, **kwargs):
        """The items matching ``spec`` (with their names and parent)."""
        self._m_check_whole(args, kwargs)
        jar = self._m_jar
        db_name, coll_name = self._m_location(jar)
        coll = self._m_get_collection(jar, db_name, coll_name)
        cursor = self._m_find_items(
            coll, self._m_add_items_filter(spec, jar), **kwargs)
        return (self._m_found(jar, db_name, coll_name, doc) for doc in cursor)

    def _m_find_items(self, coll, filter_, jar=None, location=None,
                      **kwargs):
        """The documents ``coll.find(filter_, **kwargs)`` finds.

        Where the filter fixes the parent field to one value, the server
        leaves it out and it is put back here: the same value, one object
        for all of them (``str``, or the container's oid).  A decoded
        ``DBRef`` per item cost more than the rest of its document, in
        time and memory, and loading then looked each one up.
        With ``jar`` and ``location`` (``(db, coll)``) and
        no other arguments, the documents come through the data manager's
        shared document cache where it has one (``_m_find_all``).
        """
        field = self._m_parent_key
        value = filter_.get(field) if field is not None else None
        cached = location is not None and not kwargs
        if type(value) not in (str, _oid.HashedDBRef) or \
                interfaces.IMongoSpecProcessor(None, None) is not None:
            if cached:
                return self._m_find_all(jar, *location, coll, filter_)
            return coll.find(filter_, **kwargs)
        if 'projection' in kwargs:
            if kwargs['projection'] is not None:
                return coll.find(filter_, **kwargs)
            kwargs = dict(kwargs)
            del kwargs['projection']
        if cached:
            docs = self._m_find_all(jar, *location, coll, filter_,
                                    {field: 0})
        else:
            docs = coll.find(filter_, {field: 0}, **kwargs)
        return _with_field(docs, field, value)

    def find_one(self, spec_or_id=None, *args, **kwargs):
        """The first item matching ``spec_or_id`` (an ``_id`` if it is not a
        dict), or None."""
        self._m_check_whole(args, kwargs)
        doc = self.raw_find_one(spec_or_id, **kwargs)
        if doc is None:
            return None
        jar = self._m_jar
        db_name, coll_name = self._m_location(jar)
        return self._m_found(jar, db_name, coll_name, doc)

    def _m_found(self, jar, db_name, coll_name, doc):
        key = self._m_name_of(doc)
        obj = self._m_load(jar, db_name, coll_name, doc)
        cache = self._m_cache(jar, db_name, coll_name)
        if cache is not None:
            cache.entries.setdefault(key, obj)
        return _locate(obj, self, key)


@zope.interface.implementer(IContainerNamesContainer)
class IdNamesMongoContainer(MongoContainer):
    """Names items by their ``_id``: ``str(ObjectId)``.

    A name given when adding becomes the new item's ``_id``: an
    ``ObjectId`` when it is one's string form, else the string itself.
    Looking up a name that is no item's (``'roy'``) is a ``KeyError``.
    Removing an item always deletes its document (an ``_id`` cannot be
    taken away).
    """

    _m_mapping_key = None

    def __init__(self, collection=None, database=None, parent_key=None):
        super().__init__(collection, database, parent_key=parent_key)

    @property
    def _m_remove_documents(self):
        return True

    def _m_unique_names(self):
        return True     # a name is an _id

    @staticmethod
    def _m_id_for_key(key):
        if bson.ObjectId.is_valid(key):
            oid = bson.ObjectId(key)
            if str(oid) == key:
                return oid
        return key

    def _m_index_keys(self):
        if self._m_parent_key is None:
            return []       # the _id index serves every lookup
        return [(self._m_parent_key, pymongo.ASCENDING),
                (_names.ID, pymongo.ASCENDING)]

    def _m_key_filter(self, key, jar):
        filter_ = {}
        if self._m_parent_key is not None:
            filter_[self._m_parent_key] = self._m_parent_value(jar)
        filter_[_names.ID] = self._m_id_for_key(key)
        return filter_

    def _m_get_items_filter(self, jar=None):
        if self._m_parent_key is None:
            return {}
        if jar is None:
            jar = self._m_jar
        return {self._m_parent_key: self._m_parent_value(jar)}

    def _m_name_field(self):
        return _names.ID

    def _m_name_of(self, doc):
        return str(doc[_names.ID])

    def _m_key_for_new(self, value):
        oid = getattr(value, '_p_oid', None)
        if isinstance(oid, bson.DBRef) and stored_as_is(value):
            return str(oid.id)
        return str(bson.ObjectId())

    def _m_oid_for_new(self, key):
        return self._m_id_for_key(key)

    def _m_check_name(self, value, name, setting):
        """An item is named by its ``_id``: it can be added under that name
        only, and never renamed.  Zope's ``checkObject`` (``setting``
        False) only refuses a rename: an item moving in from another
        container gets its name from the container's ``INameChooser``
        (this is an ``IContainerNamesContainer``)."""
        own = str(value._p_oid.id)
        if name is None or name == own:
            return
        if setting or value.__parent__ is self:
            raise interfaces.RefusedItemError(
                '%r cannot be named %r in %r: an id-named container names '
                'items by their _id, and its _id is %r (so its items cannot '
                'be renamed)' % (value, name, self, value._p_oid.id))


class AllItemsMongoContainer(MongoContainer):
    """Every document of the collection that has a name, whichever
    container it belongs to.  Names need not be unique here: a lookup
    gives one of the items of that name, listings give them all."""

    _m_parent_key = None


class SubDocumentMongoContainer(MongoContained, MongoContainer):
    """A Mongo container stored inside its parent's document (no collection
    of containers needed).  Its items refer to it by an ``ObjectId`` kept in
    its state (``_m_container_id``)."""

    _p_mongo_sub_object = True
    _m_container_id = None

    def __init__(self, collection=None, database=None,
                 mapping_key=None, parent_key=None):
        super().__init__(collection, database, mapping_key, parent_key)
        self._m_container_id = bson.ObjectId()

    # Where it is, when nobody located it (held as an attribute of the
    # object whose document holds it, and loaded with that object): that
    # object is its parent, the attribute its name -- as for any attribute
    # traversal reaches.

    def _m_parent_getter(self):
        return getattr(self, _names.P_DOC_OBJECT, None)

    def _m_name_getter(self):
        holder = getattr(self, _names.P_DOC_OBJECT, None)
        for name, value in getattr(holder, '__dict__', {}).items():
            if value is self:
                return name
        return None

    def _m_subdocument_parent_value(self, jar):
        if self._m_container_id is not None:
            return self._m_container_id
        # Written by mongopersist: its items name its whole stored state.
        return serialize.ObjectWriter(jar).get_state(self)


# --------------------------------------------------------------------------
# A container in one document
# --------------------------------------------------------------------------

@zope.interface.implementer(IContainer)
class SimpleMongoContainer(_sample.SampleContainer, persistent.Persistent):
    """A ``SampleContainer`` stored as one document,
    ``{'data': {name: DBRef(...)}}`` (values that are not persistent are
    stored inline).  Adding without a name asks the container's
    ``INameChooser`` (zope.container's ``NameChooser`` by default)."""

    _m_remove_documents = True

    def __getstate__(self):
        state = super().__getstate__()
        state['data'] = state.pop('_SampleContainer__data', {})
        return state

    def __setstate__(self, state):
        # The stored dict loads as a PersistentDict owned by this object;
        # a plain dict of our own changes nothing behind our back.
        state = dict(state)
        state['_SampleContainer__data'] = dict(state.pop('data', None) or {})
        super().__setstate__(state)

    @property
    def _m_data(self):
        return self._SampleContainer__data

    def _m_present(self, key, obj):
        if isinstance(obj, MongoContained):
            return _locate(obj, self, key)
        if IContained.providedBy(obj):
            return obj
        proxies = self.__dict__.get('_v_proxies')
        if proxies is None:
            proxies = self._v_proxies = {}
        proxy = proxies.get(key)
        if proxy is None or getProxiedObject(proxy) is not obj:
            proxy = proxies[key] = ContainedProxy(obj)
        proxy.__parent__ = self
        proxy.__name__ = key
        return proxy

    def keys(self):
        return list(self._m_data)

    def __iter__(self):
        return iter(list(self._m_data))

    def __getitem__(self, key):
        key = _lookup_name(key)
        return self._m_present(key, self._m_data[key])

    def get(self, key, default=None):
        key = _lookup_name(key)
        obj = self._m_data.get(key, _SENTINEL)
        if obj is _SENTINEL:
            return default
        return self._m_present(key, obj)

    def __contains__(self, key):
        return _lookup_name(key) in self._m_data

    has_key = __contains__

    def items(self):
        return [(key, self._m_present(key, obj))
                for key, obj in list(self._m_data.items())]

    def values(self):
        return [item for _, item in self.items()]

    def __len__(self):
        return len(self._m_data)

    def __setitem__(self, key, value):
        if key is None:
            chooser = INameChooser(self, None) or \
                _contained.NameChooser(self)
            key = chooser.chooseName('', value)
        key = check_new_name(key)
        _check_value(value)
        origin = getattr(value, '__parent__', None) \
            if stored_as_is(value) and value._p_oid is not None else None
        old_name = getattr(value, '__name__', None)
        _contained.setitem(self, self._m_setitemf, key, value)
        if isinstance(origin, MongoContainer) and \
                (origin is not self or old_name != key):
            # Moved out of a Mongo container: it lets the item go at
            # ``del origin[old_name]`` (see zmongo._moves).
            _moves.record(origin._m_jar, origin, old_name, value)

    def add(self, value, key=None):
        """Add ``value`` under ``key``, or a name the container chooses."""
        self[key] = value

    def _m_setitemf(self, key, value):
        proxy = None
        if isinstance(value, ContainedProxy):
            proxy, value = value, getProxiedObject(value)
            proxies = self.__dict__.get('_v_proxies')
            if proxies is None:
                proxies = self._v_proxies = {}
            proxies[key] = proxy
        self._m_data[key] = value
        self._p_changed = True

    def clear(self):
        """Remove every item."""
        for key in self.keys():
            del self[key]

    def __delitem__(self, key):
        key = _lookup_name(key)
        obj = self._m_data[key]
        handed_out = obj if IContained.providedBy(obj) else \
            self.__dict__.get('_v_proxies', {}).get(key)
        if handed_out is not obj and handed_out is not None and \
                getProxiedObject(handed_out) is not obj:
            handed_out = None     # a proxy of another value (not this one)
        if handed_out is not None and \
                _moves.has_moved_away(handed_out, self, key):
            # The second half of a move (``target[new] = obj``; ``del
            # self[old]``): as a BTreeContainer, only let the entry go --
            # the object's document is its new container's item now.  A
            # plain value is judged by the proxy it was handed out in.
            _contained.uncontained(handed_out, self, key)
            del self._m_data[key]
            if handed_out is not obj:
                self.__dict__['_v_proxies'].pop(key, None)
            self._p_changed = True
            return
        _contained.uncontained(self._m_present(key, obj), self, key)
        del self._m_data[key]
        self.__dict__.get('_v_proxies', {}).pop(key, None)
        self._p_changed = True
        jar = getattr(self, '_p_jar', None)
        if self._m_remove_documents and \
                isinstance(obj, persistent.Persistent) and \
                obj._p_oid is not None and obj._p_jar is jar and \
                interfaces.IMongoDataManager.providedBy(jar) and \
                not getattr(obj, _names.P_SUB_OBJECT, False):
            jar.remove(obj)
