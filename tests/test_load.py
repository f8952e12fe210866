"""Load: 8 threads and 2 processes add, modify and delete items in shared
containers for a bounded time, retrying through ``attempts()`` (issue 9).

Each worker keeps a log of what it committed (the processes write theirs to
files).  Afterwards: every committed change is there, no aborted change is,
no key is duplicated, and the counts match the logs.  The workers are in
``tests/scripts/load_worker.py``; everything talks to the embedded server on
loopback and stops by itself (each worker after ``SECONDS``; the processes
are killed if they overrun ``PROCESS_LIMIT``).
"""
import collections
import json
import os
import select
import subprocess
import sys
import threading
import time

import pytest
import transaction

from tests import container_models as models
from tests import models as models_
from tests.scripts import load_worker
from zmongo import conflict
from zmongo import container
from zmongo import interfaces
from zmongo import testing

HERE = os.path.dirname(os.path.abspath(__file__))
THREADS = 8
PROCESSES = 2
SECONDS = 5.0
#: Hard bound on a worker process (start-up included).
PROCESS_LIMIT = SECONDS + 60


def seed_containers(mongo, transactions):
    dm = mongo.make_datamanager(transactions=transactions)
    for b in range(load_worker.BOXES):
        dm.root[load_worker.box_name(b)] = container.MongoContainer(
            'loaditems')
    for i in range(load_worker.COUNTERS):
        dm.root[load_worker.counter_name(i)] = models_.Counter()
    transaction.commit()
    # The containers' indexes exist before the load (see
    # load_worker.warm_up).
    for b in range(load_worker.BOXES):
        'warm-up' in dm.root[load_worker.box_name(b)]
    transaction.commit()
    dm.reset()


def wait_for_line(process, expected, seconds):
    """The next line ``process`` prints, within ``seconds``."""
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    assert ready, 'a worker process did not start in %ss' % seconds
    line = process.stdout.readline().strip()
    assert line == expected, (line, process.stderr.read()
                              if process.poll() is not None else '')


def expected_state(logs):
    """(item values per box and key, counter values, aborted keys) the logs
    imply."""
    items = collections.defaultdict(dict)
    counters = collections.Counter()
    aborted = set()
    for log in logs:
        for box, key, value in log['added']:
            assert key not in items[box], 'a worker added a key twice'
            items[box][key] = value
        for box, key in log['modified']:
            items[box][key] += 1
        for box, key in log['deleted']:
            del items[box][key]
        for counter in log['increments']:
            counters[counter] += 1
        for box, key in log['aborted']:
            aborted.add(key)
    return items, counters, aborted


@pytest.mark.parametrize('mode', ['transactions', 'standalone'])
def test_threads_and_processes_lose_nothing(mongo, tmp_path, mode):
    transactions = mode == 'transactions'
    seed_containers(mongo, transactions)
    handler = conflict.SimpleSerialConflictHandler
    uri = testing.get_test_uri()

    # -- two processes, each with its own client and provider ---------------
    log_files = [tmp_path / ('process-%d.json' % n) for n in range(PROCESSES)]
    processes = [
        subprocess.Popen(
            [sys.executable, '-m', 'tests.scripts.load_worker', uri,
             mongo.db_name, mode, 'p%d' % n, str(SECONDS), str(100 + n),
             str(log_files[n])],
            cwd=os.path.dirname(HERE), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        for n in range(PROCESSES)]
    try:
        for process in processes:
            wait_for_line(process, 'ready', 60)
    except BaseException:
        for process in processes:
            process.kill()
            process.communicate()
        raise

    # -- eight threads, each with its own transaction manager and data
    # manager ---------------------------------------------------------------
    thread_logs = [load_worker.new_log('t%d' % n) for n in range(THREADS)]
    errors = []

    def run(n):
        tm = transaction.TransactionManager()
        dm = mongo.make_datamanager(transactions=transactions,
                                    transaction_manager=tm,
                                    conflict_handler_factory=handler)
        try:
            load_worker.work('t%d' % n, tm, lambda: dm, SECONDS, n,
                             transactions, thread_logs[n])
        except Exception as err:  # reported below, with the thread's name
            errors.append(('t%d' % n, repr(err)))
        finally:
            tm.abort()

    threads = [threading.Thread(target=run, args=(n,), daemon=True)
               for n in range(THREADS)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PROCESS_LIMIT)
    outputs = []
    for process in processes:
        try:
            out, err = process.communicate(
                timeout=max(1, PROCESS_LIMIT - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        outputs.append((process.returncode, err[-3000:]))
    assert not any(thread.is_alive() for thread in threads), 'a thread hung'
    assert errors == []
    assert [code for code, _ in outputs] == [0] * PROCESSES, outputs
    process_logs = [json.loads(path.read_text()) for path in log_files]
    logs = thread_logs + process_logs

    # Every worker got work done (the workers did run concurrently).
    for log in logs:
        assert log['commits'] > 0 and log['added'], log['worker']

    items, counters, aborted = expected_state(logs)

    # -- what the database holds --------------------------------------------
    coll = mongo.db['loaditems']
    docs = list(coll.find({}, {'key': 1, 'parent': 1, 'value': 1}))
    # No key is duplicated, in any container.
    pairs = collections.Counter((doc['parent'].id, doc['key'])
                                for doc in docs)
    assert [pair for pair, n in pairs.items() if n > 1] == []
    # No aborted change: no aborted item, no +1000 anywhere.
    assert [d['key'] for d in docs if d['key'] in aborted] == []
    assert coll.count_documents({'value': -1}) == 0

    check = mongo.make_datamanager(transactions=transactions)
    for i in range(load_worker.COUNTERS):
        counter = load_worker.counter_name(i)
        # Every committed increment is there, and only those.
        assert check.root[counter].value == counters[counter], counter
    assert sum(counters.values()) == sum(
        d['value'] for d in mongo.db['counters'].find())
    total = 0
    for b in range(load_worker.BOXES):
        name = load_worker.box_name(b)
        box = check.root[name]
        # Every committed add is there, every committed delete is gone.
        assert sorted(box.keys()) == sorted(items[name])
        assert len(box) == len(items[name])
        total += len(items[name])
        # Every committed modification is there, no aborted one.
        assert {key: item.value for key, item in box.items()} == \
            items[name]
        for key, item in box.items():
            assert item.name == key
            assert item.__name__ == key and item.__parent__ is box
    assert len(docs) == total
    transaction.abort()


def test_racing_item_modification_in_standalone_mode_is_a_conflict(mongo):
    """Two writers modify the same *container item* in standalone mode
    under ``SimpleSerialConflictHandler``; the loser must get the retryable
    ``ConflictError``.

    Bug: it gets ``zmongo.interfaces.DuplicateKeyError`` (not retryable).
    The loser's write is a ``ReplaceOne({_id, _py_serial: <old>}, doc,
    upsert=True)``; its upsert collides with the existing document.
    ``MongoDataManager._execute`` counts the collision as a conflict only
    when the duplicate-key error's ``keyPattern`` is ``{_id: 1}``; the
    embedded server reports it on the container's unique ``(parent, key)``
    index (``zmongo_container_parent_key``) instead, so ``_bulk_error``
    turns it into ``DuplicateKeyError``.  Server-transaction mode is not
    affected (the server reports a ``WriteConflict``).  Objects outside
    containers (no second unique index) are not affected either.
    """
    handler = conflict.SimpleSerialConflictHandler
    dm = mongo.make_datamanager(transactions=False)
    dm.root['box'] = container.MongoContainer('things')
    dm.root['box']['a'] = models.Item('A')
    transaction.commit()
    tm1, tm2 = transaction.TransactionManager(), transaction.TransactionManager()
    dm1 = mongo.make_datamanager(transactions=False, transaction_manager=tm1,
                                 conflict_handler_factory=handler)
    dm2 = mongo.make_datamanager(transactions=False, transaction_manager=tm2,
                                 conflict_handler_factory=handler)
    tm1.begin()
    tm2.begin()
    dm1.root['box']['a'].name = 'one'
    dm2.root['box']['a'].name = 'two'
    tm1.commit()
    try:
        with pytest.raises(interfaces.ConflictError):
            tm2.commit()
    finally:
        tm2.abort()
    assert mongo.db['things'].find_one()['name'] == 'one'
