"""Classes and functions the serializer tests store or name in documents.

They live at module level in an importable module because the loader finds
classes (and factories, constants, functions) by their dotted path.
"""
import copyreg
import datetime
import enum

import persistent

from zmongo import serialize

#: What ``record_call`` was called with; loading must leave it empty unless
#: the test registered ``record_call`` as a factory.
CALLS = []


def record_call(*args):
    """A factory documents may name: it leaves a trace when it is called."""
    CALLS.append(args)
    return Plain(called_with=list(args))


def module_function():
    return 'module function'


class Holder(persistent.Persistent):
    """A persistent object whose attributes are whatever the test gives."""

    def __init__(self, **attrs):
        for name, value in attrs.items():
            setattr(self, name, value)


class Plain:
    """A non-persistent object with a plain attribute dict."""

    def __init__(self, **attrs):
        self.__dict__.update(attrs)

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self):
        return '<Plain %r>' % (vars(self),)


class Outer:

    class Inner:
        pass


class DictSub(dict):
    """A dict subclass with an attribute: pickled by copyreg._reconstructor.
    """

    def __eq__(self, other):
        return (type(other) is type(self) and dict.__eq__(self, other) and
                vars(other) == vars(self))

    __hash__ = None


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class _Constant:

    def __reduce__(self):
        return 'CONSTANT'


CONSTANT = _Constant()


class _CopyRegConstant:
    pass


def _reduce_copyreg_constant(obj):
    return 'COPYREG_CONSTANT'


copyreg.pickle(_CopyRegConstant, _reduce_copyreg_constant)
COPYREG_CONSTANT = _CopyRegConstant()


class Other(persistent.Persistent):
    """Persistent, in a database and collection of its own choosing."""
    _p_mongo_database = 'zmongo_other_db'
    _p_mongo_collection = 'Other'


class StoreType(persistent.Persistent):
    _p_mongo_collection = 'storetype'
    _p_mongo_store_type = True

    def __init__(self, value=None):
        self.value = value


class Shared(persistent.Persistent):
    _p_mongo_collection = 'shared'

    def __init__(self, value=None):
        self.value = value


class Note(persistent.Persistent):
    """A persistent object that is a sub-document only when the instance
    says so (``_p_mongo_sub_object`` as an instance attribute)."""

    def __init__(self, text=None):
        self.text = text


class DateSerializer(serialize.ObjectSerializer):
    """mongopersist's README example: dates as their ordinal."""

    def can_read(self, state):
        return isinstance(state, dict) and \
            state.get('_py_type') == 'datetime.date'

    def read(self, state):
        return datetime.date.fromordinal(state['ordinal'])

    def can_write(self, obj):
        return type(obj) is datetime.date

    def write(self, obj):
        return {'_py_type': 'datetime.date', 'ordinal': obj.toordinal()}
