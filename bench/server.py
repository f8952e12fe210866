"""The MongoDB server of one benchmark run.

``BENCH_MONGO_URI`` names a server to use as it is.  Otherwise a fresh
embedded server (``zmongo.testing.EmbeddedServer``: secantusdb with zmongo's
DBRef-index fix, applied in that process) is started in a process of its
own, so that its CPU time never counts as the client's, on a free loopback
port; it prints its URI, and stops when its standard input closes.
"""
import os
import subprocess
import select
import sys

ENV_URI = 'BENCH_MONGO_URI'

_CHILD = r'''
import sys
from zmongo.testing import EmbeddedServer, apply_embedded_server_fixes
server = EmbeddedServer().start()
fixed = apply_embedded_server_fixes()
import secantus
print('URI %s %s %s' % (server.uri, secantus.__version__,
                        'dbref-fix' if fixed else 'no-fix'), flush=True)
try:
    sys.stdin.read()          # until the parent closes it (or dies)
finally:
    server.stop()
'''


class Server:
    """A server for one run: ``uri``, ``description``; ``stop()``."""

    def __init__(self, uri=None):
        self.uri = uri
        self.description = None
        self._proc = None

    def start(self, timeout=60):
        uri = os.environ.get(ENV_URI)
        if uri:
            self.uri = uri
            self.description = '%s (from %s)' % (_redact(uri), ENV_URI)
            return self
        self._proc = subprocess.Popen(
            [sys.executable, '-c', _CHILD], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        line = self._proc.stdout.readline() if ready else ''
        if not line.startswith('URI '):
            self.stop()
            raise RuntimeError(
                'the embedded server did not start (install it with '
                "pip install -e '.[bench]'); it said: %r" % line)
        _, self.uri, version, fix = line.split()
        self.description = (
            'embedded secantusdb %s (%s), own process (pid %d), fresh for '
            'this run, %s' % (version, fix, self._proc.pid, self.uri))
        return self

    def stop(self):
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def _redact(uri):
    """``uri`` without a password."""
    if '@' not in uri:
        return uri
    scheme, _, rest = uri.partition('://')
    return '%s://***@%s' % (scheme, rest.split('@', 1)[1])
