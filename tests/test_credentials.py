"""Credentials, TLS/authentication options and code from the database
(issue 9, "Security").

* A provider -- built in Python or by the ``<mongo:provider>`` directive --
  whose URI carries a password, pointed at a closed loopback port with small
  timeouts: the failed connection's exceptions (and their chain), the
  provider's ``repr``/``str`` and everything zmongo and pymongo log at DEBUG
  never contain the password.
* TLS and authentication options in the URI or ``client_options`` reach
  pymongo unchanged (read from the client's parsed options; nothing
  connects).
* Nothing in zmongo evaluates code from the database: a static check of
  ``src/zmongo`` here; the behavioural proof (documents naming
  ``os.system``, ``builtins.eval``, ``subprocess.call`` ... as factories are
  refused and nothing runs) is ``tests/test_safe_loading.py``
  (``test_document_naming_code_is_refused_and_nothing_runs`` and the tests
  after it), not repeated here.
"""
import ast
import logging
import pathlib
import socket
import time
import traceback
import urllib.parse

import pytest
import transaction
import zope.component
import zope.component.testing
from zope.configuration import xmlconfig

import zmongo
from zmongo import interfaces
from zmongo.provider import MongoDataManagerProvider

USER = 'zmongo-user'
PASSWORD = 'S3cr3t:p@ss/w0rd!%'
QUOTED_PASSWORD = urllib.parse.quote_plus(PASSWORD)
#: Every form the password could be written in.
SECRETS = (PASSWORD, QUOTED_PASSWORD, urllib.parse.quote(PASSWORD, safe=''),
           'S3cr3t')
#: Bound on a failed connection (the URIs below allow 300 ms).
LIMIT = 5.0

ZCML = '''
<configure xmlns="http://namespaces.zope.org/zope"
           xmlns:mongo="http://namespaces.zope.org/mongo">
  <include package="zmongo" file="meta.zcml" />
  <mongo:provider %s />
</configure>
'''


def closed_port():
    """A loopback port nothing listens on."""
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def secret_uri(port, extra=''):
    return ('mongodb://%s:%s@127.0.0.1:%d/site?authSource=admin'
            '&serverSelectionTimeoutMS=300&connectTimeoutMS=300'
            '&timeoutMS=300%s' % (USER, QUOTED_PASSWORD, port, extra))


def assert_no_secret(text, what):
    for secret in SECRETS:
        assert secret not in text, '%s shows the password: %r' % (what, text)


def everything_logged(caplog):
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        parts.append(repr(record.__dict__))
        if record.exc_info:
            parts.append(''.join(traceback.format_exception(
                *record.exc_info)))
    return '\n'.join(parts)


def exception_text(err):
    return '\n'.join([str(err), repr(err)] +
                     traceback.format_exception(type(err), err,
                                                err.__traceback__))


@pytest.fixture
def debug_logs(caplog):
    for name in ('zmongo', 'pymongo'):
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
def registry():
    zope.component.testing.setUp()
    yield
    zope.component.testing.tearDown()


def fail_to_use(provider):
    """Use the provider as a site would; returns the exception, which must
    come within LIMIT seconds."""
    start = time.monotonic()
    with pytest.raises(Exception) as info:
        dm = provider.get()
        dm.root['x']
    elapsed = time.monotonic() - start
    transaction.abort()
    assert elapsed < LIMIT, elapsed
    return info.value


def test_python_provider_never_shows_the_password(debug_logs):
    provider = MongoDataManagerProvider(
        secret_uri(closed_port()), default_database='site')
    try:
        assert_no_secret(repr(provider), 'repr(provider)')
        assert_no_secret(str(provider), 'str(provider)')
        err = fail_to_use(provider)
        import pymongo.errors
        assert isinstance(err, pymongo.errors.PyMongoError), err
        assert_no_secret(exception_text(err), 'the exception')
        assert_no_secret(repr(provider), 'repr(provider) after use')
        # The client is pymongo's; its repr does not show it either.
        assert_no_secret(repr(provider.client), 'repr(client)')
    finally:
        provider.close()
    logged = everything_logged(debug_logs)
    # The logs did see the failure (so the check above checked something).
    assert debug_logs.records
    assert_no_secret(logged, 'the logs')


def test_zcml_provider_with_credentials_from_the_environment(
        debug_logs, registry, monkeypatch):
    monkeypatch.setenv('ZMONGO_TEST_SECRET_URI', secret_uri(closed_port()))
    xmlconfig.string(ZCML % 'uri="env:ZMONGO_TEST_SECRET_URI" '
                            'database="site" timeout="0.3"')
    provider = zope.component.getUtility(
        interfaces.IMongoDataManagerProvider)
    try:
        assert provider._client is None      # nothing connected yet
        assert_no_secret(repr(provider), 'repr(provider)')
        assert_no_secret(str(provider), 'str(provider)')
        err = fail_to_use(provider)
        assert_no_secret(exception_text(err), 'the exception')
    finally:
        provider.close()
    assert debug_logs.records
    assert_no_secret(everything_logged(debug_logs), 'the logs')


def test_zcml_provider_with_credentials_in_the_uri(debug_logs, registry):
    uri = secret_uri(closed_port()).replace('&', '&amp;')
    xmlconfig.string(ZCML % ('uri="%s" database="site" timeout="0.3"' % uri))
    provider = zope.component.getUtility(
        interfaces.IMongoDataManagerProvider)
    try:
        assert_no_secret(repr(provider), 'repr(provider)')
        err = fail_to_use(provider)
        assert_no_secret(exception_text(err), 'the exception')
    finally:
        provider.close()
    assert_no_secret(everything_logged(debug_logs), 'the logs')


def test_a_bad_zcml_uri_does_not_echo_the_password(registry):
    # Not a mongodb:// URI: the error shows no more than a short prefix.
    from zope.configuration.exceptions import ConfigurationError
    bad = 'http://%s:%s@127.0.0.1/' % (USER, QUOTED_PASSWORD)
    with pytest.raises(ConfigurationError) as info:
        xmlconfig.string(ZCML % ('uri="%s" database="site"' % bad))
    assert_no_secret(exception_text(info.value), 'the configuration error')


# -- TLS and authentication options reach pymongo ----------------------------

def client_of(provider):
    client = provider.client
    return client, client.options, client.options.pool_options


def test_tls_and_auth_options_in_the_uri_pass_through():
    provider = MongoDataManagerProvider(
        secret_uri(closed_port(),
                   '&authMechanism=SCRAM-SHA-256&tls=true'
                   '&tlsAllowInvalidHostnames=true&appname=zm'),
        client_options={'connect': False}, default_database='site')
    try:
        client, options, pool = client_of(provider)
        creds = pool._credentials
        assert creds.mechanism == 'SCRAM-SHA-256'
        assert creds.source == 'admin'
        assert creds.username == USER
        assert creds.password == PASSWORD    # decoded, given to pymongo
        assert pool._ssl_context is not None  # TLS on
        assert pool.tls_allow_invalid_hostnames is True
        assert options._options['tls'] is True
        assert pool.appname == 'zm'
    finally:
        provider.close()


def test_tls_and_auth_options_as_client_options_pass_through():
    provider = MongoDataManagerProvider(
        'mongodb://127.0.0.1:%d/' % closed_port(),
        client_options={
            'connect': False, 'username': USER, 'password': PASSWORD,
            'authSource': 'users', 'authMechanism': 'SCRAM-SHA-1',
            'tls': True, 'tlsAllowInvalidCertificates': True,
            'serverSelectionTimeoutMS': 300},
        default_database='site')
    try:
        assert_no_secret(repr(provider), 'repr(provider)')
        client, options, pool = client_of(provider)
        creds = pool._credentials
        assert (creds.mechanism, creds.source, creds.username,
                creds.password) == ('SCRAM-SHA-1', 'users', USER, PASSWORD)
        assert pool._ssl_context is not None
        assert options._options['tlsAllowInvalidCertificates'] is True
        assert options.server_selection_timeout == 0.3
    finally:
        provider.close()


def test_without_tls_options_there_is_no_tls():
    provider = MongoDataManagerProvider(
        'mongodb://127.0.0.1:%d/' % closed_port(),
        client_options={'connect': False}, default_database='site')
    try:
        _, _, pool = client_of(provider)
        assert pool._ssl_context is None and pool._credentials is None
    finally:
        provider.close()


# -- nothing evaluates code from the database --------------------------------

SRC = pathlib.Path(zmongo.__file__).parent
#: Calls that run or unpickle code.
FORBIDDEN_CALLS = {'eval', 'exec', 'compile', '__import__', 'execfile'}
FORBIDDEN_MODULES = {'pickle', 'cPickle', '_pickle', 'marshal', 'shelve',
                     'dill', 'cloudpickle', 'yaml', 'jsonpickle'}
#: Documented exceptions: (module, what, why).
ALLOWED = {
    # _dotted.resolve imports the module a stored dotted name names (as
    # pickle does) -- never calls what it finds; _safety decides what may
    # be called (tests/test_safe_loading.py proves the refusals).
    ('_dotted.py', 'importlib.import_module'),
    # Python 2 -> 3 name tables only (data, no unpickling).
    ('_dotted.py', 'import _compat_pickle'),
}


def scan(path):
    """(what, line) for every suspicious construct in ``path``."""
    found = []
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append((func.id + '(', node.lineno))
            elif isinstance(func, ast.Attribute):
                dotted = ast.unparse(func)
                if func.attr in FORBIDDEN_CALLS or func.attr in (
                        'loads', 'load') and dotted.split('.')[0] in \
                        FORBIDDEN_MODULES or func.attr == 'import_module':
                    found.append((dotted, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split('.')[0]
                if top in FORBIDDEN_MODULES or top == '_compat_pickle':
                    found.append(('import ' + alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            top = (node.module or '').split('.')[0]
            if top in FORBIDDEN_MODULES:
                found.append(('from %s import' % node.module, node.lineno))
    return found


def test_nothing_in_zmongo_evaluates_code():
    sources = sorted(SRC.glob('*.py'))
    assert len(sources) > 10
    offending = []
    for path in sources:
        for what, line in scan(path):
            if (path.name, what) not in ALLOWED:
                offending.append('%s:%d %s' % (path.name, line, what))
    assert offending == []


def test_the_scan_finds_what_it_looks_for(tmp_path):
    # The checker itself works (it would not pass vacuously).
    bad = tmp_path / 'bad.py'
    bad.write_text('import pickle\nimport importlib\n'
                   'eval(doc["x"])\nexec("1")\n__import__("os")\n'
                   'pickle.loads(b"")\nimportlib.import_module("os")\n')
    whats = sorted(what for what, _ in scan(bad))
    assert whats == sorted(['import pickle', 'eval(', 'exec(', '__import__(',
                            'pickle.loads', 'importlib.import_module'])
    # The documented exceptions are still where the list says (so the list
    # does not outlive the code).
    dotted = {what for what, _ in scan(SRC / '_dotted.py')}
    assert dotted == {what for name, what in ALLOWED if name == '_dotted.py'}
