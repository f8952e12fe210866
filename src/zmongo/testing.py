"""Test support for zmongo and for applications built on it.

Tests talk to a real MongoDB wire-protocol server through real pymongo:

* the server named by the ``ZMONGO_TEST_URI`` environment variable, or
* the embedded ``secantusdb`` server (install ``zmongo[embedded]``), started
  once per process, in this process, on a free loopback port.

:class:`MongoFixture` gives each test a clean database of its own (dropped
afterwards) and a client with a ``timeoutMS``, so no test can hang on the
server; :class:`CommandCounter` counts the commands a piece of code sends.
With pytest, add ``pytest_plugins = ['zmongo.testing']`` to a
``conftest.py`` for the ``mongo``/``datamanager``/``commands`` fixtures.
:func:`trusting` changes what documents may load (trusted modules,
registered types and factories) for a block or a fixture, and puts the
process-wide registry back exactly as it was afterwards.

About the embedded server (secantusdb 0.7.0b3)
----------------------------------------------
Any index over a field holding ``DBRef`` values breaks it: its index-key
encoder (``secantus.sortkey._encode_doc``) receives the ``DBRef`` object
where it expects a document, the index build fails with ``InternalError`` and
so does every later insert into such an index.  Zope containers need exactly
such an index (``(parent, key)``), so :func:`apply_embedded_server_fixes`
hands that function ``DBRef.as_doc()`` instead -- the document form a real
mongod indexes.  The fix is applied only to the affected version, only to
the server started here, and never touches code that talks to real servers.

The same version also answers some queries over a *partial* compound index
wrongly: with an index on ``(parent, key)`` partial on ``{key: {$gte: ''}}``
(the unique index of :mod:`zmongo.container`), ``find({'key': 'x'})`` walks
the index as if ``key`` were its leading field and finds nothing.
:func:`apply_embedded_server_fixes` makes such a query scan the collection
instead; lookups that name the leading fields still use the index.

And its matcher tests ``{field: {$in: [...]}}`` by comparing each document's
value with every listed value in turn, through its general (numeric-aware,
collation-aware) equality: a query over 10,000 documents listing 1,000 names
takes 9 seconds.  For the common case -- every listed value a ``str``, no
collation -- :func:`apply_embedded_server_fixes` answers it with one set
lookup per value instead, which matches exactly the same documents (a string
equals only a string, and without a collation exactly when Python says so).
"""
import atexit
import contextlib
import os
import shutil
import socket
import tempfile
import threading
import uuid

import pymongo
import transaction
from pymongo import monitoring

ENV_URI = 'ZMONGO_TEST_URI'
#: Bound on every operation of test clients: a test fails, never hangs.
DEFAULT_TIMEOUT_MS = 20000
#: secantusdb versions with the DBRef index bug (see module docstring).
DBREF_INDEX_BUG_VERSIONS = frozenset({'0.7.0b3'})

_HANDSHAKE_COMMANDS = frozenset({
    'hello', 'ismaster', 'isMaster', 'saslStart', 'saslContinue',
    'endSessions', 'killCursors',
})


def apply_embedded_server_fixes():
    """Patch the in-process secantusdb against its DBRef index bug.

    Returns True if the fix is (now) applied, False if the installed version
    does not need it.  Idempotent.
    """
    import bson
    import secantus
    import secantus.sortkey as sortkey
    if secantus.__version__ not in DBREF_INDEX_BUG_VERSIONS:
        return False
    _fix_partial_index_prefix()
    _fix_string_in_matching()
    encode_doc = sortkey._encode_doc
    if getattr(encode_doc, '_zmongo_dbref_fix', False):
        return True

    def _encode_doc(doc, collation=None):
        if isinstance(doc, bson.DBRef):
            doc = doc.as_doc()
        return encode_doc(doc, collation)

    _encode_doc._zmongo_dbref_fix = True
    sortkey._encode_doc = _encode_doc
    return True


def _fix_partial_index_prefix():
    """Patch secantusdb's bare-equality index picker (see module docstring).

    It may pick a partial index whose filter covers some of the query's
    fields although the index key fields the query names are not a leading
    prefix of the index; the lookup then scans the wrong key range.  Such a
    pick is refused here (the server scans the collection instead).
    Idempotent; applied with the DBRef fix, to the same version.
    """
    from secantus.storage import Storage
    pick = Storage._pick_compound_eq_index
    if getattr(pick, '_zmongo_partial_fix', False):
        return

    def _pick_compound_eq_index(self, db, coll, filter, *, collation=None):
        picked = pick(self, db, coll, filter, collation=collation)
        if picked is not None:
            fields = list(picked[1])
            named = [f for f in fields if f in filter]
            if named != fields[:len(named)]:
                return None
        return picked

    _pick_compound_eq_index._zmongo_partial_fix = True
    Storage._pick_compound_eq_index = _pick_compound_eq_index


def _fix_string_in_matching():
    """Patch secantusdb's ``$in`` matcher (see module docstring).

    Only lists of plain strings without a collation take the new path;
    every other ``$in`` (and every other operator) goes to the original.
    Idempotent; applied with the DBRef fix, to the same version.
    """
    import secantus.query as query
    op_matches = query._op_matches
    if getattr(op_matches, '_zmongo_in_fix', False):
        return
    positional = query._Positional
    # The last list seen and its set: a query tests one list against every
    # document.  Kept as one tuple so threads never see half of it.
    last = [(None, None)]

    def string_set(arg):
        seen_arg, strings = last[0]
        if seen_arg is arg:
            return strings
        strings = None
        if type(arg) is list and all(type(v) is str for v in arg):
            strings = frozenset(arg)
        last[0] = (arg, strings)
        return strings

    def _op_matches(values, op, arg, collation=None, **kwargs):
        if op != '$in' or collation is not None:
            return op_matches(values, op, arg, collation, **kwargs)
        strings = string_set(arg)
        if strings is None:
            return op_matches(values, op, arg, collation, **kwargs)
        descend = kwargs.get('descend', True)
        for value in values:
            if type(value) is str:
                if value in strings:
                    return True
            elif isinstance(value, str):
                # A str subclass (bson.Code): the original decides.
                return op_matches(values, op, arg, collation, **kwargs)
            elif descend and isinstance(value, list) and \
                    not isinstance(value, positional):
                for item in value:
                    if type(item) is str:
                        if item in strings:
                            return True
                    elif isinstance(item, str):
                        return op_matches(values, op, arg, collation,
                                          **kwargs)
        return False

    _op_matches._zmongo_in_fix = True
    _op_matches._zmongo_original = op_matches
    query._op_matches = _op_matches


class EmbeddedServer:
    """The secantusdb server, in this process, on a free loopback port."""

    def __init__(self, data_dir=None, host='127.0.0.1', port=0, *,
                 standalone=False, **server_options):
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix='zmongo-db-')
        self.host = host
        self.port = port
        #: A standalone server (topology Single, no transactions, no
        #: retryable writes) instead of a one-member replica set.
        self.standalone = standalone
        self.server_options = server_options
        self._server = None

    def start(self):
        try:
            from secantus import SecantusDBServer
        except ImportError:
            raise RuntimeError(
                'No MongoDB server for the tests: set %s to a mongodb:// URI '
                'or install the embedded server with '
                "pip install 'zmongo[embedded]'" % ENV_URI) from None
        apply_embedded_server_fixes()
        options = dict(self.server_options)
        if self.standalone:
            options['replica_set_name'] = None
        self._server = SecantusDBServer(
            host=self.host, port=self.port, storage_path=self.data_dir,
            **options)
        self._server.start()
        return self

    @property
    def uri(self):
        return self._server.uri

    @property
    def address(self):
        return self._server.address

    def stop(self):
        server, self._server = self._server, None
        if server is None:
            return
        # Its accept loop blocks in accept(), which closing the listening
        # socket does not interrupt on Linux (stop() then waits 2 s for the
        # thread); shutting the socket down does.
        listener = getattr(server, '_socket', None)
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class _SharedServer:
    """An embedded server shared by this process, started on first use."""

    def __init__(self, standalone=False):
        self._lock = threading.Lock()
        self._server = None
        self._standalone = standalone

    def uri(self):
        with self._lock:
            if self._server is None:
                self._server = EmbeddedServer(
                    standalone=self._standalone).start()
                atexit.register(self._server.stop)
            return self._server.uri


_shared_server = _SharedServer()
_shared_standalone_server = _SharedServer(standalone=True)

#: ``ZMONGO_TEST_URI`` names the server of standalone-mode tests when
#: ``ZMONGO_TEST_STANDALONE_URI`` does not name one of their own.
ENV_STANDALONE_URI = 'ZMONGO_TEST_STANDALONE_URI'


def get_test_uri(standalone=False):
    """The URI tests run against.

    ``ZMONGO_TEST_URI`` if set, else the embedded server.  With
    ``standalone=True``: the server for standalone-mode tests, one that
    presents itself as a standalone server (``ZMONGO_TEST_STANDALONE_URI``,
    else ``ZMONGO_TEST_URI``, else an embedded server started with
    ``replica_set_name=None``) -- so standalone mode meets what a real
    standalone ``mongod`` offers: no transactions, no retryable writes.
    """
    if standalone:
        return (os.environ.get(ENV_STANDALONE_URI) or
                os.environ.get(ENV_URI) or _shared_standalone_server.uri())
    return os.environ.get(ENV_URI) or _shared_server.uri()


class CommandCounter(monitoring.CommandListener):
    """Records the commands a client sends (handshakes excluded).

    Command counts are exact and independent of the machine: tests assert
    them to pin the cost of operations.
    """

    def __init__(self):
        self.commands = []
        self._lock = threading.Lock()

    def started(self, event):
        if event.command_name in _HANDSHAKE_COMMANDS:
            return
        with self._lock:
            self.commands.append((event.command_name, event.database_name,
                                  event.command))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass

    def reset(self):
        with self._lock:
            self.commands = []

    @property
    def names(self):
        return [name for name, _, _ in self.commands]

    def count(self, name=None):
        """How many commands (named ``name``, or all) were sent."""
        if name is None:
            return len(self.commands)
        return sum(1 for n in self.names if n == name)

    def __len__(self):
        return len(self.commands)


def make_client(uri=None, listeners=(), **options):
    """A ``MongoClient`` for tests: bounded waits, optional listeners."""
    options.setdefault('timeoutMS', DEFAULT_TIMEOUT_MS)
    options.setdefault('serverSelectionTimeoutMS', DEFAULT_TIMEOUT_MS)
    return pymongo.MongoClient(uri or get_test_uri(),
                               event_listeners=list(listeners), **options)


@contextlib.contextmanager
def trusting(modules=(), types=(), factories=()):
    """Trust ``modules`` (prefixes, as :func:`zmongo.serialize.trust_modules`),
    register ``types`` and ``factories`` for the block; afterwards the
    application's registry is exactly as it was, whatever the block itself
    trusted or registered.  Tests need no hand-written clean-up::

        with trusting(modules=['myapp']):
            ...
    """
    from zmongo import _safety
    from zmongo import serialize
    with _safety.saved():
        if modules:
            serialize.trust_modules(*modules)
        for cls in types:
            serialize.register_type(cls)
        for factory in factories:
            serialize.register_factory(factory)
        yield


class MongoFixture:
    """A clean database per test, a client and a command counter.

    ``setUp()`` / ``tearDown()`` (or use it as a context manager); then
    ``client``, ``db_name``, ``db``, ``commands`` and
    ``make_datamanager(**options)``.
    """

    def __init__(self, uri=None, **client_options):
        self.uri = uri
        self.client_options = client_options
        self.client = None

    def setUp(self):
        transaction.abort()
        self.commands = CommandCounter()
        self.client = make_client(self.uri, [self.commands],
                                  **self.client_options)
        self.db_name = 'zmongo_test_%s' % uuid.uuid4().hex[:12]
        self.db = self.client[self.db_name]
        self._datamanagers = []
        return self

    def make_datamanager(self, **options):
        from zmongo.datamanager import MongoDataManager
        options.setdefault('default_database', self.db_name)
        options.setdefault('root_database', self.db_name)
        dm = MongoDataManager(self.client, **options)
        self._datamanagers.append(dm)
        return dm

    def tearDown(self):
        transaction.abort()
        for dm in self._datamanagers:
            dm.reset()
        if self.client is not None:
            self.client.drop_database(self.db_name)
            self.client.close()
            self.client = None

    def __enter__(self):
        return self.setUp()

    def __exit__(self, *exc_info):
        self.tearDown()


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for fixtures
    pytest = None


def _fixture(**options):
    # With pytest, a fixture; without it (a Sphinx build from the ``docs``
    # extra, an application that tests with unittest), the plain function,
    # so ``zmongo.testing.mongo`` and friends exist -- and are documented --
    # whether or not pytest is installed.
    if pytest is None:
        return lambda function: function
    return pytest.fixture(**options)


def _standalone_mode(request):
    callspec = getattr(request.node, 'callspec', None)
    return callspec is not None and \
        callspec.params.get('datamanager') == 'standalone'


@_fixture()
def mongo(request):
    """A :class:`MongoFixture`, set up and torn down around the test.

    In the standalone run of a test that uses the ``datamanager`` fixture,
    it is connected to a server that presents itself as standalone (see
    :func:`get_test_uri`), as that data manager is.
    """
    standalone = _standalone_mode(request)
    fixture = MongoFixture(
        get_test_uri(standalone=True) if standalone else None).setUp()
    try:
        yield fixture
    finally:
        fixture.tearDown()


#: The modes of the ``datamanager`` fixture, as its test ids name them.
DATAMANAGER_MODES = ('transactions', 'standalone')


@_fixture(params=DATAMANAGER_MODES)
def datamanager(request, mongo):
    """A data manager on the test's database, in each of its two modes.

    zmongo works differently on a server with multi-document transactions
    (every read and write in one server transaction) and without (writes
    undone on abort), and code on top of it should work in both: a test
    that uses this fixture runs twice, ``test_x[transactions]`` and
    ``test_x[standalone]``; the standalone run talks to a server that
    presents itself as standalone, as a standalone ``mongod`` does (no
    transactions, no retryable writes; see :func:`get_test_uri`), and so
    does the ``mongo`` fixture of that run.  To run a test in one mode only, parametrize
    the fixture indirectly::

        @pytest.mark.parametrize('datamanager', ['standalone'], indirect=True)
        def test_x(datamanager):
            ...

    (``pytestmark = pytest.mark.parametrize(...)`` does it for a module.)
    """
    if request.param not in DATAMANAGER_MODES:
        raise ValueError(
            'datamanager fixture: unknown mode %r; parametrize it with one '
            'of %s' % (request.param, ', '.join(map(repr,
                                                     DATAMANAGER_MODES))))
    return mongo.make_datamanager(
        transactions=request.param == 'transactions')


@_fixture()
def commands(mongo):
    """The :class:`CommandCounter` of the test's client."""
    return mongo.commands
