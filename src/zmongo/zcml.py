"""The ``<mongo:provider>`` ZCML directive: connect a site with no Python.

::

    <configure xmlns:mongo="http://namespaces.zope.org/mongo">
      <include package="zmongo" file="meta.zcml" />
      <mongo:provider uri="env:ZMONGO_URI" database="site" />
    </configure>

registers a :class:`zmongo.provider.MongoDataManagerProvider` as the
``IMongoDataManagerProvider`` utility.  Nothing connects while the ZCML is
read: the client is made on the first ``get()``.  Credentials belong in the
environment (``uri="env:NAME"``), not in the ZCML; TLS and authentication
options travel in the URI as pymongo reads them.  Every attribute is checked
when the configuration is loaded, and a bad one fails there, with the file
and line.
"""
import os

import zope.configuration.fields
import zope.interface
import zope.schema
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import read_pref_mode_from_name
from pymongo.read_preferences import make_read_preference
from pymongo.write_concern import WriteConcern
from zope.component.zcml import utility
from zope.configuration.exceptions import ConfigurationError

from zmongo import _safety
from zmongo import interfaces
from zmongo._cache import DEFAULT_BYTES
from zmongo._cache import DEFAULT_SIZE

ENV_PREFIX = 'env:'
TRANSACTION_MODES = {'auto': 'auto', 'on': True, 'off': False}
READ_CONCERNS = ('local', 'available', 'majority', 'linearizable', 'snapshot')
READ_PREFERENCES = ('primary', 'primaryPreferred', 'secondary',
                    'secondaryPreferred', 'nearest')


class IProviderDirective(zope.interface.Interface):
    """Register a data manager provider for a MongoDB server."""

    uri = zope.schema.TextLine(
        title='MongoDB URI',
        description='mongodb:// or mongodb+srv:// URI, or env:NAME to read '
                    'it from the environment variable NAME when the '
                    'configuration is loaded.',
        required=True)

    database = zope.schema.TextLine(
        title='Default database',
        description='Where objects and containers that name no database '
                    'live.',
        required=True)

    name = zope.schema.TextLine(
        title='Utility name', required=False, default='')

    root_database = zope.schema.TextLine(
        title='Database of the named roots',
        description='Defaults to the default database.', required=False)

    conflict_handler = zope.configuration.fields.GlobalObject(
        title='Conflict handler factory',
        description='Dotted name, e.g. '
                    'zmongo.conflict.SimpleSerialConflictHandler.',
        required=False)

    transactions = zope.schema.Choice(
        title='Server transactions',
        description='auto: use them where the server has them.',
        values=tuple(TRANSACTION_MODES), required=False, default='auto')

    write_concern = zope.schema.TextLine(
        title='Write concern w',
        description="'majority' or a number; without it (and without "
                    "journal) the URI's write concern, else majority.",
        required=False)

    journal = zope.configuration.fields.Bool(
        title='Journaled writes', required=False)

    read_concern = zope.schema.Choice(
        title='Read concern level', values=READ_CONCERNS, required=False)

    read_preference = zope.schema.Choice(
        title='Read preference', values=READ_PREFERENCES, required=False)

    transaction_timeout = zope.schema.Float(
        title='Seconds a commit may take', min=0.0, required=False)

    timeout = zope.schema.Float(
        title='Seconds any operation may take (client timeoutMS)',
        min=0.0, required=False)

    cache_size = zope.schema.Int(
        title='Document cache entries',
        description='How many committed documents and container answers '
                    'the provider\'s document cache keeps for later '
                    'transactions (least recently used first); 0 turns '
                    'it off.  Default: %d.' % DEFAULT_SIZE,
        min=0, required=False)

    cache_bytes = zope.schema.Int(
        title='Document cache bytes',
        description='The most bytes of BSON the document cache keeps.  '
                    'Default: %d.' % DEFAULT_BYTES,
        min=0, required=False)

    trusted_modules = zope.schema.TextLine(
        title='Trusted modules',
        description='Module prefixes, separated by spaces, whose classes '
                    'documents may hold and name before they are imported '
                    '("myapp lib.content" covers myapp, myapp.*, '
                    'lib.content and lib.content.*).',
        required=False)


def resolve_uri(uri):
    """``env:NAME`` -> the value of the environment variable ``NAME``."""
    if not uri.startswith(ENV_PREFIX):
        return uri
    variable = uri[len(ENV_PREFIX):]
    value = os.environ.get(variable)
    if not value:
        raise ConfigurationError(
            'uri="%s": the environment variable %s is not set'
            % (uri, variable))
    return value


#: What MongoDB refuses in a database name (besides an empty one).
_BAD_DATABASE_CHARACTERS = frozenset('/\\. "$*<>:|?\0')
_MAX_DATABASE_NAME_BYTES = 63


def _check_database_name(attribute, name):
    bad = sorted(set(name) & _BAD_DATABASE_CHARACTERS)
    if not name or bad or \
            len(name.encode('utf-8')) > _MAX_DATABASE_NAME_BYTES:
        raise ConfigurationError(
            '%s must be a MongoDB database name: not empty, at most %d '
            'bytes, none of / \\ . space " $ * < > : | ? or NUL; got %r'
            % (attribute, _MAX_DATABASE_NAME_BYTES, name))


def _write_concern(w, journal):
    """The write concern the attributes ask for, or None if they ask for
    none (then the URI's, if it names one, else majority + journal: see
    ``MongoDataManager``)."""
    if w is None and journal is None:
        return None
    if journal is None:
        journal = True
    if w is None:
        w = 'majority'
    if w != 'majority':
        try:
            w = int(w)
        except ValueError:
            raise ConfigurationError(
                'write_concern="%s": use "majority" or a number of members'
                % w) from None
    return WriteConcern(w=w, j=journal)


def provider(_context, uri, database, name='', root_database=None,
             conflict_handler=None, transactions='auto',
             write_concern=None, journal=None, read_concern=None,
             read_preference=None, transaction_timeout=None, timeout=None,
             trusted_modules=None, cache_size=None, cache_bytes=None):
    """Handle ``<mongo:provider>`` (attributes: :class:`IProviderDirective`).

    Everything that can be wrong with the attributes fails here, while the
    configuration is read and can still name the file and line; only the
    connection waits for the first ``get()``, so loading ZCML never needs a
    reachable server.
    """
    from zmongo.provider import MongoDataManagerProvider
    real_uri = resolve_uri(uri)
    if not real_uri.startswith(('mongodb://', 'mongodb+srv://')):
        # Only the scheme is shown: whatever follows may be a password.
        scheme = real_uri.partition(':')[0][:20]
        raise ConfigurationError(
            'uri must start with mongodb:// or mongodb+srv:// (or be '
            'env:NAME); %s starts with %r' % (
                uri if uri.startswith(ENV_PREFIX) else 'it',
                scheme + ':' if ':' in real_uri else scheme))
    _check_database_name('database', database)
    if root_database is not None:
        _check_database_name('root_database', root_database)
    options = {
        'default_database': database,
        'transactions': TRANSACTION_MODES[transactions],
    }
    concern = _write_concern(write_concern, journal)
    if concern is not None:
        options['write_concern'] = concern
    if root_database:
        options['root_database'] = root_database
    if conflict_handler is not None:
        if not (isinstance(conflict_handler, type) and
                interfaces.IConflictHandler.implementedBy(conflict_handler)):
            raise ConfigurationError(
                'conflict_handler must name a class implementing '
                'IConflictHandler (such as '
                'zmongo.conflict.SimpleSerialConflictHandler), not %r'
                % (conflict_handler,))
        options['conflict_handler_factory'] = conflict_handler
    if read_concern:
        options['read_concern'] = ReadConcern(read_concern)
    if read_preference:
        options['read_preference'] = make_read_preference(
            read_pref_mode_from_name(read_preference), None)
    if transaction_timeout:
        options['transaction_timeout'] = transaction_timeout
    if trusted_modules:
        try:
            options['trusted_modules'] = _safety.prefixes(
                trusted_modules, 'trusted_modules')
        except ValueError as err:
            raise ConfigurationError(str(err)) from None
    client_options = {}
    if timeout:
        client_options['timeoutMS'] = int(timeout * 1000)
    if cache_size is not None:
        options['cache_size'] = cache_size
    if cache_bytes is not None:
        options['cache_bytes'] = cache_bytes
    component = MongoDataManagerProvider(
        real_uri, client_options=client_options, **options)
    utility(_context, provides=interfaces.IMongoDataManagerProvider,
            component=component, name=name)
