"""How Python objects look in MongoDB.

This module turns objects into BSON documents and back; it does no I/O of
its own beyond what the data manager hands it.  The format below is the one
mongopersist 0.8 wrote, extended only where Python 3 needed more; every
document mongopersist wrote loads unchanged.

Persistent objects
------------------
Each persistent object (``persistent.Persistent``) is one document.  Its
attributes (``__getstate__()``) are the document's fields, converted by the
value rules below; ``_id`` is the object's id.

* collection: ``_p_mongo_collection`` if the class sets it, else the class's
  dotted path (``myapp.model.Person``); database: ``_p_mongo_database`` or the
  data manager's ``default_database``.
* references between persistent objects are ``DBRef(collection, _id,
  database)``; new objects referenced from a stored object get their own
  document in the same commit.
* an object of ZODB cannot be referred to, with one exception: the
  ``__parent__`` of an item of a Mongo container that lives in ZODB (a
  plain ``IContained`` item storing its own ``__parent__``, such as a Mongo
  container that is an item itself).  Its document's parent field already
  names that container, ``'zodb-<hex oid>'``, so ``__parent__`` is left
  out of the document, and the container gives it back when it hands the
  item out.  A ``__parent__`` in ZODB that no field of the document names
  so is refused like any other ZODB object.
* ``_py_serial``: an int, the document's version, when a serial conflict
  handler is in use (``_p_serial`` is the same number, 8 bytes big-endian).
* ``_py_persistent_type``: the class's dotted path, stored when several
  classes share one collection (``_p_mongo_store_type``, or automatically
  when the name map shows a second class).
* ``persistence_name_map`` (in the default database) holds one document per
  class stored in a collection named by ``_p_mongo_collection``::

      {'collection': 'address', 'database': 'app',
       'path': 'myapp.model.Address', 'doc_has_type': False}

* ``persistence_root`` (root database) holds the named roots::

      {'name': 'stephan', 'ref': DBRef('myapp.model.Person', ObjectId(..), 'app')}

Values
------
* ``None``, ``bool``, ``int`` (64-bit), ``float``, ``str``, ``bytes``
  (BSON binary), ``ObjectId``, ``DBRef`` and the other ``bson`` types are
  stored as themselves.  Integers beyond 64 bits are refused.
* naive ``datetime.datetime``: a native BSON date, queryable; BSON keeps
  milliseconds, so microseconds are truncated (as mongopersist did).
* time-zone-aware ``datetime.datetime``: a sub-document that keeps
  everything and stays queryable by instant::

      {'_py_aware_datetime': <BSON date, UTC, milliseconds>,
       'local': <BSON date, the wall time, milliseconds>,
       'microsecond': 123456, 'utcoffset': 7200.0, 'zone': 'Europe/Berlin'}

  The value is rebuilt from the wall time, ``microsecond``, the zone and
  ``fold`` (stored only when 1), so it is exact even for wall times a
  zone's rules make ambiguous or nonexistent; ``_py_aware_datetime`` is
  there for queries.  (``zone`` only for ``zoneinfo`` zones; other zones
  load as a fixed offset, equal and with the same ``utcoffset()``.)
* ``list`` and ``tuple``: BSON arrays; they load as ``PersistentList`` (so
  in-place changes are noticed), tuples therefore as lists.
* ``dict`` with ``str`` keys free of ``.``, ``$`` and NUL: a sub-document; it
  loads as ``PersistentDict``.  Any other dict (other key types, those
  characters, or keys that collide with the meta-data names here) is stored
  as ``{'dict_data': [[key, value], ...]}``; tuple keys come back as tuples.
* classes and functions: ``{'_py_type': 'type', 'path': 'module.Name'}``.
* module-level constants (what ``__reduce__`` names by a string):
  ``{'_py_constant': 'module.NAME'}``.
* other objects are reduced as pickle does (``__reduce__``, or a class's
  own ``__reduce_ex__``); every class or function named must be found again
  by its dotted name, and a container that contains itself is refused
  (``CircularReferenceError``):

  - plain instances: ``{'_py_type': 'module.Class', <attributes>...}``;
  - persistent objects that live inside their parent's document
    (``_p_mongo_sub_object``): ``{'_py_persistent_type': 'module.Class',
    <attributes>...}``;
  - anything else: ``{'_py_factory': 'module.callable',
    '_py_factory_args': [...], <attributes>...}`` -- for example a
    ``datetime.date`` is ``{'_py_factory': 'datetime.date',
    '_py_factory_args': [b'\\x07\\xbc\\x01\\x19']}``.
  - zmongo additions for what Python 3 reduces: a state that is not a plain
    attribute dict goes into ``_py_state``; the item iterators of
    ``__reduce__`` go into ``_py_list_items`` / ``_py_dict_items``.

* custom serializers (:class:`ObjectSerializer`, registered in
  :data:`SERIALIZERS`) take precedence over all of the above, except for
  the BSON-native types.

What loading may do
-------------------
A document names classes and factories; it never decides what code runs
(the rules live in :mod:`zmongo._safety`):

* always loadable: ``persistent.Persistent`` subclasses and members of
  ``enum.Enum`` subclasses (looked up by value, never made) from modules
  the application has already imported, and these standard-library value
  types: ``object``, ``set``, ``frozenset``, ``list``, ``tuple``,
  ``dict``, ``bytes``, ``bytearray``, ``str``, ``int``, ``float``,
  ``bool``, ``complex``, ``range``, ``slice``; ``datetime``'s ``date``,
  ``datetime``, ``time``, ``timedelta``, ``timezone``;
  ``decimal.Decimal``, ``fractions.Fraction``, ``uuid.UUID``,
  ``zoneinfo.ZoneInfo``; ``collections``' ``OrderedDict``, ``Counter``,
  ``deque``; ``ipaddress``' addresses, networks and interfaces.  A
  ``_py_factory`` naming one of them is called only with arguments of the
  shapes their ``__reduce__`` gives (Python 3 or 2): collections already
  in the document, numbers, short strings, codecs Python has loaded -- not
  ``bytes(10**12)``, ``list(range(10**12))`` or
  ``Fraction('1e999999999')``, nor ``str`` of anything but a str (or
  bytes and a codec), nor a dict or set of more than
  ``_safety.MAX_SAME_HASH`` distinct keys of one hash value, nor a zone
  name without a zone file, nor a ``Flag`` value beyond the class's own
  flags;
* loadable when trusted: instances of any other class (``_py_type``, the
  pickle helpers ``copyreg._reconstructor`` / ``copyreg.__newobj__``), made
  as pickle makes them -- ``__new__`` (``object.__new__`` for protocol 0)
  and the stored state, never ``__init__`` -- if the class is registered
  (:func:`register_type`) or its module lies under a trusted prefix
  (:func:`trust_modules`, a data manager's ``trusted_modules``);
* called with document values: only factories registered with
  :func:`register_factory` (or a data manager's ``factories``), and the
  standard-library types above;
* ``_py_constant`` and stored classes (``{'_py_type': 'type', ...}``)
  resolve to attributes of imported or trusted modules: references, never
  called (a function by its own dotted name only); names are looked up in
  module ``__dict__`` dicts and with ``inspect.getattr_static`` in classes,
  so no module ``__getattr__`` hook or property runs;
* a module that is not imported is imported for a document only when it
  lies under a trusted prefix, or is zmongo's own ``zmongo.container`` or
  ``zmongo.serialize`` (whose plain classes are still not trusted); never
  a ``__main__`` module;
* a state's attribute names are strings; a ``(dict, slots)`` state sets
  only declared slots;
* values nest at most 100 levels deep, as in MongoDB.

Anything else is refused with ``UnsafeDocumentError`` (a document naming
code) or ``DocumentLoadError`` (one that cannot be read), naming the
database, collection, ``_id``, the field path in the document and the call
that would allow it; nothing was called or imported.  Writing refuses the
same objects up front (``SerializationError``), so nothing is stored that
could not be loaded.
"""
import copyreg
import datetime
import types
import weakref
import zoneinfo

import bson
import persistent
import persistent.list
import persistent.mapping
import zope.interface

from zmongo import _dotted
from zmongo import _names
from zmongo import _oid
from zmongo import _safety
from zmongo import interfaces
from zmongo._dotted import get_dotted_name  # noqa: F401  (public name)

__all__ = [
    'ObjectSerializer', 'ObjectWriter', 'ObjectReader', 'SERIALIZERS',
    'get_dotted_name', 'PersistentDict', 'PersistentList',
    'register_factory', 'unregister_factory', 'register_type',
    'unregister_type', 'trust_modules', 'untrust_modules',
]

#: Custom serializers (``IObjectSerializer``), asked in order.  A data
#: manager can be given its own list with its ``serializers`` option.
SERIALIZERS = []

#: Factories documents may call (see :mod:`zmongo._safety`).  A data
#: manager can add its own with its ``factories`` option.
FACTORIES = _safety.REGISTRY.factories


def register_factory(factory):
    """Let stored documents name ``factory`` (a callable or its dotted
    name) as their ``_py_factory`` and have it called with the document's
    ``_py_factory_args``: only for callables meant to rebuild stored values
    (mongopersist documents of classes with their own ``__reduce__``, or
    factory functions).  Returns ``factory``."""
    return FACTORIES.register(factory)


def unregister_factory(factory):
    """Undo :func:`register_factory`."""
    FACTORIES.unregister(factory)


def register_type(cls):
    """Let documents hold instances of the plain (non-persistent) class
    ``cls`` (``_py_type``), rebuilt as pickle does: ``__new__`` and the
    stored state, never ``__init__``.  Returns ``cls``, so it can decorate
    the class."""
    return _safety.REGISTRY.register_type(cls)


def unregister_type(cls):
    """Undo :func:`register_type`."""
    _safety.REGISTRY.unregister_type(cls)


def trust_modules(*prefixes):
    """Trust the modules ``prefixes`` name, and those below them (``'myapp'``
    covers ``myapp`` and ``myapp.*``): documents may hold instances of
    their classes, and may name them before the application imported them
    (zmongo then imports them).  For every data manager of the process; one
    data manager alone: its ``trusted_modules`` option."""
    _safety.REGISTRY.trust(prefixes)


def untrust_modules(*prefixes):
    """Undo :func:`trust_modules` for these prefixes."""
    _safety.REGISTRY.untrust(prefixes)


_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_EPOCH = datetime.datetime(1970, 1, 1)

# Exact types stored as themselves (int and datetime are checked apart).
_NATIVE = frozenset({
    bool, float, str, bytes, type(None),
    bson.ObjectId, bson.DBRef, _oid.HashedDBRef, bson.Int64, bson.Decimal128,
    bson.Regex, bson.Timestamp, bson.MinKey, bson.MaxKey, bson.Code,
    bson.Binary,
})
# Reading: exact types that are already their own value.
_READ_AS_IS = frozenset({
    bool, int, float, str, bytes, type(None), datetime.datetime,
    bson.ObjectId, bson.Int64, bson.Decimal128, bson.Regex, bson.Timestamp,
    bson.MinKey, bson.MaxKey, bson.Code, bson.Binary,
})
# Reading: exact types of references to persistent objects.
_REFERENCES = frozenset({bson.DBRef, _oid.HashedDBRef})
_NON_PERSISTENT_MARKERS = (
    _names.PY_FACTORY, _names.PY_CONSTANT, _names.PY_TYPE,
    _names.PY_PERSISTENT_TYPE)
_PY_STATE = '_py_state'
_PERSISTENT_SETSTATE = persistent.Persistent.__setstate__
_PY_LIST_ITEMS = '_py_list_items'
_PY_DICT_ITEMS = '_py_dict_items'
_EXTRA_KEYS = frozenset({_PY_STATE, _PY_LIST_ITEMS, _PY_DICT_ITEMS})
_RESERVED_DICT_KEYS = _names.META_KEYS | _EXTRA_KEYS
# Classes and functions whose dotted name was checked to find them again.
_FOUND_BY_NAME = {}


class PersistentDict(persistent.mapping.PersistentMapping):
    """A dict stored inside its owner's document; changes mark the owner."""
    _p_mongo_sub_object = True

    def __init__(self, data=None, **kwargs):
        if data is None:
            self.data = {}
        elif isinstance(data, dict):
            self.data = data.copy()
        else:
            self.data = dict(data)
        if kwargs:
            self.update(kwargs)

    def __eq__(self, other):
        if isinstance(other, persistent.mapping.PersistentMapping):
            other = other.data
        return self.data == other

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = None


class PersistentList(persistent.list.PersistentList):
    """A list stored inside its owner's document; changes mark the owner."""
    _p_mongo_sub_object = True


_new_persistent_list = PersistentList.__new__


@zope.interface.implementer(interfaces.IObjectSerializer)
class ObjectSerializer:
    """Base class for custom serializers: override all four methods."""

    def can_read(self, state):
        raise NotImplementedError

    def read(self, state):
        raise NotImplementedError

    def can_write(self, obj):
        raise NotImplementedError

    def write(self, obj):
        raise NotImplementedError


def _plain_key(key):
    return (type(key) is str and '.' not in key and '$' not in key
            and '\0' not in key and key not in _RESERVED_DICT_KEYS)


#: Fields a persistent object's document uses for itself.  Only attributes
#: of these names push the document into ``dict_data`` form; others that
#: look like meta-data (``_py_serial`` written by a serial handler and read
#: back by a data manager without one) are ordinary fields at the top level.
_TOP_RESERVED_KEYS = frozenset({_names.ID, _names.PY_PERSISTENT_TYPE,
                                _PY_STATE})


def _plain_top_key(key):
    return (type(key) is str and '.' not in key and '$' not in key
            and '\0' not in key and key not in _TOP_RESERVED_KEYS)


def _describe(obj):
    try:
        text = repr(obj)
    except Exception:  # a broken __repr__ must not hide the real error
        text = object.__repr__(obj)
    return text if len(text) <= 80 else text[:77] + '...'


class _PathError(Exception):
    """Carries the attribute path to a value that cannot be stored."""

    def __init__(self, error, path):
        super().__init__(error, path)
        self.error = error
        self.path = path


def _at(path_segment, error):
    if isinstance(error, _PathError):
        return _PathError(error.error, [path_segment] + error.path)
    return _PathError(error, [path_segment])


def _format_path(path):
    out = ''
    for segment in path:
        out += ('[%r]' % (segment,)) if not isinstance(segment, str) \
            else ('.' + segment if out else segment)
    return out


#: ``attr.sub[0]``: a field path as error messages show it.
format_path = _format_path


@zope.interface.implementer(interfaces.IObjectWriter)
class ObjectWriter:
    """Builds documents from objects (see the module docstring for the
    format).  ``jar`` is the data manager; without one only values that need
    no database (no new persistent objects) can be converted."""

    def __init__(self, jar):
        self._jar = jar
        # (class, database, collection) whose name map entry exists, and
        # whether its documents store their type: entries never change
        # once written (see _namemap), so each is asked once per writer,
        # not once per object stored.
        self._registered = set()
        self._has_type = {}

    @property
    def _serializers(self):
        # A data manager's own list (even an empty one) replaces the
        # global registry; None means "use the registry".
        serializers = getattr(self._jar, 'serializers', None)
        return SERIALIZERS if serializers is None else serializers

    # -- where objects go ---------------------------------------------------

    def get_collection_name(self, obj):
        """Return ``(database, collection)`` of ``obj``'s document."""
        oid = getattr(obj, '_p_oid', None)
        if isinstance(oid, bson.DBRef):
            return oid.database, oid.collection
        default_db = self._jar.default_database if self._jar else None
        db_name = getattr(obj, _names.P_DATABASE, None) or default_db
        coll_name = getattr(obj, _names.P_COLLECTION, None)
        if coll_name is None:
            path = get_dotted_name(type(obj))
            if not _dotted.is_importable_name(path):
                raise interfaces.SerializationError(
                    'cannot store %s: class %s is not importable (defined '
                    'inside a function?), so it could never be loaded; '
                    'define it at module level or set _p_mongo_collection'
                    % (_describe(obj), path))
            return db_name, path
        if self._jar is not None:
            key = (type(obj), db_name, coll_name)
            if key not in self._registered and \
                    not self._jar.name_map.register(db_name, coll_name,
                                                    type(obj)):
                # Known (not written now): the name map's next read of
                # the collection's entries stays where it was.
                self._registered.add(key)
        return db_name, coll_name

    def _store_type(self, obj):
        if getattr(obj, _names.P_STORE_TYPE, False):
            return True
        if self._jar is None or getattr(obj, _names.P_COLLECTION, None) is None:
            return False
        db_name, coll_name = self.get_collection_name(obj)
        key = (type(obj), db_name, coll_name)
        has_type = self._has_type.get(key)
        if has_type is None:
            has_type = self._has_type[key] = self._jar.name_map.doc_has_type(
                db_name, coll_name, type(obj))
        return has_type

    # -- values -------------------------------------------------------------

    def get_state(self, obj, pobj=None, seen=None):
        """Return the BSON value storing ``obj`` (see module docstring)."""
        try:
            return self._get_state(obj, pobj, seen if seen is not None else [])
        except _PathError as err:
            raise self._path_error(err, pobj) from err.error

    def _path_error(self, err, pobj):
        where = _format_path(err.path)
        owner = ' of %s' % _describe(pobj) if pobj is not None else ''
        if isinstance(err.error, interfaces.CircularReferenceError):
            return interfaces.CircularReferenceError(
                '%s (at %s%s)' % (err.error, where, owner))
        return interfaces.SerializationError(
            'cannot store attribute %s%s: %s' % (where, owner, err.error))

    def _get_state(self, obj, pobj, seen):
        t = type(obj)
        if t in _NATIVE:
            return obj
        if t is int:
            if _INT64_MIN <= obj <= _INT64_MAX:
                return obj
            raise interfaces.SerializationError(
                'int %d does not fit in 64 bits, the largest integer BSON '
                'holds; store it as a str or Decimal128' % obj)
        if t is datetime.datetime:
            if obj.tzinfo is None or obj.utcoffset() is None:
                return obj
            return self._aware_datetime_state(obj)
        for serializer in self._serializers:
            if serializer.can_write(obj):
                return serializer.write(obj)
        if isinstance(obj, (type, types.FunctionType,
                            types.BuiltinFunctionType)):
            return {_names.PY_TYPE: _names.TYPE_MARKER,
                    _names.TYPE_PATH: self._class_path(obj)}
        if getattr(obj, _names.P_SUB_OBJECT, False) and \
                isinstance(obj, persistent.Persistent):
            self._adopt(obj, pobj)
        if t is list or t is tuple or isinstance(obj, PersistentList):
            return self._sequence_state(obj, pobj, seen)
        if t is dict or isinstance(obj, PersistentDict):
            return self._dict_state(obj, pobj, seen)
        if isinstance(obj, persistent.Persistent) and \
                not getattr(obj, _names.P_SUB_OBJECT, False):
            return self.get_persistent_state(obj, seen)
        return self.get_non_persistent_state(obj, seen, pobj)

    def _adopt(self, obj, pobj):
        """A persistent sub-object reports its changes to its document's
        object; make sure it knows both."""
        if obj._p_jar is None and pobj is not None and \
                getattr(pobj, '_p_jar', None) is not None:
            obj._p_jar = pobj._p_jar
        if pobj is not None:
            setattr(obj, _names.P_DOC_OBJECT, pobj)

    @staticmethod
    def _enter(obj, seen):
        """Lists and dicts are stored inline like other non-persistent
        values: one that contains itself has no finite document."""
        if any(o is obj for o in seen):
            raise interfaces.CircularReferenceError(_describe(obj))
        seen.append(obj)

    def _sequence_state(self, obj, pobj, seen):
        self._enter(obj, seen)
        try:
            out = []
            for index, value in enumerate(obj):
                try:
                    out.append(self._get_state(value, pobj, seen))
                except (_PathError, interfaces.SerializationError,
                        interfaces.CircularReferenceError) as err:
                    raise _at(index, err)
            return out
        finally:
            seen.pop()

    def _dict_state(self, obj, pobj, seen):
        self._enter(obj, seen)
        try:
            return self._dict_items_state(obj, pobj, seen)
        finally:
            seen.pop()

    def _dict_items_state(self, obj, pobj, seen, plain_key=_plain_key):
        items = obj.data.items() if isinstance(obj, PersistentDict) \
            else obj.items()
        plain = True
        converted = []
        native = _NATIVE
        get_state = self._get_state
        for key, value in items:
            # Most values are stored as themselves: no call for those.
            if type(value) in native:
                converted.append((key, value))
            else:
                try:
                    converted.append((key, get_state(value, pobj, seen)))
                except (_PathError, interfaces.SerializationError,
                        interfaces.CircularReferenceError) as err:
                    raise _at(key, err)
            plain = plain and plain_key(key)
        # A lone ``dict_data`` field would read back as the pair form.
        if plain and not (len(converted) == 1 and
                          converted[0][0] == _names.DICT_DATA):
            return dict(converted)
        pairs = []
        for key, value in converted:
            try:
                pairs.append([self._get_state(key, pobj, seen), value])
            except (_PathError, interfaces.SerializationError,
                    interfaces.CircularReferenceError) as err:
                raise _at(key, err)
        return {_names.DICT_DATA: pairs}

    def _aware_datetime_state(self, obj):
        offset = obj.utcoffset()
        try:
            utc = (obj - offset).replace(tzinfo=None)
        except OverflowError:
            raise interfaces.SerializationError(
                '%r is not storable: its UTC time is outside the years '
                '1-9999' % (obj,)) from None
        wall = obj.replace(tzinfo=None)
        state = {
            _names.PY_AWARE_DATETIME: utc.replace(
                microsecond=utc.microsecond // 1000 * 1000),
            'local': wall.replace(microsecond=wall.microsecond // 1000 * 1000),
            'microsecond': obj.microsecond,
            'utcoffset': offset.total_seconds(),
        }
        if isinstance(obj.tzinfo, zoneinfo.ZoneInfo) and obj.tzinfo.key:
            state['zone'] = obj.tzinfo.key
        if obj.fold:
            state['fold'] = obj.fold
        return state

    def get_persistent_state(self, obj, seen=None):
        """A reference to a persistent object: its ``DBRef``.  A new object
        is added to the data manager (and written in the same flush)."""
        jar = obj._p_jar
        if jar is not None and jar is not self._jar:
            raise interfaces.SerializationError(
                '%s belongs to another data manager (%r); zmongo can only '
                'reference objects it stores' % (_describe(obj), jar))
        if obj._p_oid is None:
            if self._jar is None:
                raise interfaces.SerializationError(
                    'cannot reference new persistent %s without a data '
                    'manager' % _describe(obj))
            return self._jar.insert(obj)
        return obj._p_oid

    def _reduce(self, obj):
        reducer = copyreg.dispatch_table.get(type(obj))
        try:
            if reducer is not None:
                return reducer(obj)
            try:
                # Protocol 0 is __reduce__() (mongopersist's format) unless
                # the class has its own __reduce_ex__, which pickle would
                # use too (enum members: the member, not a copy of it).
                return obj.__reduce_ex__(0)
            except TypeError:
                # Classes with __slots__ need protocol 2.
                return obj.__reduce_ex__(2)
        except Exception as err:
            raise interfaces.SerializationError(
                'cannot store %s of type %s: it cannot be reduced (%s); '
                'make it picklable or register an ObjectSerializer for it'
                % (_describe(obj), get_dotted_name(type(obj)), err)) from err

    def get_non_persistent_state(self, obj, seen, pobj=None):
        """An object stored inside its parent's document (see the module
        docstring for the forms)."""
        safe = isinstance(obj, interfaces.REFERENCE_SAFE_TYPES) or \
            getattr(obj, '_m_reference_safe', False)
        if not safe:
            if any(o is obj for o in seen):
                raise interfaces.CircularReferenceError(obj)
            seen.append(obj)
        try:
            return self._reduced_state(obj, pobj, seen)
        finally:
            if not safe:
                seen.pop()

    @property
    def _loader(self):
        reader = self.__dict__.get('_reader')
        if reader is None:
            reader = self.__dict__['_reader'] = ObjectReader(self._jar)
        return reader

    @staticmethod
    def _check_loadable(obj, check, *args):
        """Never write what the loader would refuse to call (see
        :mod:`zmongo._safety`): fail now, not when the data is needed."""
        try:
            check(*args)
        except interfaces.UnsafeDocumentError as err:
            raise interfaces.SerializationError(
                'cannot store %s: loading it would be refused: %s'
                % (_describe(obj), err)) from None

    def _reduced_state(self, obj, pobj, seen):
        reduced = self._reduce(obj)
        if isinstance(reduced, str):
            return {_names.PY_CONSTANT: '%s.%s' % (obj.__module__, reduced)}
        reduced = tuple(reduced) + (None,) * (5 - len(reduced))
        factory, args, obj_state, list_items, dict_items = reduced
        args = tuple(args or ())
        klass = type(obj)
        if factory is copyreg._reconstructor and \
                args == (klass, object, None):
            path = self._class_path(klass)
            self._check_loadable(obj, self._loader._resolve_class, path,
                                 'class')
            state = {_names.PY_TYPE: path}
        elif factory is copyreg.__newobj__ and args == (klass,) and \
                isinstance(obj, persistent.Persistent):
            path = self._class_path(klass)
            self._check_loadable(obj, self._loader._persistent_class, path)
            state = {_names.PY_PERSISTENT_TYPE: path}
        else:
            if not callable(factory):
                raise interfaces.SerializationError(
                    '%s reduces to a non-callable factory %r'
                    % (_describe(obj), factory))
            path = self._class_path(factory)
            self._check_loadable(obj, self._loader._factory, path, args)
            state = {
                _names.PY_FACTORY: path,
                _names.PY_FACTORY_ARGS: self._get_state(
                    list(args), pobj, seen),
            }
        if obj_state is not None:
            if isinstance(obj_state, dict) and \
                    all(_plain_key(k) for k in obj_state):
                for name, value in obj_state.items():
                    try:
                        state[name] = self._get_state(value, pobj, seen)
                    except (_PathError, interfaces.SerializationError,
                            interfaces.CircularReferenceError) as err:
                        raise _at(name, err)
            elif not (isinstance(obj_state, dict) and not obj_state):
                state[_PY_STATE] = self._get_state(obj_state, pobj, seen)
        if list_items is not None:
            items = list(list_items)
            if items:
                state[_PY_LIST_ITEMS] = self._get_state(items, pobj, seen)
        if dict_items is not None:
            items = [list(pair) for pair in dict_items]
            if items:
                state[_PY_DICT_ITEMS] = self._get_state(items, pobj, seen)
        return state

    @staticmethod
    def _class_path(obj):
        path = get_dotted_name(obj)
        if not _dotted.is_importable_name(path):
            raise interfaces.SerializationError(
                '%s is not importable (defined inside a function?), so it '
                'could never be loaded; define it at module level' % path)
        if _FOUND_BY_NAME.get(path) is not obj:
            # As pickle does: write only names that lead back to the object
            # (not, say, C types that are not module attributes).
            try:
                found = _dotted.resolve(path)
            except ImportError:
                found = None
            if found is not obj:
                raise interfaces.SerializationError(
                    '%s cannot be stored by name: %r does not lead back to '
                    'it, so it could never be loaded; make it picklable or '
                    'register an ObjectSerializer for it'
                    % (_describe(obj), path))
            _FOUND_BY_NAME[path] = obj
        return path

    # -- documents ------------------------------------------------------------

    def get_full_state(self, obj):
        """The complete document of persistent ``obj`` (``_id`` included
        once it has an oid)."""
        raw = self._without_zodb_parent(obj.__getstate__())
        try:
            if isinstance(raw, dict) and all(type(k) is str for k in raw):
                doc = self._dict_items_state(raw, obj, [], _plain_top_key)
            else:
                doc = {_PY_STATE: self._get_state(raw, obj, [])}
        except _PathError as err:
            raise self._path_error(err, obj) from err.error
        except interfaces.SerializationError as err:
            raise interfaces.SerializationError(
                'cannot store %s: %s' % (_describe(obj), err)) from err
        if self._store_type(obj):
            doc[_names.PY_PERSISTENT_TYPE] = get_dotted_name(type(obj))
        if self._jar is not None:
            self._jar.conflict_handler.on_before_store(obj, doc)
        if obj._p_oid is not None:
            doc[_names.ID] = obj._p_oid.id
        return doc

    @staticmethod
    def _without_zodb_parent(raw):
        """``raw`` without its ``__parent__`` when that is an object of ZODB
        that the state also names as ``'zodb-<hex oid>'`` (see the module
        docstring); else ``raw`` itself."""
        if not isinstance(raw, dict):
            return raw
        parent = raw.get('__parent__')
        jar = getattr(parent, '_p_jar', None)
        oid = getattr(parent, '_p_oid', None)
        if jar is None or interfaces.IMongoDataManager.providedBy(jar) or \
                not isinstance(oid, bytes):
            return raw
        marker = _names.ZODB_PARENT_PREFIX + oid.hex()
        if not any(type(value) is str and value == marker
                   for value in raw.values()):
            return raw
        raw = dict(raw)
        del raw['__parent__']
        return raw

    def store(self, obj, ref_only=False, id=None):
        """Schedule ``obj`` for writing; return its ``DBRef``."""
        if obj._p_oid is None:
            return self._jar.insert(obj, id)
        self._jar.register(obj)
        return obj._p_oid


def _slots_state(obj, state):
    """``(dict, slots)`` for ``Persistent.__setstate__`` (or a plain
    object's state), which sets every name of ``slots`` with ``setattr``:
    only the slots the class declares may be set (never ``_p_jar``,
    ``__class__`` or other names a document must not choose).  The dict
    part goes into ``__dict__``, where any name is an attribute only: it
    must be made of strings."""
    inst_dict, slots = state
    if inst_dict is not None and not isinstance(inst_dict, dict):
        raise interfaces.DocumentLoadError(
            'the state of %s is not (dict, slots): its first part is %s'
            % (type(obj).__name__, type(inst_dict).__name__))
    if slots is None:
        slots = {}
    if not isinstance(slots, dict):
        raise interfaces.DocumentLoadError(
            'the state of %s is not (dict, slots): its second part is %s'
            % (type(obj).__name__, type(slots).__name__))
    declared = set(copyreg._slotnames(type(obj)))
    for name in inst_dict or ():
        if type(name) is not str:
            raise interfaces.DocumentLoadError(
                'the state of %s has the attribute name %s; attribute '
                'names are strings' % (type(obj).__name__, _describe(name)))
    for name in slots:
        if type(name) is not str or name.startswith(('_p_', '_v_')) or \
                (name.startswith('__') and name.endswith('__')):
            raise interfaces.UnsafeDocumentError(
                'the state of %s names the attribute %r, which a document '
                'may not set' % (type(obj).__name__, name))
    undeclared = sorted(set(slots) - declared)
    if undeclared:
        raise interfaces.UnsafeDocumentError(
            'the state of %s sets %s, not among the slots its class '
            'declares (%s)' % (type(obj).__name__, ', '.join(undeclared),
                               ', '.join(sorted(declared)) or 'none'))
    return (inst_dict, slots)


#: The two ways a document fails to load; either carries the field path.
_LOAD_ERRORS = (interfaces.UnsafeDocumentError, interfaces.DocumentLoadError)
#: What a standard-library constructor or ``__setstate__`` raises when the
#: document's values do not fit it.
_BUILD_ERRORS = (TypeError, ValueError, KeyError, AttributeError,
                 ArithmeticError, LookupError)


def _in_field(err, segment):
    """Record, while ``err`` rises out of a value, where in the document it
    happened (``value._py_factory_args[0]``)."""
    path = err.__dict__.setdefault('field_path', [])
    path.insert(0, segment)
    return err


def _located(err, doc_id, database, collection, field_path=None):
    """``err`` again, its message naming the document and field it is
    about, its attributes too (see ``interfaces.DocumentLoadError``)."""
    if field_path is None:
        field_path = err.__dict__.get('field_path', [])
    field = _format_path(field_path)
    where = 'document %r of %s.%s' % (doc_id, database, collection)
    if field:
        where += ', field %s' % field
    located = type(err)('%s: %s' % (where, err))
    located.database = database
    located.collection = collection
    located.document_id = doc_id
    located.field = field
    located.reason = str(err)
    return located


@zope.interface.implementer(interfaces.IObjectReader)
class ObjectReader:
    """Builds objects from documents; what a document may make it import,
    create or call is decided by :mod:`zmongo._safety` (the rules are in
    the module docstring above)."""

    def __init__(self, jar):
        self._jar = jar
        # The application's registry plus this data manager's own trust.
        self._policy = _safety.Policy(
            getattr(jar, 'trusted_modules', ()),
            getattr(jar, 'factories', None))
        # Per reader (so per data manager), misses included: a collection
        # name is looked up once, and a class installed later is found by
        # the next data manager.
        self._collection_classes = {}
        # Persistent classes by the path documents name them with: checked
        # once per reader, not once per document loaded.
        self._persistent_classes = {}
        # Found names (references: nothing found is called for finding it).
        self._resolved = {}
        # How deeply nested the value being read is (MAX_DEPTH).
        self._depth = 0
        # The last reference read and its object: the items of a container
        # all refer to it (their parent field), and a decoded ``DBRef``
        # hashes and compares in Python -- once per item, without this.
        self._last_reference = (None, None)

    @property
    def _serializers(self):
        # A data manager's own list (even an empty one) replaces the
        # global registry; None means "use the registry".
        serializers = getattr(self._jar, 'serializers', None)
        return SERIALIZERS if serializers is None else serializers

    # -- names --------------------------------------------------------------

    def _lookup(self, path, what):
        try:
            return self._resolved[path]
        except (KeyError, TypeError):
            pass
        obj = self._policy.resolve(path, what)
        self._resolved[path] = obj
        return obj

    def simple_resolve(self, path):
        """The object at dotted ``path``, a reference that is not called
        (cached per reader while found).  Only modules already imported,
        or under a trusted prefix, are searched: ``ImportError`` when
        nothing is found there, ``UnsafeDocumentError`` when only
        importing an untrusted module could find it."""
        try:
            return self._lookup(path, 'name')
        except interfaces.DocumentLoadError as err:
            raise ImportError(str(err)) from None

    def _resolve_class(self, path, what):
        """A class whose instances a document may have made (``_py_type``):
        see :meth:`zmongo._safety.Policy.instance_class`."""
        if not isinstance(path, str):
            raise interfaces.DocumentLoadError(
                '%s must be a dotted class name, not %s'
                % (what, _describe(path)))
        return self._policy.allow_instances(
            self._class_at(path, what), what)

    def _class_at(self, path, what):
        klass = self._lookup(path, what)
        if not isinstance(klass, type):
            raise interfaces.UnsafeDocumentError(
                '%s %r is %s, not a class; refusing to use it'
                % (what, path, _describe(klass)))
        return klass

    def resolve(self, dbref, doc=None):
        """The class of the object ``dbref`` points to; ``ImportError`` if the
        collection maps to no class."""
        try:
            return self._resolve(dbref, doc)
        except _LOAD_ERRORS as err:
            # Name the document whose class could not be used.
            raise _located(err, dbref.id, dbref.database,
                           dbref.collection) from err

    def _resolve(self, dbref, doc):
        if doc is None:
            doc = self._jar.latest_state(dbref)
        if doc is not None and _names.PY_PERSISTENT_TYPE in doc:
            return self._document_class(doc)
        klass = self._class_named_by_collection(dbref.collection)
        if klass is not None:
            return klass
        name_map = self._jar.name_map
        paths = name_map.paths(dbref.database, dbref.collection)
        if len(paths) == 1:
            return self._persistent_class(paths[0][0])
        if len(paths) > 1:
            if doc is None:
                doc = self._jar.load_document(dbref)
            if _names.PY_PERSISTENT_TYPE in doc:
                return self._document_class(doc)
            for path, has_type in paths:
                if not has_type:
                    return self._persistent_class(path)
            raise ImportError(
                'document %r of %s.%s has no %s and every class sharing the '
                'collection stores one' % (
                    dbref.id, dbref.database, dbref.collection,
                    _names.PY_PERSISTENT_TYPE))
        try:
            klass = self._lookup(dbref.collection, 'collection')
        except interfaces.DocumentLoadError:
            raise ImportError(
                'collection %s.%s maps to no class: it is not the dotted '
                'path of a class found where documents may look (import its '
                'module before loading, or trust it with trust_modules()) '
                'and %s has no entry for it' % (
                    dbref.database, dbref.collection,
                    self._jar.name_map_collection)) from None
        if not (isinstance(klass, type) and
                issubclass(klass, persistent.Persistent)):
            raise ImportError('collection %s.%s names %s, not a persistent '
                              'class; only persistent.Persistent subclasses '
                              'have documents of their own'
                              % (dbref.database, dbref.collection,
                                 _describe(klass)))
        return klass

    def _document_class(self, doc):
        try:
            return self._persistent_class(doc[_names.PY_PERSISTENT_TYPE])
        except _LOAD_ERRORS as err:
            raise _in_field(err, _names.PY_PERSISTENT_TYPE)

    def _class_named_by_collection(self, coll_name):
        """A collection named after its class (the default) needs no name
        map query: the class whose dotted path it is, if that class keeps
        its documents there."""
        try:
            return self._collection_classes[coll_name]
        except KeyError:
            if not _dotted.is_dotted_name(coll_name):
                self._collection_classes[coll_name] = None
                return None
            try:
                klass = self._lookup(coll_name, 'collection')
            except _LOAD_ERRORS:
                # Not found where a document may look (the name map may
                # know the collection; if not, _resolve says why).
                klass = None
            if not (isinstance(klass, type) and
                    issubclass(klass, persistent.Persistent) and
                    get_dotted_name(klass) == coll_name and
                    getattr(klass, _names.P_COLLECTION, None) is None):
                klass = None
            self._collection_classes[coll_name] = klass
        return klass

    def _persistent_class(self, path):
        try:
            return self._persistent_classes[path]
        except (KeyError, TypeError):
            pass
        if not isinstance(path, str):
            raise interfaces.DocumentLoadError(
                'persistent class must be a dotted class name, not %s'
                % _describe(path))
        klass = self._class_at(path, 'persistent class')
        if not issubclass(klass, persistent.Persistent):
            raise interfaces.UnsafeDocumentError(
                'persistent class %r is not a persistent.Persistent subclass'
                '; refusing to create it' % path)
        self._persistent_classes[path] = klass
        return klass

    # -- values -------------------------------------------------------------

    def get_object(self, state, obj, _persistent=True):
        """The Python value of ``state``; ``obj`` owns the document."""
        t = type(state)
        if t in _READ_AS_IS:
            return state
        # Any DBRef subclass (zmongo's own oids among them) is a reference.
        if t is bson.DBRef or isinstance(state, bson.DBRef):
            if state.database is None:
                # MongoDB's convention: a reference without a database points
                # into the database of the document holding it.
                oid = getattr(obj, '_p_oid', None)
                state = _oid.oid(
                    state.collection, state.id,
                    oid.database if isinstance(oid, bson.DBRef)
                    else self._jar.default_database)
            return self._reference(state)
        for serializer in self._serializers:
            if serializer.can_read(state):
                return serializer.read(state)
        if t is list or t is dict:
            self._enter()
            try:
                if t is list:
                    return self._list_value(state, obj, _persistent)
                return self._dict_object(state, obj, _persistent)
            finally:
                self._depth -= 1
        return state

    def _enter(self):
        if self._depth >= _safety.MAX_DEPTH:
            raise interfaces.DocumentLoadError(
                'values nest deeper than %d levels (lists, sub-documents '
                'and objects within each other); MongoDB stores no deeper, '
                'and zmongo reads no deeper' % _safety.MAX_DEPTH)
        self._depth += 1

    def _list_value(self, state, obj, _persistent):
        as_is = _READ_AS_IS
        get_object = self.get_object
        items = []
        append = items.append
        try:
            # Most items are their own Python value: no call for those.
            for index, value in enumerate(state):
                append(value if type(value) in as_is
                       else get_object(value, obj, _persistent))
        except _LOAD_ERRORS as err:
            raise _in_field(err, index)
        if not _persistent:
            return items
        # PersistentList(items), owned, without copying the new list again;
        # set in the new object's __dict__, as setattr() would (it has no
        # jar yet: nothing is registered either way).
        value = _new_persistent_list(PersistentList)
        state = value.__dict__
        state['data'] = items
        state[_names.P_DOC_OBJECT] = obj
        value._p_jar = self._jar
        return value

    def _dict_object(self, state, obj, _persistent):
        if state.get(_names.PY_TYPE) == _names.TYPE_MARKER and \
                _names.TYPE_PATH in state:
            try:
                return self._resolve_global(state[_names.TYPE_PATH])
            except _LOAD_ERRORS as err:
                raise _in_field(err, _names.TYPE_PATH)
        if _names.PY_AWARE_DATETIME in state:
            return self._aware_datetime(state)
        for marker in _NON_PERSISTENT_MARKERS:
            if marker in state:
                return self.get_non_persistent_object(state, obj)
        data = self._dict_value(state, obj, _persistent)
        return self._own(PersistentDict(data), obj) if _persistent \
            else data

    def _dict_value(self, state, obj, _persistent=True):
        """A stored sub-document (plain or ``dict_data`` form) as a dict."""
        if len(state) == 1 and type(state.get(_names.DICT_DATA)) is list:
            return self._dict_data(state[_names.DICT_DATA], obj, _persistent)
        # Most values are their own Python value: no call for those; and
        # references and (without custom serializers, which may claim
        # them) arrays skip the dispatch of get_object.
        as_is = _READ_AS_IS
        refs = _REFERENCES
        arrays = list if not self._serializers else None
        get_object = self.get_object
        data = {}
        try:
            for name, value in state.items():
                t = type(value)
                if t in as_is:
                    data[name] = value
                elif t in refs and value.database is not None:
                    data[name] = self._reference(value)
                elif t is arrays:
                    self._enter()
                    try:
                        data[name] = self._list_value(value, obj, _persistent)
                    finally:
                        self._depth -= 1
                else:
                    data[name] = get_object(value, obj, _persistent)
        except _LOAD_ERRORS as err:
            raise _in_field(err, name)
        return data

    def _dict_data(self, pairs, obj, _persistent):
        """``dict_data``'s ``[[key, value], ...]`` as a dict.  The keys are
        read first and checked (:func:`zmongo._safety.check_hashes`)
        before any is inserted: keys of colliding hashes would make the
        insertions quadratic."""
        keys = []
        try:
            for index, pair in enumerate(pairs):
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise interfaces.DocumentLoadError(
                        'malformed %s entry %s: expected [key, value]'
                        % (_names.DICT_DATA, _describe(pair)))
                key = self._key(pair[0], obj)
                try:
                    hash(key)
                except TypeError as err:
                    raise interfaces.DocumentLoadError(
                        'the key %s cannot be a dict key: %s'
                        % (_describe(key), err)) from None
                keys.append(key)
        except _LOAD_ERRORS as err:
            raise _in_field(_in_field(err, index), _names.DICT_DATA)
        try:
            _safety.check_hashes(keys, 'the keys of this dict')
        except _LOAD_ERRORS as err:
            raise _in_field(err, _names.DICT_DATA)
        data = {}
        try:
            for index, (key, pair) in enumerate(zip(keys, pairs)):
                data[key] = self.get_object(pair[1], obj, _persistent)
        except _LOAD_ERRORS as err:
            raise _in_field(_in_field(err, index), _names.DICT_DATA)
        return data

    def _key(self, state, obj):
        """Dict keys must be hashable: sequences come back as tuples."""
        if type(state) is list:
            self._enter()
            try:
                return tuple(self._key(value, obj) for value in state)
            finally:
                self._depth -= 1
        value = self.get_object(state, obj, _persistent=False)
        if isinstance(value, list):
            return tuple(value)
        return value

    def _own(self, sub_obj, obj):
        setattr(sub_obj, _names.P_DOC_OBJECT, obj)
        sub_obj._p_jar = self._jar
        return sub_obj

    def _resolve_global(self, path):
        """A stored reference (class, function, constant): found where a
        document may look, never called."""
        if not isinstance(path, str):
            raise interfaces.DocumentLoadError(
                'stored reference must be a dotted name, not %s'
                % _describe(path))
        return self._policy.check_reference(
            path, self._lookup(path, 'stored reference'))

    def _aware_datetime(self, state):
        """A time-zone-aware datetime (see the format above), each field
        checked: a bad one is a DocumentLoadError naming it (an
        ``OverflowError`` from a huge offset must not escape as itself,
        which an application skipping bad documents would not catch)."""
        field = _names.PY_AWARE_DATETIME
        try:
            utc = state[field]
            if type(utc) is not datetime.datetime:
                raise interfaces.DocumentLoadError(
                    'must be a date, not %s' % _describe(utc))
            field = 'utcoffset'
            seconds = state.get(field, 0)
            if type(seconds) not in (int, float, bson.Int64) or \
                    not -86400 < seconds < 86400:
                raise interfaces.DocumentLoadError(
                    'must be seconds within a day, not %s'
                    % _describe(seconds))
            field = 'zone'
            zone = state.get(field)
            if zone is not None and not isinstance(zone, str):
                raise interfaces.DocumentLoadError(
                    'must be a zone name, not %s' % _describe(zone))
            if zone and not _safety.known_zone(zone):
                raise interfaces.DocumentLoadError(
                    'names no zone known here (neither on zoneinfo.TZPATH '
                    'nor in the tzdata package): %s' % _describe(zone))
            field = 'microsecond'
            microsecond = state.get(field, 0)
            if type(microsecond) not in (int, bson.Int64) or \
                    not 0 <= microsecond < 1000000:
                raise interfaces.DocumentLoadError(
                    'must be 0..999999, not %s' % _describe(microsecond))
            field = 'fold'
            fold = state.get(field, 0)
            if fold not in (0, 1) or type(fold) not in (int, bson.Int64):
                raise interfaces.DocumentLoadError(
                    'must be 0 or 1, not %s' % _describe(fold))
            field = 'local'
            wall = state.get(field)
            if wall is not None and type(wall) is not datetime.datetime:
                raise interfaces.DocumentLoadError(
                    'must be a date, not %s' % _describe(wall))
            field = None
            try:
                if zone:
                    tz = zoneinfo.ZoneInfo(zone)
                else:
                    tz = datetime.timezone(
                        datetime.timedelta(seconds=seconds))
                if wall is not None:
                    # The wall time as written, with its zone: exact even
                    # where the zone's rules make a wall time ambiguous or
                    # nonexistent.
                    return wall.replace(microsecond=microsecond, tzinfo=tz,
                                        fold=fold)
                value = utc.replace(microsecond=microsecond,
                                    tzinfo=datetime.timezone.utc)
                return value.astimezone(tz)
            except _BUILD_ERRORS + (OSError,) as err:
                raise interfaces.DocumentLoadError(
                    'cannot make an aware datetime of it: %s: %s'
                    % (type(err).__name__, err)) from None
        except interfaces.DocumentLoadError as err:
            raise _in_field(err, field) if field else err

    def _factory(self, path, args):
        """What would make the value of ``_py_factory`` ``path`` from
        ``args``, checked (:meth:`zmongo._safety.Policy.factory`); the
        writer asks too, so it never stores what this would refuse."""
        if not isinstance(path, str):
            raise interfaces.DocumentLoadError(
                'factory must be a dotted name, not %s' % _describe(path))
        return self._policy.factory(path, args)

    def get_non_persistent_object(self, state, obj):
        state = dict(state)
        if _names.PY_CONSTANT in state:
            try:
                return self._resolve_global(state.pop(_names.PY_CONSTANT))
            except _LOAD_ERRORS as err:
                raise _in_field(err, _names.PY_CONSTANT)
        sub_obj = self._make(state, obj)
        is_persistent = isinstance(sub_obj, persistent.Persistent)
        list_items = state.pop(_PY_LIST_ITEMS, None)
        dict_items = state.pop(_PY_DICT_ITEMS, None)
        field = None
        try:
            if _PY_STATE in state:
                field = _PY_STATE
                raw = state.pop(_PY_STATE)
                # An attribute dict (attributes whose names needed escaping)
                # keeps its values change-tracked like any other attribute's.
                value = self._dict_value(raw, obj) if type(raw) is dict \
                    else self.get_object(raw, obj, _persistent=False)
                self._set_state(sub_obj, value)
            if state:
                field = None
                self._set_state(sub_obj, self._dict_value(state, obj))
            if list_items:
                field = _PY_LIST_ITEMS
                sub_obj.extend(self.get_object(list_items, obj, False))
            if dict_items:
                field = _PY_DICT_ITEMS
                for key, value in self.get_object(dict_items, obj, False):
                    sub_obj[key] = value
        except _LOAD_ERRORS as err:
            raise _in_field(err, field) if field else err
        except _BUILD_ERRORS as err:
            err = interfaces.DocumentLoadError(
                'cannot set the state of %s: %s: %s'
                % (get_dotted_name(type(sub_obj)), type(err).__name__, err))
            raise _in_field(err, field) if field else err
        if is_persistent:
            # It lives in ``obj``'s document: keep it there next time too.
            sub_obj._p_mongo_sub_object = True
            self._own(sub_obj, obj)
            sub_obj._p_changed = False
        return sub_obj

    def _make(self, state, obj):
        """The new object a ``_py_type`` / ``_py_persistent_type`` /
        ``_py_factory`` document stands for, before its state is set."""
        if _names.PY_TYPE in state:
            try:
                klass = self._resolve_class(state.pop(_names.PY_TYPE),
                                            'class')
            except _LOAD_ERRORS as err:
                raise _in_field(err, _names.PY_TYPE)
            try:
                # As pickle's protocol 0: no __new__ or __init__ of klass.
                return copyreg._reconstructor(klass, object, None)
            except _BUILD_ERRORS as err:
                raise _in_field(interfaces.DocumentLoadError(
                    'cannot create an instance of %s: %s' % (
                        get_dotted_name(klass), err)), _names.PY_TYPE)
        if _names.PY_PERSISTENT_TYPE in state:
            try:
                klass = self._persistent_class(
                    state.pop(_names.PY_PERSISTENT_TYPE))
            except _LOAD_ERRORS as err:
                raise _in_field(err, _names.PY_PERSISTENT_TYPE)
            return copyreg.__newobj__(klass)
        path = state.pop(_names.PY_FACTORY)
        field = _names.PY_FACTORY
        try:
            if not isinstance(path, str):
                raise interfaces.DocumentLoadError(
                    'factory must be a dotted name, not %s' % _describe(path))
            # Refused for what it is before its arguments are read.
            self._policy.callable_factory(path)
            field = _names.PY_FACTORY_ARGS
            args = self.get_object(state.pop(_names.PY_FACTORY_ARGS, []),
                                   obj, _persistent=False)
            if not isinstance(args, (list, tuple)):
                raise interfaces.DocumentLoadError(
                    '%s of %r must be a list, not %s'
                    % (_names.PY_FACTORY_ARGS, path, type(args).__name__))
            field = _names.PY_FACTORY
            build = self._factory(path, args)
            try:
                return build()
            except _LOAD_ERRORS:
                raise
            except _BUILD_ERRORS as err:
                raise interfaces.DocumentLoadError(
                    'factory %r refused its arguments %s: %s: %s' % (
                        path, _describe(args), type(err).__name__, err)
                ) from err
        except _LOAD_ERRORS as err:
            raise _in_field(err, field)

    @staticmethod
    def _set_state(sub_obj, state):
        """Set a plain object's stored state as pickle would, but only
        attributes by name: a ``__dict__`` of ``str`` keys (others break
        ``getattr``/``vars`` users and cannot be written back), and only
        the slots its class declares (never ``__class__`` or another name
        that would change what the object is)."""
        setstate = getattr(sub_obj, '__setstate__', None)
        if setstate is not None:
            if isinstance(state, (list, tuple)) and len(state) == 2 and \
                    type(sub_obj).__setstate__ is \
                    persistent.Persistent.__setstate__:
                # Persistent's own __setstate__ setattr()s every slot name.
                state = _slots_state(sub_obj, state)
            setstate(state)
            return
        slots = None
        if isinstance(state, (tuple, list)) and len(state) == 2 and \
                (state[0] is None or isinstance(state[0], dict)) and \
                (state[1] is None or isinstance(state[1], dict)):
            state, slots = _slots_state(sub_obj, state)
        if not state:
            state = {}
        elif not isinstance(state, dict):
            try:
                state = dict(state)
            except (TypeError, ValueError) as err:
                raise interfaces.DocumentLoadError(
                    'the state of %s is not an attribute dict: %s'
                    % (type(sub_obj).__name__, err)) from None
        for name in state:
            if type(name) is not str:
                raise interfaces.DocumentLoadError(
                    'the state of %s has the attribute name %s; attribute '
                    'names are strings' % (type(sub_obj).__name__,
                                           _describe(name)))
        for name, value in (slots or {}).items():
            setattr(sub_obj, name, value)
        if state:
            sub_obj.__dict__.update(state)

    # -- documents ------------------------------------------------------------

    def set_ghost_state(self, obj, doc=None):
        """Load ``doc`` (by default the stored document) into ``obj``."""
        if doc is None:
            doc = self._jar.load_document(obj._p_oid)
        self._load_state(obj, doc)

    def new_object(self, dbref, klass, doc):
        """A new object of ``klass`` for ``dbref`` with the state of
        ``doc`` (just read), in the identity map and up to date: what
        :meth:`new_ghost` and its activation make, without the round trip
        through the data manager's ``setstate`` (a third of the cost of
        loading an item).  None, with nothing done, where that round trip
        must run: a class with its own ``__setstate__`` may set attributes,
        which only a ghost being loaded does without registering a change
        (so may ``Persistent.__setstate__`` with slots, ``_py_state``).
        A document that cannot be loaded leaves a ghost, as a failed
        activation does."""
        if klass.__setstate__ is not _PERSISTENT_SETSTATE or \
                _PY_STATE in doc:
            return None
        dbref = _oid.as_oid(dbref)
        obj = klass.__new__(klass)
        jar = self._jar
        obj._p_oid = dbref
        obj._p_jar = jar
        # In the map first: the document may refer to itself.
        jar.add_to_cache(dbref, obj)
        try:
            self._load_state(obj, doc)
        except BaseException:
            obj._p_invalidate()
            raise
        return obj

    def _load_state(self, obj, doc):
        jar = self._jar
        state_doc = dict(doc)
        state_doc.pop(_names.ID, None)
        state_doc.pop(_names.PY_PERSISTENT_TYPE, None)
        jar.conflict_handler.on_before_set_state(obj, state_doc)
        oid = obj._p_oid
        try:
            if _PY_STATE in state_doc and len(state_doc) == 1:
                try:
                    state = self.get_object(state_doc[_PY_STATE], obj, False)
                except _LOAD_ERRORS as err:
                    raise _in_field(err, _PY_STATE)
                if type(state) in (list, tuple) and len(state) == 2 and \
                        type(obj).__setstate__ is \
                        persistent.Persistent.__setstate__:
                    # ``(dict, slots)`` from persistent's ``__getstate__``
                    # (a class with ``__slots__``), stored as an array (or
                    # as a ``builtins.tuple`` factory: checked alike).
                    try:
                        state = _slots_state(obj, state)
                    except _LOAD_ERRORS as err:
                        raise _in_field(err, _PY_STATE)
            else:
                state = self._dict_value(state_doc, obj)
            jar.remember_original(oid, doc)
            obj.__setstate__(state)
        except _LOAD_ERRORS as err:
            raise _located(err, doc.get(_names.ID), oid.database,
                           oid.collection) from err
        except (ImportError, TypeError, ValueError, KeyError,
                AttributeError) as err:
            raise _located(interfaces.DocumentLoadError(
                'cannot load it into %s: %s: %s' % (
                    type(obj).__name__, type(err).__name__, err)),
                doc.get(_names.ID), oid.database, oid.collection) from err

    def _reference(self, dbref):
        """The object a ``DBRef`` value stands for.  A reference that leads
        to no usable class is an error of the document holding it, at the
        field holding it (the path is added as the error rises); the
        message says what the reference found."""
        jar = self._jar
        key = (dbref.collection, dbref.id, dbref.database)
        last_key, ref = self._last_reference
        if last_key == key and not dbref._DBRef__kwargs:
            obj = ref()
            if obj is not None and jar.cached_object(obj._p_oid) is obj:
                # The object of an equal reference, still the one of its
                # oid.
                return obj
        obj = jar.cached_object(dbref)
        if obj is not None:
            if not dbref._DBRef__kwargs and obj._p_oid == dbref:
                try:
                    self._last_reference = (key, weakref.ref(obj))
                except TypeError:
                    pass
            return obj
        try:
            klass = self._resolve(dbref, None)
        except ImportError as err:
            raise interfaces.DocumentLoadError(
                'the reference %r leads to no class: %s' % (dbref, err)
            ) from None
        except _LOAD_ERRORS as err:
            located = _located(err, dbref.id, dbref.database,
                               dbref.collection)
            raise type(err)('the reference %r leads to no usable class: %s'
                            % (dbref, located)) from None
        return self.new_ghost(dbref, klass)

    def get_ghost(self, dbref, klass=None):
        """The object for ``dbref``: the one already loaded in this
        transaction, or a new ghost."""
        obj = self._jar.cached_object(dbref)
        if obj is not None:
            return obj
        if klass is None:
            klass = self.resolve(dbref)
        return self.new_ghost(dbref, klass)

    def new_ghost(self, dbref, klass):
        """A new ghost of ``klass`` for ``dbref``, in the identity map."""
        dbref = _oid.as_oid(dbref)
        obj = klass.__new__(klass)
        obj._p_jar = self._jar
        obj._p_oid = dbref
        del obj._p_changed
        self._jar.add_to_cache(dbref, obj)
        return obj
