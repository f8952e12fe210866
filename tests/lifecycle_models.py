"""Classes the object-lifecycle tests store in ZODB and in MongoDB alike."""
import persistent


class Item(persistent.Persistent):
    _p_mongo_collection = 'items'

    def __init__(self, name, **attrs):
        self.name = name
        self.__dict__.update(attrs)

    def __repr__(self):
        return '<Item %s>' % self.name


class Payload(persistent.Persistent):
    """About a kilobyte per document: for the memory tests."""
    _p_mongo_collection = 'payloads'

    def __init__(self, number):
        self.number = number
        self.text = 'x' * 1000
