"""The ZMI's Contents view (zope.app.container) over every container kind.

A published site (zope.app.wsgi, a ZODB root folder, zmongo's
configure.zcml, zope.copypastemove) driven through zope.testbrowser: the
listing, Rename, Cut/Copy/Paste and Delete, with the containers in the ZODB
root folder.  Rendering a listing sends no
write command; an action the view offers succeeds, and one it cannot do is
not offered.
"""
import base64
import os
import urllib.parse

import bson
import pytest
import transaction
import zope.component
import zope.component.testing
from zope.app.appsetup.testlayer import createTestDB
from zope.app.publication.zopepublication import ZopePublication
from zope.app.wsgi import WSGIPublisherApplication
from zope.configuration import xmlconfig
from zope.testbrowser.browser import Browser

from tests import container_models as models
from tests.container_support import container_cache  # noqa: F401
from zmongo import container
from zmongo import interfaces
from zmongo.provider import MongoDataManagerProvider

MACROS = os.path.join(os.path.dirname(__file__), 'zmi', 'macros.pt')

SITE_ZCML = '''
<configure xmlns="http://namespaces.zope.org/zope"
           xmlns:browser="http://namespaces.zope.org/browser"
           i18n_domain="zmongo">

  <include package="grok" />
  <include package="zope.copypastemove" />
  <include package="zmongo" />

  <!-- What the ZMI's Contents view needs of a site: the page, a
       standard_macros view for its template, and annotations on
       principals (the clipboard). -->
  <browser:page
      for="zope.container.interfaces.IReadContainer"
      name="contents.html"
      class="zope.app.container.browser.contents.Contents"
      attribute="contents"
      permission="zope.ManageContent"
      />
  <browser:page
      for="*"
      name="standard_macros"
      template="%(macros)s"
      permission="zope.Public"
      />
  <adapter
      for="zope.security.interfaces.IPrincipal"
      provides="zope.annotation.interfaces.IAnnotations"
      factory="zope.annotation.attribute.AttributeAnnotations"
      trusted="true"
      />

  <adapter
      for="*"
      provides="zope.traversing.interfaces.IPathAdapter"
      factory="tests.test_container_zmi.URLQuote"
      name="url"
      />
  <class class="tests.test_container_zmi.URLQuote">
    <allow attributes="quote" />
  </class>

  <class class="tests.container_models.Item">
    <implements interface="zmongo.annotation.IMongoAttributeAnnotatable" />
    <require permission="zope.View" attributes="name" />
  </class>

  <principal id="zope.mgr" title="Manager" login="mgr" password="mgrpw" />
  <role id="zope.Manager" title="Site Manager" />
  <grantAll role="zope.Manager" />
  <grant role="zope.Manager" principal="zope.mgr" />
</configure>
'''

class URLQuote:
    """The ``url:quote`` path adapter the Contents template uses (a ZMI
    skin package provides it; none is installed here)."""

    def __init__(self, context):
        self.context = context

    def quote(self):
        return urllib.parse.quote(str(self.context))


KINDS = ('mongo', 'idnames', 'subdocument', 'simple')
WRITES = ('insert', 'update', 'delete', 'findAndModify')


def make(kind):
    return {
        'mongo': lambda: container.MongoContainer('person'),
        'idnames': lambda: container.IdNamesMongoContainer('person'),
        'subdocument': lambda: container.SubDocumentMongoContainer('person'),
        'simple': container.SimpleMongoContainer,
    }[kind]()


class Site:
    def __init__(self, mongo, where):
        self.mongo = mongo
        self.db = createTestDB()
        self.connection = self.db.open()
        self.app = WSGIPublisherApplication(self.db)
        self.where = where

    def root(self):
        return self.connection.root()[ZopePublication.root_name]

    def home(self):
        """The folder the containers are in: the ZODB root folder, or a
        Mongo-stored SimpleMongoContainer in it."""
        return self.root()

    def path(self, name=''):
        return 'http://localhost/' + name

    def wsgi(self, environ, start_response):
        transaction.commit()
        yield from self.app(environ, start_response)
        self.connection.sync()

    def browser(self):
        browser = Browser(wsgi_app=self.wsgi)
        browser.handleErrors = False
        credentials = base64.b64encode(b'mgr:mgrpw').decode()
        browser.addHeader('Authorization', 'Basic ' + credentials)
        return browser

    def close(self):
        transaction.abort()
        self.connection.close()
        self.db.close()


@pytest.fixture(params=['zodb'])
def site(request, mongo, container_cache):
    zope.component.testing.setUp()
    xmlconfig.string(SITE_ZCML % {'macros': MACROS})
    # The test's client: ``mongo.commands`` counts what requests send.
    zope.component.provideUtility(
        MongoDataManagerProvider(client=mongo.client,
                                 default_database=mongo.db_name),
        interfaces.IMongoDataManagerProvider)
    site = Site(mongo, request.param)
    try:
        yield site
    finally:
        site.close()
        zope.component.testing.tearDown()


def fill(site, kind):
    home = site.home()
    home['a'], home['b'] = make(kind), make(kind)
    transaction.commit()
    names = []
    for title in ('Ada', 'Bob'):
        item = models.Item(title)
        key = None if kind == 'idnames' else title.lower()
        site.home()['a'][key] = item
        names.append(item.__name__)
    transaction.commit()
    return names


def listed(browser):
    return sorted(c.optionValue for c in
                  browser.getControl(name='ids:list').controls)


def write_commands(mongo):
    return [name for name in mongo.commands.names if name in WRITES]


def item_documents(site, kind):
    coll = 'tests.container_models.Item' if kind == 'simple' else 'person'
    return list(site.mongo.db[coll].find())


@pytest.mark.parametrize('kind', KINDS)
def test_listing_writes_nothing(kind, site, mongo):
    names = fill(site, kind)
    browser = site.browser()
    mongo.commands.reset()
    browser.open(site.path('a/@@contents.html'))
    assert listed(browser) == sorted(names)
    browser.open(site.path('@@contents.html'))
    assert '2 items' in browser.contents        # ISized of a and b
    if kind != 'simple':
        # It read (a simple container's document may come from the
        # validated cache: no command at all).
        assert mongo.commands.count() > 0
    assert write_commands(mongo) == []


@pytest.mark.parametrize('kind', KINDS)
def test_rename_cut_copy_paste_delete(kind, site):
    names = fill(site, kind)
    browser = site.browser()
    browser.open(site.path('a/@@contents.html'))
    if kind == 'idnames':
        # Names are ids: the view offers no Rename.
        with pytest.raises(LookupError):
            browser.getControl('Rename')
    else:
        browser.getControl(name='ids:list').value = ['bob']
        browser.getControl('Rename').click()
        browser.getControl(name='new_value:list').value = 'robert'
        browser.getControl('Apply').click()
        assert listed(browser) == ['ada', 'robert']
        names = ['ada', 'robert']
    ada = names[0]
    # Cut Ada from a, paste into b.
    browser.getControl(name='ids:list').value = [ada]
    browser.getControl('Cut').click()
    browser.open(site.path('b/@@contents.html'))
    browser.getControl('Paste').click()
    assert listed(browser) == [ada]
    # Copy it back into a.
    browser.getControl(name='ids:list').value = [ada]
    browser.getControl('Copy').click()
    browser.open(site.path('a/@@contents.html'))
    browser.getControl('Paste').click()
    in_a = listed(browser)
    assert len(in_a) == 2 and names[1] in in_a
    if kind != 'idnames':
        assert ada in in_a
    # Delete everything in a.
    browser.getControl(name='ids:list').value = in_a
    browser.getControl('Delete').click()
    assert 'ids:list' not in browser.contents
    transaction.abort()
    home = site.home()
    assert len(home['a']) == 0 and list(home['b'].keys()) == [ada]
    docs = item_documents(site, kind)
    if kind == 'simple' and site.where == 'zodb':
        # A simple container in a ZODB folder is a ZODB object: so are
        # the items in it.
        assert docs == []
    else:
        assert len(docs) == 1 and docs[0]['name'] == 'Ada'


def test_paste_is_not_offered_across_collections(site):
    fill(site, 'mongo')
    site.home()['other'] = container.MongoContainer('elsewhere')
    transaction.commit()
    browser = site.browser()
    browser.open(site.path('a/@@contents.html'))
    browser.getControl(name='ids:list').value = ['ada']
    browser.getControl('Cut').click()
    browser.open(site.path('other/@@contents.html'))
    with pytest.raises(LookupError):
        browser.getControl('Paste')
    browser.open(site.path('b/@@contents.html'))
    browser.getControl('Paste')      # offered where it works


def test_ids_are_fresh_for_copies(site):
    names = fill(site, 'idnames')
    browser = site.browser()
    browser.open(site.path('a/@@contents.html'))
    browser.getControl(name='ids:list').value = names
    browser.getControl('Copy').click()
    browser.open(site.path('b/@@contents.html'))
    browser.getControl('Paste').click()
    copies = listed(browser)
    assert len(copies) == 2 and not set(copies) & set(names)
    assert all(bson.ObjectId.is_valid(name) for name in copies)
