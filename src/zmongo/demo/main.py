"""``zmongo-demo``: start the demo site.

The site's root folder is in a ZODB FileStorage (``DATA/Data.fs``), its
content in MongoDB: the embedded secantusdb server with its files in
``DATA/mongo`` (both survive restarts), or a real server given by
``--uri``.  A new site is seeded with people, projects and notes.  The
manager who may change it is defined from ``DATA/manager.json`` (a login
and a salted hash of the password, made on first start or by
``--user``/``--password``).  The site is served by zope.app.wsgi's
publisher and waitress, with a line on stdout per request, until Ctrl-C or
SIGTERM.
"""
import argparse
import json
import logging
import os
import re
import secrets
import signal
import sys
import time
import urllib.parse

URI_VARIABLE = 'ZMONGO_DEMO_URI'
DATABASE = 'zmongo_demo'
DEFAULT_USER = 'admin'
MANAGER_ID = 'zmongo.demo.manager'
#: The configuration context site.zcml was loaded in (tests add to it).
SITE_CONTEXT = None


def default_data_dir():
    import platformdirs
    return platformdirs.user_data_dir('zmongo-demo', appauthor=False)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='zmongo-demo',
        description='Serve the zmongo demo site: a Zope site whose content '
                    'lives in MongoDB.')
    parser.add_argument(
        '--data', metavar='DIR', default=None,
        help='where the ZODB file and the embedded MongoDB server keep their '
             'data (default: %s)' % default_data_dir())
    parser.add_argument('--host', default='127.0.0.1',
                        help='address to listen on (default: 127.0.0.1; '
                             'anybody who reaches it may look, the manager '
                             'may change it)')
    parser.add_argument('--port', type=int, default=8080,
                        help='port to listen on (default: 8080)')
    parser.add_argument(
        '--uri', default=None, metavar='mongodb://...',
        help='use this MongoDB server (database %s) instead of the embedded '
             'one' % DATABASE)
    parser.add_argument(
        '--user', default=None, metavar='LOGIN',
        help='the login of the manager who may change the site (default: '
             'the one stored in DIR, else %s)' % DEFAULT_USER)
    parser.add_argument(
        '--password', default=None,
        help='set the manager\'s password (stored hashed in DIR; default: '
             'made up and printed on first start)')
    parser.add_argument('--timeout', type=float, default=5.0,
                        metavar='SECONDS',
                        help='how long to wait for MongoDB (default: 5)')
    return parser.parse_args(argv)


class DemoError(Exception):
    """A failure worth one line, not a traceback."""


class _Deferred:
    """The WSGI application, set once the site is loaded (the port is
    bound first, so a taken port fails before anything starts)."""
    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


def redact(uri):
    """``uri`` without its password, for printing."""
    return re.sub(r'^(mongodb(?:\+srv)?://[^:/@]*):[^@/]*@', r'\1:***@', uri)


def check_mongo(uri, timeout):
    import pymongo
    import pymongo.errors
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=int(
        timeout * 1000), connectTimeoutMS=int(timeout * 1000))
    try:
        client.admin.command('ping')
    except pymongo.errors.PyMongoError as error:
        raise DemoError('cannot reach MongoDB at %s within %gs: %s' % (
            redact(uri), timeout,
            str(error).split(' (configured')[0])) from None
    finally:
        client.close()


def check_unused(mongo_dir):
    """A clear error when another process runs a server on ``mongo_dir``
    (WiredTiger holds an fcntl lock on its lock file)."""
    import fcntl
    path = os.path.join(mongo_dir, 'WiredTiger.lock')
    if not os.path.exists(path):
        return
    with open(path, 'r+b') as lock:
        try:
            fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DemoError('%s is in use by another process (another '
                            'zmongo-demo?)' % mongo_dir) from None
        fcntl.lockf(lock, fcntl.LOCK_UN)


def make_server(app, host, port):
    import waitress.server
    try:
        return waitress.server.create_server(
            app, host=host, port=port, threads=4,
            clear_untrusted_proxy_headers=True)
    except OSError as error:
        raise DemoError('cannot listen on %s:%s: %s' % (
            host, port, error.strerror or error)) from None


def load_site(login, encoded):
    """Define the manager (``site.zcml`` grants it its role), then load
    site.zcml (the site's components)."""
    define_manager(login, encoded)
    from zope.configuration import xmlconfig
    import zmongo.demo
    global SITE_CONTEXT
    SITE_CONTEXT = xmlconfig.file('site.zcml', zmongo.demo)


def manager_credentials(data, user=None, password=None):
    """``(login, encoded password, how to log in)`` of the site's manager.

    Kept in ``DATA/manager.json`` with the password salted and hashed
    (SSHA), so it is shown once -- when it is made up, on first start --
    and never stored or logged in clear.  ``user``/``password`` change
    what is stored."""
    from zope.password.password import SSHAPasswordManager
    path = os.path.join(data, 'manager.json')
    stored = {}
    if os.path.exists(path):
        with open(path, encoding='utf-8') as f:
            stored = json.load(f)
    login = user or stored.get('login') or DEFAULT_USER
    if password is not None:
        how = 'log in as %s with the password you gave' % login
    elif stored.get('password') and (user is None or
                                     user == stored.get('login')):
        return login, stored['password'].encode('ascii'), (
            'log in as %s with the password printed when %s was made '
            '(--password sets another)' % (login, data))
    else:
        password = secrets.token_urlsafe(9)
        how = 'log in as %s with the password %s' % (login, password)
    encoded = SSHAPasswordManager().encodePassword(password)
    fd = os.open(path + '.new', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        json.dump({'login': login, 'password': encoded.decode('ascii')}, f)
    os.replace(path + '.new', path)
    return login, encoded, how


def define_manager(login, encoded):
    """The principal site.zcml grants the Editor role to."""
    from zope.principalregistry.principalregistry import principalRegistry
    principalRegistry.definePrincipal(
        MANAGER_ID, 'Manager', login=login, password=encoded,
        passwordManagerName='SSHA')


def access_log(app, out=None):
    """``app`` printing a line per request: method, path, status and
    milliseconds (the path quoted, so no request can write control
    characters or fake lines into the log; query strings and headers,
    where secrets travel, are left out)."""
    def logged(environ, start_response):
        started = time.monotonic()
        status = ['-']

        def start(line, headers, exc_info=None):
            status[0] = line.split(' ', 1)[0]
            return start_response(line, headers, exc_info)
        try:
            return list(app(environ, start))
        finally:
            path = urllib.parse.quote(environ.get('PATH_INFO', ''),
                                      safe='/@+=:,;~!*\'()')
            print('%s %s %s %.0fms' % (
                urllib.parse.quote(environ.get('REQUEST_METHOD', '-')),
                path or '/', status[0],
                (time.monotonic() - started) * 1000),
                file=out or sys.stdout, flush=True)
    return logged


def open_db(path):
    import ZODB
    import ZODB.FileStorage
    import zope.component
    import zope.processlifetime
    import zope.event
    from ZODB.interfaces import IDatabase
    try:
        storage = ZODB.FileStorage.FileStorage(path)
    except Exception as error:  # a lock held by another process, say
        raise DemoError('cannot open %s: %s' % (path, error)) from None
    db = ZODB.DB(storage, database_name='main')
    zope.component.provideUtility(db, IDatabase, 'main')
    zope.event.notify(zope.processlifetime.DatabaseOpened(db))
    return db


def main(argv=None):
    args = parse_args(argv)
    data = os.path.abspath(args.data or default_data_dir())
    resources = []   # what to close, in the order opened

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        os.makedirs(data, exist_ok=True)
        if args.uri and not args.uri.startswith(('mongodb://',
                                                 'mongodb+srv://')):
            raise DemoError('--uri must start with mongodb:// or '
                            'mongodb+srv://')
        deferred = _Deferred()
        server = make_server(deferred, args.host, args.port)
        resources.append(server.close)
        if args.uri:
            uri = args.uri
        else:
            from zmongo.testing import EmbeddedServer
            mongo_dir = os.path.join(data, 'mongo')
            os.makedirs(mongo_dir, exist_ok=True)
            check_unused(mongo_dir)
            embedded = EmbeddedServer(data_dir=mongo_dir)
            try:
                embedded.start()
            except Exception as error:
                raise DemoError(
                    'cannot start the embedded MongoDB server in %s (is '
                    'another zmongo-demo using it?): %s' % (
                        mongo_dir, error)) from None
            resources.append(embedded.stop)
            uri = embedded.uri
        check_mongo(uri, args.timeout)
        os.environ[URI_VARIABLE] = uri

        login, encoded, how = manager_credentials(data, args.user,
                                                  args.password)
        load_site(login, encoded)
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr,
            format='zmongo demo: %(levelname)s %(name)s: %(message)s')
        import zope.component
        from zmongo.interfaces import IMongoDataManagerProvider
        resources.append(zope.component.getUtility(
            IMongoDataManagerProvider).close)
        db = open_db(os.path.join(data, 'Data.fs'))
        resources.append(db.close)

        from zmongo.demo.content import bootstrap
        seeded = bootstrap(db)
        from zope.app.wsgi import WSGIPublisherApplication
        deferred.app = access_log(WSGIPublisherApplication(db))

        host, port = server.effective_host, server.effective_port
        if ':' in str(host):
            host = '[%s]' % host
        print('zmongo demo: http://%s:%s/  (data in %s, MongoDB %s; '
              'Ctrl-C stops)' % (host, port, data,
                                 args.uri and 'at ' + redact(args.uri)
                                 or 'embedded'), flush=True)
        print('zmongo demo: %s%s; anybody may look, the manager may '
              'change' % ('a new site with people, projects and notes; '
                          if seeded else '', how), flush=True)
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        print('zmongo demo: stopped', flush=True)
        return 0
    except DemoError as error:
        print('zmongo-demo: error: %s' % error, file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for close in reversed(resources):
            try:
                close()
            except Exception as error:  # pragma: no cover
                print('zmongo-demo: while stopping: %s' % error,
                      file=sys.stderr)
