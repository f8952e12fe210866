"""Classes the hardening tests store (round trips, bad documents, faults).

Module level in an importable module: the loader finds classes by their
dotted path.
"""
import persistent


class Bag(persistent.Persistent):
    """A persistent object with whatever attributes a test gives it; its
    documents live in the collection named after its dotted path."""

    def __init__(self, **attrs):
        for name, value in attrs.items():
            setattr(self, name, value)

    def __repr__(self):
        return '<Bag>'


BAG = '%s.%s' % (Bag.__module__, Bag.__qualname__)


class Part(persistent.Persistent):
    """A persistent object stored inside its parent's document."""
    _p_mongo_sub_object = True

    def __init__(self, **attrs):
        for name, value in attrs.items():
            setattr(self, name, value)

    def __repr__(self):
        return '<Part %r>' % (self.__getstate__(),)


class Item(persistent.Persistent):
    """Stored in the collection ``items``."""
    _p_mongo_collection = 'items'

    def __init__(self, name, value=0):
        self.name = name
        self.value = value

    def __repr__(self):
        return '<Item %s>' % (self.name,)


class Entry(persistent.Persistent):
    """Stored in the collection ``entries``: a second collection, so a
    commit writes with two ``bulk_write`` commands."""
    _p_mongo_collection = 'entries'

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return '<Entry %s>' % (self.text,)


class Plain:
    """A non-persistent object with a plain attribute dict."""

    def __init__(self, **attrs):
        self.__dict__.update(attrs)

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self):
        return '<Plain %r>' % (vars(self),)
