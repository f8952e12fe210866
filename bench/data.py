"""The data every system stores, and what each workload must return.

Items are generated from a fixed seed, so every system (and every run)
stores exactly the same values.  A *row* is what reading an item yields:
``(key, name, age, email, score, tags)``; systems build rows from their
objects' attributes inside the timed code, so loading is never skipped.
"""
import random

FIELDS = ('name', 'age', 'email', 'score', 'tags')
TAGS = ('red', 'green', 'blue', 'cyan', 'magenta', 'yellow', 'black')
LOOKUPS = 200
QUERY_AGE = 50
SEED = 20241124


def make_items(n, seed=SEED):
    """``n`` item dicts: key, name, age, email, score, tags."""
    rng = random.Random('%s-%d' % (seed, n))
    return [{
        'key': 'item-%06d' % i,
        'name': 'Item number %d' % i,
        'age': rng.randrange(0, 100),
        'email': 'user%d@example.org' % i,
        'score': round(rng.uniform(0, 1000), 3),
        'tags': [rng.choice(TAGS), rng.choice(TAGS)],
    } for i in range(n)]


class Plan:
    """What the workloads of one size do, decided once for all systems."""

    def __init__(self, n, seed=SEED):
        self.n = n
        self.items = make_items(n, seed)
        rng = random.Random('%s-plan-%d' % (seed, n))
        keys = [item['key'] for item in self.items]
        #: 200 random lookups (with repetition, so N=100 works too).
        self.lookup_keys = [rng.choice(keys) for _ in range(LOOKUPS)]
        tenth = max(n // 10, 1)
        self.modify_keys = rng.sample(keys, tenth)
        self.modify_values = {
            key: round(rng.uniform(1000, 2000), 3) for key in self.modify_keys}
        self.delete_keys = rng.sample(keys, tenth)


class Model:
    """The expected content of the store, keyed by logical key (the item's
    ``key``; systems that name items otherwise map it through ``keymap``)."""

    def __init__(self, plan):
        self.plan = plan
        self.state = {}
        self.keymap = {}

    def add_all(self, keymap):
        self.keymap = dict(keymap)
        self.state = {item['key']: tuple(item[f] for f in FIELDS)
                      for item in self.plan.items}

    def modify(self):
        for key, score in self.plan.modify_values.items():
            name, age, email, _, tags = self.state[key]
            self.state[key] = (name, age, email, score, tags)

    def rename(self, keys, suffix):
        """``' ' + suffix`` was appended to the names of ``keys``."""
        for key in keys:
            name, age, email, score, tags = self.state[key]
            self.state[key] = (name + ' ' + suffix, age, email, score, tags)

    def delete(self):
        for key in self.plan.delete_keys:
            self.state.pop(key, None)

    # -- in the system's names ---------------------------------------------

    def name(self, key):
        return self.keymap[key]

    def names(self, keys):
        return [self.keymap[k] for k in keys]

    def stored(self):
        """``{system key: values}``."""
        return {self.keymap[k]: v for k, v in self.state.items()}

    def rows(self, keys=None, where=None):
        keys = self.state if keys is None else keys
        rows = [(self.keymap[k],) + self.state[k] for k in keys]
        if where is not None:
            rows = [r for r in rows if where(r)]
        return rows


def normalize_row(row):
    """A row with plain Python values (lists, not persistent lists)."""
    key, name, age, email, score, tags = row
    return (str(key), name, age, email, score, list(tags))
