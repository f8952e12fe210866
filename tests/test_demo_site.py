"""The demo site (zmongo.demo), rule by rule, through zope.testbrowser.

The site is configured by its own ``site.zcml`` (``<mongo:provider
uri="env:ZMONGO_DEMO_URI" database="zmongo_demo">``, pointed at the test
server), its root folder is in a temporary FileStorage, and requests go
through zope.app.wsgi's publisher in this process, as ``zmongo-demo``
serves them.
"""
import base64
import logging
import re
import urllib.parse

import pytest
import transaction
import zope.component
import zope.component.testing
from zope.app.publication.zopepublication import ZopePublication
from zope.app.wsgi import WSGIPublisherApplication
from zope.publisher.browser import BrowserPage
from zope.configuration import xmlconfig
from zope.testbrowser.browser import Browser

from zmongo import interfaces
from zmongo import testing
from zmongo.demo import content
from zmongo.demo import main

ROOT = 'http://localhost'
PASSWORD = 'correct horse'
AUTHORIZATION = 'Basic ' + base64.b64encode(
    ('admin:' + PASSWORD).encode()).decode()


class Site:

    def __init__(self, path):
        self.path = path
        self.open()

    def open(self):
        self.db = main.open_db(self.path)
        self.seeded = content.bootstrap(self.db)
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

    def browser(self, login=True):
        browser = Browser(wsgi_app=self.wsgi)
        browser.raiseHttpErrors = False
        if login:
            browser.addHeader('Authorization', AUTHORIZATION)
        return browser

    def documents(self, collection):
        return sorted(self.client[main.DATABASE][collection].find(),
                      key=lambda d: str(d.get('key', d['_id'])))

    def everything(self):
        return {name: self.documents(name) for name in (
            'people', 'projects', 'notes', 'project_containers')}


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.setenv(main.URI_VARIABLE, testing.get_test_uri())
    client = testing.make_client()
    client.drop_database(main.DATABASE)
    zope.component.testing.setUp()
    login, encoded, how = main.manager_credentials(str(tmp_path), 'admin',
                                                   PASSWORD)
    main.load_site(login, encoded)
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


def status(browser):
    return int(browser.headers['status'].split()[0])


def listed(browser):
    """[(href, title, name)] of a contents view."""
    return re.findall(
        r'<tr><td><a\s+href="([^"]+)">([^<]*)</a></td><td><code>([^<]*)'
        r'</code>',
        browser.contents)


def messages(browser):
    return re.findall(r'<p class="message">([^<]*)</p>', browser.contents)


def errors(browser):
    """The errors a page shows: the form's list, or the page's error."""
    found = re.search(r'<ul class="errors" id="errors">(.*?)</ul>',
                      browser.contents, re.S)
    if found:
        return re.findall(r'<li>([^<]*)</li>', found.group(1))
    return re.findall(r'<p class="error" id="error">([^<]*)</p>',
                      browser.contents)


def add_person(browser, name, title, age=''):
    browser.open(ROOT + '/people/add')
    browser.getControl(name='form.name').value = name
    browser.getControl(name='form.title').value = title
    browser.getControl(name='form.age').value = age
    browser.getControl('Add').click()


def test_a_new_site_is_seeded(site):
    assert site.seeded
    browser = site.browser(login=False)
    browser.open(ROOT)
    assert status(browser) == 200
    assert '<h1>Welcome</h1>' in browser.contents
    browser.getLink('People').click()
    assert listed(browser) == [
        (ROOT + '/people/ada', 'Ada Lovelace', 'ada'),
        (ROOT + '/people/alan', 'Alan Turing', 'alan'),
        (ROOT + '/people/grace', 'Grace Hopper', 'grace')]
    browser.open(ROOT + '/people/ada/projects/engine')
    assert status(browser) == 200
    assert '<h1>Analytical Engine</h1>' in browser.contents
    # Line breaks are kept (and shown: the element keeps white space).
    assert ('<dd class="text" id="field-description">Notes on the '
            'Analytical Engine.\nNote G: Bernoulli numbers.</dd>'
            in browser.contents)
    browser.open(ROOT + '/notes')
    assert [t for _, t, _ in listed(browser)] == ['Welcome', 'Try it',
                                                  'Search']
    # Seeding happens once: a restart keeps what is there.
    site.close()
    site.open()
    assert not site.seeded
    assert len(site.documents('people')) == 3


def test_the_root_is_in_zodb_and_the_items_in_mongo(site):
    root = site.root()
    assert isinstance(root['people'], content.People)
    assert isinstance(root['notes'], content.Notes)
    assert root['people']._p_jar is site.connection
    [doc] = [d for d in site.documents('people') if d['key'] == 'ada']
    assert (doc['title'], doc['age']) == ('Ada Lovelace', 36)
    assert doc['parent'] == 'zodb-' + root['people']._p_oid.hex()
    assert set(doc['dc']) == {'Date_Created', 'Date_Modified'}


# -- login ------------------------------------------------------------------

@pytest.mark.parametrize('path', [
    '/people/add', '/people/ada/edit', '/people/ada/delete',
    '/people/ada/move', '/notes/add', '/people/ada/projects/add',
    '/@@login'])
def test_anonymous_users_look_but_are_asked_to_log_in(site, path):
    browser = site.browser(login=False)
    browser.open(ROOT + path)
    assert status(browser) == 401
    assert browser.headers['WWW-Authenticate'].startswith('basic realm=')
    assert '<h1>Please log in</h1>' in browser.contents
    assert '<a id="home" href="http://localhost/">' in browser.contents


def test_a_wrong_password_changes_nothing(site):
    before = site.everything()
    browser = site.browser(login=False)
    browser.addHeader('Authorization', 'Basic %s' % base64.b64encode(
        b'admin:wrong').decode())
    browser.open(ROOT + '/people/ada/delete')
    assert status(browser) == 401
    # A header that is no base64 is a bad request.
    browser.addHeader('Authorization', 'Basic a')
    browser.open(ROOT + '/people/ada/delete')
    assert status(browser) == 400
    browser.open(ROOT + '/people/ada')
    assert '<a id="login"' in browser.contents
    assert site.everything() == before


def test_logging_in_leads_back(site):
    browser = site.browser(login=False)
    browser.open(ROOT + '/people/ada')
    login = browser.getLink('Log in').url
    assert login.startswith(ROOT + '/@@login?came_from=')
    browser.addHeader('Authorization', AUTHORIZATION)
    browser.open(login)
    assert browser.url == ROOT + '/people/ada'
    assert messages(browser) == ['You are logged in as Manager.']
    assert 'Logged in as <b>Manager</b>' in browser.contents
    # Only back into this site.
    browser.open(ROOT + '/@@login?came_from=http://evil.example/')
    assert browser.url == ROOT + '/'


def test_the_manager_is_made_on_first_start(tmp_path):
    login, encoded, how = main.manager_credentials(str(tmp_path))
    password = how.rsplit(' ', 1)[1]
    assert login == 'admin'
    assert how == 'log in as admin with the password %s' % password
    stored = (tmp_path / 'manager.json').read_text()
    assert password not in stored and encoded.decode() in stored
    from zope.password.password import SSHAPasswordManager
    assert SSHAPasswordManager().checkPassword(encoded, password)
    # Later starts do not show it again, and keep it.
    again = main.manager_credentials(str(tmp_path))
    assert again[:2] == (login, encoded)
    assert password not in again[2]
    # --user/--password replace it.
    login, encoded, how = main.manager_credentials(str(tmp_path), 'ada',
                                                   'pw')
    assert (login, how) == ('ada', 'log in as ada with the password you '
                                   'gave')
    assert 'pw' not in (tmp_path / 'manager.json').read_text()


# -- adding, editing, deleting ---------------------------------------------

def test_add_edit_delete_say_what_they_did(site):
    browser = site.browser()
    browser.open(ROOT + '/people')
    browser.getLink('Add person').click()
    assert browser.url == ROOT + '/people/add'
    add_person(browser, 'edsger', 'Edsger Dijkstra', '72')
    assert browser.url == ROOT + '/people'
    assert messages(browser) == ['Added Edsger Dijkstra.']
    assert (ROOT + '/people/edsger', 'Edsger Dijkstra', 'edsger') in \
        listed(browser)
    browser.open(ROOT + '/people')
    assert messages(browser) == []       # shown once
    browser.open(ROOT + '/people/edsger/edit')
    assert browser.getControl(name='form.age').value == '72'
    browser.getControl(name='form.title').value = 'E. W. <Dijkstra> & co'
    browser.getControl('Save').click()
    assert browser.url == ROOT + '/people/edsger'
    assert messages(browser) == ['Saved E. W. &lt;Dijkstra&gt; &amp; co.']
    assert '<h1>E. W. &lt;Dijkstra&gt; &amp; co</h1>' in browser.contents
    browser.getLink('Delete').click()
    browser.getControl('Delete').click()
    assert browser.url == ROOT + '/people'
    assert messages(browser) == ['Deleted E. W. &lt;Dijkstra&gt; &amp; co.']
    assert 'edsger' not in [d['key'] for d in site.documents('people')]


def test_deleting_a_person_deletes_the_projects(site):
    browser = site.browser()
    browser.open(ROOT + '/people/alan/delete')
    browser.getControl('Cancel').click()
    assert len(site.documents('people')) == 3
    browser.open(ROOT + '/people/alan/delete')
    browser.getControl('Delete').click()
    assert sorted(d['key'] for d in site.documents('projects')) == [
        'a0', 'cobol', 'engine']
    browser.open(ROOT + '/people/alan')
    assert status(browser) == 404


def test_notes_are_named_by_their_id(site):
    browser = site.browser()
    browser.open(ROOT + '/notes/add')
    assert 'form.name' not in browser.contents
    browser.getControl(name='form.title').value = 'Shopping'
    browser.getControl(name='form.text').value = 'Milk\nBread <b>'
    browser.getControl('Add').click()
    [doc] = [d for d in site.documents('notes') if d['title'] == 'Shopping']
    assert doc['text'] == 'Milk\nBread <b>'
    browser.open(ROOT + '/notes/%s' % doc['_id'])
    assert 'Milk\nBread &lt;b&gt;</dd>' in browser.contents


def test_every_field_error_is_shown_at_once(site):
    before = site.everything()
    browser = site.browser()
    add_person(browser, 'add', '', 'old')
    assert status(browser) == 200   # formlib's forms (so Grok's) answer 200
    assert errors(browser) == [
        'Full name: Required input is missing.',
        'Age: Invalid integer data.',
        'Name: add is the name of a page; choose another.']
    # What was typed stays in the form.
    assert browser.getControl(name='form.name').value == 'add'
    assert browser.getControl(name='form.age').value == 'old'
    browser.open(ROOT + '/people/ada/edit')
    browser.getControl(name='form.title').value = ''
    browser.getControl(name='form.age').value = '-1'
    browser.getControl('Save').click()
    assert errors(browser) == ['Full name: Required input is missing.',
                               'Age: Value is too small.']
    assert site.everything() == before


# -- names ------------------------------------------------------------------

@pytest.mark.parametrize('name, message', [
    ('add', 'add is the name of a page; choose another.'),
    ('edit', 'edit is the name of a page; choose another.'),
    ('index', 'index is the name of a page; choose another.'),
    ('move', 'move is the name of a page; choose another.'),
    ('projects', None),      # a person's attribute, not in /people's URL
    ('.', '"." and ".." cannot be names.'),
    ('..', '"." and ".." cannot be names.'),
    ('a\x01b', 'A name cannot contain control characters.'),
    ('a\u200bb', 'A name cannot contain control characters.'),
    ('x' * 101, 'A name can have at most 100 characters.'),
    ('a/b', 'A name cannot begin with "+", "@" or '
            '"$" or contain "/".'),
    ('@@x', 'A name cannot begin with "+", "@" or '
            '"$" or contain "/".'),
    ('$x', 'A name cannot begin with "+", "@" or '
           '"$" or contain "/".'),
    ('ada', 'The name ada is taken.'),
])
def test_names_that_break_urls_are_refused(site, name, message):
    before = site.everything()
    browser = site.browser()
    add_person(browser, name, 'Somebody')
    if message is None:
        assert messages(browser) == ['Added Somebody.']
        browser.open(ROOT + '/people/' + name)
        assert '<h1>Somebody</h1>' in browser.contents
        return
    assert errors(browser) == ['Name: ' + message]
    assert site.everything() == before


@pytest.mark.parametrize('name', ['add', '.', '..', 'a\nb', 'x' * 101,
                                  'index', '@@x', ''])
def test_the_container_refuses_them_too(site, name):
    people = site.root()['people']
    with pytest.raises((ValueError, TypeError, KeyError)):
        people[name] = content.Person(title='Somebody')
    with pytest.raises((ValueError, TypeError, KeyError)):
        people['ada'].projects[name] = content.Project(title='Thing')
    transaction.abort()
    assert len(site.documents('people')) == 3


def test_names_are_checked_for_every_registered_view(site):
    names = content.view_names()
    assert {'add', 'edit', 'delete', 'move', 'index', 'login', 'layout',
            'absolute_url'} <= names


# -- limits -----------------------------------------------------------------

def test_long_input_gets_a_message(site):
    before = site.everything()
    browser = site.browser()
    add_person(browser, 'long', 'x' * 201)
    assert errors(browser) == ['Full name: at most 200 characters, please.']
    browser.open(ROOT + '/people/ada/projects/engine/edit')
    browser.getControl(name='form.description').value = 'y' * 10001
    browser.getControl('Save').click()
    assert errors(browser) == [
        'Description: at most 10000 characters, please.']
    assert site.everything() == before
    # 10,000 characters, line breaks included, are fine.
    text = ('line\n' * 2000)[:-1]
    browser.open(ROOT + '/people/ada/projects/engine/edit')
    browser.getControl(name='form.description').value = text
    browser.getControl(name='form.title').value = 'z' * 200
    browser.getControl('Save').click()
    [doc] = [d for d in site.documents('projects') if d['key'] == 'engine']
    assert (doc['description'], doc['title']) == (text, 'z' * 200)


def test_long_searches_get_a_message(site):
    browser = site.browser(login=False)
    browser.open(ROOT + '/people?q=' + 'a' * 1001)
    assert status(browser) == 400
    assert errors(browser) == ['A search can have at most 200 characters.']
    assert listed(browser)     # the list, unsearched
    browser.open(ROOT + '/people?q=' + 'a' * 200)
    assert status(browser) == 200
    assert '0 found' in browser.contents


def test_search_is_case_insensitive_and_literal(site):
    people = site.root()['people']
    people['dot'] = content.Person(title='A.B. Smith')
    transaction.commit()
    browser = site.browser(login=False)
    browser.open(ROOT + '/people')
    browser.getControl(name='q').value = 'LOVE'
    browser.getControl('Search').click()
    assert listed(browser) == [(ROOT + '/people/ada', 'Ada Lovelace', 'ada')]
    assert '1 found for \u201cLOVE\u201d' in browser.contents
    browser.open(ROOT + '/people?q=A.B')
    assert [n for _, _, n in listed(browser)] == ['dot']
    browser.open(ROOT + '/people?q=.*')
    assert '<p id="empty">Nothing here matches.</p>' in browser.contents


def test_long_containers_are_paged(site):
    people = site.root()['people']
    for number in range(45):
        people['p%02d' % number] = content.Person(title='Page %02d' % number)
    transaction.commit()
    browser = site.browser(login=False)
    browser.open(ROOT + '/people?q=page')
    assert '45 found' in browser.contents
    assert [n for _, _, n in listed(browser)] == [
        'p%02d' % n for n in range(20)]
    browser.getLink(url='page=3').click()
    assert [n for _, _, n in listed(browser)] == [
        'p%02d' % n for n in range(40, 45)]
    browser.open(ROOT + '/people?page=x')
    assert listed(browser)[0][2] == 'ada'


class Boom(BrowserPage):
    """A page that fails: the site's own error."""

    def __call__(self):
        raise RuntimeError('the disk is on fire')


# -- errors -----------------------------------------------------------------

def styled(browser, title):
    return ('<h1>%s</h1>' % title in browser.contents and
            '<a id="home" href="http://localhost/">Back to the home page</a>'
            in browser.contents and 'Traceback' not in browser.contents)


@pytest.mark.parametrize('path', [
    '/++etc++site', '/@@absolute_url', '/people/@@absolute_url',
    '/@@layout', '/people/ada/@@layout', '/layout',
    '/nothing', '/people/nobody', '/notes/nothing',
    '/people/ada/projects/nothing', '/people/ada/nothing'])
def test_addresses_with_nothing_to_show_are_not_found(site, path, caplog):
    browser = site.browser(login=False)
    with caplog.at_level(logging.INFO, 'zmongo.demo'):
        browser.open(ROOT + path)
    assert status(browser) == 404
    assert styled(browser, 'Not found')
    assert [r.levelname for r in caplog.records] in ([], ['INFO'])
    assert all(r.getMessage().startswith('GET %s: ' % path)
               for r in caplog.records)


def test_a_body_that_is_no_utf8_is_a_bad_request(site, caplog):
    before = site.everything()
    browser = site.browser()
    browser.open(ROOT + '/people/add')
    token = browser.getControl(name='csrf_token').value
    with caplog.at_level(logging.INFO, 'zmongo.demo'):
        browser.post(ROOT + '/people/add',
                     b'csrf_token=' + token.encode() +
                     b'&form.name=\xff\xfe&form.title=x&form.actions.add=Add',
                     'application/x-www-form-urlencoded')
    assert status(browser) == 400
    assert styled(browser, 'Bad request')
    assert [r.getMessage().split(':')[0] for r in caplog.records] == [
        'POST /people/add']
    assert site.everything() == before


def test_a_failure_is_a_page_and_a_logged_traceback(site, caplog):
    xmlconfig.string('''
      <configure xmlns="http://namespaces.zope.org/browser">
        <page for="zope.site.interfaces.IRootFolder" name="boom"
              class="tests.test_demo_site.Boom" permission="zope.Public" />
      </configure>''', context=main.SITE_CONTEXT)
    browser = site.browser(login=False)
    with caplog.at_level(logging.INFO, 'zmongo.demo'):
        browser.open(ROOT + '/boom')
    assert status(browser) == 500
    assert styled(browser, 'Something went wrong')
    assert 'fire' not in browser.contents
    [record] = caplog.records
    assert record.levelname == 'ERROR'
    assert record.getMessage() == 'GET /boom: the disk is on fire'
    assert record.exc_info[0] is RuntimeError


def test_refused_is_a_styled_403(site):
    browser = site.browser()
    browser.post(ROOT + '/people/ada/delete', 'delete=Delete')
    assert status(browser) == 403
    assert styled(browser, 'Refused')


# -- cross-site requests ------------------------------------------------------

def forms(site):
    """(url, fields) of every form that changes something."""
    browser = site.browser()
    browser.open(ROOT + '/notes')
    note = listed(browser)[0][0]
    return [
        ('/people/add', {'form.name': 'eve', 'form.title': 'Eve',
                         'form.actions.add': 'Add'}),
        ('/people/ada/projects/add', {'form.name': 'x', 'form.title': 'X',
                                      'form.actions.add': 'Add'}),
        ('/notes/add', {'form.title': 'X', 'form.actions.add': 'Add'}),
        ('/people/ada/edit', {'form.title': 'Eve', 'form.age': '1',
                              'form.actions.save': 'Save'}),
        ('/people/ada/projects/engine/edit', {
            'form.title': 'X', 'form.actions.save': 'Save'}),
        (note[len(ROOT):] + '/edit', {'form.title': 'X',
                                      'form.actions.save': 'Save'}),
        ('/people/ada/delete', {'delete': 'Delete'}),
        (note[len(ROOT):] + '/delete', {'delete': 'Delete'}),
        ('/people/ada/move', {'name': 'eve', 'target': '/people',
                              'rename': '1'}),
        ('/people/ada/move', {'name': 'eve', 'target': '/people',
                              'copy': '1'}),
        ('/people/ada/projects/engine/move', {
            'name': 'engine', 'target': '/people/grace/projects',
            'rename': '1'}),
        (note[len(ROOT):] + '/move', {'target': '/notes', 'copy': '1'}),
    ]


def test_forms_without_the_token_or_from_elsewhere_change_nothing(site):
    before = site.everything()
    for url, fields in forms(site):
        browser = site.browser()
        browser.open(ROOT + url)
        token = browser.getControl(name='csrf_token').value
        for sent in ({}, {'csrf_token': 'x' + token}, {'csrf_token': ''}):
            browser.post(ROOT + url, urllib.parse.urlencode(
                dict(fields, **sent)))
            assert status(browser) == 403, (url, sent)
            assert styled(browser, 'Refused')
        # The right token from another origin.
        browser.addHeader('Origin', 'http://evil.example')
        browser.post(ROOT + url, urllib.parse.urlencode(
            dict(fields, csrf_token=token)))
        assert status(browser) == 403, url
        # Another browser (session) has another token.
        other = site.browser()
        other.open(ROOT + '/people/add')
        assert other.getControl(name='csrf_token').value != token
        other.post(ROOT + url, urllib.parse.urlencode(
            dict(fields, csrf_token=token)))
        assert status(other) == 403, url
    assert site.everything() == before
    # The same posts with the token and from the site itself do work.
    browser = site.browser()
    browser.open(ROOT + '/people/add')
    token = browser.getControl(name='csrf_token').value
    browser.addHeader('Origin', ROOT)
    url, fields = forms(site)[0]
    browser.post(ROOT + url, urllib.parse.urlencode(
        dict(fields, csrf_token=token)))
    assert messages(browser) == ['Added Eve.']


# -- rename, move, copy --------------------------------------------------------

def move(browser, path, name=None, target=None, button='Rename or move'):
    browser.open(ROOT + path + '/move')
    if name is not None:
        browser.getControl(name='name').value = name
    if target is not None:
        browser.getControl(name='target').value = [target]
    browser.getControl(button).click()


def test_rename_a_person(site):
    browser = site.browser()
    move(browser, '/people/ada', 'countess')
    assert browser.url == ROOT + '/people/countess'
    assert messages(browser) == ['Renamed ada to /people/countess.']
    browser.open(ROOT + '/people/countess/projects/engine')
    assert '<h1>Analytical Engine</h1>' in browser.contents
    assert sorted(d['key'] for d in site.documents('people')) == [
        'alan', 'countess', 'grace']
    browser.open(ROOT + '/people/ada')
    assert status(browser) == 404


@pytest.mark.parametrize('name, message', [
    ('grace', 'The name grace is taken.'),
    ('edit', 'edit is the name of a page; choose another.'),
    ('..', '"." and ".." cannot be names.'),
    ('ada', 'Give a new name or another place.'),
])
def test_bad_renames_change_nothing(site, name, message):
    before = site.everything()
    browser = site.browser()
    move(browser, '/people/ada', name)
    assert status(browser) == 400
    assert errors(browser) == [message]
    assert site.everything() == before


def test_move_a_project_to_another_person(site):
    browser = site.browser()
    browser.open(ROOT + '/people/ada/projects/engine/move')
    assert browser.getControl(name='target').options == [
        '/people/ada/projects', '/people/alan/projects',
        '/people/grace/projects']
    move(browser, '/people/ada/projects/engine', target='/people/grace/'
         'projects')
    assert browser.url == ROOT + '/people/grace/projects/engine'
    assert messages(browser) == [
        'Moved engine to /people/grace/projects/engine.']
    browser.open(ROOT + '/people/ada/projects')
    assert listed(browser) == []
    # A taken name there is refused.
    move(browser, '/people/alan/projects/ace', 'cobol',
         '/people/grace/projects')
    assert errors(browser) == ['The name cobol is taken.']
    # A place that is not offered is refused.
    browser.open(ROOT + '/people/alan/projects/ace/move')
    token = browser.getControl(name='csrf_token').value
    browser.post(ROOT + '/people/alan/projects/ace/move',
                 urllib.parse.urlencode({'csrf_token': token, 'name': 'ace',
                                         'target': '/notes', 'rename': '1'}))
    assert errors(browser) == ['Choose one of the listed places.']


def test_copy_a_person_with_the_projects(site):
    browser = site.browser()
    move(browser, '/people/alan', 'alan2', button='Copy')
    assert browser.url == ROOT + '/people/alan2'
    assert messages(browser) == ['Copied alan to /people/alan2.']
    browser.open(ROOT + '/people/alan2/projects')
    assert [n for _, _, n in listed(browser)] == ['ace', 'bombe']
    browser.open(ROOT + '/people/alan/projects')
    assert [n for _, _, n in listed(browser)] == ['ace', 'bombe']
    assert len(site.documents('projects')) == 7


def test_copy_a_note(site):
    browser = site.browser()
    browser.open(ROOT + '/notes')
    href, title, name = listed(browser)[0]
    move(browser, href[len(ROOT):], button='Copy')
    assert messages(browser)[0].startswith('Copied %s to /notes/' % name)
    assert browser.url != href
    assert '<h1>%s</h1>' % title in browser.contents
    assert len(site.documents('notes')) == 4
    # An id-named note has no name to change.
    browser.open(href + '/move')
    assert 'name="name"' not in browser.contents


def test_everything_survives_a_restart(site):
    add_person(site.browser(), 'edsger', 'Edsger')
    site.close()
    site.open()
    browser = site.browser(login=False)
    browser.open(ROOT + '/people/edsger')
    assert '<h1>Edsger</h1>' in browser.contents


def test_move_a_person_to_the_archive_and_back(site):
    """The archive is another container over the same collection: the
    person's document (and its projects') stays where it is and only its
    parent changes; moving back restores the first parent."""
    root = site.root()
    people_parent = 'zodb-' + root['people']._p_oid.hex()
    archive_parent = 'zodb-' + root['archived-people']._p_oid.hex()
    [before] = [d for d in site.documents('people') if d['key'] == 'alan']
    projects = site.documents('projects')
    browser = site.browser()
    browser.open(ROOT)
    browser.getLink('Archived people').click()
    assert listed(browser) == []
    browser.open(ROOT + '/people/alan/move')
    assert browser.getControl(name='target').options == [
        '/archived-people', '/people']
    move(browser, '/people/alan', target='/archived-people')
    assert browser.url == ROOT + '/archived-people/alan'
    assert messages(browser) == ['Moved alan to /archived-people/alan.']
    browser.open(ROOT + '/archived-people')
    assert listed(browser) == [
        (ROOT + '/archived-people/alan', 'Alan Turing', 'alan')]
    browser.open(ROOT + '/people/alan')
    assert status(browser) == 404
    [moved] = [d for d in site.documents('people') if d['key'] == 'alan']
    assert len(site.documents('people')) == 3
    assert moved['_id'] == before['_id']
    assert (before['parent'], moved['parent']) == (people_parent,
                                                   archive_parent)
    assert site.documents('projects') == projects
    browser.open(ROOT + '/archived-people/alan/projects/bombe')
    assert '<h1>The Bombe</h1>' in browser.contents
    # Back again, under another name.
    move(browser, '/archived-people/alan', 'turing', '/people')
    assert browser.url == ROOT + '/people/turing'
    assert messages(browser) == ['Moved alan to /people/turing.']
    [back] = [d for d in site.documents('people') if d['key'] == 'turing']
    assert (back['_id'], back['parent']) == (before['_id'], people_parent)
    assert len(site.documents('people')) == 3
    browser.open(ROOT + '/archived-people')
    assert listed(browser) == []


def test_move_a_note_to_the_archive_and_back(site):
    browser = site.browser()
    browser.open(ROOT + '/notes')
    href, title, name = listed(browser)[0]
    [before] = [d for d in site.documents('notes') if str(d['_id']) == name]
    move(browser, href[len(ROOT):], target='/archived-notes', button='Move')
    assert browser.url == ROOT + '/archived-notes/' + name
    assert messages(browser) == ['Moved %s to /archived-notes/%s.'
                                 % (name, name)]
    browser.open(ROOT + '/notes')
    assert name not in [n for _, _, n in listed(browser)]
    browser.open(ROOT + '/archived-notes')
    assert listed(browser) == [(ROOT + '/archived-notes/' + name, title,
                                name)]
    [moved] = [d for d in site.documents('notes') if str(d['_id']) == name]
    assert len(site.documents('notes')) == 3
    assert moved['parent'] == 'zodb-' + site.root()[
        'archived-notes']._p_oid.hex() != before['parent']
    move(browser, '/archived-notes/' + name, target='/notes', button='Move')
    assert browser.url == href
    assert messages(browser) == ['Moved %s to /notes/%s.' % (name, name)]
    [back] = [d for d in site.documents('notes') if str(d['_id']) == name]
    assert back['parent'] == before['parent']
    assert len(site.documents('notes')) == 3


def test_a_site_from_before_the_archives_gets_them(site):
    root = site.root()
    del root['archived-people'], root['archived-notes']
    transaction.commit()
    site.close()
    site.open()
    assert not site.seeded
    assert isinstance(site.root()['archived-notes'], content.NotesArchive)
    browser = site.browser(login=False)
    browser.open(ROOT + '/archived-people')
    assert status(browser) == 200


@pytest.mark.parametrize('credentials', [
    b'admin',                   # no colon
    b'',                        # nothing
])
def test_a_malformed_authorization_is_a_bad_request(site, credentials,
                                                    caplog):
    """An ``Authorization: Basic`` header is the client's input: when it
    decodes to no "login:password" it is a 400, and no error is logged."""
    browser = Browser(wsgi_app=site.wsgi)
    browser.raiseHttpErrors = False
    browser.addHeader('Authorization',
                      'Basic ' + base64.b64encode(credentials).decode())
    with caplog.at_level(logging.INFO, 'zmongo.demo'):
        browser.open(ROOT + '/people')
    assert status(browser) == 400
    assert styled(browser, 'Bad request')
    assert [r.levelname for r in caplog.records] == ['INFO']


@pytest.mark.parametrize('path', [
    '/', '/people', '/people/ada', '/people/ada/edit', '/people/ada/move',
    '/people/ada/delete', '/people/add', '/notes', '/archived-people',
    '/people/ada/projects/engine', '/nothing'])
def test_every_page_is_html5(site, path):
    """Pages, forms and error pages alike begin with the HTML5 doctype
    (without it browsers render in quirks mode)."""
    browser = site.browser()
    browser.open(ROOT + path)
    assert browser.contents.startswith('<!DOCTYPE html>\n<html lang="en">')
