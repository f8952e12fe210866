"""MongoEngine: ``Document`` classes, no unit of work.

Adding uses its bulk ``Item.objects.insert([...], load_bulk=False)`` (one
command; the default ``load_bulk=True`` reads them all back);
modifying loads the items with one query and calls ``save()`` on each
(one update per object: MongoEngine has no bulk save); deleting uses the
bulk ``Item.objects(key__in=keys).delete()`` (one command).  Listing keys
is ``Item.objects.scalar('key')``.
"""
from bench.systems.base import System
from bench.systems.base import row
from bench.systems.base import tally

try:
    import mongoengine
    from mongoengine import Document
    from mongoengine import FloatField
    from mongoengine import IntField
    from mongoengine import ListField
    from mongoengine import StringField
    IMPORT_ERROR = None
except ImportError as err:
    mongoengine = None
    IMPORT_ERROR = ("MongoEngine is not installed "
                    "(pip install -e '.[bench]'): %s" % err)

COLLECTION = 'items'
ALIAS = 'zmongo-bench'

if mongoengine is not None:
    class Item(Document):
        meta = {
            'collection': COLLECTION,
            'db_alias': ALIAS,
            'indexes': [{'fields': ['key'], 'unique': True}],
            'auto_create_index': False,
        }
        key = StringField(required=True)
        name = StringField()
        age = IntField()
        email = StringField()
        score = FloatField()
        tags = ListField(StringField())


class MongoEngineSystem(System):
    name = 'mongoengine'
    description = ('MongoEngine: Document objects; objects.insert([...]), '
                   'objects(...), objects.get, save() per object, bulk '
                   'queryset delete()')

    @classmethod
    def unavailable(cls):
        return IMPORT_ERROR

    def setup(self, db_name):
        super().setup(db_name)
        # MongoEngine keeps one client per alias: register ours, on this
        # database (its own client would not be counted).
        mongoengine.disconnect(ALIAS)
        from mongoengine import connection
        connection._connection_settings[ALIAS] = {
            'name': db_name, 'host': None}
        connection._connections[ALIAS] = self.client
        connection._dbs.pop(ALIAS, None)
        Item._collection = None
        Item.ensure_indexes()

    def teardown(self):
        from mongoengine import connection
        connection._connections.pop(ALIAS, None)
        connection._connection_settings.pop(ALIAS, None)
        connection._dbs.pop(ALIAS, None)
        Item._collection = None
        super().teardown()

    def add(self, items):
        Item.objects.insert([Item(**item) for item in items],
                            load_bulk=False)
        return {item['key']: item['key'] for item in items}

    def keys(self):
        return list(Item.objects.scalar('key'))

    def load_all(self):
        objs = list(Item.objects)
        return [row(o.key, o) for o in objs], objs

    def lookup(self, keys):
        get = Item.objects.get
        return [row(key, get(key=key)) for key in keys]

    def query_age_gt(self, age):
        return [row(o.key, o) for o in Item.objects(age__gt=age)]

    def modify(self, values):
        for obj in Item.objects(key__in=list(values)):
            obj.score = values[obj.key]
            obj.save()

    def delete(self, keys):
        Item.objects(key__in=list(keys)).delete()

    def walks(self):
        # A QuerySet keeps what it has iterated (its result cache) while it
        # is alive; no_cache() is MongoEngine's answer for large walks.
        return [('objects', lambda: tally(Item.objects)),
                ('objects.no_cache()',
                 lambda: tally(Item.objects.no_cache()))]

    def stored(self):
        return self.stored_docs(COLLECTION)
