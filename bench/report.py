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
        header = '%-9s %-17s %7s %7s %9s %7s %9s %7s %7s %6s' % (
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
                    out.append('%-9s %-17s %s' % (
                        label, system, why['status'].upper()
                        if why['status'] != 'ok' else 'no result'))
                    continue
                cmds = '-' if r['commands'] is None else str(r['commands'])
                if r['commands'] is not None and not r['commands_stable']:
                    cmds += '~'
                mem = _fmt_mib(r['memory_bytes'])
                out.append('%-9s %-17s %7s %7s %9s %7s %9s %7s %7s %6s' % (
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
            out.append('  %-9s %-17s %s' % (workload, system, ', '.join(
                '%s %d' % kv for kv in sorted(r['command_names'].items()))))
    return '\n'.join(out) + '\n'


def write_json(path, results, systems_info, meta):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump({'meta': meta, 'systems': systems_info,
                   'results': results}, f, indent=1, sort_keys=True)
        f.write('\n')
