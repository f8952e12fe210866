"""The demo site (zmongo.demo), page by page, through zope.testbrowser.

The site is configured by its own ``site.zcml`` (``<mongo:provider
uri="env:ZMONGO_DEMO_URI" database="zmongo_demo">``, pointed at the test
server), its root folder is in a temporary FileStorage, and requests go
through zope.app.wsgi's publisher in this process.
"""
import datetime
import re

import pytest
import transaction
import zope.component
import zope.component.testing
from zope.app.publication.zopepublication import ZopePublication
from zope.app.wsgi import WSGIPublisherApplication
from zope.testbrowser.browser import Browser
from zope.testbrowser.browser import HTTPError

from zmongo import interfaces
from zmongo import testing
from zmongo.demo import app as demo
from zmongo.demo import main

ROOT = 'http://localhost'


class Site:

    def __init__(self, path):
        self.path = path
        self.open()

    def open(self):
        self.db = main.open_db(self.path)
        demo.bootstrap(self.db)
        self.connection = self.db.open()
        self.app = WSGIPublisherApplication(self.db)

    def close(self):
        transaction.abort()
        self.connection.close()
        self.db.close()

    def root(self):
        return self.connection.root()[ZopePublication.root_name]

    def wsgi(self, environ, start_response):
        transaction.commit()
        yield from self.app(environ, start_response)
        self.connection.sync()

    def browser(self):
        browser = Browser(wsgi_app=self.wsgi)
        browser.raiseHttpErrors = False
        return browser

    def documents(self, collection):
        return list(self.client[main.DATABASE][collection].find())


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.setenv(main.URI_VARIABLE, testing.get_test_uri())
    client = testing.make_client()
    client.drop_database(main.DATABASE)
    zope.component.testing.setUp()
    main.load_site()
    site = Site(str(tmp_path / 'Data.fs'))
    site.client = client
    try:
        yield site
    finally:
        site.close()
        zope.component.getUtility(
            interfaces.IMongoDataManagerProvider).close()
        zope.component.testing.tearDown()
        client.drop_database(main.DATABASE)
        client.close()


def listed(browser):
    """[(href, title, name)] of a contents view."""
    return re.findall(
        r'<tr><td><a href="([^"]+)">([^<]*)</a></td><td><code>([^<]*)</code>',
        browser.contents)


def error(browser):
    found = re.search(r'<p class="error" id="error">([^<]*)</p>',
                      browser.contents)
    return found and found.group(1)


def add_person(browser, name, title, age='', url=ROOT + '/people'):
    browser.open(url + '/add')
    browser.getControl(name='name').value = name
    browser.getControl(name='title').value = title
    browser.getControl(name='age').value = age
    browser.getControl('Add').click()


def add_project(browser, person, name, title):
    browser.open('%s/people/%s/projects/add' % (ROOT, person))
    browser.getControl(name='name').value = name
    browser.getControl(name='title').value = title
    browser.getControl('Add').click()


def test_the_front_page_and_the_stylesheet(site):
    browser = site.browser()
    browser.open(ROOT)
    assert browser.headers['status'].startswith('200')
    assert '<h1>Welcome</h1>' in browser.contents
    assert 'href="http://localhost/style.css"' in browser.contents
    browser.getLink('People').click()
    assert browser.url == ROOT + '/people'
    assert '<p class="count" id="count">0 items</p>' in browser.contents
    assert '<p id="empty">Nothing here yet.</p>' in browser.contents
    browser.open(ROOT)
    browser.getLink('Notes').click()
    assert browser.url == ROOT + '/notes'
    browser.open(ROOT + '/style.css')
    assert browser.headers['Content-Type'].startswith('text/css')
    assert 'font-family' in browser.contents


def test_the_root_is_in_zodb_and_the_items_in_mongo(site):
    root = site.root()
    assert isinstance(root['people'], demo.People)
    assert isinstance(root['notes'], demo.Notes)
    assert root['people']._p_jar is site.connection
    add_person(site.browser(), 'ada', 'Ada Lovelace', '36')
    [doc] = site.documents('people')
    assert doc['key'] == 'ada'
    assert doc['title'] == 'Ada Lovelace'
    assert doc['age'] == 36
    assert doc['parent'] == 'zodb-' + root['people']._p_oid.hex()
    assert set(doc['dc']) == {'Date_Created', 'Date_Modified'}


def test_add_list_and_open_a_person(site):
    browser = site.browser()
    browser.open(ROOT + '/people')
    browser.getLink('Add person').click()
    assert browser.url == ROOT + '/people/add'
    browser.getControl(name='name').value = 'ada'
    browser.getControl(name='title').value = 'Ada Lovelace'
    browser.getControl(name='age').value = '36'
    before = datetime.datetime.now(datetime.timezone.utc)
    browser.getControl('Add').click()
    assert browser.url == ROOT + '/people'
    assert listed(browser) == [(ROOT + '/people/ada', 'Ada Lovelace', 'ada')]
    assert '<p class="count" id="count">1 item</p>' in browser.contents
    browser.getLink('Ada Lovelace').click()
    assert browser.url == ROOT + '/people/ada'
    assert '<h1>Ada Lovelace</h1>' in browser.contents
    assert '<code id="name">ada</code>' in browser.contents
    assert '<dd id="field-age">36</dd>' in browser.contents
    created = re.search(r'<span id="created">([^<]+)</span>',
                        browser.contents).group(1)
    modified = re.search(r'<span id="modified">([^<]+)</span>',
                         browser.contents).group(1)
    assert created == modified
    stamp = datetime.datetime.strptime(
        created, '%Y-%m-%d %H:%M:%S UTC').replace(
            tzinfo=datetime.timezone.utc)
    assert abs((stamp - before).total_seconds()) < 60
    browser.getLink('Back to People').click()
    assert browser.url == ROOT + '/people'
    # The front page counts it.
    browser.open(ROOT)
    assert '<a href="http://localhost/people">People</a> ' \
        '<span class="count">(1)</span>' in browser.contents


def test_cancel_adds_nothing(site):
    browser = site.browser()
    browser.open(ROOT + '/people/add')
    browser.getControl(name='name').value = 'ada'
    browser.getControl('Cancel').click()
    assert browser.url == ROOT + '/people'
    assert site.documents('people') == []


@pytest.mark.parametrize('name, title, age, message', [
    ('', 'Nobody', '', 'Please give a name.'),
    ('   ', 'Blank', '', 'Please give a name.'),
    ('a/b', 'Slash', '', 'A name cannot contain &quot;/&quot;.'),
    ('+x', 'Plus', '', 'A name cannot begin with &quot;+&quot;, '
                       '&quot;@&quot; or &quot;$&quot;.'),
    ('@@x', 'At', '', 'A name cannot begin with &quot;+&quot;, '
                      '&quot;@&quot; or &quot;$&quot;.'),
    ('$x', 'Dollar', '', 'A name cannot begin with &quot;+&quot;, '
                         '&quot;@&quot; or &quot;$&quot;.'),
    ('x' * 101, 'Long', '', 'A name can have at most 100 characters.'),
    ('bob', '', '', 'Full name is required.'),
    ('bob', 'Bob', 'old', 'Age must be a whole number.'),
    ('bob', 'Bob', '-1', 'Age must be between 0 and 200.'),
])
def test_bad_input_is_refused_and_stores_nothing(site, name, title, age,
                                                 message):
    browser = site.browser()
    add_person(browser, name, title, age)
    assert browser.headers['status'].startswith('400')
    assert browser.url == ROOT + '/people/add'
    assert error(browser) == message
    # The form keeps what was typed.
    assert browser.getControl(name='title').value == title
    assert site.documents('people') == []


def test_a_taken_name_is_refused(site):
    browser = site.browser()
    add_person(browser, 'ada', 'Ada Lovelace')
    add_person(browser, 'ada', 'Another Ada')
    assert browser.headers['status'].startswith('400')
    assert error(browser) == 'The name ada is taken.'
    assert [d['title'] for d in site.documents('people')] == ['Ada Lovelace']


def test_edit_a_person(site):
    browser = site.browser()
    add_person(browser, 'ada', 'Ada', '30')
    browser.open(ROOT + '/people/ada')
    created = re.search(r'<span id="created">([^<]+)</span>',
                        browser.contents).group(1)
    [doc] = site.documents('people')
    browser.getLink('Edit').click()
    assert browser.url == ROOT + '/people/ada/edit'
    assert browser.getControl(name='title').value == 'Ada'
    assert browser.getControl(name='age').value == '30'
    browser.getControl(name='title').value = 'Countess <Lovelace> & co'
    browser.getControl(name='age').value = '36'
    browser.getControl('Save').click()
    assert browser.url == ROOT + '/people/ada'
    assert '<h1>Countess &lt;Lovelace&gt; &amp; co</h1>' in browser.contents
    assert '<dd id="field-age">36</dd>' in browser.contents
    assert '<span id="created">%s</span>' % created in browser.contents
    [changed] = site.documents('people')
    assert changed['title'] == 'Countess <Lovelace> & co'
    assert changed['age'] == 36
    assert changed['dc']['Date_Created'] == doc['dc']['Date_Created']
    assert changed['dc']['Date_Modified'] > doc['dc']['Date_Modified']
    browser.open(ROOT + '/people')
    assert listed(browser) == [
        (ROOT + '/people/ada', 'Countess &lt;Lovelace&gt; &amp; co', 'ada')]


def test_bad_edits_change_nothing(site):
    browser = site.browser()
    add_person(browser, 'ada', 'Ada', '30')
    [before] = site.documents('people')
    for title, age, message in [('', '31', 'Full name is required.'),
                                ('Ada', 'x', 'Age must be a whole number.')]:
        browser.open(ROOT + '/people/ada/edit')
        browser.getControl(name='title').value = title
        browser.getControl(name='age').value = age
        browser.getControl('Save').click()
        assert browser.headers['status'].startswith('400')
        assert error(browser) == message
        assert site.documents('people') == [before]
    browser.open(ROOT + '/people/ada/edit')
    browser.getControl(name='title').value = 'Changed'
    browser.getControl('Cancel').click()
    assert browser.url == ROOT + '/people/ada'
    assert site.documents('people') == [before]


def test_delete_asks_first(site):
    browser = site.browser()
    add_person(browser, 'ada', 'Ada')
    add_person(browser, 'grace', 'Grace')
    add_project(browser, 'ada', 'engine', 'Analytical Engine')
    browser.open(ROOT + '/people/ada')
    browser.getLink('Delete').click()
    assert browser.url == ROOT + '/people/ada/delete'
    assert '<h1>Delete Ada?</h1>' in browser.contents
    browser.getControl('Cancel').click()
    assert browser.url == ROOT + '/people/ada'
    assert len(site.documents('people')) == 2
    browser.open(ROOT + '/people/ada/delete')
    browser.getControl('Delete').click()
    assert browser.url == ROOT + '/people'
    assert listed(browser) == [(ROOT + '/people/grace', 'Grace', 'grace')]
    assert [d['key'] for d in site.documents('people')] == ['grace']
    # Its projects went with it.
    assert site.documents('projects') == []
    browser.open(ROOT + '/people/ada')
    assert browser.headers['status'].startswith('404')


def test_projects_nested_in_a_person(site):
    browser = site.browser()
    add_person(browser, 'ada', 'Ada')
    add_person(browser, 'grace', 'Grace')
    browser.open(ROOT + '/people/ada')
    browser.getLink('All projects (0)').click()
    assert browser.url == ROOT + '/people/ada/projects'
    browser.getLink('Add project').click()
    browser.getControl(name='name').value = 'engine'
    browser.getControl(name='title').value = 'Analytical Engine'
    browser.getControl(name='description').value = 'Bernoulli numbers'
    browser.getControl('Add').click()
    assert browser.url == ROOT + '/people/ada/projects'
    assert listed(browser) == [(ROOT + '/people/ada/projects/engine',
                                'Analytical Engine', 'engine')]
    browser.getLink('Analytical Engine').click()
    assert browser.url == ROOT + '/people/ada/projects/engine'
    assert '<dd id="field-description">Bernoulli numbers</dd>' in \
        browser.contents
    assert '<span id="created">' in browser.contents
    # Breadcrumbs: ZODB root, then MongoDB all the way down.
    assert ('<a href="http://localhost/people/ada/projects">projects</a>'
            in browser.contents)
    # Another person's projects are its own: the same name is free there.
    add_project(browser, 'grace', 'engine', 'Grace engine')
    assert browser.url == ROOT + '/people/grace/projects'
    add_project(browser, 'ada', 'engine', 'Again')
    assert error(browser) == 'The name engine is taken.'
    add_project(browser, 'ada', 'a/b', 'Slash')
    assert error(browser) == 'A name cannot contain &quot;/&quot;.'
    assert sorted(d['title'] for d in site.documents('projects')) == [
        'Analytical Engine', 'Grace engine']
    browser.open(ROOT + '/people/ada')
    assert '<a href="http://localhost/people/ada/projects/engine">' \
        'Analytical Engine</a>' in browser.contents
    # Edit and delete work the same in there.
    browser.open(ROOT + '/people/ada/projects/engine/edit')
    browser.getControl(name='title').value = 'The Engine'
    browser.getControl('Save').click()
    assert '<h1>The Engine</h1>' in browser.contents
    browser.open(ROOT + '/people/ada/projects/engine/delete')
    browser.getControl('Delete').click()
    assert browser.url == ROOT + '/people/ada/projects'
    assert '<p id="empty">Nothing here yet.</p>' in browser.contents
    browser.open(ROOT + '/people/ada/projects/nothing')
    assert browser.headers['status'].startswith('404')
    browser.open(ROOT + '/people/ada/nothing')
    assert browser.headers['status'].startswith('404')


def test_notes_are_named_by_their_id(site):
    browser = site.browser()
    browser.open(ROOT + '/notes')
    browser.getLink('Add note').click()
    assert 'name="name"' not in browser.contents
    browser.getControl(name='title').value = ''
    browser.getControl('Add').click()
    assert error(browser) == 'Title is required.'
    assert site.documents('notes') == []
    browser.getControl(name='title').value = 'Shopping'
    browser.getControl(name='text').value = 'Milk <b>'
    browser.getControl('Add').click()
    assert browser.url == ROOT + '/notes'
    [doc] = site.documents('notes')
    [(href, title, name)] = listed(browser)
    assert (href, title, name) == (ROOT + '/notes/' + str(doc['_id']),
                                   'Shopping', str(doc['_id']))
    browser.getLink('Shopping').click()
    assert '<dd id="field-text">Milk &lt;b&gt;</dd>' in browser.contents
    browser.getLink('Edit').click()
    browser.getControl(name='text').value = 'Bread'
    browser.getControl('Save').click()
    assert '<dd id="field-text">Bread</dd>' in browser.contents
    browser.getLink('Delete').click()
    browser.getControl('Delete').click()
    assert browser.url == ROOT + '/notes'
    assert site.documents('notes') == []
    browser.open(ROOT + '/notes/' + str(doc['_id']))
    assert browser.headers['status'].startswith('404')


def test_search_is_case_insensitive_and_literal(site):
    people = site.root()['people']
    for name, title in [('ada', 'Ada Lovelace'), ('grace', 'Grace Hopper'),
                        ('alan', 'Alan Turing'), ('dot', 'A.B. Smith')]:
        people[name] = demo.Person(title=title)
    transaction.commit()
    browser = site.browser()
    browser.open(ROOT + '/people')
    browser.getControl(name='q').value = 'LOVE'
    browser.getControl('Search').click()
    assert listed(browser) == [(ROOT + '/people/ada', 'Ada Lovelace', 'ada')]
    assert '1 found for &quot;LOVE&quot;' in browser.contents
    assert browser.getControl(name='q').value == 'LOVE'
    browser.open(ROOT + '/people?q=a')
    assert [n for _, _, n in listed(browser)] == ['ada', 'alan', 'dot',
                                                  'grace']
    # Regular-expression characters match themselves.
    browser.open(ROOT + '/people?q=A.B')
    assert [n for _, _, n in listed(browser)] == ['dot']
    browser.open(ROOT + '/people?q=.*')
    assert listed(browser) == []
    assert '<p id="empty">Nothing here matches.</p>' in browser.contents
    browser.getLink('show all').click()
    assert len(listed(browser)) == 4


def test_long_containers_are_paged(site):
    people = site.root()['people']
    for number in range(45):
        people['p%02d' % number] = demo.Person(
            title='%s %02d' % ('Even' if number % 2 == 0 else 'Odd', number))
    transaction.commit()
    browser = site.browser()
    browser.open(ROOT + '/people')
    assert '<p class="count" id="count">45 items</p>' in browser.contents
    names = [n for _, _, n in listed(browser)]
    assert names == ['p%02d' % n for n in range(20)]
    assert '<span class="current">1</span>' in browser.contents
    browser.getLink(url='page=3').click()
    assert [n for _, _, n in listed(browser)] == [
        'p%02d' % n for n in range(40, 45)]
    # A page past the end shows the last; nonsense shows the first.
    browser.open(ROOT + '/people?page=99')
    assert [n for _, _, n in listed(browser)][0] == 'p40'
    browser.open(ROOT + '/people?page=x')
    assert [n for _, _, n in listed(browser)][0] == 'p00'
    # Searching pages too, and the page links keep the search.
    browser.open(ROOT + '/people?q=even')
    assert '23 found' in browser.contents
    assert len(listed(browser)) == 20
    browser.getLink(url='page=2').click()
    assert [n for _, _, n in listed(browser)] == ['p40', 'p42', 'p44']
    assert 'q=even' in browser.url


def test_a_missing_page_is_not_found(site):
    browser = site.browser()
    for url in ('/people/nobody', '/notes/nothing', '/nothing'):
        browser.open(ROOT + url)
        assert browser.headers['status'].startswith('404'), url


def test_everything_survives_a_restart(site):
    add_person(site.browser(), 'ada', 'Ada')
    add_project(site.browser(), 'ada', 'engine', 'Engine')
    site.close()
    site.open()
    browser = site.browser()
    browser.open(ROOT + '/people/ada/projects/engine')
    assert '<h1>Engine</h1>' in browser.contents


def test_handle_errors_off_raises(site):
    """With error handling off, a missing page is NotFound (so the pages
    above really are served by the site, not by an error view)."""
    browser = site.browser()
    browser.handleErrors = False
    with pytest.raises(Exception, match='nobody'):
        browser.open(ROOT + '/people/nobody')
    with pytest.raises(HTTPError):
        browser.raiseHttpErrors = True
        browser.handleErrors = True
        browser.open(ROOT + '/people/nobody')
