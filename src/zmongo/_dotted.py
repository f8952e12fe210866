"""Dotted names <-> Python objects, including names Python 2 wrote.

mongopersist ran on Python 2, so stored documents can name
``copy_reg._reconstructor`` or ``__builtin__.set``; the standard library's
own pickle compatibility table maps those to their Python 3 homes.

Importing a module runs its code, so :func:`resolve` imports nothing unless
its caller says which modules it may import: a name read from a document
only reaches modules the application already imported, or ones under a
prefix it trusts (:mod:`zmongo._safety` decides).

Looking a name up runs no code either.  ``getattr`` would: a module's
``__getattr__`` hook (PEP 562; ``concurrent.futures`` and ``unittest``
import submodules in theirs, as many packages do), a class's properties
and metaclass hooks, any object's ``__getattr__``.  So a name is looked up
in the module's ``__dict__`` and, for a class, with
``inspect.getattr_static`` along its MRO; a walk goes through modules and
classes only, never through other objects.
"""
import _compat_pickle
import importlib
import importlib.util
import inspect
import sys
import types

_MODULE_DICT = types.ModuleType.__dict__['__dict__']


class NotImported(ImportError):
    """The name lies in a module that is not imported and may not be.

    ``module`` is the longest such module name; ``exists`` says whether an
    importer would find it (asked of the finders, which run no module
    code), so a message can tell "not allowed" from "not there".
    """

    def __init__(self, path, module, exists):
        super().__init__(
            'cannot resolve %r: module %r is not imported' % (path, module))
        self.path = path
        self.module = module
        self.exists = exists


def get_dotted_name(obj):
    """The importable path of a class or function: ``module.QualName``."""
    qualname = getattr(obj, '__qualname__', obj.__name__)
    return '%s.%s' % (obj.__module__, qualname)


def is_importable_name(path):
    """False for names no import can reach (classes defined in functions)."""
    return '<locals>' not in path and '<lambda>' not in path


def is_dotted_name(path):
    """True for ``a.b.C``: identifiers joined by dots, at least two."""
    if not isinstance(path, str) or '.' not in path:
        return False
    return all(part.isidentifier() for part in path.split('.'))


def _py2_to_py3(module, name):
    key = (module, name)
    if key in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[key]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def spellings(path):
    """``path`` and what it means in Python 3 if Python 2 wrote it
    (``__builtin__.len`` is ``builtins.len``): the names under which
    :func:`resolve` may find something."""
    found = {path}
    parts = path.split('.')
    for split in range(len(parts) - 1, 0, -1):
        module, first = _py2_to_py3('.'.join(parts[:split]), parts[split])
        found.add('.'.join([module, first] + parts[split + 1:]))
    return found


def _never(module_name):
    return False


def _exists(module_name):
    """Would an import find ``module_name``?  Asks the finders (which run
    no module code) for the first part that is not imported: its parent
    is, so they can answer without importing anything."""
    parts = module_name.split('.')
    for end in range(1, len(parts) + 1):
        name = '.'.join(parts[:end])
        if sys.modules.get(name) is not None:
            continue
        parent = sys.modules.get(name.rpartition('.')[0])
        if parent is not None and not (
                issubclass(type(parent), types.ModuleType) and
                '__path__' in _MODULE_DICT.__get__(parent)):
            # Not a package, so no submodules -- and asking the finders
            # would read its __path__ with getattr, running a module
            # __getattr__ hook.
            return False
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False
    return True


def static_attribute(obj, name):
    """``obj.name`` for a module or class ``obj``, found without running
    code: no module ``__getattr__`` hook, no property, no descriptor of the
    class (what its ``__dict__`` holds is returned, static and class
    methods unwrapped to the function they hold, as ``getattr`` would give
    them).  ``AttributeError`` if it is not there, or if ``obj`` is
    neither a module nor a class (walking through an instance could run
    anything)."""
    kind = type(obj)
    if name == '__class__':
        return kind         # what getattr gives, without a __class__ hook
    if issubclass(kind, types.ModuleType):
        try:
            return _MODULE_DICT.__get__(obj)[name]
        except KeyError:
            raise AttributeError(name) from None
    if not issubclass(kind, type):
        raise AttributeError(
            '%s: looking into a %s could run its code'
            % (name, kind.__name__))
    found = inspect.getattr_static(obj, name)
    kind = type(found)
    if kind is staticmethod:
        return found.__func__
    if kind is classmethod:
        return types.MethodType(found.__func__, obj)
    return found


def resolve(path, may_import=_never):
    """Return the object named by the dotted ``path``.

    Tries the longest module prefix first and walks attributes from there,
    so nested classes (``mod.Outer.Inner``) resolve too.  A module already
    in ``sys.modules`` is used as it is; any other is imported only if
    ``may_import(module_name)`` says so -- otherwise :class:`NotImported`.
    Raises ``ImportError`` naming the path when nothing matches; failures
    are not cached, so a module installed later is found.
    """
    if not is_dotted_name(path):
        raise ImportError('not a dotted name: %r' % (path,))
    parts = path.split('.')
    blocked = None
    for split in range(len(parts) - 1, 0, -1):
        module_name = '.'.join(parts[:split])
        attrs = parts[split:]
        module_name, first = _py2_to_py3(module_name, attrs[0])
        attrs = [first] + attrs[1:]
        obj = sys.modules.get(module_name)
        if obj is None:
            if not may_import(module_name):
                blocked = blocked or module_name
                continue
            try:
                obj = importlib.import_module(module_name)
            except ImportError:
                continue
        try:
            for attr in attrs:
                obj = static_attribute(obj, attr)
        except AttributeError:
            continue
        return obj
    if blocked is not None:
        raise NotImported(path, blocked, _exists(blocked))
    raise ImportError('cannot resolve %r: no such module or attribute' % path)
