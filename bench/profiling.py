"""Profile one system's workload: where its client time goes.

    python -m bench.profiling zmongo-container load_all 10000 [--cprofile]

Runs the workloads of that size on a fresh embedded server (or
``BENCH_MONGO_URI``) and profiles the one named, with pyinstrument (or
cProfile with ``--cprofile``, or when pyinstrument is not installed).
"""
import argparse
import cProfile
import io
import os
import pstats
import sys

from bench import data as _data
from bench import harness
from bench import systems as _systems
from bench.run import CLIENT_OPTIONS
from bench.run import EMBEDDED_OPTIONS
from bench.server import ENV_URI
from bench.server import Server


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m bench.profiling')
    p.add_argument('system', choices=_systems.NAMES)
    p.add_argument('workload', choices=harness.WORKLOADS)
    p.add_argument('n', type=int)
    p.add_argument('--cprofile', action='store_true')
    p.add_argument('--limit', type=int, default=25,
                   help='cProfile: lines to show')
    args = p.parse_args(argv)
    klass, reason = _systems.load(args.system)
    if klass is None:
        print('%s is unavailable: %s' % (args.system, reason))
        return 2
    use_cprofile = args.cprofile
    if not use_cprofile:
        try:
            import pyinstrument
        except ImportError:
            use_cprofile = True
    reports = []

    def wrap(name, func):
        if name != args.workload:
            return func

        def profiled(*a):
            if use_cprofile:
                prof = cProfile.Profile()
                result = prof.runcall(func, *a)
                buf = io.StringIO()
                stats = pstats.Stats(prof, stream=buf)
                stats.sort_stats('cumulative').print_stats(args.limit)
                stats.sort_stats('tottime').print_stats(args.limit)
                reports.append(buf.getvalue())
            else:
                prof = pyinstrument.Profiler(interval=0.0005)
                prof.start()
                try:
                    result = func(*a)
                finally:
                    prof.stop()
                reports.append(prof.output_text(unicode=False, color=False,
                                                show_all=False))
            return result
        return profiled

    with Server() as server:
        options = dict(CLIENT_OPTIONS)
        if not os.environ.get(ENV_URI):
            options.update(EMBEDDED_OPTIONS)
        system = klass()
        system.connect(server.uri, options)
        try:
            system.setup(harness.db_name(args.system, args.n, 0))
            try:
                figures = harness.run_workloads(
                    system, _data.Plan(args.n), wrap=wrap)
            finally:
                system.teardown()
        finally:
            system.close()
    print(''.join(reports))
    fig = figures[args.workload]
    print('%s %s N=%d: %s commands, %.1f ms wall, %.1f ms cpu (profiled)'
          % (args.system, args.workload, args.n, fig['commands'],
             fig['wall'] * 1000, fig['cpu'] * 1000))
    return 0


if __name__ == '__main__':
    sys.exit(main())
