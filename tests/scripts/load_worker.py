"""A load-test worker: adds, modifies and deletes items in shared containers
for a bounded time, retrying through ``attempts()``, and keeps a log of what
it committed and of what it aborted on purpose.

Used two ways by ``tests/test_load.py``:

* in a thread of the test process: :func:`work` with the thread's own
  ``TransactionManager`` and data manager;
* as a process (``python -m tests.scripts.load_worker URI DB MODE NAME
  SECONDS SEED LOGFILE``): its own client, through a
  :class:`zmongo.provider.MongoDataManagerProvider` and the thread-local
  ``transaction.manager``; the log is written to LOGFILE as JSON.

The containers are the named roots ``box0`` ... ``box<BOXES-1>`` (collection
``loaditems``).  Added keys are ``<worker>-<seq>``, unique per worker; a
worker modifies (``value``) and deletes only items it added itself.  The
modifications that race are increments of the shared counters, the named
roots ``counter-0`` ... (``tests.models.Counter``), which every worker
increments: a serial conflict handler makes the loser retry.  (Racing
modifications of *container items* in standalone mode hit a bug, pinned by
``test_load.py::test_racing_item_modification_in_standalone_mode_is_a_conflict``.)
An aborted transaction adds ``<worker>-abort-<seq>``, changes one of the
worker's items and adds 1000 to a counter.
"""
import json
import random
import sys
import time

BOXES = 2
COUNTERS = 3
ATTEMPTS = 500


def box_name(i):
    return 'box%d' % i


def counter_name(i):
    return 'counter-%d' % i


def new_log(name):
    return {'worker': name, 'added': [], 'deleted': [], 'increments': [],
            'modified': [],
            'aborted': [], 'commits': 0, 'retries': 0}


def work(name, tm, get_dm, seconds, seed, transactions, log=None):
    """Run for ``seconds``; returns the log (``log`` filled in place)."""
    from tests import container_models as models
    rng = random.Random(seed)
    log = new_log(name) if log is None else log
    mine = []              # (box, key) committed by this worker, not deleted
    seq = 0
    deadline = time.monotonic() + seconds

    def attempt_loop(change):
        for number, attempt in enumerate(tm.attempts(ATTEMPTS)):
            if number:
                log['retries'] += 1
                time.sleep(rng.random() * 0.004)
            with attempt:
                change(get_dm())
        log['commits'] += 1

    while time.monotonic() < deadline:
        seq += 1
        op = rng.choice(('add', 'add', 'add', 'modify', 'modify', 'delete',
                         'abort'))
        box = box_name(rng.randrange(BOXES))
        if op == 'delete' and not mine:
            op = 'add'
        if op == 'add':
            key = '%s-%d' % (name, seq)

            def change(dm):
                item = models.Item(key)
                item.value = seq
                dm.root[box][key] = item
            attempt_loop(change)
            log['added'].append([box, key, seq])
            mine.append((box, key))
        elif op == 'modify' and mine and rng.random() < 0.4:
            box, key = rng.choice(mine)

            def change(dm):
                dm.root[box][key].value += 1
            attempt_loop(change)
            log['modified'].append([box, key])
        elif op == 'modify':
            counter = counter_name(rng.randrange(COUNTERS))

            def change(dm):
                dm.root[counter].value += 1
            attempt_loop(change)
            log['increments'].append(counter)
        elif op == 'delete':
            box, key = mine.pop(rng.randrange(len(mine)))

            def change(dm):
                del dm.root[box][key]
            attempt_loop(change)
            log['deleted'].append([box, key])
        else:
            key = '%s-abort-%d' % (name, seq)
            tm.begin()
            try:
                dm = get_dm()
                item = models.Item(key)
                item.value = -1
                dm.root[box][key] = item
                if mine:
                    own_box, own_key = rng.choice(mine)
                    dm.root[own_box][own_key].value += 1000
                # These writes reach the server (in the server transaction,
                # or undone from the undo log in standalone mode) ...
                dm.flush()
                counter = dm.root[counter_name(rng.randrange(COUNTERS))]
                counter.value += 1000
                if transactions:
                    # ... and, with isolation, the modification too
                    # (standalone mode has no isolation: another worker
                    # could read it before the abort).
                    dm.flush()
            except Exception as err:   # a conflict on the way: still aborted
                log.setdefault('abort_errors', []).append(repr(err))
            finally:
                tm.abort()
            log['aborted'].append([box, key])
    return log


def warm_up(tm, get_dm):
    """Look into every container once, before the load: this client makes
    sure of the containers' indexes now (``createIndex``), not while the
    other workers' transactions run.  (Once, under load in
    server-transaction mode, the embedded server stopped answering every
    client -- its threads waiting on its storage and transaction locks --
    right after such index builds; see docs/reliability.rst.)"""
    for attempt in tm.attempts(ATTEMPTS):
        with attempt:
            dm = get_dm()
            for b in range(BOXES):
                'warm-up' in dm.root[box_name(b)]
    tm.abort()


def main(uri, db_name, mode, name, seconds, seed, log_path):
    import transaction

    from zmongo import conflict
    from zmongo.provider import MongoDataManagerProvider
    transactions = mode == 'transactions'
    provider = MongoDataManagerProvider(
        uri, client_options={'timeoutMS': 20000,
                             'serverSelectionTimeoutMS': 20000},
        default_database=db_name, root_database=db_name,
        transactions=transactions,
        conflict_handler_factory=conflict.SimpleSerialConflictHandler,
        # As an application trusts its own modules: the roots name classes
        # of modules this process has not imported yet.
        trusted_modules=['tests.models', 'tests.container_models'])
    log = new_log(name)
    warm_up(transaction.manager, provider.get)
    print('ready', flush=True)
    try:
        work(name, transaction.manager, provider.get, float(seconds),
             int(seed), transactions, log)
    except BaseException as err:
        log['error'] = repr(err)
        raise
    finally:
        with open(log_path, 'w') as f:
            json.dump(log, f)
        provider.close()


if __name__ == '__main__':
    main(*sys.argv[1:])
