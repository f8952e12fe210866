"""The text table and the JSON file of a run."""
import json

from bench.harness import WORKLOADS


def _fmt_ratio(r):
    if r is None:
        return '-'
    if r >= 100:
        return '%.0fx' % r
    if r >= 10:
        return '%.1fx' % r
    return '%.2fx' % r


def _fmt_ms(s):
    if s is None:
        return '-'
    ms = s * 1000
    if ms >= 100:
        return '%.0f' % ms
    if ms >= 10:
        return '%.1f' % ms
    return '%.2f' % ms


def _fmt_mib(b):
    if b is None:
        return ''
    return '%.2f' % (b / 1048576)


def status_lines(systems_info):
    lines = []
    for name, info in systems_info.items():
        if info['status'] == 'ok':
            lines.append('  %-17s %s' % (name, info['description']))
        else:
            lines.append('  %-17s %s: %s' % (name, info['status'].upper(),
                                             info['reason']))
    return lines


def table(results, systems_info, meta):
    """The whole report as text."""
    out = []
    out.append('zmongo benchmark -- %s' % meta['command'])
    out.append('server: %s' % meta['server'])
    out.append('machine: %s; Python %s; %s' % (
        meta['machine'], meta['python'],
        ', '.join('%s %s' % kv for kv in meta['versions'].items())))
    out.append('client options: %s' % meta['client_options'])
    out.append('')
    out.append('Systems:')
    out.extend(status_lines(systems_info))
    out.append('')
    out.append('cmds: MongoDB commands sent (exact); wall/cpu: median ms of '
               'the runs (cpu = client process only); mem: peak MiB traced '
               'during load_all; x: ratio to pymongo.')
    by_key = {(r['system'], r['workload'], r['n']): r for r in results}
    order = list(systems_info)
    for n in meta['sizes']:
        runs = meta['repeats'][str(n)]
        out.append('')
        out.append('N = %d (median of %d runs)' % (n, runs))
        header = '%-12s %-17s %7s %7s %9s %7s %9s %7s %7s %6s' % (
            'workload', 'system', 'cmds', 'x', 'wall ms', 'x', 'cpu ms', 'x',
            'mem', 'x')
        out.append(header)
        out.append('-' * len(header))
        for workload in WORKLOADS:
            first = True
            for system in order:
                r = by_key.get((system, workload, n))
                label = workload if first else ''
                first = False
                if r is None:
                    why = systems_info[system]
                    out.append('%-12s %-17s %s' % (
                        label, system, why['status'].upper()
                        if why['status'] != 'ok' else 'no result'))
                    continue
                cmds = '-' if r['commands'] is None else str(r['commands'])
                if r['commands'] is not None and not r['commands_stable']:
                    cmds += '~'
                mem = _fmt_mib(r['memory_bytes'])
                out.append('%-12s %-17s %7s %7s %9s %7s %9s %7s %7s %6s' % (
                    label, system, cmds,
                    _fmt_ratio(r['commands_ratio']) if r['commands']
                    is not None else '-',
                    _fmt_ms(r['wall_s']), _fmt_ratio(r['wall_ratio']),
                    _fmt_ms(r['cpu_s']), _fmt_ratio(r['cpu_ratio']),
                    mem, _fmt_ratio(r['memory_ratio']) if mem else ''))
    out.append('')
    out.append('Commands by name, N = %d:' % max(meta['sizes']))
    n = max(meta['sizes'])
    for workload in WORKLOADS:
        for system in order:
            r = by_key.get((system, workload, n))
            if r is None or r['command_names'] is None:
                continue
            out.append('  %-12s %-17s %s' % (workload, system, ', '.join(
                '%s %d' % kv for kv in sorted(r['command_names'].items()))))
    out.extend(cache_lines(by_key, order, n))
    return '\n'.join(out) + '\n'


def cache_lines(by_key, order, n):
    """The caches across transactions, N = ``n``: hits and misses per
    workload, and the time spent learning of changes."""
    lines = []
    for workload in WORKLOADS:
        for system in order:
            r = by_key.get((system, workload, n))
            cache = r and r.get('cache')
            if not cache:
                continue
            hits, misses = cache.get('hits', 0), cache.get('misses', 0)
            rate = '%.0f%%' % (100.0 * hits / (hits + misses)) \
                if hits + misses else '-'
            lines.append('  %-12s %-17s %6d %6d %5s %6d %5d %8.2f %6d' % (
                workload, system, hits, misses, rate,
                cache.get('fills', 0), cache.get('events', 0),
                cache.get('drain_ns', 0) / 1e6,
                cache.get('invalidated', 0)))
    if not lines:
        return []
    return ['', 'Document cache, N = %d (first run): entries served (hits) '
            'and not (misses), filled, change events read, ms spent '
            'reading them, entries they removed:' % n,
            '  %-12s %-17s %6s %6s %5s %6s %5s %8s %6s' % (
                'workload', 'system', 'hits', 'misses', 'rate', 'fills',
                'evts', 'drain ms', 'inval')] + lines


def write_json(path, results, systems_info, meta):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump({'meta': meta, 'systems': systems_info,
                   'results': results}, f, indent=1, sort_keys=True)
        f.write('\n')
