"""``zmongo-demo``: start the demo site.

The site's root folder is in a ZODB FileStorage (``DATA/Data.fs``), its
content in MongoDB: the embedded secantusdb server with its files in
``DATA/mongo`` (both survive restarts), or a real server given by
``--uri``.  The site is served by zope.app.wsgi's publisher and waitress
until Ctrl-C or SIGTERM.
"""
import argparse
import os
import re
import signal
import sys

URI_VARIABLE = 'ZMONGO_DEMO_URI'
DATABASE = 'zmongo_demo'


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
                             'anybody who reaches the site may change it)')
    parser.add_argument('--port', type=int, default=8080,
                        help='port to listen on (default: 8080)')
    parser.add_argument(
        '--uri', default=None, metavar='mongodb://...',
        help='use this MongoDB server (database %s) instead of the embedded '
             'one' % DATABASE)
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


def load_site():
    """Load site.zcml (the site's components)."""
    from zope.configuration import xmlconfig
    import zmongo.demo
    xmlconfig.file('site.zcml', zmongo.demo)


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

        load_site()
        import zope.component
        from zmongo.interfaces import IMongoDataManagerProvider
        resources.append(zope.component.getUtility(
            IMongoDataManagerProvider).close)
        db = open_db(os.path.join(data, 'Data.fs'))
        resources.append(db.close)

        from zmongo.demo.app import bootstrap
        bootstrap(db)
        from zope.app.wsgi import WSGIPublisherApplication
        deferred.app = WSGIPublisherApplication(db)

        host, port = server.effective_host, server.effective_port
        if ':' in str(host):
            host = '[%s]' % host
        print('zmongo demo: http://%s:%s/  (data in %s, MongoDB %s; '
              'Ctrl-C stops)' % (host, port, data,
                                 args.uri and 'at ' + redact(args.uri)
                                 or 'embedded'), flush=True)
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
