"""What a benchmarked system provides.

The harness calls, per run: ``connect(uri, client_options)`` (or, in tests,
``attach(client, counter)``); per repetition: ``setup(db_name)``, then each
workload after ``begin()`` (a fresh transaction; not timed), and
``teardown()``; at the end ``close()``.

Workloads (timed, and their MongoDB commands counted) return *rows*
``(key, name, age, email, score, tags)`` built from the objects'
attributes, and each ends the way a request ends (a commit), so the cost of
closing a transaction is part of every figure.  ``stored()`` (neither timed
nor counted: it reads through a separate client or connection) gives what
is really in the store, to check the writes.
"""
import pymongo

from zmongo.testing import CommandCounter


class System:
    name = None
    #: One line for the README and the table's legend.
    description = ''
    #: False for systems that do not talk to MongoDB (ZODB).
    counts_commands = True

    @classmethod
    def unavailable(cls):
        """None, or why this system cannot run here."""
        return None

    def __init__(self):
        self.counter = None
        self.client = None
        self.verify_client = None
        self.db_name = None

    # -- connections ---------------------------------------------------------

    def connect(self, uri, client_options):
        """Open this system's own client, with a command counter."""
        counter = CommandCounter()
        client = pymongo.MongoClient(uri, event_listeners=[counter],
                                     **client_options)
        self.attach(client, counter,
                    pymongo.MongoClient(uri, **client_options))
        self._own_clients = True

    def attach(self, client, counter, verify_client=None):
        """Use ``client`` (its commands recorded by ``counter``);
        ``verify_client`` reads for checks (default: ``client``, with the
        counter paused by the harness)."""
        self.client = client
        self.counter = counter
        self.verify_client = verify_client or client
        self._own_clients = False

    def close(self):
        if getattr(self, '_own_clients', False):
            self.client.close()
            self.verify_client.close()

    # -- per repetition ---------------------------------------------------------

    def setup(self, db_name):
        """A fresh, empty store in database ``db_name`` (indexes made)."""
        self.db_name = db_name

    def teardown(self):
        if self.db_name is not None and self.verify_client is not None:
            self.verify_client.drop_database(self.db_name)

    def begin(self):
        """Start a fresh transaction / unit of work (not timed)."""

    # -- workloads ----------------------------------------------------------

    def add(self, items):
        """Add every item and commit; return ``{item key: system key}``."""
        raise NotImplementedError

    def keys(self):
        raise NotImplementedError

    def load_all(self):
        """Rows of all items.  Returns ``(rows, objects)``: the objects are
        kept alive so memory figures include them."""
        raise NotImplementedError

    def lookup(self, keys):
        """Rows of ``keys``, looked up one by one, in order."""
        raise NotImplementedError

    def query_age_gt(self, age):
        """Rows of the items with ``age > age``, from one query."""
        raise NotImplementedError

    def modify(self, values):
        """Set ``score`` of the items named in ``values`` ({key: score})
        and commit."""
        raise NotImplementedError

    def delete(self, keys):
        """Delete the items named ``keys`` and commit."""
        raise NotImplementedError

    # -- checks --------------------------------------------------------------

    def stored(self):
        """``{key: (name, age, email, score, tags)}`` as stored."""
        raise NotImplementedError

    def stored_docs(self, collection, key_of=lambda doc: doc['key']):
        coll = self.verify_client[self.db_name][collection]
        return {key_of(doc): (doc['name'], doc['age'], doc['email'],
                              doc['score'], list(doc['tags']))
                for doc in coll.find()}


def row(key, obj):
    """The row of an object with attributes (reads every attribute)."""
    return (key, obj.name, obj.age, obj.email, obj.score, obj.tags)
