"""The demo site's content and pages.

The root folder lives in ZODB and holds two Mongo containers: ``people``
(a :class:`MongoContainer`, items named by the user) and ``notes`` (an
:class:`IdNamesMongoContainer`, items named by their ``_id``).  Every person
holds a ``projects`` container of its own, stored in MongoDB too, so
``/people/ada/projects/engine`` goes ZODB -> Mongo -> Mongo -> Mongo.

Pages are Grok views rendering plain HTML (every value escaped); forms are
ordinary POST forms, no JavaScript.  Grokked by ``site.zcml``.
"""
import datetime
import html
import re
import sys
import traceback
import urllib.parse

import persistent
import transaction
import zope.event
import zope.interface
import zope.lifecycleevent
from zope.dublincore.interfaces import IWriteZopeDublinCore
from zope.dublincore.interfaces import IZopeDublinCore
from zope.error.interfaces import IErrorReportingUtility
from zope.lifecycleevent.interfaces import IObjectAddedEvent
from zope.lifecycleevent.interfaces import IObjectModifiedEvent
from zope.publisher.interfaces import NotFound
from zope.security.interfaces import Unauthorized
from zope.site.interfaces import IRootFolder
from zope.traversing.browser.absoluteurl import absoluteURL
from grokcore.component.interfaces import IContext

import grok
from zmongo.annotation import IMongoAttributeAnnotatable
from zmongo.container import IdNamesMongoContainer
from zmongo.container import MongoContained
from zmongo.container import MongoContainer

PAGE_SIZE = 20


# -- content -------------------------------------------------------------------

class Field:
    """A form field of an item: ``kind`` is ``str`` or ``int``."""

    def __init__(self, name, label, kind=str, required=False,
                 multiline=False):
        self.name = name
        self.label = label
        self.kind = kind
        self.required = required
        self.multiline = multiline


class IDemoItem(IContext):
    """An item of the demo site (a person, a project, a note)."""


class IDemoContainer(IContext):
    """A container of the demo site."""


@zope.interface.implementer(IDemoItem, IMongoAttributeAnnotatable)
class Item(MongoContained, persistent.Persistent):
    fields = ()
    kind = 'item'

    def __init__(self, **values):
        for field in self.fields:
            setattr(self, field.name, values.get(field.name))


class Project(Item):
    _p_mongo_collection = 'projects'
    kind = 'project'
    fields = (Field('title', 'Title', required=True),
              Field('description', 'Description', multiline=True))


class Note(Item):
    _p_mongo_collection = 'notes'
    kind = 'note'
    fields = (Field('title', 'Title', required=True),
              Field('text', 'Text', multiline=True))


@zope.interface.implementer(IDemoContainer)
class Projects(MongoContainer):
    """A person's projects (the container is a document of its own)."""
    _m_collection = 'projects'
    _p_mongo_collection = 'project_containers'
    title = 'Projects'
    item_factory = Project


class Person(Item):
    _p_mongo_collection = 'people'
    kind = 'person'
    fields = (Field('title', 'Full name', required=True),
              Field('age', 'Age', kind=int))

    def __init__(self, **values):
        super().__init__(**values)
        self.projects = Projects()
        self.projects.__parent__ = self
        self.projects.__name__ = 'projects'


@zope.interface.implementer(IDemoContainer)
class People(MongoContainer):
    _m_collection = 'people'
    title = 'People'
    item_factory = Person


@zope.interface.implementer(IDemoContainer)
class Notes(IdNamesMongoContainer):
    _m_collection = 'notes'
    title = 'Notes'
    item_factory = Note


def bootstrap(db):
    """Make sure ``db`` holds the root folder with ``people`` and ``notes``
    (the site's ZCML must be loaded)."""
    from zope.app.publication.zopepublication import ZopePublication
    from zope.site.folder import rootFolder
    from zope.site.site import LocalSiteManager
    connection = db.open()
    try:
        root = connection.root()
        folder = root.get(ZopePublication.root_name)
        if folder is None:
            folder = rootFolder()
            folder.setSiteManager(LocalSiteManager(folder))
            root[ZopePublication.root_name] = folder
        if 'people' not in folder:
            folder['people'] = People()
        if 'notes' not in folder:
            folder['notes'] = Notes()
        transaction.commit()
    finally:
        transaction.abort()
        connection.close()


# -- Dublin Core dates ----------------------------------------------------------

def _now():
    return datetime.datetime.now(datetime.timezone.utc)


@grok.subscribe(IDemoItem, IObjectAddedEvent)
def item_added(item, event):
    dc = IWriteZopeDublinCore(item)
    dc.created = dc.modified = _now()


@grok.subscribe(IDemoItem, IObjectModifiedEvent)
def item_modified(item, event):
    IWriteZopeDublinCore(item).modified = _now()


# -- errors -------------------------------------------------------------------

@zope.interface.implementer(IErrorReportingUtility)
class ErrorLog(grok.GlobalUtility):
    """Failed requests go to stderr, with their URL; a page not found is
    no error worth a traceback."""
    grok.provides(IErrorReportingUtility)

    def raising(self, info, request=None):
        if isinstance(info[1], (NotFound, Unauthorized)):
            return
        url = request.getURL() if request is not None else '?'
        print('zmongo demo: error in %s' % url, file=sys.stderr)
        traceback.print_exception(*info, file=sys.stderr)


# -- traversal -------------------------------------------------------------------

class PersonTraverser(grok.Traverser):
    """``/people/ada/projects``: the person's own container."""
    grok.context(Person)

    def traverse(self, name):
        if name == 'projects':
            return self.context.projects
        return None


# -- pages ----------------------------------------------------------------------

STYLE = '''\
body { font-family: system-ui, sans-serif; max-width: 50rem;
       margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.4; }
header { border-bottom: 2px solid #4a6fa5; margin-bottom: 1rem; }
header a.home { font-weight: bold; color: #4a6fa5; text-decoration: none; }
nav.crumbs { color: #666; margin: .5rem 0; }
a { color: #2c5aa0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem;
         border-bottom: 1px solid #ddd; }
th { background: #f0f3f8; }
form.search { margin: 1rem 0; }
label { display: block; margin-top: .6rem; font-weight: 600; }
input[type=text], input[type=search], textarea { width: 100%; max-width: 30rem;
    padding: .3rem; border: 1px solid #aaa; border-radius: 3px; }
textarea { height: 6rem; }
button, .button { margin-top: .8rem; padding: .35rem .9rem;
    background: #4a6fa5; color: white; border: none; border-radius: 3px;
    text-decoration: none; font-size: 1rem; cursor: pointer; }
button.danger { background: #b33; }
.error { color: #a00; background: #fdecec; border: 1px solid #e0a0a0;
         padding: .5rem; border-radius: 3px; }
.actions a { margin-right: 1rem; }
.count, .dates { color: #555; }
.paging a, .paging span { margin-right: .7rem; }
dl dt { font-weight: 600; margin-top: .5rem; }
'''


def e(value):
    """HTML-escaped text of ``value`` ('' for None)."""
    return html.escape('' if value is None else str(value), quote=True)


class Page(grok.View):
    """Base of the pages: a layout around ``body()``."""
    grok.baseclass()
    grok.require('zope.Public')
    error = None

    def url_of(self, obj, name=None):
        url = absoluteURL(obj, self.request)
        return url + '/' + name if name else url

    def site_root(self):
        obj = self.context
        while not IRootFolder.providedBy(obj):
            obj = obj.__parent__
        return obj

    def crumbs(self):
        chain = []
        obj = self.context
        while not IRootFolder.providedBy(obj):
            chain.append(obj)
            obj = obj.__parent__
        links = ['<a href="%s">Home</a>' % e(self.url_of(obj))]
        for obj in reversed(chain):
            links.append('<a href="%s">%s</a>'
                         % (e(self.url_of(obj)), e(obj.__name__)))
        return ' / '.join(links)

    def layout(self, title, body):
        root_url = self.url_of(self.site_root())
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width">'
            '<title>%(title)s - zmongo demo</title>'
            '<link rel="stylesheet" href="%(root)s/style.css"></head>\n'
            '<body><header><a class="home" href="%(root)s">zmongo demo</a>'
            '<nav class="crumbs">%(crumbs)s</nav></header>\n'
            '<main><h1>%(title)s</h1>\n%(error)s%(body)s</main></body>'
            '</html>\n' % {
                'title': e(title), 'root': e(root_url),
                'crumbs': self.crumbs(), 'body': body,
                'error': ('<p class="error" id="error">%s</p>\n' % e(self.error)
                          if self.error else '')})

    def posted(self):
        return self.request.method == 'POST'

    def done(self, url):
        transaction.get().note('zmongo demo: %s' % self.request.getURL())
        self.redirect(url)


class Style(grok.View):
    grok.context(IRootFolder)
    grok.name('style.css')
    grok.require('zope.Public')

    def render(self):
        self.response.setHeader('Content-Type', 'text/css; charset=utf-8')
        return STYLE


class RootIndex(Page):
    grok.context(IRootFolder)
    grok.name('index')

    def render(self):
        rows = ''.join(
            '<li><a href="%s">%s</a> <span class="count">(%d)</span></li>'
            % (e(self.url_of(self.context[name])), e(self.context[name].title),
               len(self.context[name]))
            for name in ('people', 'notes'))
        return self.layout('Welcome', (
            '<p>A Zope site kept in ZODB; the people, their projects and '
            'the notes are documents in MongoDB, reached through zmongo.</p>'
            '<ul>%s</ul>' % rows))


def _form_fields(fields, values):
    out = []
    for field in fields:
        value = values.get(field.name)
        if field.multiline:
            widget = '<textarea id="%s" name="%s">%s</textarea>' % (
                field.name, field.name, e(value))
        else:
            widget = '<input type="text" id="%s" name="%s" value="%s">' % (
                field.name, field.name, e(value))
        out.append('<label for="%s">%s%s</label>%s' % (
            field.name, e(field.label), ' *' if field.required else '', widget))
    return '\n'.join(out)


def _read_fields(fields, form):
    """(values, error) from a submitted form."""
    values = {}
    for field in fields:
        raw = form.get(field.name, '')
        raw = raw.strip() if isinstance(raw, str) else ''
        if field.required and not raw:
            return values, '%s is required.' % field.label
        if field.kind is int:
            if raw:
                try:
                    values[field.name] = int(raw)
                except ValueError:
                    return values, '%s must be a whole number.' % field.label
                if not 0 <= values[field.name] <= 200:
                    return values, '%s must be between 0 and 200.' % (
                        field.label)
            else:
                values[field.name] = None
        else:
            values[field.name] = raw
    return values, None


def check_name(container, name):
    """The error for a new item's name, or None."""
    if not name:
        return 'Please give a name.'
    if '/' in name:
        return 'A name cannot contain "/".'
    if name[0] in '+@$':
        return 'A name cannot begin with "+", "@" or "$".'
    if len(name) > 100:
        return 'A name can have at most 100 characters.'
    if name in container:
        return 'The name %s is taken.' % name
    return None


class ContainerIndex(Page):
    """The items, 20 a page, with a search over their titles."""
    grok.context(IDemoContainer)
    grok.name('index')

    def update(self):
        self.query = self.request.form.get('q', '')
        if not isinstance(self.query, str):
            self.query = ''
        self.query = self.query.strip()
        try:
            self.page = max(1, int(self.request.form.get('page', 1)))
        except (TypeError, ValueError):
            self.page = 1

    def spec(self):
        if not self.query:
            return None
        return {'title': {'$regex': re.escape(self.query), '$options': 'i'}}

    def render(self):
        container = self.context
        spec = self.spec()
        total = len(container)
        found = (total if spec is None else
                 sum(1 for _ in container.raw_find(spec, projection={'_id': 1})))
        pages = max(1, -(-found // PAGE_SIZE))
        page = min(self.page, pages)
        sort_key = container._m_mapping_key or '_id'
        items = list(container.find(spec, sort=[(sort_key, 1)],
                                    skip=(page - 1) * PAGE_SIZE,
                                    limit=PAGE_SIZE))
        url = self.url_of(container)
        rows = ''.join(
            '<tr><td><a href="%s">%s</a></td><td><code>%s</code></td></tr>'
            % (e(self.url_of(item)), e(item.title), e(item.__name__))
            for item in items)
        if rows:
            table = ('<table id="items"><thead><tr><th>Title</th><th>Name</th>'
                     '</tr></thead><tbody>%s</tbody></table>' % rows)
        else:
            table = '<p id="empty">Nothing here%s.</p>' % (
                ' matches' if spec else ' yet')
        count = ('<p class="count" id="count">%d %s</p>' % (total, 'item' if
                 total == 1 else 'items'))
        if spec is not None:
            count += ('<p class="count" id="found">%d found for &quot;%s&quot;'
                      ' <a href="%s">show all</a></p>'
                      % (found, e(self.query), e(url)))
        paging = ''
        if pages > 1:
            links = []
            for number in range(1, pages + 1):
                if number == page:
                    links.append('<span class="current">%d</span>' % number)
                else:
                    params = {'page': number}
                    if self.query:
                        params['q'] = self.query
                    links.append('<a href="%s?%s">%d</a>' % (
                        e(url), e(urllib.parse.urlencode(params)), number))
            paging = '<p class="paging" id="paging">Page: %s</p>' % ''.join(
                links)
        search = ('<form class="search" method="get" action="%s">'
                  '<input type="search" name="q" value="%s" '
                  'placeholder="Search titles" aria-label="Search titles">'
                  ' <button type="submit">Search</button></form>'
                  % (e(url), e(self.query)))
        add = '<p class="actions"><a class="button" href="%s">Add %s</a></p>' % (
            e(url + '/add'), e(container.item_factory.kind))
        return self.layout(container.title,
                           count + search + table + paging + add)


class ContainerAdd(Page):
    grok.context(IDemoContainer)
    grok.name('add')

    def update(self):
        self.values = {}
        self.name = ''
        if not self.posted():
            return
        form = self.request.form
        if 'cancel' in form:
            return self.redirect(self.url_of(self.context))
        named = self.context._m_mapping_key is not None
        if named:
            self.name = form.get('name', '')
            self.name = self.name.strip() if isinstance(self.name, str) else ''
            self.error = check_name(self.context, self.name)
        factory = self.context.item_factory
        self.values, error = _read_fields(factory.fields, form)
        self.error = self.error or error
        if self.error:
            self.response.setStatus(400)
            return
        item = factory(**self.values)
        if named:
            self.context[self.name] = item
        else:
            self.context.add(item)
        self.done(self.url_of(self.context))

    def render(self):
        factory = self.context.item_factory
        name = ''
        if self.context._m_mapping_key is not None:
            name = ('<label for="name">Name (in the URL) *</label>'
                    '<input type="text" id="name" name="name" value="%s">'
                    % e(self.name))
        return self.layout('Add %s' % factory.kind, (
            '<form method="post" action="%s">%s%s<p>'
            '<button type="submit" name="add">Add</button> '
            '<button type="submit" name="cancel">Cancel</button></p></form>'
            % (e(self.url_of(self.context, 'add')), name,
               _form_fields(factory.fields, self.values))))


def _date(value):
    if value is None:
        return '-'
    return value.astimezone(datetime.timezone.utc).strftime(
        '%Y-%m-%d %H:%M:%S UTC')


class ItemIndex(Page):
    grok.context(IDemoItem)
    grok.name('index')

    def render(self):
        item = self.context
        rows = ''.join('<dt>%s</dt><dd id="field-%s">%s</dd>' % (
            e(field.label), field.name, e(getattr(item, field.name, None)))
            for field in item.fields)
        dc = IZopeDublinCore(item)
        dates = ('<p class="dates">Created <span id="created">%s</span>, '
                 'modified <span id="modified">%s</span></p>'
                 % (_date(dc.created), _date(dc.modified)))
        extra = ''
        if isinstance(item, Person):
            projects = item.projects
            extra = ('<h2>Projects</h2><ul>%s</ul><p><a href="%s">'
                     'All projects (%d)</a></p>' % (
                         ''.join('<li><a href="%s">%s</a></li>' % (
                             e(self.url_of(p)), e(p.title))
                             for p in projects.find(limit=PAGE_SIZE)),
                         e(self.url_of(projects)), len(projects)))
        actions = ('<p class="actions"><a href="%s">Edit</a>'
                   '<a href="%s">Delete</a><a href="%s">Back to %s</a></p>'
                   % (e(self.url_of(item, 'edit')),
                      e(self.url_of(item, 'delete')),
                      e(self.url_of(item.__parent__)),
                      e(item.__parent__.title)))
        return self.layout(item.title, (
            '<p>Name: <code id="name">%s</code></p><dl>%s</dl>%s%s%s'
            % (e(item.__name__), rows, dates, extra, actions)))


class ItemEdit(Page):
    grok.context(IDemoItem)
    grok.name('edit')

    def update(self):
        item = self.context
        self.values = {f.name: getattr(item, f.name, None)
                       for f in item.fields}
        if not self.posted():
            return
        if 'cancel' in self.request.form:
            return self.redirect(self.url_of(item))
        values, self.error = _read_fields(item.fields, self.request.form)
        if self.error:
            self.values.update(values)
            self.response.setStatus(400)
            return
        for name, value in values.items():
            setattr(item, name, value)
        zope.event.notify(zope.lifecycleevent.ObjectModifiedEvent(item))
        self.done(self.url_of(item))

    def render(self):
        item = self.context
        return self.layout('Edit %s' % item.__name__, (
            '<form method="post" action="%s">%s<p>'
            '<button type="submit" name="save">Save</button> '
            '<button type="submit" name="cancel">Cancel</button></p></form>'
            % (e(self.url_of(item, 'edit')),
               _form_fields(item.fields, self.values))))


class ItemDelete(Page):
    grok.context(IDemoItem)
    grok.name('delete')

    def update(self):
        item = self.context
        if not self.posted():
            return
        container = item.__parent__
        if 'delete' in self.request.form:
            if isinstance(item, Person):
                item.projects.clear()
            del container[item.__name__]
            self.done(self.url_of(container))
        else:
            self.redirect(self.url_of(item))

    def render(self):
        item = self.context
        return self.layout('Delete %s?' % item.title, (
            '<p>Delete the %s <code>%s</code> (%s)? This cannot be undone.'
            '</p><form method="post" action="%s">'
            '<button class="danger" type="submit" name="delete">Delete'
            '</button> <button type="submit" name="cancel">Cancel</button>'
            '</form>' % (e(item.kind), e(item.__name__), e(item.title),
                         e(self.url_of(item, 'delete')))))
