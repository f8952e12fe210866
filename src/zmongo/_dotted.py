"""Dotted names <-> Python objects, including names Python 2 wrote.

mongopersist ran on Python 2, so stored documents can name
``copy_reg._reconstructor`` or ``__builtin__.set``; the standard library's
own pickle compatibility table maps those to their Python 3 homes.
"""
import _compat_pickle
import importlib


def get_dotted_name(obj):
    """The importable path of a class or function: ``module.QualName``."""
    qualname = getattr(obj, '__qualname__', obj.__name__)
    return '%s.%s' % (obj.__module__, qualname)


def is_importable_name(path):
    """False for names no import can reach (classes defined in functions)."""
    return '<locals>' not in path and '<lambda>' not in path


def _py2_to_py3(module, name):
    key = (module, name)
    if key in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[key]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def resolve(path):
    """Import and return the object named by the dotted ``path``.

    Tries the longest importable module prefix and walks attributes from
    there, so nested classes (``mod.Outer.Inner``) resolve too.  Raises
    ``ImportError`` naming the path when nothing matches; failures are not
    cached, so a module installed later is found.
    """
    if not isinstance(path, str) or not path or '.' not in path:
        raise ImportError('not a dotted name: %r' % (path,))
    parts = path.split('.')
    for split in range(len(parts) - 1, 0, -1):
        module_name = '.'.join(parts[:split])
        attrs = parts[split:]
        module_name, first = _py2_to_py3(module_name, attrs[0])
        attrs = [first] + attrs[1:]
        try:
            obj = importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            for attr in attrs:
                obj = getattr(obj, attr)
        except AttributeError:
            continue
        return obj
    raise ImportError('cannot resolve %r: no such module or attribute' % path)
