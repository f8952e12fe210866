"""Classes and functions no test trusts: ``tests/conftest.py`` trusts the
suite's model modules by name, and this module is under none of them.

``CALLS`` records every call into their code, so a test can prove that
loading a document that names them ran nothing of theirs.
"""
import enum

import persistent

#: (what, arguments) for each call of the code below.
CALLS = []


class Recorder:
    """Records its construction and its state being set."""

    def __new__(cls, *args, **kwargs):
        CALLS.append(('__new__', args))
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        CALLS.append(('__init__', args))

    def __setstate__(self, state):
        CALLS.append(('__setstate__', state))
        self.__dict__.update(state)


class Phone:
    """A plain value class, as mongopersist applications stored them."""

    def __init__(self, number=None):
        CALLS.append(('Phone.__init__', (number,)))
        self.number = number

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)


class Page(persistent.Persistent):
    """Persistent: loadable without trust (its module is imported)."""

    def __init__(self, title=None):
        self.title = title


class Color(enum.Enum):
    """Members are looked up by value: loadable without trust."""
    RED = 1
    GREEN = 2


class Access(enum.Flag):
    """Combinations of flags are made by the standard library's code."""
    READ = 1
    WRITE = 2


class Strict(enum.Flag):
    """Its own ``_missing_`` is the application's code: not called."""
    ONE = 1

    @classmethod
    def _missing_(cls, value):
        CALLS.append(('_missing_', (value,)))


def make_phone(number):
    """An application factory, as a mongopersist document may name one."""
    CALLS.append(('make_phone', (number,)))
    phone = Phone.__new__(Phone)
    phone.number = number
    return phone
