"""Hand-written pymongo: the floor.

The fewest commands a careful program needs: ``insert_many`` to add, one
``find`` per listing/loading/query, one ``find_one`` per lookup, one
``bulk_write`` to modify (an ``UpdateOne`` per item) and one to delete (a
``DeleteOne`` per item).  Documents are
plain dicts; nothing is tracked, so "commit" costs nothing.
"""
import pymongo
from pymongo import DeleteOne
from pymongo import UpdateOne

from bench.systems.base import WALK_BATCH_SIZE
from bench.systems.base import System
from bench.systems.base import tally

COLLECTION = 'items'


class PyMongoSystem(System):
    name = 'pymongo'
    description = ('hand-written pymongo: insert_many, one find, find_one '
                   'per lookup, one bulk_write to modify, one to delete (the floor)')

    def setup(self, db_name):
        super().setup(db_name)
        self.coll = self.client[db_name][COLLECTION]
        self.coll.create_index([('key', pymongo.ASCENDING)], unique=True)

    def add(self, items):
        self.coll.insert_many([dict(item) for item in items])
        return {item['key']: item['key'] for item in items}

    def keys(self):
        return [doc['key'] for doc in self.coll.find({}, {'key': 1,
                                                          '_id': 0})]

    def load_all(self):
        docs = list(self.coll.find())
        return [(d['key'], d['name'], d['age'], d['email'], d['score'],
                 d['tags']) for d in docs], docs

    def lookup(self, keys):
        rows = []
        find_one = self.coll.find_one
        for key in keys:
            d = find_one({'key': key})
            rows.append((d['key'], d['name'], d['age'], d['email'],
                         d['score'], d['tags']))
        return rows

    def query_age_gt(self, age):
        return [(d['key'], d['name'], d['age'], d['email'], d['score'],
                 d['tags']) for d in self.coll.find({'age': {'$gt': age}})]

    def modify(self, values):
        self.coll.bulk_write([UpdateOne({'key': k}, {'$set': {'score': v}})
                              for k, v in values.items()], ordered=False)

    def delete(self, keys):
        self.coll.bulk_write([DeleteOne({'key': k}) for k in keys],
                             ordered=False)

    def walks(self):
        age = lambda doc: doc['age']   # noqa: E731
        return [('find()', lambda: tally(self.coll.find(), age)),
                ('find(batch_size=%d)' % WALK_BATCH_SIZE, lambda: tally(
                    self.coll.find(batch_size=WALK_BATCH_SIZE), age))]

    def stored(self):
        return self.stored_docs(COLLECTION)
