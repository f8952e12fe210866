"""The ZMI's Contents view (zope.app.container) over every container kind.

A published site (zope.app.wsgi, a ZODB root folder, zmongo's
configure.zcml, zope.copypastemove) driven through zope.testbrowser: the
listing, Rename, Cut/Copy/Paste and Delete, with the containers

* in a ZODB site: in the ZODB root folder (the reference's home), and
* in a Mongo-stored site: in a ``SimpleMongoContainer`` stored in MongoDB,
  an item of a ``MongoContainer`` over the ``folders`` collection that the
  ZODB root folder holds (ZODB cannot refer to an object of MongoDB; a
  Mongo container living in ZODB is the bridge).  Every folder below the
  root folder's ``mongo`` is then a document.

Rendering a listing sends no write command; an action the view offers
succeeds, and one it cannot do is not offered.
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
from zope.traversing.api import getPath

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
        Mongo-stored SimpleMongoContainer below it."""
        if self.where == 'zodb':
            return self.root()
        return self.root()['mongo']['site']

    def build(self):
        """The Mongo-stored site: root folder (ZODB) / mongo (a
        MongoContainer over ``folders``, in ZODB) / site (a
        SimpleMongoContainer, a document of ``folders``)."""
        if self.where == 'mongo':
            self.root()['mongo'] = container.MongoContainer('folders')
            transaction.commit()
            self.root()['mongo']['site'] = container.SimpleMongoContainer()
            transaction.commit()

    def path(self, name=''):
        base = 'http://localhost/'
        if self.where == 'mongo':
            base += 'mongo/site/'
        return base + name

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


@pytest.fixture(params=['zodb', 'mongo'])
def site(request, mongo, datamanager, container_cache):
    """The published site, its containers in ZODB or in MongoDB; requests
    use data managers of the ``datamanager`` fixture's commit mode (its
    own data manager is not used)."""
    zope.component.testing.setUp()
    xmlconfig.string(SITE_ZCML % {'macros': MACROS})
    # The test's client: ``mongo.commands`` counts what requests send.
    mode = request.node.callspec.params['datamanager']
    zope.component.provideUtility(
        MongoDataManagerProvider(client=mongo.client,
                                 default_database=mongo.db_name,
                                 transactions=mode == 'transactions'),
        interfaces.IMongoDataManagerProvider)
    site = Site(mongo, request.param)
    site.build()
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
    # The folders above: the root folder, and in the Mongo-stored site the
    # MongoContainer in ZODB holding the site's document.
    browser.open('http://localhost/@@contents.html')
    if site.where == 'mongo':
        assert listed(browser) == ['mongo']
        browser.open('http://localhost/mongo/@@contents.html')
        assert listed(browser) == ['site']
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


def test_paste_is_not_offered_across_collections(site, mongo):
    """A cut item cannot move to another collection: no Paste.  A copy is
    a new document: Paste is offered and works."""
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

    browser.open(site.path('a/@@contents.html'))
    browser.getControl(name='ids:list').value = ['ada']
    browser.getControl('Copy').click()
    browser.open(site.path('other/@@contents.html'))
    browser.getControl('Paste').click()
    assert listed(browser) == ['ada']
    docs = list(mongo.db.elsewhere.find())
    assert [(d['key'], d['name']) for d in docs] == [('ada', 'Ada')]
    assert mongo.db.person.count_documents({'key': 'ada'}) == 1
    transaction.abort()
    assert getPath(site.home()['other']['ada']) == \
        getPath(site.home()) .rstrip('/') + '/other/ada'


def test_a_mongo_item_cannot_be_pasted_into_a_zodb_folder(site):
    """The root folder (ZODB) cannot hold a Mongo document: Cut offers no
    Paste there; Copy does, and the copy is a ZODB object."""
    fill(site, 'mongo')
    browser = site.browser()
    browser.open(site.path('a/@@contents.html'))
    browser.getControl(name='ids:list').value = ['ada']
    browser.getControl('Cut').click()
    browser.open('http://localhost/@@contents.html')
    with pytest.raises(LookupError):
        browser.getControl('Paste')
    browser.open(site.path('a/@@contents.html'))
    browser.getControl(name='ids:list').value = ['ada']
    browser.getControl('Copy').click()
    browser.open('http://localhost/@@contents.html')
    browser.getControl('Paste').click()
    assert 'ada' in listed(browser)
    transaction.abort()
    copy = site.root()['ada']
    assert copy.name == 'Ada' and copy._p_jar is site.connection
    assert 'ada' in site.home()['a']


def test_renaming_folders(site, mongo):
    """Renaming a container renames a folder of the site (in the
    Mongo-stored site: a document, and the site's own document in the
    MongoContainer that holds it); its items follow."""
    fill(site, 'mongo')
    browser = site.browser()
    browser.open(site.path('@@contents.html'))
    browser.getControl(name='ids:list').value = ['a']
    browser.getControl('Rename').click()
    browser.getControl(name='new_value:list').value = 'c'
    browser.getControl('Apply').click()
    assert listed(browser) == ['b', 'c']
    browser.open(site.path('c/@@contents.html'))
    assert listed(browser) == ['ada', 'bob']
    if site.where == 'mongo':
        browser.open('http://localhost/mongo/@@contents.html')
        browser.getControl(name='ids:list').value = ['site']
        browser.getControl('Rename').click()
        browser.getControl(name='new_value:list').value = 'home'
        browser.getControl('Apply').click()
        assert listed(browser) == ['home']
        site.path = lambda name='': 'http://localhost/mongo/home/' + name
        browser.open(site.path('c/@@contents.html'))
        assert listed(browser) == ['ada', 'bob']
        docs = list(mongo.db.folders.find())
        assert [d['key'] for d in docs] == ['home']
    transaction.abort()
    home = site.root()['mongo']['home'] if site.where == 'mongo' \
        else site.root()
    assert getPath(home['c']['ada']) == getPath(home).rstrip('/') + '/c/ada'


@pytest.mark.parametrize('site', ['mongo'], indirect=True)
def test_the_mongo_site_is_stored_in_mongodb(site, mongo):
    """Below the root folder's MongoContainer every folder is a document:
    the site's names its container in ZODB only by its parent field."""
    fill(site, 'mongo')
    bridge = site.root()['mongo']
    [doc] = list(mongo.db.folders.find())
    assert doc['key'] == 'site' and '__parent__' not in doc
    assert doc['parent'] == 'zodb-' + bridge._p_oid.hex()
    assert sorted(doc['data']) == ['a', 'b']
    assert {ref.id for ref in doc['data'].values()} == {
        d['_id'] for d in mongo.db['zmongo.container.MongoContainer'].find()}
    # Loaded in a later transaction, it knows its parent again, and
    # handing it out wrote nothing.
    mongo.commands.reset()
    home = site.home()
    assert home.__parent__ is bridge and home.__name__ == 'site'
    assert getPath(home['a']['ada']) == '/mongo/site/a/ada'
    assert not home._p_changed
    transaction.commit()
    assert write_commands(mongo) == []


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
