"""Walking a large collection in one transaction: what stays in memory.

A migration or an export reads every item of a collection in one
transaction and keeps none of them.  Whether that fits in memory depends on
what the library keeps alive behind the application's back: an identity
map that holds every object strongly, a unit of work, a result cache.
This measurement shows it, per system and per way of walking
(:meth:`bench.systems.base.System.walks`):

1. store N items (``fill``, not measured) and start a fresh transaction;
2. trace the client process's allocations (``tracemalloc``; the server
   runs in a process of its own, so none of its memory is counted) while
   the walk reads ``age`` of every item and keeps nothing;
3. *peak*: the most memory allocated during the walk and alive at once;
4. *retained*: what the walk allocated that is still alive afterwards,
   after ``gc.collect()``, **inside the transaction** -- what a longer
   walk would accumulate;
5. *after end*: the same once the transaction has ended (``end()``: a
   commit) and ``gc.collect()`` ran.

``tracemalloc`` rather than the RSS: it counts only what was allocated
during the walk, byte for byte, whatever the allocator returns to the
system, and is what the main table's ``mem`` column uses.  Tracing makes
the walk slower, so the time shown is indicative only.

One run per (system, walk): memory figures barely vary between runs.  Each
walk's result (count and sum of ages) is checked against the items stored.
"""
import gc
import time
import traceback
import tracemalloc

from bench import data as _data
from bench import harness

#: N when ``--walk`` is given without a number: the issue that made the
#: data manager's identity map weak asks for the figure at 100,000.
DEFAULT_N = 100000


def measure(system, label, func, expected):
    """Walk once with ``func`` (in a fresh transaction); the figures.

    Raises :class:`bench.harness.CheckFailed` when the walk did not see
    every item.
    """
    system.begin()
    gc.collect()
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        result = func()
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        gc.collect()
        retained, _ = tracemalloc.get_traced_memory()
        system.end()
        gc.collect()
        after_end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    harness.check('walk %s %s' % (system.name, label), tuple(result),
                   expected)
    return {'system': system.name, 'walk': label, 'n': expected[0],
            'peak_bytes': peak, 'retained_bytes': retained,
            'after_end_bytes': after_end, 'traced_seconds': seconds}


def walk_system(system, n, db_name, log=lambda msg: None):
    """Fill ``system`` (connected) with ``n`` items and run each of its
    walks; a list of figures (one per walk)."""
    items = _data.make_items(n)
    expected = (n, sum(item['age'] for item in items))
    system.setup(db_name)
    try:
        t0 = time.perf_counter()
        system.fill(items)
        system.end()
        log('  %-17s N=%-7d filled in %.1fs' % (
            system.name, n, time.perf_counter() - t0))
        del items
        out = []
        for label, func in system.walks():
            figures = measure(system, label, func, expected)
            log('  %-17s %-30s peak %.1f MiB, retained %.1f MiB '
                '(%.0fs traced)' % (
                    system.name, label, figures['peak_bytes'] / 1048576,
                    figures['retained_bytes'] / 1048576,
                    figures['traced_seconds']))
            out.append(figures)
        return out
    finally:
        system.teardown()


def run(systems, n, log=print, uri=None, client_options=None):
    """Walk ``n`` items on every system of ``systems`` (``{name: class or
    None}``); ``(results, status)`` as :func:`bench.harness.run` gives."""
    results = []
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
        try:
            results.extend(walk_system(system, n,
                                       harness.db_name(name, n, 0), log))
        except Exception as err:
            status[name] = 'walk, N=%d: %s: %s' % (
                n, type(err).__name__, str(err)[:300])
            log('  %-17s FAILED: %s' % (name, status[name]))
            log(traceback.format_exc())
        finally:
            try:
                system.close()
            except Exception:
                pass
    return results, status


def _mib(b):
    return '%.1f' % (b / 1048576)


def _per_item(b, n):
    return '%.0f' % (b / n)


def table(results, systems_info, meta):
    """The walk's report as text."""
    from bench.report import status_lines
    n = meta['walk']
    out = ['zmongo benchmark, walk -- %s' % meta['command'],
           'server: %s' % meta['server'],
           'machine: %s; Python %s; %s' % (
               meta['machine'], meta['python'],
               ', '.join('%s %s' % kv for kv in meta['versions'].items())),
           'zmongo imported from %s' % meta['zmongo_path'],
           '', 'Systems:']
    out.extend(status_lines(systems_info))
    out += ['',
            'Walking N = %d items in one transaction, reading one attribute '
            'of each, keeping none.' % n,
            'Client process, tracemalloc: peak = most allocated at once '
            'during the walk; retained = still',
            'allocated after it (gc.collect()), inside the transaction; '
            'after end = once it is committed.',
            '']
    header = '%-17s %-30s %9s %7s %9s %7s %9s %7s %7s' % (
        'system', 'walk', 'peak MiB', 'B/item', 'retained', 'B/item',
        'after end', 'B/item', 's')
    out.append(header)
    out.append('-' * len(header))
    by_system = {}
    for r in results:
        by_system.setdefault(r['system'], []).append(r)
    for name, info in systems_info.items():
        rows = by_system.get(name)
        if not rows:
            out.append('%-17s %s' % (name, info['status'].upper()
                                     if info['status'] != 'ok'
                                     else 'no walk'))
            continue
        for r in rows:
            out.append('%-17s %-30s %9s %7s %9s %7s %9s %7s %7.1f' % (
                name, r['walk'],
                _mib(r['peak_bytes']), _per_item(r['peak_bytes'], n),
                _mib(r['retained_bytes']),
                _per_item(r['retained_bytes'], n),
                _mib(r['after_end_bytes']),
                _per_item(r['after_end_bytes'], n),
                r['traced_seconds']))
    return '\n'.join(out) + '\n'
