"""Run the benchmarks: ``python -m bench [--quick]`` (or
``python bench/run.py``).  See bench/README.rst."""
import argparse
import datetime
import os
import platform
import sys
import time

if __package__ in (None, ''):
    # Run as a script: import from the checkout, not from bench/ itself
    # (whose module names must not shadow top-level ones).
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path
                   if os.path.abspath(p or os.curdir) != _here]
    sys.path.insert(0, os.path.dirname(_here))

from bench import harness          # noqa: E402
from bench import report           # noqa: E402
from bench import systems as _systems  # noqa: E402
from bench import walk as _walk    # noqa: E402
from bench.server import ENV_URI   # noqa: E402
from bench.server import Server    # noqa: E402

FULL_SIZES = (100, 1000, 10000)
FULL_REPEATS = {100: 5, 1000: 5, 10000: 5}
QUICK_SIZES = (100, 1000)
QUICK_REPEATS = 3
#: For every system alike.  timeoutMS bounds every wait; retryWrites is off
#: on the embedded server, whose retryable-write records make each write
#: slower as they accumulate (pruned by a scan of all of them per write):
#: systems that send one write per object would slow the server down for
#: whichever system runs next.
CLIENT_OPTIONS = {'timeoutMS': 120000, 'serverSelectionTimeoutMS': 30000}
EMBEDDED_OPTIONS = {'retryWrites': False}

VERSIONED = ('zmongo', 'pymongo', 'persistent', 'transaction', 'ZODB',
             'Ming', 'mongoengine', 'SecantusDB')


def _versions():
    from importlib import metadata
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = 'not installed'
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog='python -m bench',
        description='zmongo against hand-written pymongo, Ming, '
                    'MongoEngine and ZODB.')
    p.add_argument('--quick', action='store_true',
                   help='N = 100 and 1000, %d runs each' % QUICK_REPEATS)
    p.add_argument('--sizes', help='comma-separated N (default 100,1000,'
                   '10000)')
    p.add_argument('--repeats', type=int,
                   help="runs per size (default 5)")
    p.add_argument('--systems', help='comma-separated, of: %s'
                   % ', '.join(_systems.NAMES))
    p.add_argument('--walk', type=int, nargs='?', const=_walk.DEFAULT_N,
                   metavar='N',
                   help='instead of the workloads, walk N items (default '
                   '%d) in one transaction and report the memory it keeps'
                   % _walk.DEFAULT_N)
    p.add_argument('--json',
                   help='where to write the JSON (default '
                   'bench-results.json; bench-walk.json with --walk)')
    p.add_argument('--table',
                   help='where to write the table (default '
                   'bench-results.txt; bench-walk.txt with --walk)')
    p.add_argument('-q', '--quiet', action='store_true',
                   help='no progress lines')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    prefix = 'bench-walk' if args.walk is not None else 'bench-results'
    args.json = args.json or prefix + '.json'
    args.table = args.table or prefix + '.txt'
    if args.walk is not None and (args.quick or args.sizes or args.repeats):
        # The walk is one run at one N: refuse options it would ignore.
        print('--walk N takes no --quick, --sizes or --repeats',
              file=sys.stderr)
        return 2
    if args.sizes:
        sizes = tuple(int(s) for s in args.sizes.split(','))
    else:
        sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if args.repeats:
        repeats = {n: args.repeats for n in sizes}
    elif args.quick:
        repeats = {n: QUICK_REPEATS for n in sizes}
    else:
        repeats = {n: FULL_REPEATS.get(n, 3 if n >= 10000 else 5)
                   for n in sizes}
    names = args.systems.split(',') if args.systems else list(_systems.NAMES)
    if _systems.BASELINE not in names:
        names.insert(0, _systems.BASELINE)
    log = (lambda *a: None) if args.quiet else \
        (lambda msg: print(msg, file=sys.stderr, flush=True))

    classes = {}
    info = {}
    for name in names:
        klass, reason = _systems.load(name)
        classes[name] = klass
        info[name] = {'status': 'ok' if klass else 'unavailable',
                      'reason': reason,
                      'description': klass.description if klass else ''}
        if klass is None:
            log('system %s is UNAVAILABLE: %s' % (name, reason))

    started = time.perf_counter()
    with Server() as server:
        log('server: %s' % server.description)
        options = dict(CLIENT_OPTIONS)
        if not os.environ.get(ENV_URI):
            options.update(EMBEDDED_OPTIONS)
        if args.walk is not None:
            results, status = _walk.run(classes, args.walk, log=log,
                                        uri=server.uri,
                                        client_options=options)
        else:
            raw, status = harness.run(classes, sizes, repeats, log=log,
                                      uri=server.uri,
                                      client_options=options)
        description = server.description
    elapsed = time.perf_counter() - started
    for name, why in status.items():
        info[name]['status'] = 'failed'
        info[name]['reason'] = why

    meta = {
        'command': 'python -m bench ' + ' '.join(
            sys.argv[1:] if argv is None else argv),
        'date': datetime.datetime.now().isoformat(timespec='seconds'),
        'seconds': round(elapsed, 1),
        'server': description,
        'machine': '%s, %d cores' % (platform.platform(), os.cpu_count()),
        'python': platform.python_version(),
        'versions': _versions(),
        'client_options': options,
        'sizes': list(sizes),
        'repeats': {str(n): r for n, r in repeats.items()},
        'baseline': _systems.BASELINE,
    }
    if args.walk is not None:
        import zmongo
        del meta['sizes'], meta['repeats']
        meta['walk'] = args.walk
        meta['zmongo_path'] = os.path.dirname(zmongo.__file__)
        text = _walk.table(results, info, meta)
    else:
        results = harness.summarize(raw, status, _systems.BASELINE)
        text = report.table(results, info, meta)
    text += 'total time: %.0f s\n' % elapsed
    print(text)
    with open(args.table, 'w', encoding='utf-8') as f:
        f.write(text)
    report.write_json(args.json, results, info, meta)
    log('wrote %s and %s' % (args.table, args.json))
    bad = [n for n, i in info.items() if i['status'] == 'failed']
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
