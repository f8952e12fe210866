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

    def begin_warm(self):
        """Start the next transaction on the same connection, leaving
        whatever the system keeps between transactions as it is (not
        timed): the warm workloads."""
        self.begin()

    def cache_stats(self):
        """Counters of the system's cache across transactions (hits,
        misses, ...), or None if it has none."""
        return None

    #: Where the items live, for :meth:`change_outside`.
    items_collection = 'items'

    def key_filter(self, name):
        """The filter of the item named ``name`` (the system's name)."""
        return {'key': name}

    def change_outside(self, names, suffix):
        """Another client appends ``' ' + suffix`` to the ``name`` of the
        items ``names`` (not timed): what a cache must learn of."""
        coll = self.verify_client[self.db_name][self.items_collection]
        ops = []
        for name in names:
            doc = coll.find_one(self.key_filter(name), {'name': 1})
            ops.append(pymongo.UpdateOne(
                {'_id': doc['_id']},
                {'$set': {'name': doc['name'] + ' ' + suffix}}))
        coll.bulk_write(ops)

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

    # -- walking a large collection (bench/walk.py) ---------------------------

    def fill(self, items):
        """Store ``items`` before a walk (not measured).  By default as the
        add workload does, :data:`FILL_CHUNK` items per transaction; a
        system whose add is far slower than what it reads back (one command
        per item) may store the same documents in one command instead: the
        walk measures reading, not writing."""
        for start in range(0, len(items), FILL_CHUNK):
            self.begin()
            self.add(items[start:start + FILL_CHUNK])

    def walks(self):
        """``[(label, function), ...]``: the ways this system's users walk
        every item.  Each function, called in a fresh transaction, iterates
        over all items as objects, reads ``age`` of each and keeps none
        (use :func:`tally`), and returns ``(count, sum of ages)`` without
        ending the transaction: the harness measures what stays alive
        inside the transaction, then calls :meth:`end`.  None by default:
        reported as such."""
        return []

    def end(self):
        """End the transaction a walk ran in, as a request ends."""

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


#: Items added per transaction when filling a store for a walk: the largest
#: N of the workloads.  The embedded server's transactions slow down with
#: every write they hold (adding 100,000 items in one server transaction
#: did not finish in its 120 s timeout; 10,000 take about 2 s).
FILL_CHUNK = 10000

#: A cursor batch size for the walks that set one: the server's default
#: batches grow to 16 MiB of documents, so without it the peak of a walk
#: grows with N whatever the library keeps; with it the peak shows what the
#: library itself holds at once.
WALK_BATCH_SIZE = 1000


def tally(objects, age=lambda obj: obj.age):
    """``(count, sum of ages)`` of ``objects``, keeping none of them.

    The loop variable is the only reference the walk holds: it is rebound
    at each step, so whatever else stays alive is the library's doing.
    Summing one attribute makes every object load (no system can skip the
    work) and gives a result the harness checks.
    """
    count = total = 0
    for obj in objects:
        count += 1
        total += age(obj)
    return count, total
