"""A small TCP proxy on loopback that a test can cut.

It sits between a ``MongoClient`` and the server and forwards bytes both
ways, one pair of threads per connection.  The test decides when the
network fails:

* :meth:`TCPProxy.drop` resets every open connection (new ones are still
  accepted: a blip);
* :meth:`TCPProxy.cut` resets every open connection and refuses new ones
  (the server is unreachable) until :meth:`TCPProxy.restore`;
* :meth:`TCPProxy.cut_after_reply_to` lets the next request containing a
  marker (say ``b'commitTransaction'``) reach the server, swallows the
  server's answer and cuts: the server did the work, the client never hears.

``TCPProxy(target, as_mongos=True)`` also rewrites the server's ``hello``
answers into those of a ``mongos`` (``msg: 'isdbgrid'``, no replica set
fields), so the driver -- and zmongo -- see a sharded cluster's router in
front of the one server; every other message passes unchanged.

Only loopback; every socket is closed by :meth:`TCPProxy.stop`.
"""
import socket
import struct
import threading

import bson

_RESET = struct.pack('ii', 1, 0)   # SO_LINGER on, 0 s: close sends RST


def _close(sock, reset=False):
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Pipe:
    """One client connection and its connection to the server."""

    def __init__(self, proxy, client, server):
        self.proxy = proxy
        self.client = client
        self.server = server
        self.swallow_reply = False
        self.closed = False
        self._pending = b''     # server bytes not yet a whole message

    def start(self):
        for target, args in ((self._upstream, ()), (self._downstream, ())):
            threading.Thread(target=target, args=args, daemon=True,
                             name='tcpproxy-pipe').start()

    def _upstream(self):
        """Client to server."""
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    break
                marker = self.proxy._armed
                if marker is not None and marker in data:
                    self.proxy._armed = None
                    self.swallow_reply = True
                self.server.sendall(data)
        except OSError:
            pass
        self.close()

    def _downstream(self):
        """Server to client."""
        try:
            while True:
                data = self.server.recv(65536)
                if not data:
                    break
                if self.swallow_reply:
                    # The server answered; the client must never know.
                    self.proxy.cuts_after_reply += 1
                    self.proxy.cut()
                    return
                if self.proxy.as_mongos:
                    data = self._as_mongos(data)
                self.client.sendall(data)
        except OSError:
            pass
        self.close()

    def _as_mongos(self, data):
        """The whole messages in what arrived so far, hello answers
        rewritten (see the module docstring); the rest waits."""
        data = self._pending + data
        out = []
        while len(data) >= 16:
            length, = struct.unpack_from('<i', data)
            if len(data) < length:
                break
            out.append(_mongos_reply(data[:length]))
            data = data[length:]
        self._pending = data
        return b''.join(out)

    def close(self, reset=False):
        if self.closed:
            return
        self.closed = True
        _close(self.client, reset)
        _close(self.server, reset)
        self.proxy._forget(self)


_OP_REPLY = 1
_OP_MSG = 2013
#: What a mongos's hello answer does not have: a replica set member's.
_MEMBER_FIELDS = ('setName', 'setVersion', 'hosts', 'passives', 'arbiters',
                  'primary', 'secondary', 'me', 'electionId', 'lastWrite',
                  'isreplicaset', 'arbiterOnly', 'hidden', 'tags')


def _as_router(doc):
    if not ('isWritablePrimary' in doc or 'ismaster' in doc):
        return None
    doc = {k: v for k, v in doc.items() if k not in _MEMBER_FIELDS}
    doc['msg'] = 'isdbgrid'
    return doc


def _mongos_reply(message):
    """``message`` (one whole server message) with a hello answer
    turned into a mongos's."""
    length, request_id, response_to, opcode = struct.unpack_from(
        '<iiii', message)
    if opcode == _OP_MSG:
        flags, kind = struct.unpack_from('<IB', message, 16)
        if kind != 0 or flags & 1:      # no checksums here
            return message
        doc = _as_router(bson.decode(message[21:]))
        if doc is None:
            return message
        body = struct.pack('<IB', flags, 0) + bson.encode(doc)
    elif opcode == _OP_REPLY:
        doc = _as_router(bson.decode(message[36:]))
        if doc is None:
            return message
        body = message[16:36] + bson.encode(doc)
    else:
        return message
    return struct.pack('<iiii', 16 + len(body), request_id, response_to,
                       opcode) + body


class TCPProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target`` (a ``(host, port)``);
    with ``as_mongos`` it presents the server as a ``mongos``."""

    def __init__(self, target, port=0, *, as_mongos=False):
        self.target = target
        self.port = port
        self.as_mongos = as_mongos
        self._lock = threading.Lock()
        self._pipes = set()
        self._listener = None
        self._armed = None
        #: How many connections were accepted (a test can see traffic).
        self.accepted = 0
        self.cuts_after_reply = 0

    # -- life -------------------------------------------------------------

    def start(self):
        self._listen()
        return self

    def stop(self):
        self.cut()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def address(self):
        return '127.0.0.1', self.port

    @property
    def uri(self):
        """A URI for clients: a direct connection, so the driver never
        bypasses the proxy for the hosts the server announces."""
        return 'mongodb://127.0.0.1:%d/?directConnection=true' % self.port

    def _listen(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(('127.0.0.1', self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True,
                         name='tcpproxy-accept').start()

    def _accept(self, listener):
        while True:
            with self._lock:
                if self._listener is not listener:
                    break
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            client.settimeout(None)
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client, reset=True)
                continue
            pipe = _Pipe(self, client, server)
            with self._lock:
                if self._listener is not listener:
                    # Cut while we were connecting.
                    _close(client, True)
                    _close(server, True)
                    break
                self._pipes.add(pipe)
                self.accepted += 1
            pipe.start()
        _close(listener)

    def _forget(self, pipe):
        with self._lock:
            self._pipes.discard(pipe)

    # -- faults -----------------------------------------------------------

    @property
    def connections(self):
        with self._lock:
            return len(self._pipes)

    def drop(self):
        """Reset every open connection; new ones are accepted."""
        with self._lock:
            pipes = list(self._pipes)
        for pipe in pipes:
            pipe.close(reset=True)

    def cut(self):
        """Reset every open connection and refuse new ones (connecting gets
        'connection refused') until :meth:`restore`."""
        with self._lock:
            listener, self._listener = self._listener, None
            self._armed = None
        if listener is not None:
            _close(listener)
        self.drop()

    @property
    def is_cut(self):
        with self._lock:
            return self._listener is None

    def restore(self):
        """Accept connections again, on the same port."""
        if self.is_cut:
            self._listen()

    def cut_after_reply_to(self, marker):
        """Forward the next client message containing ``marker`` (bytes),
        then swallow the server's reply and :meth:`cut`."""
        self._armed = marker
