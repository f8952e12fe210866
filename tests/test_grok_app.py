"""A Grok 6 application on zmongo, end to end through zope.testbrowser.

The site is configured by ZCML only: Grok, zmongo's meta.zcml and
configure.zcml, ``<mongo:provider>`` for the connection (the URI from the
environment, ``env:``), and the test application grokked from
``tests/grokapp.py``.  Its root folder and the application are in a ZODB
(DemoStorage), its entries in MongoDB (the real test server); requests go
through zope.app.wsgi's WSGI publisher.
"""
import base64
import re

import pytest
import transaction
import zope.component.testing
from zope.app.appsetup.testlayer import createTestDB
from zope.app.publication.zopepublication import ZopePublication
from zope.app.wsgi import WSGIPublisherApplication
from zope.configuration import xmlconfig
from zope.testbrowser.browser import Browser
from zope.testbrowser.browser import HTTPError

from tests import grokapp
from zmongo import interfaces
from zmongo import testing

URI_VARIABLE = 'ZMONGO_GROKAPP_TEST_URI'

SITE_ZCML = '''
<configure xmlns="http://namespaces.zope.org/zope"
           xmlns:grok="http://namespaces.zope.org/grok"
           xmlns:mongo="http://namespaces.zope.org/mongo"
           i18n_domain="zmongo">

  <include package="grok" />
  <include package="zmongo" file="meta.zcml" />
  <include package="zmongo" />
  <grok:grok package="tests.grokapp" />

  <mongo:provider uri="env:%(variable)s" database="%(database)s" />

  <unauthenticatedPrincipal id="zope.anybody" title="Anybody" />
  <grant permission="zope.View" principal="zope.anybody" />
  <principal id="zope.mgr" title="Manager" login="mgr" password="mgrpw" />
  <role id="zope.Manager" title="Site Manager" />
  <grantAll role="zope.Manager" />
  <grant role="zope.Manager" principal="zope.mgr" />
</configure>
'''


class Site:
    """The configured site: its ZODB, its WSGI application, browsers."""

    def __init__(self, mongo):
        self.mongo = mongo
        self.db = createTestDB()
        self.connection = self.db.open()
        self.app = WSGIPublisherApplication(self.db)

    def root_folder(self):
        return self.connection.root()[ZopePublication.root_name]

    def wsgi(self, environ, start_response):
        # Whatever the test did is committed before the request, and its
        # connection sees what the request committed.
        transaction.commit()
        yield from self.app(environ, start_response)
        self.connection.sync()

    def browser(self, login=None):
        browser = Browser(wsgi_app=self.wsgi)
        if login:
            credentials = base64.b64encode(login.encode()).decode()
            browser.addHeader('Authorization', 'Basic ' + credentials)
        return browser

    def documents(self):
        return {doc['key']: doc for doc in self.mongo.db.entries.find()}

    def close(self):
        transaction.abort()
        self.connection.close()
        self.db.close()


@pytest.fixture
def site(mongo, monkeypatch):
    monkeypatch.setenv(URI_VARIABLE, testing.get_test_uri())
    zope.component.testing.setUp()
    xmlconfig.string(SITE_ZCML % {'variable': URI_VARIABLE,
                                  'database': mongo.db_name})
    site = Site(mongo)
    try:
        yield site
    finally:
        site.close()
        zope.component.getUtility(
            interfaces.IMongoDataManagerProvider).close()
        zope.component.testing.tearDown()


@pytest.fixture
def app(site):
    site.root_folder()['app'] = grokapp.App()
    transaction.commit()
    return site


def entries_listed(browser):
    """[(href, title, name)] of the container's listing."""
    return re.findall(r'<a href="([^"]+)">([^<]*)</a>\s*<code>([^<]*)</code>',
                      browser.contents)


def add(browser, name, title):
    browser.open('http://localhost/app/entries/add')
    browser.getControl(name='form.name').value = name
    browser.getControl(name='form.title').value = title
    browser.getControl('Add entry').click()


def test_the_site_connects_by_zcml_only(app):
    provider = zope.component.getUtility(
        interfaces.IMongoDataManagerProvider)
    assert provider.datamanager_options['default_database'] == \
        app.mongo.db_name
    # Configured and even the application made, but not connected: the
    # first request that needs MongoDB makes the client.
    assert provider._client is None
    browser = app.browser()
    browser.open('http://localhost/app/entries')
    assert '<span id="count">0</span>' in browser.contents
    assert provider._client is not None


def test_add_list_and_open_items(app):
    manager = app.browser('mgr:mgrpw')
    add(manager, 'ada', 'Ada Lovelace')
    # The add form redirects to the listing.
    assert manager.url == 'http://localhost/app/entries'
    add(manager, 'grace', 'Grace <Hopper> & co')
    assert entries_listed(manager) == [
        ('http://localhost/app/entries/ada', 'Ada Lovelace', 'ada'),
        ('http://localhost/app/entries/grace',
         'Grace &lt;Hopper&gt; &amp; co', 'grace'),
    ]
    assert '<span id="count">2</span>' in manager.contents

    # In MongoDB: one document per item, naming its container in ZODB.
    documents = app.documents()
    assert sorted(documents) == ['ada', 'grace']
    assert documents['ada']['title'] == 'Ada Lovelace'
    entries = app.root_folder()['app']['entries']
    assert documents['ada']['parent'] == \
        'zodb-' + entries._p_oid.hex()

    # Anybody may look (zope.View is granted to zope.anybody).
    visitor = app.browser()
    visitor.open('http://localhost/app')
    visitor.getLink('Entries').click()
    assert visitor.url == 'http://localhost/app/entries'
    visitor.getLink('Ada Lovelace').click()
    assert visitor.url == 'http://localhost/app/entries/ada'
    assert '<h1>Ada Lovelace</h1>' in visitor.contents
    assert '<p id="name">ada</p>' in visitor.contents
    assert '<p id="url">http://localhost/app/entries/ada</p>' in \
        visitor.contents
    visitor.getLink('up').click()
    assert visitor.url == 'http://localhost/app/entries'


def test_items_added_outside_the_web_are_listed(app):
    app.root_folder()['app']['entries']['linus'] = grokapp.Entry('Linus')
    transaction.commit()
    browser = app.browser()
    browser.open('http://localhost/app/entries')
    assert entries_listed(browser) == [
        ('http://localhost/app/entries/linus', 'Linus', 'linus')]
    browser.open('http://localhost/app/entries/linus')
    assert '<h1>Linus</h1>' in browser.contents


def test_editing_an_item(app):
    manager = app.browser('mgr:mgrpw')
    add(manager, 'ada', 'Ada')
    manager.open('http://localhost/app/entries/ada/rename')
    manager.getControl(name='form.title').value = 'Countess Lovelace'
    manager.getControl('Apply').click()
    assert app.documents()['ada']['title'] == 'Countess Lovelace'
    manager.open('http://localhost/app/entries/ada')
    assert '<h1>Countess Lovelace</h1>' in manager.contents


def test_changing_needs_zope_managecontent(app):
    add(app.browser('mgr:mgrpw'), 'ada', 'Ada')
    before = app.documents()
    visitor = app.browser()
    for url in ('http://localhost/app/entries/add',
                'http://localhost/app/entries/ada/rename',
                'http://localhost/app/entries/broken'):
        with pytest.raises(HTTPError) as raised:
            visitor.open(url)
        assert raised.value.code == 401, url
    # A wrong password is no better.
    with pytest.raises(HTTPError) as raised:
        app.browser('mgr:wrong').open('http://localhost/app/entries/add')
    assert raised.value.code == 401
    assert app.documents() == before
    visitor.open('http://localhost/app/entries/ada')
    assert '<h1>Ada</h1>' in visitor.contents


def test_a_missing_item_is_not_found(app):
    browser = app.browser()
    browser.open('http://localhost/app/entries')
    assert entries_listed(browser) == []
    with pytest.raises(HTTPError) as raised:
        browser.open('http://localhost/app/entries/nobody')
    assert raised.value.code == 404


def test_a_taken_name_is_refused(app):
    manager = app.browser('mgr:mgrpw')
    add(manager, 'ada', 'Ada')
    add(manager, 'ada', 'Another Ada')
    assert manager.url == 'http://localhost/app/entries/add'
    assert 'The name ada is taken.' in manager.contents
    assert {k: d['title'] for k, d in app.documents().items()} == {
        'ada': 'Ada'}


def test_a_failed_request_writes_nothing(app):
    """The publisher aborts a failed request's transaction: the MongoDB
    changes it made go with it."""
    manager = app.browser('mgr:mgrpw')
    add(manager, 'ada', 'Ada')
    add(manager, 'grace', 'Grace')
    before = app.documents()
    manager.handleErrors = False
    with pytest.raises(RuntimeError, match='this request fails'):
        manager.open('http://localhost/app/entries/broken')
    assert app.documents() == before
    manager.handleErrors = True
    with pytest.raises(HTTPError) as raised:
        manager.open('http://localhost/app/entries/broken')
    assert raised.value.code == 500
    assert app.documents() == before
    manager.open('http://localhost/app/entries')
    assert [title for _, title, _ in entries_listed(manager)] == [
        'Ada', 'Grace']
