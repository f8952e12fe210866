"""The demo site's pages: Grok views, forms generated from the schemas of
:mod:`zmongo.demo.content`, page templates in ``app_templates/`` sharing
``layout.pt``.

Security is Zope's: anybody may look (``zope.Public`` pages), changing
needs the :class:`Edit` permission, which ``site.zcml`` grants through the
:class:`Editor` role to the manager ``zmongo-demo`` defines at start.
Every request that could change something (any method but GET and HEAD)
must carry the session's token and come from no other origin
(:func:`refuse_cross_site`), whatever view it reaches.
"""
import binascii
import datetime
import hmac
import logging
import re
import secrets
import urllib.parse

import zope.component
from zope.interface.interfaces import ComponentLookupError
import zope.interface
from zope.authentication.interfaces import IAuthentication
from zope.authentication.interfaces import ILoginPassword
from zope.authentication.interfaces import IUnauthenticatedPrincipal
from zope.container.interfaces import INameChooser
from zope.copypastemove.interfaces import IObjectCopier
from zope.copypastemove.interfaces import IObjectMover
from zope.dublincore.interfaces import IWriteZopeDublinCore
from zope.dublincore.interfaces import IZopeDublinCore
from zope.error.interfaces import IErrorReportingUtility
from zope.interface.common.interfaces import IException
from zope.lifecycleevent.interfaces import IObjectAddedEvent
from zope.lifecycleevent.interfaces import IObjectModifiedEvent
from zope.login.http import BasicAuthAdapter
from zope.publisher.interfaces import NotFound
from zope.publisher.interfaces.browser import IBrowserRequest
from zope.security.interfaces import Unauthorized
from z3c.flashmessage.interfaces import IMessageReceiver
from zope.session.http import CookieClientIdManager
from zope.session.interfaces import IClientIdManager
from zope.session.interfaces import ISession
from zope.session.interfaces import ISessionDataContainer
from zope.session.session import RAMSessionDataContainer
from zope.site.interfaces import IRootFolder
from zope.traversing.interfaces import IBeforeTraverseEvent

import grok
from zmongo.demo import content
from zmongo.demo.content import IDemoContainer
from zmongo.demo.content import IItem
from zmongo.demo.content import INamedContainer
from zmongo.demo.content import Person

log = logging.getLogger('zmongo.demo')
PAGE_SIZE = 20
SESSION = 'zmongo.demo'
TOKEN = 'csrf_token'


# -- security ---------------------------------------------------------------

class EditContent(grok.Permission):
    """Adding, changing, moving and deleting content."""
    grok.name('zmongo.demo.Edit')


class Editor(grok.Role):
    """Who may change the site (granted to the manager in site.zcml)."""
    grok.name('zmongo.demo.Editor')
    grok.permissions(EditContent)


class ClientIds(grok.GlobalUtility, CookieClientIdManager):
    """Session cookies, signed with a secret made at start (sessions end
    with the process), invisible to scripts."""
    grok.provides(IClientIdManager)

    def __init__(self):
        super().__init__('zmongo_demo_session', secrets.token_hex(32))
        self.httpOnly = True


grok.global_utility(RAMSessionDataContainer, provides=ISessionDataContainer,
                    direct=False)


def session_token(request):
    """The token every form of this session carries (made on first use)."""
    data = ISession(request)[SESSION]
    if TOKEN not in data:
        data[TOKEN] = secrets.token_urlsafe(32)
    return data[TOKEN]


class CrossSiteRequest(Exception):
    """A change was asked for without the session's token or from another
    site: refused before any view ran (403)."""


@grok.subscribe(IRootFolder, IBeforeTraverseEvent)
def refuse_cross_site(folder, event):
    """Refuse a state-changing request that another site could have made:
    one whose ``Origin`` is not this site, or whose form lacks the token
    of the session (the session cookie comes with any request; the token
    only with pages of this site)."""
    request = event.request
    if request.method in ('GET', 'HEAD'):
        return
    origin = request.getHeader('Origin')
    if origin and origin != request.getApplicationURL():
        raise CrossSiteRequest('a %s from the origin %s' % (
            request.method, origin))
    sent = request.form.get(TOKEN)
    data = ISession(request)[SESSION]
    token = data.get(TOKEN)
    if not isinstance(sent, str) or token is None or \
            not hmac.compare_digest(sent.encode(), token.encode()):
        raise CrossSiteRequest('a %s without the token of this session'
                               % request.method)


class BadAuthorization(ValueError):
    """An ``Authorization: Basic`` header that is no base64 of
    "login:password": the client's mistake (400), not the site's (500)."""


class BasicCredentials(grok.Adapter, BasicAuthAdapter):
    """zope.login's reading of the ``Authorization`` header, for browser
    requests (more specific than its adapter, so no override is needed);
    the header is the client's input, so a malformed one is a
    :class:`BadAuthorization` -- zope.publisher raises a bare
    ``ValueError`` when the text has no colon."""
    grok.context(IBrowserRequest)
    grok.provides(ILoginPassword)

    def __init__(self, request):
        try:
            BasicAuthAdapter.__init__(self, request)
        except ValueError as error:     # binascii.Error is one too
            raise BadAuthorization(
                'an Authorization header that is no base64 of '
                '"login:password"') from error


# -- Dublin Core dates ------------------------------------------------------

def _now():
    return datetime.datetime.now(datetime.timezone.utc)


@grok.subscribe(IItem, IObjectAddedEvent)
def item_added(item, event):
    dc = IWriteZopeDublinCore(item)
    dc.created = dc.modified = _now()


@grok.subscribe(IItem, IObjectModifiedEvent)
def item_modified(item, event):
    IWriteZopeDublinCore(item).modified = _now()


# -- traversal --------------------------------------------------------------

class PersonTraverser(grok.Traverser):
    """``/people/ada/projects``: the person's own container."""
    grok.context(Person)

    def traverse(self, name):
        if name == 'projects':
            return self.context.projects
        return None


# -- the layout and the pages -----------------------------------------------

class Page(grok.View):
    """What ``layout.pt`` asks of a view."""
    grok.baseclass()
    grok.require('zope.Public')
    title = ''

    def home(self):
        return self.request.getApplicationURL() + '/'

    def login_url(self):
        here = self.request.getURL()
        if here.endswith('/@@index'):
            here = here[:-len('/@@index')]
        return '%s@@login?%s' % (self.home(), urllib.parse.urlencode(
            {'came_from': here}))

    def token(self):
        return session_token(self.request)

    def user(self):
        principal = self.request.principal
        if principal is None or \
                IUnauthenticatedPrincipal.providedBy(principal):
            return None
        return principal.title

    def messages(self):
        """The confirmations flashed by the request before (and forget
        them) -- unless this page is a redirect no one will see."""
        if self.response.getStatus() in (301, 302, 303, 307):
            return []
        receiver = zope.component.getUtility(IMessageReceiver)
        return [m.message for m in receiver.receive()]

    def crumbs(self):
        """[(url, name)] from the root folder to the context."""
        chain, obj = [], self.context
        while getattr(obj, '__parent__', None) is not None:
            chain.append(obj)
            obj = obj.__parent__
        return [(self.url(o), o.__name__) for o in reversed(chain)]

    def done(self, message, obj, name=None):
        """Say what changed and show ``obj``."""
        self.flash(message)
        self.redirect(self.url(obj, name))


class Layout(Page):
    """``layout.pt``: its macro ``page`` frames every page
    (``context/@@layout/macros/page``).  It is no page itself: published,
    it would be an empty frame, so its address is not found."""
    grok.context(zope.interface.Interface)

    def __call__(self):
        raise NotFound(self.context, '@@layout', self.request)


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
    grok.template('root')
    title = 'Welcome'

    def containers(self):
        return [self.context[name] for name, _ in content.CONTAINERS
                if name in self.context]


class Login(Page):
    """Needs the permission to edit: anonymous users get the login
    challenge, and come back here once logged in."""
    grok.context(IRootFolder)
    grok.require(EditContent)

    def update(self):
        back = self.request.form.get('came_from', '')
        if not isinstance(back, str) or not back.startswith(self.home()):
            back = self.home()
        self.flash('You are logged in as %s.' % self.user())
        self.redirect(back, trusted=True)

    def render(self):
        return ''


class ContainerIndex(Page):
    """The items, 20 a page, with a search over their titles."""
    grok.context(IDemoContainer)
    grok.name('index')
    grok.template('contents')

    def update(self, q='', page='1'):
        self.title = self.context.title
        self.error = None
        self.query = q.strip() if isinstance(q, str) else ''
        if len(self.query) > content.MAX_TITLE:
            self.error = ('A search can have at most %d characters.'
                          % content.MAX_TITLE)
            self.response.setStatus(400)
            self.query = ''
        try:
            page = max(1, int(page))
        except (TypeError, ValueError):
            page = 1
        spec = None
        if self.query:
            spec = {'title': {'$regex': re.escape(self.query),
                              '$options': 'i'}}
        box = self.context
        self.total = len(box)
        self.found = self.total if spec is None else sum(
            1 for _ in box.raw_find(spec, projection={'_id': 1}))
        self.pages = max(1, -(-self.found // PAGE_SIZE))
        self.page = min(page, self.pages)
        self.items = list(box.find(
            spec, sort=[(box._m_mapping_key or '_id', 1)],
            skip=(self.page - 1) * PAGE_SIZE, limit=PAGE_SIZE))
        self.searched = spec is not None

    def page_url(self, number):
        params = {'page': number}
        if self.query:
            params['q'] = self.query
        return '%s?%s' % (self.url(self.context),
                          urllib.parse.urlencode(params))


class ItemIndex(Page):
    grok.context(IItem)
    grok.name('index')
    grok.template('item')

    def update(self):
        self.title = self.context.title
        dc = IZopeDublinCore(self.context)
        self.created, self.modified = _date(dc.created), _date(dc.modified)

    def fields(self):
        """[(id, label, value, multiline)] of the item's schema."""
        schema = self.context.schema
        return [(name, field.title, getattr(self.context, name, None),
                 isinstance(field, zope.schema.Text) and
                 not isinstance(field, zope.schema.TextLine))
                for name, field in zope.schema.getFieldsInOrder(schema)]

    def projects(self):
        if isinstance(self.context, Person):
            return self.context.projects


def _date(value):
    if value is None:
        return '-'
    return value.astimezone(datetime.timezone.utc).strftime(
        '%Y-%m-%d %H:%M:%S UTC')


# -- forms ------------------------------------------------------------------

class FormPage(Page):
    """The parts of the add and edit forms the template ``form.pt``
    needs: every error of a submission, as sentences."""
    grok.baseclass()

    def error_list(self):
        """Every error, the fields' first (labelled), then the form's."""
        if not self.errors:
            return []
        out = []
        for widget in self.widgets:
            error = getattr(widget, '_error', None)
            if error is not None:
                out.append('%s: %s' % (widget.label,
                                       _message(error, widget.context)))
        out.extend(str(error.args[0]) for error in self.errors
                   if isinstance(error, zope.interface.Invalid))
        return out


def _message(error, field):
    """A sentence for a field's error (formlib's are the class docstring
    of the schema's error, "Value is too long", without the limit)."""
    inner = getattr(error, 'errors', None)
    if isinstance(inner, zope.schema.interfaces.TooLong):
        return 'at most %d characters, please.' % field.max_length
    text = error.doc() if hasattr(error, 'doc') else str(error)
    return text.rstrip('.') + '.'


class Add(FormPage, grok.AddForm):
    """Add an item; named containers ask for its name, which their
    ``INameChooser`` checks (all errors are shown at once)."""
    grok.context(IDemoContainer)
    grok.require(EditContent)
    grok.template('form')

    @property
    def form_fields(self):
        fields = grok.Fields(self.context.factory.schema)
        if INamedContainer.providedBy(self.context):
            fields = grok.Fields(content.INamed) + fields
        return fields

    @property
    def title(self):
        return 'Add %s' % self.context.factory.kind

    def validate(self, action, data):
        errors = list(super().validate(action, data))
        if data.get('name') is not None:
            try:
                INameChooser(self.context).checkName(data['name'], None)
            except (KeyError, ValueError, TypeError) as error:
                errors.append(zope.interface.Invalid(
                    'Name: %s' % error.args[0]))
        return errors

    @grok.action('Add')
    def add(self, name=None, **data):
        item = self.context.factory(**data)
        if name is None:
            name = self.context.add(item)
        else:
            self.context[name] = item
        self.done('Added %s.' % item.title, self.context)

    @grok.action('Cancel', validator=lambda *args: ())
    def cancel(self, **data):
        self.redirect(self.url(self.context))


class EditItem(FormPage, grok.EditForm):
    grok.context(IItem)
    grok.name('edit')
    grok.require(EditContent)
    grok.template('form')

    @property
    def form_fields(self):
        return grok.Fields(self.context.schema)

    @property
    def title(self):
        return 'Edit %s' % self.context.title

    @grok.action('Save')
    def save(self, **data):
        self.applyData(self.context, **data)
        self.done('Saved %s.' % self.context.title, self.context)

    @grok.action('Cancel', validator=lambda *args: ())
    def cancel(self, **data):
        self.redirect(self.url(self.context))


class Delete(Page):
    grok.context(IItem)
    grok.require(EditContent)

    def update(self):
        item = self.context
        self.title = 'Delete %s?' % item.title
        if self.request.method != 'POST':
            return
        if 'delete' not in self.request.form:
            return self.redirect(self.url(item))
        container = item.__parent__
        del container[item.__name__]
        self.done('Deleted %s.' % item.title, container)


class Move(Page):
    """Rename, move or copy an item, through ``zope.copypastemove`` (the
    target container's ``INameChooser`` decides about the name)."""
    grok.context(IItem)
    grok.require(EditContent)

    def targets(self):
        """{path: container} of the containers the item may move to."""
        item = self.context
        parent = item.__parent__
        if isinstance(parent, content.Projects):   # to any person's
            boxes = [person.projects for box in self.places(Person)
                     for person in box.values()]
        else:               # its container's archive, or back again
            boxes = self.places(parent.factory)
        mover = IObjectMover(item)
        return {self.path(box): box for box in boxes
                if box is parent or mover.moveableTo(box)}

    def places(self, factory):
        """The root folder's containers of ``factory``'s items."""
        root = self.context
        while not IRootFolder.providedBy(root):
            root = root.__parent__
        return [root[name] for name, _ in content.CONTAINERS
                if name in root and root[name].factory is factory]

    def path(self, obj):
        return self.url(obj)[len(self.request.getApplicationURL()):]

    def renamable(self):
        return INamedContainer.providedBy(self.context.__parent__)

    def update(self):
        item = self.context
        self.title = 'Rename, move or copy %s' % item.title
        self.error = None
        self.name = item.__name__
        self.target = self.path(item.__parent__)
        if self.request.method != 'POST':
            return
        form = self.request.form
        name, target = form.get('name', ''), form.get('target', '')
        if not isinstance(name, str) or not isinstance(target, str):
            self.error = 'Please use the form.'
        else:
            self.name, self.target = name.strip(), target
            box = self.targets().get(target)
            if box is None:
                self.error = 'Choose one of the listed places.'
            else:
                self.error = self.apply(form, item, box)
        if self.error:
            self.response.setStatus(400)

    def apply(self, form, item, box):
        """Do what was asked; an error message or None."""
        old = item.__name__
        named = INamedContainer.providedBy(box)
        name = self.name if named else None
        copy = 'copy' in form
        if named and not copy and (box is not item.__parent__ or
                                   name != old):
            try:
                INameChooser(box).checkName(name, item)
            except (KeyError, ValueError, TypeError) as error:
                return error.args[0]
        elif named and copy and name != old:
            try:
                INameChooser(box).checkName(name, None)
            except (KeyError, ValueError, TypeError) as error:
                return error.args[0]
        if copy:
            new = IObjectCopier(item).copyTo(box, name)
            return self.done('Copied %s to %s.' % (old, self.path(box[new])),
                             box[new])
        if box is item.__parent__ and name in (None, old):
            return 'Give a new name or another place.'
        verb = 'Renamed' if box is item.__parent__ else 'Moved'
        new = IObjectMover(item).moveTo(box, name)
        self.done('%s %s to %s.' % (verb, old, self.path(box[new])), box[new])


# -- errors -----------------------------------------------------------------

@zope.interface.implementer(IErrorReportingUtility)
class ErrorLog(grok.GlobalUtility):
    """Failed requests are logged with their method and path; the
    traceback only for errors of the site itself, not for pages not
    found, refused or badly asked for."""
    grok.provides(IErrorReportingUtility)

    def raising(self, info, request=None):
        where = '(no request)'
        if request is not None:     # the path asked for, quoted
            where = '%s %s' % (request.method, urllib.parse.quote(
                request.environment.get('PATH_INFO', ''), safe="/@+=:,;~"))
        if isinstance(info[1], (NotFound, Unauthorized, CrossSiteRequest)) \
                or _bad_request(info[1]) or _nothing_to_show(info[1]):
            log.info('%s: %s: %s', where, type(info[1]).__name__, info[1])
        else:
            log.error('%s: %s', where, info[1], exc_info=info)


def _bad_request(error):
    """Errors a client's input caused: a body that is no UTF-8, an
    ``Authorization`` header that is no base64 of "login:password"."""
    return isinstance(error, (UnicodeError, binascii.Error,
                              BadAuthorization))


def _nothing_to_show(error):
    """The publisher found an object but no page for it (``/++etc++site``,
    ``/@@absolute_url``): there is nothing at that address."""
    return isinstance(error, ComponentLookupError) and error.args[:1] == (
        "Couldn't find default view name",)


class ErrorPage(Page):
    """500: no traceback, a way home."""
    grok.context(IException)
    grok.name('index')
    grok.template('error')
    status, title = 500, 'Something went wrong'
    text = 'The site could not show this page; the error is logged.'

    def messages(self):
        """None (the messages wait for a page that worked; they are
        found through the interaction, which may be over here)."""
        return []

    def update(self):
        if _bad_request(self.context):
            self.status, self.title = 400, 'Bad request'
            self.text = 'The site could not read this request.'
        elif _nothing_to_show(self.context):
            self.status, self.title = NotFoundPage.status, NotFoundPage.title
            self.text = NotFoundPage.text
        self.response.setStatus(self.status)

    def crumbs(self):
        return []


class NotFoundPage(ErrorPage):
    grok.context(NotFound)
    status, title = 404, 'Not found'
    text = 'There is nothing at this address.'

    def update(self):
        self.response.setStatus(404)


class CrossSitePage(ErrorPage):
    grok.context(CrossSiteRequest)
    status, title = 403, 'Refused'
    text = ('The site did not make this change: the form came from another '
            'site or an old page.  Reload the page and try again.')

    def update(self):
        self.response.setStatus(403)


class UnauthorizedPage(ErrorPage):
    """401 with the login challenge for anonymous users, else 403."""
    grok.context(Unauthorized)
    status, title = 403, 'Not allowed'
    text = 'You may not do this.'

    def update(self):
        if self.user() is None:
            self.title = 'Please log in'
            self.text = 'Log in to change the site.'
            auth = zope.component.getUtility(IAuthentication)
            auth.unauthorized(self.request.principal.id, self.request)
            self.status = 401
        self.response.setStatus(self.status)


STYLE = '''\
body { font-family: system-ui, sans-serif; max-width: 50rem;
       margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.4;
       overflow-wrap: anywhere; }
header { border-bottom: 2px solid #4a6fa5; margin-bottom: 1rem;
         display: flex; flex-wrap: wrap; justify-content: space-between; }
header a.home { font-weight: bold; color: #4a6fa5; text-decoration: none; }
nav.crumbs { color: #666; margin: .5rem 0; width: 100%; }
a { color: #2c5aa0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem;
         border-bottom: 1px solid #ddd; }
th { background: #f0f3f8; }
form.search { margin: 1rem 0; }
label { display: block; margin-top: .6rem; font-weight: 600; }
input[type=text], input[type=search], textarea, select { width: 100%;
    max-width: 30rem; padding: .3rem; border: 1px solid #aaa;
    border-radius: 3px; }
textarea { height: 6rem; }
button, .button, input[type=submit] { margin-top: .8rem;
    padding: .35rem .9rem; background: #4a6fa5; color: white; border: none;
    border-radius: 3px; text-decoration: none; font-size: 1rem;
    cursor: pointer; }
button.danger { background: #b33; }
.error, .errors { color: #a00; background: #fdecec;
    border: 1px solid #e0a0a0; padding: .5rem 1.5rem; border-radius: 3px; }
.message { color: #064; background: #e8f6ee; border: 1px solid #9c9;
           padding: .5rem; border-radius: 3px; }
.text { white-space: pre-wrap; }
.actions a { margin-right: 1rem; }
.count, .dates, .user { color: #555; }
.paging a, .paging span { margin-right: .7rem; }
dl dt { font-weight: 600; margin-top: .5rem; }
'''
