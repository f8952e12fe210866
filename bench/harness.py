"""Running workloads, measuring them, checking what they did.

For each size N, each repetition and each system (the order of systems
rotates from one repetition to the next, so no system always runs on a
server that has just served another), a fresh database, then the seven
workloads in order:

=========  ==============================================================
add        add N items (key, name, age, email, score, tags) and commit
keys       in a fresh transaction, list the keys
load_all   load all items with their attributes
lookup     200 random lookups by key
query      items with ``age > 50``, as objects
modify     set one attribute (``score``) on 10% of the items and commit
delete     delete 10% of the items and commit
=========  ==============================================================

and, right after ``keys``, ``load_all`` and ``lookup``, the same again in a
second transaction of the same connection (``keys_warm``, ``load_warm``,
``lookup_warm``: nothing reopened, caches left as they are -- what a
system keeps between transactions is what these measure), and
``lookup_inval``: the same lookups once more after another client changed
10 of the items (untimed), so a cache must learn of the change first.
Systems with a cache report it (``cache_stats()``): its hits and misses
and the time spent learning of changes, per workload.

Measured per workload: MongoDB commands sent (the system's client's
``CommandListener``; handshakes aside), wall time (``perf_counter``) and
client CPU time (``process_time``: the server runs in another process);
for load_all also peak memory (``tracemalloc``, in an extra untimed
load_all of the first repetition, so tracing never slows a timed run).
After every workload its result, or the store's content, is checked
against the expected one (neither timed nor counted); a mismatch fails
the system, reported as such.
"""
import gc
import statistics
import time
import traceback
import tracemalloc
import uuid

from bench import data as _data

WORKLOADS = ('add', 'keys', 'keys_warm', 'load_all', 'load_warm', 'lookup',
             'lookup_warm', 'lookup_inval', 'query', 'modify', 'delete')
#: The workloads that run again what the one before ran.
WARM = ('keys_warm', 'load_warm', 'lookup_warm', 'lookup_inval')
#: Items another client changes before ``lookup_inval``.
INVALIDATED = 10


class CheckFailed(AssertionError):
    pass


def check(what, got, expected):
    if got != expected:
        detail = ''
        if isinstance(got, list) and isinstance(expected, list):
            detail = ' (%d results, expected %d)' % (len(got), len(expected))
            for i, (g, e) in enumerate(zip(got, expected)):
                if g != e:
                    detail += '; first difference at %d: %r != %r' % (
                        i, g, e)
                    break
        elif isinstance(got, dict) and isinstance(expected, dict):
            missing = set(expected) - set(got)
            extra = set(got) - set(expected)
            wrong = [k for k in set(got) & set(expected)
                     if got[k] != expected[k]]
            detail = ' (%d missing, %d extra, %d wrong%s)' % (
                len(missing), len(extra), len(wrong),
                ', e.g. %r: %r != %r' % (wrong[0], got[wrong[0]],
                                         expected[wrong[0]])
                if wrong else '')
        raise CheckFailed('%s: wrong result%s' % (what, detail))


def _rows(rows):
    return [_data.normalize_row(r) for r in rows]


def _stored(system):
    return {str(k): (v[0], v[1], v[2], v[3], list(v[4]))
            for k, v in system.stored().items()}


class Measure:
    """Commands, wall and CPU time of one call."""

    def __init__(self, system):
        self.system = system

    def __call__(self, func, *args):
        counter = self.system.counter if self.system.counts_commands \
            else None
        gc.collect()
        if counter is not None:
            counter.reset()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        result = func(*args)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        commands = None
        names = None
        if counter is not None:
            names = {}
            for name in counter.names:
                names[name] = names.get(name, 0) + 1
            commands = len(counter)
        return result, {'wall': wall, 'cpu': cpu, 'commands': commands,
                        'command_names': names}


def run_workloads(system, plan, measure_memory=False, workloads=WORKLOADS,
                  wrap=None):
    """Run the workloads once on ``system`` (already set up); return
    ``{workload: figures}``.  Raises :class:`CheckFailed` when a result is
    wrong.  ``wrap(workload, func)``, if given, returns what to call instead
    of ``func`` (a profiler, say)."""
    model = _data.Model(plan)
    measure = Measure(system)
    out = {}

    def step(name, func, *args, warm=False):
        if wrap is not None:
            func = wrap(name, func)
        if warm:
            system.begin_warm()
        else:
            system.begin()
        before = system.cache_stats()
        result, figures = measure(func, *args)
        after = system.cache_stats()
        if after is not None:
            figures['cache'] = {k: after.get(k, 0) - (before or {}).get(k, 0)
                                for k in after}
        out[name] = figures
        return result

    keymap = step('add', system.add, plan.items)
    check('add: keys', sorted(keymap), sorted(i['key'] for i in plan.items))
    model.add_all(keymap)
    check('add: stored items', _stored(system), model.stored())

    if 'keys' in workloads:
        keys = step('keys', system.keys)
        check('keys', sorted(str(k) for k in keys),
               sorted(model.stored()))
        keys = step('keys_warm', system.keys, warm=True)
        check('keys_warm', sorted(str(k) for k in keys),
               sorted(model.stored()))

    if 'load_all' in workloads:
        rows, objects = step('load_all', system.load_all)
        check('load_all', sorted(_rows(rows)), sorted(_rows(model.rows())))
        del rows, objects
        rows, objects = step('load_warm', system.load_all, warm=True)
        check('load_warm', sorted(_rows(rows)), sorted(_rows(model.rows())))
        del rows, objects
        if measure_memory:
            system.begin()
            gc.collect()
            tracemalloc.start()
            try:
                tracemalloc.reset_peak()
                rows, objects = system.load_all()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            check('load_all (memory run)', len(rows), plan.n)
            del rows, objects
            out['load_all']['memory'] = peak

    if 'lookup' in workloads:
        rows = step('lookup', system.lookup, model.names(plan.lookup_keys))
        check('lookup', _rows(rows), _rows(model.rows(plan.lookup_keys)))
        rows = step('lookup_warm', system.lookup,
                    model.names(plan.lookup_keys), warm=True)
        check('lookup_warm', _rows(rows),
              _rows(model.rows(plan.lookup_keys)))
        # Another client changes some of the items looked up (untimed).
        changed = sorted(set(plan.lookup_keys))[:INVALIDATED]
        system.change_outside(model.names(changed), 'changed')
        model.rename(changed, 'changed')
        rows = step('lookup_inval', system.lookup,
                    model.names(plan.lookup_keys), warm=True)
        check('lookup_inval', _rows(rows),
              _rows(model.rows(plan.lookup_keys)))

    if 'query' in workloads:
        rows = step('query', system.query_age_gt, _data.QUERY_AGE)
        check('query', sorted(_rows(rows)), sorted(_rows(model.rows(
            where=lambda r: r[2] > _data.QUERY_AGE))))

    if 'modify' in workloads:
        values = {model.name(k): v for k, v in plan.modify_values.items()}
        step('modify', system.modify, values)
        model.modify()
        check('modify: stored items', _stored(system), model.stored())

    if 'delete' in workloads:
        step('delete', system.delete, model.names(plan.delete_keys))
        model.delete()
        check('delete: stored items', _stored(system), model.stored())
    return out


def db_name(system_name, n, rep):
    return 'bench_%s_%d_%d_%s' % (system_name.replace('-', '_'), n, rep,
                                  uuid.uuid4().hex[:6])


def run(systems, sizes, repeats, log=print, uri=None, client_options=None):
    """Run everything; returns the raw results.

    ``systems``: ``{name: class or None}``; ``repeats``: ``{n: count}``.
    """
    instances = {}
    status = {}
    for name, klass in systems.items():
        if klass is None:
            continue
        system = klass()
        try:
            system.connect(uri, dict(client_options or {}))
        except Exception as err:
            status[name] = 'failed to connect: %s' % err
            continue
        instances[name] = system
    raw = {}     # (system, workload, n) -> list of figures dicts
    try:
        for n in sizes:
            plan = _data.Plan(n)
            names = [s for s in instances if s not in status]
            for rep in range(repeats[n]):
                order = names[rep % len(names):] + names[:rep % len(names)] \
                    if names else []
                for name in order:
                    if name in status:
                        continue
                    system = instances[name]
                    t0 = time.perf_counter()
                    try:
                        system.setup(db_name(name, n, rep))
                        try:
                            figures = run_workloads(
                                system, plan, measure_memory=rep == 0)
                        finally:
                            system.teardown()
                    except Exception as err:
                        status[name] = 'at N=%d: %s: %s' % (
                            n, type(err).__name__, str(err)[:300])
                        log('  %-17s N=%-6d rep %d FAILED: %s' % (
                            name, n, rep + 1, status[name]))
                        log(traceback.format_exc())
                        continue
                    for workload, fig in figures.items():
                        raw.setdefault((name, workload, n), []).append(fig)
                    log('  %-17s N=%-6d rep %d/%d  %.2fs' % (
                        name, n, rep + 1, repeats[n],
                        time.perf_counter() - t0))
    finally:
        for system in instances.values():
            try:
                system.close()
            except Exception:
                pass
    return raw, status


def summarize(raw, status, baseline):
    """Medians and ratios to ``baseline``: a list of result dicts."""
    results = []
    for (name, workload, n), figs in sorted(raw.items()):
        commands = [f['commands'] for f in figs]
        entry = {
            'system': name, 'workload': workload, 'n': n,
            'runs': len(figs),
            'commands': commands[0],
            'commands_stable': len(set(commands)) == 1,
            'command_names': figs[0]['command_names'],
            'wall_s': statistics.median(f['wall'] for f in figs),
            'cpu_s': statistics.median(f['cpu'] for f in figs),
            'wall_all_s': [f['wall'] for f in figs],
            'cpu_all_s': [f['cpu'] for f in figs],
            'memory_bytes': figs[0].get('memory'),
            'cache': figs[0].get('cache'),
        }
        results.append(entry)
    base = {(r['workload'], r['n']): r for r in results
            if r['system'] == baseline}
    for r in results:
        b = base.get((r['workload'], r['n']))
        for field in ('commands', 'wall_s', 'cpu_s', 'memory_bytes'):
            ratio = None
            if b is not None and r[field] is not None and b[field]:
                ratio = r[field] / b[field]
            r[field.split('_')[0] + '_ratio'] = ratio
    return results
