"""What a document may make the loader do.

Whoever can write to the application's MongoDB (another application on the
cluster, a compromised client, a backup restored from elsewhere) writes the
documents zmongo loads.  mongopersist called whatever ``_py_factory`` a
document named, with arguments from the same document, and imported
whatever module it named; pickle makes the same promise, which is why
zmongo stores no pickles.  Here a document only *names* things, and this
module decides what that may cause:

* **references** (``_py_constant``, ``{'_py_type': 'type', 'path': ...}``,
  classes) are looked up in modules already imported, or imported when
  under a trusted prefix; what is found is never called;
* **instances** are made without running their constructor, as pickle
  rebuilds them (``__new__`` + state): of ``persistent.Persistent``
  subclasses, of classes the application trusts (:func:`register_type`,
  a trusted module prefix) and of the standard-library value types below;
* **calls with document values** go only to factories the application
  registered (:class:`FactoryRegistry`), to the standard-library value
  types of :data:`_ARGUMENTS` with arguments of the shapes zmongo and
  mongopersist write (no ``bytes(10**12)``, no ``Fraction('1e999999999')``,
  no codec that would import a module), and to enum classes, whose "call"
  is a lookup of an existing member.

Each refusal says what would allow it.  The registries are the
application's, set once at start-up; :func:`saved` gives tests a way to
change them and have them back as they were.
"""
import builtins
import collections
import contextlib
import copyreg
import datetime
import decimal
import enum
import fractions
import functools
import ipaddress
import importlib.util
import os
import operator
import re
import types
import uuid
import zoneinfo

import persistent

from zmongo import _dotted
from zmongo import interfaces

#: How deep values may nest in a document (lists, sub-documents, objects).
#: MongoDB stores no deeper than 100 levels, so nothing it holds is refused;
#: deeper documents (another server, a corrupt one) fail clearly instead of
#: exhausting the stack.
MAX_DEPTH = 100

#: How many distinct keys of one hash value a dict or set built from a
#: document's values may hold.  Keys of equal hash are compared with each
#: other on every insertion, so n of them cost n**2 / 2 comparisons; for
#: tuples of ints, complex numbers or Fractions equal hashes are easy to
#: compute (a 16 MB document holds 400,000 such keys: hours of CPU holding
#: the GIL).  Real data has at most a few (-1 and -2 hash alike).
MAX_SAME_HASH = 8


def _name(obj):
    try:
        return _dotted.get_dotted_name(obj)
    except AttributeError:
        return repr(obj)


def _short(value):
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the refusal
        text = object.__repr__(value)
    return text if len(text) <= 80 else text[:77] + '...'


# -- trust ------------------------------------------------------------------

def prefixes(value, what='trusted_modules'):
    """``value`` (a name, names separated by spaces, or an iterable of
    them) as a frozenset of module prefixes; each must be a dotted name."""
    if isinstance(value, str):
        value = value.split()
    result = frozenset(value)
    for prefix in result:
        if not (isinstance(prefix, str) and all(
                part.isidentifier() for part in prefix.split('.'))):
            raise ValueError(
                '%s: each prefix is a module name such as "myapp" or '
                '"lib.content", not %r' % (what, prefix))
    return result


def covered(name, trusted):
    """True if the dotted ``name`` is a trusted prefix or lies below one:
    ``myapp`` covers ``myapp``, ``myapp.models`` and ``myapp.models.Person``.
    """
    if not trusted:
        return False
    end = name.find('.')
    while end != -1:
        if name[:end] in trusted:
            return True
        end = name.find('.', end + 1)
    return name in trusted


class FactoryRegistry:
    """Callables documents may name as ``_py_factory`` and have called with
    the document's arguments.

    One registry is the application's (:func:`zmongo.serialize.
    register_factory`); a data manager adds its own with its ``factories``
    option.  Keyed by identity: equal is not the same callable.
    """

    def __init__(self, factories=()):
        self._factories = {}
        for factory in factories:
            self.register(factory)

    @staticmethod
    def _callable(factory):
        if isinstance(factory, str):
            # The application names it (not a document): it may import.
            factory = _dotted.resolve(factory, may_import=lambda name: True)
        if not callable(factory):
            raise TypeError('register_factory() needs a callable or the '
                            'dotted name of one, not %r' % (factory,))
        return factory

    def register(self, factory):
        """Allow documents to call ``factory`` (a callable or dotted name)."""
        factory = self._callable(factory)
        self._factories[id(factory)] = factory
        return factory

    def unregister(self, factory):
        self._factories.pop(id(self._callable(factory)), None)

    def __contains__(self, factory):
        return self._factories.get(id(factory)) is factory

    def snapshot(self):
        return dict(self._factories)

    def restore(self, snapshot):
        self._factories = dict(snapshot)


class Registry:
    """The application's own trust: module prefixes, classes, factories."""

    def __init__(self):
        self.prefixes = frozenset()
        self.types = {}
        self.factories = FactoryRegistry()

    def trust(self, names):
        self.prefixes = self.prefixes | prefixes(names, 'trust_modules()')

    def untrust(self, names):
        self.prefixes = self.prefixes - prefixes(names, 'untrust_modules()')

    def register_type(self, cls):
        if not isinstance(cls, type):
            raise TypeError('register_type() needs a class, not %r' % (cls,))
        self.types[id(cls)] = cls
        return cls

    def unregister_type(self, cls):
        self.types.pop(id(cls), None)

    def has_type(self, cls):
        return self.types.get(id(cls)) is cls


#: zmongo's own modules with persistent classes (containers, the
#: persistent dict and list): a document may name them before the
#: application imported them, as any of its own roots would.  Importing
#: is all they allow: the plain classes defined there (``ObjectReader``,
#: ``ObjectWriter``...) are not trusted, so a document cannot have one made
#: with a ``__dict__`` of its choosing.
OWN_MODULES = frozenset({'zmongo.container', 'zmongo.serialize'})

#: The application's registry (``zmongo.serialize.trust_modules`` & co.).
REGISTRY = Registry()


@contextlib.contextmanager
def saved(registry=REGISTRY):
    """Run a block with the registry as it is, and have it back exactly so
    afterwards, whatever the block trusted or registered."""
    before = (registry.prefixes, dict(registry.types),
              registry.factories.snapshot())
    try:
        yield registry
    finally:
        registry.prefixes, registry.types = before[0], before[1]
        registry.factories.restore(before[2])


# -- what may be called with document values ----------------------------------

_INT_TYPES = (int,)          # bool and bson.Int64 are ints too
_NUMBER_TYPES = (int, float)
_COLLECTIONS = (list, tuple, dict, set, frozenset, str, bytes, bytearray)
#: Codecs Python loads at start-up: naming another would import it.
_CODECS = frozenset({'latin-1', 'latin1', 'iso-8859-1', 'utf-8', 'utf8',
                     'ascii'})
_ERRORS = frozenset({'strict', 'replace', 'ignore', 'surrogateescape'})
_TZINFO_TYPES = (datetime.timezone, zoneinfo.ZoneInfo)
#: Fraction's exponent form computes 10**exponent: digits only.
_FRACTION_TEXT = r'\s*[-+]?(\d+(\.\d*)?|\.\d+)(\s*/\s*\d+)?\s*'  # fullmatch
_SHORT_TEXT = 100
_NUMBER_TEXT = 5000


# -- time zones ----------------------------------------------------------------

#: Zone names found: zone files exist for them (at most the ~600 zones).
_ZONES = set()
#: What a zone key may look like before the file system is asked.
_ZONE_KEY = r'[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*'     # fullmatch
_NO_TZDATA = object()
_tzdata_dir = None


def _tzdata_zones():
    """The ``zoneinfo`` directory of the installed ``tzdata`` package, or
    None: found by the import system's finders, which import nothing."""
    global _tzdata_dir
    if _tzdata_dir is None:
        try:
            spec = importlib.util.find_spec('tzdata')
        except (ImportError, ValueError):
            spec = None
        locations = spec and spec.submodule_search_locations
        _tzdata_dir = os.path.join(list(locations)[0], 'zoneinfo') \
            if locations else _NO_TZDATA
    return None if _tzdata_dir is _NO_TZDATA else _tzdata_dir


def known_zone(key):
    """True if ``zoneinfo.ZoneInfo(key)`` finds a zone file: on
    ``zoneinfo.TZPATH`` or in the installed ``tzdata`` package.

    Asked before ``ZoneInfo`` sees a name from a document: for a name it
    does not find on the system, ``ZoneInfo`` imports ``tzdata`` and the
    subpackages the name's directories name (``tzdata.zoneinfo.No_Such``),
    so an unknown name would import modules on a document's word.  A name
    that passes here does exist; ``ZoneInfo`` may then still import
    ``tzdata``'s data packages for it (packages of zone files, no code),
    when the system itself has no zone files.  The file system is asked
    (a few ``stat`` calls) once per name found; zones are not listed up
    front (``zoneinfo.available_timezones()`` would import ``tzdata``)."""
    if key in _ZONES:
        return True
    if not (isinstance(key, str) and len(key) <= 255 and
            re.fullmatch(_ZONE_KEY, key)):
        return False
    roots = list(zoneinfo.TZPATH)
    if _tzdata_zones() is not None:
        roots.append(_tzdata_zones())
    for root in roots:
        if os.path.isfile(os.path.join(root, key)):
            _ZONES.add(key)
            return True
    return False


def _finite(value):
    """A collection already in memory (read from the document): iterating
    it makes nothing bigger than the document."""
    return isinstance(value, _COLLECTIONS)


def _text(value, limit):
    return isinstance(value, (str, bytes)) and len(value) <= limit


def _number(value):
    return isinstance(value, _NUMBER_TYPES)


def _none_or(check):
    return lambda value: value is None or check(value)


def _args(*checks, min=0):
    """Arguments checked one by one: at most ``len(checks)``, at least
    ``min``."""
    def check(args):
        return min <= len(args) <= len(checks) and all(
            test(arg) for test, arg in zip(checks, args))
    check.counts = frozenset(range(min, len(checks) + 1))
    return check


def _any_of(*alternatives):
    def check(args):
        return any(alternative(args) for alternative in alternatives)
    check.counts = frozenset().union(*(a.counts for a in alternatives))
    return check


_ONE_COLLECTION = _args(_finite)
_ENCODED = _any_of(
    _args(lambda v: isinstance(v, (str, bytes, bytearray, list, tuple))),
    _args(lambda v: isinstance(v, (str, bytes)), _CODECS.__contains__,
          _ERRORS.__contains__, min=2))
#: ``str`` of one argument is that argument's ``repr`` unless it is a str:
#: ``str([s])`` doubles each backslash of ``s``, so nesting such calls
#: doubles a document's size at each level (32 levels of a 1 KB document
#: ask for 4 GiB).  A document gives ``str`` a str, or bytes and a codec.
_STR = _any_of(
    _args(lambda v: isinstance(v, str)),
    _args(lambda v: isinstance(v, (bytes, bytearray)), _CODECS.__contains__,
          _ERRORS.__contains__, min=2))
_DATE_PART = (lambda v: isinstance(v, _INT_TYPES) or _text(v, 16) or
              v is None or isinstance(v, _TZINFO_TYPES))
_IP = _args(lambda v: isinstance(v, int) or _text(v, _SHORT_TEXT) or (
    isinstance(v, (list, tuple)) and len(v) == 2 and
    all(isinstance(x, int) or _text(x, _SHORT_TEXT) for x in v)), min=1)

#: The standard-library value types a document may have called, with the
#: arguments it may pass (what their ``__reduce__`` gives, in Python 3 and
#: in Python 2 as mongopersist stored it): ``(check, shape in words)``.
_ARGUMENTS = {
    builtins.object: (_args(), 'no arguments'),
    builtins.set: (_ONE_COLLECTION, 'one list'),
    builtins.frozenset: (_ONE_COLLECTION, 'one list'),
    builtins.list: (_ONE_COLLECTION, 'one list'),
    builtins.tuple: (_ONE_COLLECTION, 'one list'),
    builtins.dict: (_ONE_COLLECTION, 'one dict or list of pairs'),
    collections.OrderedDict: (_ONE_COLLECTION, 'one dict or list of pairs'),
    collections.Counter: (_ONE_COLLECTION, 'one dict or list'),
    collections.deque: (
        _args(_finite, _none_or(lambda v: isinstance(v, _INT_TYPES) and
                                v >= 0)),
        'a list and a maximum length'),
    builtins.bytes: (_ENCODED, 'a str or bytes (and a loaded codec)'),
    builtins.bytearray: (_ENCODED, 'a str or bytes (and a loaded codec)'),
    builtins.str: (_STR, 'a str, or bytes and a loaded codec'),
    builtins.int: (_any_of(
        _args(lambda v: _number(v) or _text(v, _NUMBER_TEXT)),
        _args(lambda v: isinstance(v, str) and len(v) <= _NUMBER_TEXT,
              lambda v: isinstance(v, _INT_TYPES) and
              (v == 0 or 2 <= v <= 36), min=2)),
        'a number, or digits and a base'),
    builtins.float: (_args(lambda v: _number(v) or _text(v, _NUMBER_TEXT)),
                     'a number or its digits'),
    builtins.bool: (_args(lambda v: v is None or _number(v)), 'a number'),
    builtins.complex: (_any_of(_args(_number, _number),
                               _args(lambda v: _text(v, _NUMBER_TEXT))),
                       'two numbers or the digits'),
    builtins.range: (_args(*[lambda v: isinstance(v, _INT_TYPES)] * 3,
                           min=1), 'one to three ints'),
    builtins.slice: (_args(*[_none_or(lambda v: _number(v) or
                                      _text(v, _SHORT_TEXT))] * 3, min=1),
                     'one to three numbers'),
    datetime.date: (_args(*[_DATE_PART] * 3, min=1),
                    'its bytes or year, month, day'),
    datetime.datetime: (_args(*[_DATE_PART] * 9, min=1),
                        'its bytes (and zone) or its fields'),
    datetime.time: (_args(*[_DATE_PART] * 6, min=1),
                    'its bytes (and zone) or its fields'),
    datetime.timedelta: (_args(*[_number] * 7),
                         'days, seconds and microseconds'),
    datetime.timezone: (_args(
        lambda v: isinstance(v, datetime.timedelta),
        lambda v: _text(v, _SHORT_TEXT), min=1), 'an offset and a name'),
    decimal.Decimal: (_args(lambda v: _number(v) or
                        _text(v, _NUMBER_TEXT) or
                        isinstance(v, decimal.Decimal) or
                        (isinstance(v, (list, tuple)) and len(v) == 3)),
                      'its digits'),
    fractions.Fraction: (_any_of(
        _args(lambda v: isinstance(v, _INT_TYPES),
              lambda v: isinstance(v, _INT_TYPES), min=1),
        _args(lambda v: isinstance(v, float)),
        _args(lambda v: isinstance(v, str) and len(v) <= _NUMBER_TEXT and
              re.fullmatch(_FRACTION_TEXT, v) is not None)),
        "numerator and denominator, or 'n/d' digits without exponent"),
    uuid.UUID: (_args(lambda v: _text(v, _SHORT_TEXT)), 'its hex digits'),
    zoneinfo.ZoneInfo: (_args(known_zone), 'a known zone name'),
    ipaddress.IPv4Address: (_IP, 'an address'),
    ipaddress.IPv6Address: (_IP, 'an address'),
    ipaddress.IPv4Network: (_IP, 'a network'),
    ipaddress.IPv6Network: (_IP, 'a network'),
    ipaddress.IPv4Interface: (_IP, 'an interface'),
    ipaddress.IPv6Interface: (_IP, 'an interface'),
}

#: Standard-library classes that are plain values: made from document
#: values only with arguments of the shapes above.
SAFE_STDLIB_CLASSES = frozenset(_ARGUMENTS)


def check_hashes(keys, what):
    """Refuse ``keys`` (about to become a dict's keys or a set's elements)
    if more than :data:`MAX_SAME_HASH` distinct ones share a hash value:
    building the dict would take quadratic time.  Counting costs at most
    ``MAX_SAME_HASH`` comparisons per key; unhashable keys are left for
    the build to refuse."""
    seen = {}
    for key in keys:
        try:
            value = hash(key)
        except TypeError:
            continue
        same = seen.get(value)
        if same is None:
            seen[value] = [key]
            continue
        if any(other is key or other == key for other in same):
            continue
        same.append(key)
        if len(same) > MAX_SAME_HASH:
            raise interfaces.UnsafeDocumentError(
                '%s: more than %d distinct keys share the hash value %d '
                '(%s, ...); refusing to build it, as inserting such keys '
                'takes time quadratic in their number (a document made to '
                'stall its readers).  No value zmongo writes needs this; '
                'zmongo._safety.MAX_SAME_HASH is the bound'
                % (what, MAX_SAME_HASH, value,
                   ', '.join(_short(key) for key in same[:3])))


def _keys_of_pairs(items):
    for item in items:
        if isinstance(item, (list, tuple)) and len(item) == 2:
            yield item[0]


#: Standard-library types that hash what a document gives them: their
#: keys (elements, or first items of pairs) are checked by check_hashes.
_HASHING = {
    builtins.set: iter, builtins.frozenset: iter, collections.Counter: iter,
    builtins.dict: _keys_of_pairs, collections.OrderedDict: _keys_of_pairs,
}


def check_arguments(cls, args, what=None):
    """Refuse arguments of a standard-library value type that zmongo would
    not write: they could make the call allocate or compute without bound,
    or import a module."""
    check, shape = _ARGUMENTS[cls]
    if isinstance(args, (list, tuple)) and len(args) not in check.counts:
        # As calling it would say: a malformed document, not a dangerous one.
        raise interfaces.DocumentLoadError(
            '%s takes %s, not %d arguments'
            % (what or _name(cls), shape, len(args)))
    if not isinstance(args, (list, tuple)) or not check(args):
        raise interfaces.UnsafeDocumentError(
            '%s takes %s from a document, not %s; refusing to call it '
            '(the arguments could make it allocate, compute or import '
            'without bound)' % (what or _name(cls), shape, _short(args)))
    keys = _HASHING.get(cls)
    if keys is not None and args and isinstance(args[0], (list, tuple)):
        check_hashes(keys(args[0]), 'the keys of %s' % (what or _name(cls)))


def _reconstruct(cls, base, state):
    """``copyreg._reconstructor``, as pickle protocol 0 uses it, with the
    base's own constructor only (never ``cls.__init__``)."""
    if base is object:
        return object.__new__(cls)
    obj = base.__new__(cls, state)
    if base.__init__ is not object.__init__:
        base.__init__(obj, state)
    return obj


def _member(cls, value):
    """The member of enum ``cls`` with ``value``: looked up, not made (an
    enum's ``_missing_`` hook is the class's own code)."""
    try:
        return cls._value2member_map_[value]
    except (KeyError, TypeError):
        pass
    for member in cls.__members__.values():
        if member._value_ == value:
            return member
    if issubclass(cls, enum.Flag) and isinstance(value, int) and \
            getattr(cls._missing_, '__func__', None) is \
            enum.Flag._missing_.__func__:
        # A combination of flags: the stdlib's code, which caches each new
        # combination in the class for the life of the process.  Only
        # combinations of the class's own flags, so that cache stays as
        # small as the class (2 ** flags); other bits (an IntFlag such as
        # re.RegexFlag keeps any) would let documents grow it without end.
        mask = 0
        for member in cls.__members__.values():
            if isinstance(member._value_, int):
                mask |= member._value_
        if value < 0 or value & ~mask:
            raise interfaces.UnsafeDocumentError(
                '%r is not a combination of the flags of %s (bits outside '
                '%#x); refusing to make it, as each new value would be '
                'kept by the enum module for the life of the process'
                % (value, _name(cls), mask))
        return cls(value)
    raise interfaces.DocumentLoadError(
        '%r is not a value of %s' % (value, _name(cls)))


#: Callables that are functions (of Python or C), methods and the
#: standard library's function objects: a reference to one of them must
#: name it by its own name (:meth:`Policy.check_reference`).
_FUNCTION_TYPES = frozenset({
    types.FunctionType, types.BuiltinFunctionType, types.MethodType,
    types.MethodDescriptorType, types.WrapperDescriptorType,
    types.MethodWrapperType, types.ClassMethodDescriptorType,
    functools.partial, operator.attrgetter, operator.itemgetter,
    operator.methodcaller,
})


# -- one data manager's view ---------------------------------------------------

class Policy:
    """The rules for one reader: the application's registry plus the data
    manager's own ``trusted_modules`` and ``factories``.

    The registry is read at each decision, so ``trust_modules()`` called
    after the data manager was made still counts.
    """

    def __init__(self, trusted_modules=(), factories=None,
                 registry=REGISTRY):
        self._own_prefixes = prefixes(trusted_modules)
        self._own_factories = factories
        self._registry = registry

    def _prefixes(self):
        return self._own_prefixes | self._registry.prefixes

    def resolve(self, path, what):
        """What ``path`` names: a reference, never called here."""
        try:
            return _dotted.resolve(path, self.may_import)
        except _dotted.NotImported as err:
            if not err.exists:
                raise interfaces.DocumentLoadError(
                    '%s %r cannot be imported: there is no module %r'
                    % (what, path, err.module)) from None
            raise interfaces.UnsafeDocumentError(
                "%s %r lies in module %r, which is not imported, and zmongo "
                "imports a module a document names only under a trusted "
                "prefix; import it before loading, or allow it with "
                "zmongo.serialize.trust_modules(%r) (or trusted_modules= "
                "on the data manager)"
                % (what, path, err.module, err.module)) from None
        except ImportError as err:
            raise interfaces.DocumentLoadError(
                '%s %r cannot be imported: %s' % (what, path, err)) from None

    def is_trusted(self, cls):
        """Registered with ``register_type`` or in a trusted module."""
        return self._registry.has_type(cls) or \
            covered(_name(cls), self._prefixes())

    def may_import(self, module_name):
        """Trusted modules, and zmongo's own (:data:`OWN_MODULES`), which
        only widen what may be imported: their plain classes (readers,
        writers, caches) are not trusted.  Never a ``__main__`` module: a
        package's ``__main__`` is its command line, run on import."""
        if '__main__' in module_name.split('.'):
            return False
        return covered(module_name, self._prefixes() | OWN_MODULES)

    def check_reference(self, path, found):
        """Refuse a stored reference to a function that names it other
        than by its own dotted name (``zmongo.testing.os.system``,
        ``zmongo.serialize.copyreg._reconstructor``): zmongo writes a
        function under the name it has (``posix.system``), and so did
        mongopersist, so such a name only comes from a document reaching
        through another module's imports.  Registered factories and
        names under a trusted prefix may take any route."""
        if type(found) not in _FUNCTION_TYPES:
            return found
        own = _name(found)
        if own in _dotted.spellings(path) or self._registered(found) or \
                covered(path, self._prefixes()):
            return found
        if not _dotted.is_dotted_name(own):
            raise interfaces.UnsafeDocumentError(
                'stored reference %r leads to %s, which has no name of its '
                'own that zmongo would store; refusing it'
                % (path, _short(found)))
        raise interfaces.UnsafeDocumentError(
            'stored reference %r leads to %s, whose own name is %r; zmongo '
            'stores functions under their own name, so this name reaches '
            'it through another module; refusing it (allow it with '
            'zmongo.serialize.register_factory(%s) if the application '
            'stores it so)' % (path, _short(found), own, own))

    def _untrusted(self, cls, what):
        return interfaces.UnsafeDocumentError(
            '%s %s is not trusted; refusing to create it.  Allow it with '
            'zmongo.serialize.register_type(%s) or '
            'zmongo.serialize.trust_modules(%r) (or trusted_modules= on the '
            'data manager)' % (what, _name(cls), _name(cls), cls.__module__))

    def _class(self, path, what):
        cls = self.resolve(path, what)
        if not isinstance(cls, type):
            raise interfaces.UnsafeDocumentError(
                '%s %r is %s, not a class; refusing to use it'
                % (what, path, _short(cls)))
        return cls

    def persistent_class(self, path, what='persistent class'):
        cls = self._class(path, what)
        if not issubclass(cls, persistent.Persistent):
            raise interfaces.UnsafeDocumentError(
                '%s %r is not a persistent.Persistent subclass; refusing to '
                'create it' % (what, path))
        return cls

    def instance_class(self, path, what='class'):
        """A class whose instances may be made without calling it."""
        return self.allow_instances(self._class(path, what), what)

    def allow_instances(self, cls, what='class'):
        if cls in SAFE_STDLIB_CLASSES or \
                issubclass(cls, persistent.Persistent) or \
                self.is_trusted(cls):
            return cls
        raise self._untrusted(cls, what)

    def _registered(self, factory):
        own = self._own_factories
        return factory in self._registry.factories or \
            (own is not None and factory in own)

    def callable_factory(self, path):
        """What the ``_py_factory`` ``path`` names, if a document may have it
        called at all (registered, a pickle helper, an enum, a value type
        of the standard library); the arguments are checked by
        :meth:`factory`.  Asked before the arguments are read, so a
        refusal names the factory, not some value among its arguments."""
        factory = self.resolve(path, 'factory')
        if self._registered(factory) or factory is copyreg._reconstructor \
                or factory is copyreg.__newobj__:
            return factory
        if isinstance(factory, type):
            if issubclass(factory, enum.Enum) or \
                    factory in SAFE_STDLIB_CLASSES:
                return factory
            raise interfaces.UnsafeDocumentError(
                'factory %r: class %s would be called with arguments from '
                'the document; refusing to call it (allow it with '
                'zmongo.serialize.register_factory(%s) if it rebuilds '
                'stored values)' % (path, _name(factory), _name(factory)))
        raise interfaces.UnsafeDocumentError(
            'factory %r is %s, not a registered factory; refusing to call '
            'it (allow it with zmongo.serialize.register_factory(%s) if it '
            'rebuilds stored values)'
            % (path, _short(factory), _name(factory)))

    def factory(self, path, args):
        """A function of no arguments that makes what the ``_py_factory``
        ``path`` with ``args`` stands for -- once everything is checked."""
        factory = self.callable_factory(path)
        if self._registered(factory):
            return lambda: factory(*args)
        if factory is copyreg._reconstructor:
            return self._reconstructor(path, args)
        if factory is copyreg.__newobj__:
            return self._newobj(path, args)
        # What is left, ``callable_factory`` allowed: an enum class or a
        # standard-library value type.
        if issubclass(factory, enum.Enum):
            if len(args) != 1:
                raise interfaces.DocumentLoadError(
                    'enum %s is stored with one value, not %s'
                    % (_name(factory), _short(args)))
            return lambda: _member(factory, args[0])
        check_arguments(factory, args)
        return lambda: factory(*args)

    def _reconstructor(self, path, args):
        if len(args) != 3 or not isinstance(args[0], type) or \
                not isinstance(args[1], type):
            raise interfaces.UnsafeDocumentError(
                'factory %r needs (class, base class, state) arguments, not '
                '%s' % (path, _short(args)))
        cls, base, state = args
        self.allow_instances(cls)
        if base is not object and base not in SAFE_STDLIB_CLASSES:
            raise interfaces.UnsafeDocumentError(
                'factory %r may rebuild from object or a standard-library '
                'value type, not from %s' % (path, _name(base)))
        if not issubclass(cls, base):
            raise interfaces.DocumentLoadError(
                'factory %r: %s is not a subclass of %s'
                % (path, _name(cls), _name(base)))
        if base is object:
            if state is not None:
                raise interfaces.DocumentLoadError(
                    'factory %r: a class rebuilt from object has no base '
                    'state, not %s' % (path, _short(state)))
        else:
            check_arguments(base, (state,),
                            '%s (the base of %s)' % (_name(base), _name(cls)))
        return lambda: _reconstruct(cls, base, state)

    def _newobj(self, path, args):
        if not args or not isinstance(args[0], type):
            raise interfaces.UnsafeDocumentError(
                'factory %r needs a class first, not %s'
                % (path, _short(args)))
        cls, rest = args[0], tuple(args[1:])
        self.allow_instances(cls)
        if rest:
            # cls.__new__ with document values: a constructor call.
            if self._registered(cls):
                pass
            elif cls in SAFE_STDLIB_CLASSES:
                check_arguments(cls, rest)
            else:
                raise interfaces.UnsafeDocumentError(
                    'factory %r: %s.__new__ would be called with arguments '
                    'from the document; refusing to call it (allow it with '
                    'zmongo.serialize.register_factory(%s))'
                    % (path, _name(cls), _name(cls)))
        return lambda: cls.__new__(cls, *rest)
