"""What the loader may instantiate.

mongopersist called whatever ``_py_factory`` a document named, with arguments
from the same document: ``{'_py_factory': 'os.system', '_py_factory_args':
['...']}`` ran a shell command.  zmongo only ever *calls* two kinds of
things while loading:

* classes -- the application's own, and the plain data types of the
  standard library listed below.  Other standard-library classes
  (``subprocess.Popen``, ...) run code when built and are refused;
* factories the application registered with :func:`register_factory`.

Resolving a dotted name imports its module, as pickle does; it never calls
the object it finds unless the rules above allow it.
"""
import builtins
import collections
import copyreg
import datetime
import decimal
import fractions
import ipaddress
import sys
import uuid
import zoneinfo

from zmongo import _dotted

#: Standard-library classes that are plain values: building them runs no
#: code a document could steer.
SAFE_STDLIB_CLASSES = frozenset({
    builtins.object, builtins.set, builtins.frozenset, builtins.complex,
    builtins.bytearray, builtins.bytes, builtins.str, builtins.int,
    builtins.float, builtins.bool, builtins.list, builtins.tuple,
    builtins.dict, builtins.range, builtins.slice,
    datetime.date, datetime.datetime, datetime.time, datetime.timedelta,
    datetime.timezone,
    decimal.Decimal, fractions.Fraction, uuid.UUID,
    collections.OrderedDict, collections.deque, collections.Counter,
    zoneinfo.ZoneInfo,
    ipaddress.IPv4Address, ipaddress.IPv6Address,
    ipaddress.IPv4Network, ipaddress.IPv6Network,
    ipaddress.IPv4Interface, ipaddress.IPv6Interface,
})

#: The pickle helpers mongopersist's documents name; their arguments are
#: checked (they must be classes) before they are called.
RECONSTRUCTORS = frozenset({copyreg._reconstructor, copyreg.__newobj__})

_STDLIB = frozenset(sys.stdlib_module_names)


class FactoryRegistry:
    """The factories (callables that are not classes) documents may name.

    One registry lives in this module for the application
    (:func:`register_factory`); a data manager can add its own with its
    ``factories`` option.
    """

    def __init__(self, factories=()):
        self._factories = {}
        for factory in factories:
            self.register(factory)

    def register(self, factory):
        """Allow documents to call ``factory`` (a callable or dotted name)."""
        if isinstance(factory, str):
            factory = _dotted.resolve(factory)
        if not callable(factory):
            raise TypeError('register_factory() needs a callable or the '
                            'dotted name of one, not %r' % (factory,))
        self._factories[id(factory)] = factory
        return factory

    def unregister(self, factory):
        if isinstance(factory, str):
            factory = _dotted.resolve(factory)
        self._factories.pop(id(factory), None)

    def __contains__(self, factory):
        return self._factories.get(id(factory)) is factory


def class_allowed(klass):
    """True if the loader may create instances of ``klass``."""
    if not isinstance(klass, type):
        return False
    if klass in SAFE_STDLIB_CLASSES:
        return True
    top = (klass.__module__ or '').split('.')[0]
    return top not in _STDLIB
