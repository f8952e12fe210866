"""The <mongo:provider> ZCML directive."""
import pytest
import transaction
import zope.component
import zope.component.testing
from pymongo.read_preferences import ReadPreference
from zope.configuration import xmlconfig
from zope.configuration.exceptions import ConfigurationError

from tests import models
from zmongo import conflict
from zmongo import interfaces
from zmongo import testing

TEMPLATE = '''
<configure xmlns="http://namespaces.zope.org/zope"
           xmlns:mongo="http://namespaces.zope.org/mongo">
  <include package="zmongo" file="meta.zcml" />
  <mongo:provider %s />
</configure>
'''


@pytest.fixture(autouse=True)
def registry():
    zope.component.testing.setUp()
    yield
    zope.component.testing.tearDown()


def load(attributes):
    return xmlconfig.string(TEMPLATE % attributes)


def get_provider(name=''):
    return zope.component.getUtility(interfaces.IMongoDataManagerProvider,
                                     name=name)


def test_a_site_connects_with_zcml_only(mongo):
    load('uri="%s" database="%s"' % (testing.get_test_uri(), mongo.db_name))
    dm = get_provider().get()
    dm.root['ada'] = models.Person('Ada')
    transaction.commit()
    assert mongo.db[models.PERSON].find_one()['name'] == 'Ada'
    get_provider().close()


def test_no_connection_is_opened_while_parsing():
    # A port nothing listens on: parsing must not try it.
    load('uri="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=100" '
         'database="site"')
    assert get_provider()._client is None


def test_every_attribute_reaches_the_data_managers():
    load('uri="mongodb://127.0.0.1:9/" database="site" name="other" '
         'root_database="roots" '
         'conflict_handler="zmongo.conflict.SimpleSerialConflictHandler" '
         'transactions="off" write_concern="2" journal="false" '
         'read_concern="majority" read_preference="secondaryPreferred" '
         'transaction_timeout="7.5" timeout="3" '
         'trusted_modules="myapp  lib.content"')
    provider = get_provider('other')
    options = provider.datamanager_options
    assert options['default_database'] == 'site'
    assert options['root_database'] == 'roots'
    assert options['conflict_handler_factory'] is \
        conflict.SimpleSerialConflictHandler
    assert options['transactions'] is False
    assert options['write_concern'].document == {'w': 2, 'j': False}
    assert options['read_concern'].level == 'majority'
    assert options['read_preference'] == ReadPreference.SECONDARY_PREFERRED
    assert options['transaction_timeout'] == 7.5
    assert provider.client_options == {'timeoutMS': 3000}
    assert options['trusted_modules'] == {'myapp', 'lib.content'}
    assert provider.get().trusted_modules == {'myapp', 'lib.content'}
    with pytest.raises(zope.component.ComponentLookupError):
        get_provider('')


def test_journal_alone_means_majority():
    load('uri="mongodb://127.0.0.1:9/" database="site" journal="false"')
    options = get_provider().datamanager_options
    assert options['write_concern'].document == {'w': 'majority', 'j': False}


def test_defaults():
    load('uri="mongodb://127.0.0.1:9/" database="site"')
    options = get_provider().datamanager_options
    assert options['transactions'] == 'auto'
    # No write concern of its own: the URI's if it names one, else the data
    # manager's majority + journal.
    assert 'write_concern' not in options
    assert 'conflict_handler_factory' not in options
    assert 'trusted_modules' not in options


def test_uri_from_the_environment(monkeypatch):
    monkeypatch.setenv('ZMONGO_SITE_URI',
                       'mongodb://user:secret@127.0.0.1:9/')
    load('uri="env:ZMONGO_SITE_URI" database="site"')
    assert get_provider().uri == 'mongodb://user:secret@127.0.0.1:9/'


def test_missing_environment_variable_fails_with_file_and_line(monkeypatch):
    monkeypatch.delenv('ZMONGO_NOT_SET', raising=False)
    with pytest.raises(ConfigurationError) as info:
        load('uri="env:ZMONGO_NOT_SET" database="site"')
    message = str(info.value)
    assert 'ZMONGO_NOT_SET is not set' in message
    assert 'line 5' in message


@pytest.mark.parametrize('attributes, complaint', [
    ('uri="http://example.org/" database="s"', 'must start with mongodb://'),
    ('uri="mongodb://h/" database="s" transactions="maybe"', 'transactions'),
    ('uri="mongodb://h/" database="s" write_concern="lots"', 'write_concern'),
    ('uri="mongodb://h/" database="s" read_concern="bogus"', 'read_concern'),
    ('uri="mongodb://h/" database="s" read_preference="any"',
     'read_preference'),
    ('uri="mongodb://h/" database="s" conflict_handler="no.such.Handler"',
     'conflict_handler'),
    ('uri="mongodb://h/" database="s" transaction_timeout="-1"',
     'transaction_timeout'),
    ('uri="mongodb://h/" database="s" journal="perhaps"', 'journal'),
    ('uri="mongodb://h/"', 'database'),
    ('uri="mongodb://h/" database=""', 'database must be'),
    ('uri="mongodb://h/" database="a b"', 'database must be'),
    ('uri="mongodb://h/" database="a/b"', 'database must be'),
    ('uri="mongodb://h/" database="a.b"', 'database must be'),
    ('uri="mongodb://h/" database="%s"' % ('x' * 64), 'database must be'),
    ('uri="mongodb://h/" database="s" root_database="a$b"',
     'root_database must be'),
    ('uri="mongodb://h/" database="s" conflict_handler="zmongo.conflict.u64"',
     'conflict_handler must name a class implementing IConflictHandler'),
    ('uri="mongodb://h/" database="s" '
     'conflict_handler="zmongo.container.MongoContainer"',
     'conflict_handler must name a class implementing IConflictHandler'),
    ('uri="mongodb://h/" database="s" trusted_modules="myapp my-lib"',
     "trusted_modules: each prefix is a module name"),
    ('uri="mongodb://h/" database="s" trusted_modules="myapp."',
     "trusted_modules: each prefix is a module name"),
])
def test_bad_attributes_fail_at_configuration_time(attributes, complaint):
    with pytest.raises(ConfigurationError) as info:
        load(attributes)
    message = str(info.value)
    assert complaint in message
    assert 'line 5' in message


def test_errors_do_not_show_credentials():
    with pytest.raises(ConfigurationError) as info:
        load('uri="postgres://user:secret@h/" database="s"')
    assert 'must start with mongodb://' in info.value.args[0]
    assert 'secret' not in str(info.value)


def test_a_bad_scheme_shows_no_part_of_the_password():
    with pytest.raises(ConfigurationError) as info:
        load('uri="mongo://u:secret@h/" database="s"')
    message = str(info.value)
    assert "starts with 'mongo:'" in message
    assert 'se' not in message.split('starts with')[1]


def test_first_operation_is_bounded_by_the_timeout():
    """An unreachable server fails the first operation within ``timeout``
    (the client's ``timeoutMS``), not ``serverSelectionTimeoutMS``."""
    import time
    import pymongo.errors
    load('uri="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=30000" '
         'database="site" timeout="0.5"')
    dm = get_provider().get()
    started = time.monotonic()
    with pytest.raises(pymongo.errors.PyMongoError):
        dm.root['x']
    assert time.monotonic() - started < 10
