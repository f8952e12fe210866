"""Persistent classes the tests store (module level, so they can load)."""
import datetime

import persistent
import zope.interface

from zmongo import serialize
from zmongo.annotation import IMongoAttributeAnnotatable


class Person(persistent.Persistent):

    def __init__(self, name, phone=None, address=None, friends=None,
                 visited=(), birthday=None):
        self.name = name
        self.address = address
        self.friends = friends or {}
        self.visited = visited
        self.phone = phone
        self.birthday = birthday
        self.today = datetime.datetime(2011, 10, 1, 9, 45)

    def __repr__(self):
        return '<%s %s>' % (type(self).__name__, self.name)


PERSON = serialize.get_dotted_name(Person)


class Address(persistent.Persistent):
    _p_mongo_collection = 'address'

    def __init__(self, city, zip):
        self.city = city
        self.zip = zip

    def __repr__(self):
        return '<%s %s (%s)>' % (type(self).__name__, self.city, self.zip)


class ExtendedAddress(Address):

    def __init__(self, city, zip, country):
        super().__init__(city, zip)
        self.country = country


class Phone:

    def __init__(self, country, area, number):
        self.country = country
        self.area = area
        self.number = number

    def __eq__(self, other):
        return isinstance(other, Phone) and vars(self) == vars(other)

    def __repr__(self):
        return '<Phone %s-%s-%s>' % (self.country, self.area, self.number)


class Car(persistent.Persistent):
    _p_mongo_sub_object = True

    def __init__(self, year, make, model):
        self.year = year
        self.make = make
        self.model = model


class Top(persistent.Persistent):
    foo = None


class Foo:
    bar = None


class Bar:
    foo = None


class PFoo(persistent.Persistent):
    bar = None


class PBar(persistent.Persistent):
    foo = None


class Counter(persistent.Persistent):
    _p_mongo_collection = 'counters'

    def __init__(self, value=0):
        self.value = value


class MergingCounter(persistent.Persistent):
    """Resolves conflicts by adding both sides' increments."""
    _p_mongo_collection = 'merging_counters'

    def __init__(self, value=0):
        self.value = value

    def _p_resolveConflict(self, orig, cur, new):
        merged = dict(cur)
        merged['value'] = cur['value'] + new['value'] - orig['value']
        return merged


@zope.interface.implementer(IMongoAttributeAnnotatable)
class Document(persistent.Persistent):
    """Annotatable: annotations and Dublin Core live in its document."""
    _p_mongo_collection = 'documents'

    def __init__(self, title):
        self.title = title
