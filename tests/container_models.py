"""Classes the container tests store (module level, so they can load)."""
import persistent
import zope.interface
from zope.container import contained
from zope.location.interfaces import ILocation
from zope.location.interfaces import IRoot

from zmongo import container


class Item(container.MongoContained, persistent.Persistent):
    """An item knowing nothing of where it lives (containers tell it)."""

    def __init__(self, name, key=None):
        self.name = name
        if key is not None:
            self.key = key

    def __repr__(self):
        return '<Item %s>' % self.name


class PersistentFirstItem(persistent.Persistent, container.MongoContained):
    """The other base-class order."""

    def __init__(self, name):
        self.name = name


class SimplePerson(contained.Contained, persistent.Persistent):
    """A plain zope.container item (stores __name__ / __parent__)."""
    _p_mongo_collection = 'person'

    def __init__(self, name):
        self.name = name


class Person(container.MongoContained, persistent.Persistent):
    """An item that locates itself from its document."""
    _p_mongo_collection = 'person'
    _m_name_attr = 'key'
    _m_parent_attr = 'parent'

    def __init__(self, name, key=None):
        self.name = name
        if key is not None:
            self.key = key

    def __repr__(self):
        return '<Person %s>' % self.name


class FuncPerson(container.MongoContained, persistent.Persistent):
    """Name and parent through getter/setter functions."""
    _p_mongo_collection = 'person'
    _m_name_getter = lambda self: self.nick            # noqa: E731
    _m_name_setter = lambda self, v: setattr(self, 'nick', v)  # noqa: E731
    _m_parent_getter = lambda self: self.owner         # noqa: E731
    _m_parent_setter = lambda self, v: setattr(self, 'owner', v)  # noqa

    def __init__(self, nick=None, owner=None):
        self.nick = nick
        self.owner = owner


class People(container.MongoContainer):
    _m_collection = 'person'


class KeepingPeople(container.MongoContainer):
    _m_collection = 'person'
    _m_remove_documents = False


class IdPeople(container.IdNamesMongoContainer):
    _m_collection = 'person'


class AllPeople(container.AllItemsMongoContainer):
    _m_collection = 'person'


@zope.interface.implementer(IRoot)
class Site(container.SimpleMongoContainer):
    """The root of a stored tree."""
    _p_mongo_collection = 'site'


class Campaigns(container.MongoContainer):
    _m_collection = 'campaigns'


class Campaign(container.MongoContained, container.MongoContainer):
    """A container that is itself an item of a container."""
    _p_mongo_collection = 'campaigns'
    _m_collection = 'person'

    def __init__(self, name):
        super().__init__()
        self.name = name


@zope.interface.implementer(ILocation)
class Located(persistent.Persistent):
    """Locatable, but not declared IContained."""
    __name__ = __parent__ = None


class Thing(persistent.Persistent):
    """A persistent object that is not locatable."""

    def __init__(self, name):
        self.name = name
