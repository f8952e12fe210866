"""The demo site's content: schemas, classes, name rules and seed data.

The root folder lives in ZODB and holds four Mongo containers: ``people``
(a :class:`People`, items named by the user), ``notes`` (an
:class:`~zmongo.container.IdNamesMongoContainer`, items named by their
``_id``) and their archives ``archived-people`` and ``archived-notes``
(empty at first: somewhere to move people and notes to, over the same
collections).  Every person holds a ``projects`` container of its own, stored in
MongoDB too, so ``/people/ada/projects/engine`` goes ZODB -> Mongo -> Mongo
-> Mongo.

The schemas carry every rule about input (required fields, lengths, ages),
so the forms of :mod:`zmongo.demo.app` are generated from them and the
rules hold wherever the objects are changed.  Names are checked by the
containers' ``INameChooser`` -- by the add form, by ``zope.copypastemove``
and by ``__setitem__`` itself -- so no path can create an item whose URL
would be shadowed by a view or could not be opened.
"""
import unicodedata

import persistent
import zope.component
import transaction
import zope.interface
import zope.schema
from grokcore.component.interfaces import IContext
from zope.container.contained import NameChooser
from zope.container.interfaces import INameChooser
from zope.container.interfaces import IReservedNames
from zope.location.interfaces import ISublocations
from zope.publisher.interfaces.browser import IBrowserRequest

import grok
from zmongo.annotation import IMongoAttributeAnnotatable
from zmongo.container import IdNamesMongoContainer
from zmongo.container import MongoContained
from zmongo.container import MongoContainer

#: Longest title, name and search term; longest description or note text.
MAX_TITLE = 200
MAX_NAME = 100
MAX_TEXT = 10000


# -- schemas ----------------------------------------------------------------

class IItem(IContext):
    """An item of the demo site: it has a title."""
    title = zope.schema.TextLine(title='Title', max_length=MAX_TITLE)


class IPerson(IItem):
    title = zope.schema.TextLine(title='Full name', max_length=MAX_TITLE)
    age = zope.schema.Int(title='Age', min=0, max=200, required=False)


class IProject(IItem):
    description = zope.schema.Text(title='Description', max_length=MAX_TEXT,
                                   required=False)


class INote(IItem):
    text = zope.schema.Text(title='Text', max_length=MAX_TEXT,
                            required=False)


class INamed(zope.interface.Interface):
    """The name an add form asks for (checked by the container's
    ``INameChooser``, which knows what else lives at that URL)."""
    name = zope.schema.TextLine(
        title='Name (in the URL)',
        description='Letters, digits, "-" and "_" make the best URLs.')


class IDemoContainer(IContext):
    """A container of the demo site: ``title`` and ``schema`` (of its
    items) tell the pages what to show."""


class INamedContainer(IDemoContainer):
    """A container whose items are named by the user."""


# -- content ----------------------------------------------------------------

@zope.interface.implementer(IMongoAttributeAnnotatable)
class Item(MongoContained, persistent.Persistent):
    """Base of the items: the fields of ``schema`` as attributes."""
    schema = IItem
    kind = 'item'

    def __init__(self, **values):
        for name in zope.schema.getFieldNames(self.schema):
            setattr(self, name, values.get(name))


@zope.interface.implementer(IProject)
class Project(Item):
    _p_mongo_collection = 'projects'
    schema = IProject
    kind = 'project'


@zope.interface.implementer(INote)
class Note(Item):
    _p_mongo_collection = 'notes'
    schema = INote
    kind = 'note'


class _NameChecked:
    """Items are stored only under names the ``INameChooser`` accepts,
    whoever stores them."""

    def __setitem__(self, key, value):
        if key is not None:
            INameChooser(self).checkName(key, value)
        super().__setitem__(key, value)


@zope.interface.implementer(INamedContainer)
class Projects(_NameChecked, MongoContainer):
    """A person's projects (the container is a document of its own)."""
    _m_collection = 'projects'
    _p_mongo_collection = 'project_containers'
    title = 'Projects'
    factory = Project


@zope.interface.implementer(IPerson)
class Person(Item):
    _p_mongo_collection = 'people'
    schema = IPerson
    kind = 'person'

    def __init__(self, **values):
        super().__init__(**values)
        self.projects = Projects()
        self.projects.__parent__ = self
        self.projects.__name__ = 'projects'


class PersonSublocations(grok.Adapter):
    """A person's projects go where it goes: Zope passes the person's
    added, moved and removed events on to them, so a copy's projects are
    stored with the copy and a deleted person's are deleted."""
    grok.context(IPerson)
    grok.provides(ISublocations)

    def sublocations(self):
        yield self.context.projects


@zope.interface.implementer(INamedContainer)
class People(_NameChecked, MongoContainer):
    _m_collection = 'people'
    title = 'People'
    factory = Person


@zope.interface.implementer(IDemoContainer)
class Notes(IdNamesMongoContainer):
    """Notes, named by their ``_id`` (zmongo's ``IdNamesNameChooser``
    names them)."""
    _m_collection = 'notes'
    title = 'Notes'
    factory = Note


class PeopleArchive(People):
    """Where people are moved out of the way (and back from): the same
    collection as :class:`People`, so a move re-parents the document
    instead of copying it into another collection."""
    title = 'Archived people'


class NotesArchive(Notes):
    """Where notes are moved out of the way (and back from), in the notes'
    collection, like :class:`PeopleArchive`."""
    title = 'Archived notes'


#: The root folder's containers, in the order the home page lists them.
CONTAINERS = [('people', People), ('notes', Notes),
              ('archived-people', PeopleArchive),
              ('archived-notes', NotesArchive)]


# -- names ------------------------------------------------------------------

def view_names():
    """Every name a browser view is registered under: an item with one of
    these names would be hidden behind the view (``/people/add``)."""
    names = set()
    for reg in zope.component.getSiteManager().registeredAdapters():
        if len(reg.required) == 2 and reg.required[1] is not None and \
                reg.required[1].isOrExtends(IBrowserRequest):
            names.add(reg.name)
    names.discard('')
    return names


@grok.implementer(IReservedNames)
class ReservedNames(grok.Adapter):
    """Names of views are reserved in the demo's containers."""
    grok.context(INamedContainer)
    grok.provides(IReservedNames)

    @property
    def reservedNames(self):
        return view_names()


class ItemNameChooser(grok.Adapter, NameChooser):
    """zope.container's rules (a non-empty string, no leading ``+`` or
    ``@``, no ``/``, not reserved, not taken) and the ones a URL needs:
    no ``.``, ``..``, control characters, leading ``$`` (Mongo's
    operators), surrounding spaces or more than :data:`MAX_NAME`
    characters.  The errors are sentences a form can show."""
    grok.context(INamedContainer)
    grok.provides(INameChooser)

    def checkName(self, name, obj):
        if not isinstance(name, str):
            raise TypeError('A name must be text, not %s.'
                            % type(name).__name__)
        if not name:
            raise ValueError('A name cannot be empty.')
        if name.strip() != name:
            raise ValueError('A name cannot begin or end with a space.')
        if name in ('.', '..'):
            raise ValueError('"." and ".." cannot be names.')
        if len(name) > MAX_NAME:
            raise ValueError('A name can have at most %d characters.'
                             % MAX_NAME)
        if any(unicodedata.category(c)[0] == 'C' for c in name):
            raise ValueError('A name cannot contain control characters.')
        if name[0] in '+@$' or '/' in name:
            raise ValueError('A name cannot begin with "+", "@" or "$" or '
                             'contain "/".')
        if name in IReservedNames(self.context).reservedNames:
            raise ValueError('%s is the name of a page; choose another.'
                             % name)
        if name in self.context:
            raise KeyError('The name %s is taken.' % name)
        return True


# -- the site ---------------------------------------------------------------

SEED = [
    ('ada', 'Ada Lovelace', 36, [
        ('engine', 'Analytical Engine',
         'Notes on the Analytical Engine.\nNote G: Bernoulli numbers.')]),
    ('alan', 'Alan Turing', 41, [
        ('bombe', 'The Bombe', 'Breaking Enigma at Bletchley Park.'),
        ('ace', 'Automatic Computing Engine', 'A stored-program computer.')]),
    ('grace', 'Grace Hopper', 85, [
        ('a0', 'A-0 System', 'The first compiler.'),
        ('cobol', 'COBOL', 'A business language.\nReadable by managers.')]),
]
SEED_NOTES = [
    ('Welcome', 'The people, projects and notes of this site are\n'
                'documents in MongoDB; the root folder is in ZODB.'),
    ('Try it', 'Log in, then add, edit, rename, move, copy or delete.'),
    ('Search', 'Each list has a search over its titles.'),
]


def seed(folder):
    """Fill a new site with the people, projects and notes README shows."""
    people, notes = folder['people'], folder['notes']
    for name, title, age, projects in SEED:
        people[name] = person = Person(title=title, age=age)
        for key, ptitle, description in projects:
            person.projects[key] = Project(title=ptitle,
                                           description=description)
    for title, text in SEED_NOTES:
        notes.add(Note(title=title, text=text))


def bootstrap(db):
    """Make sure ``db`` holds the root folder with the :data:`CONTAINERS`,
    seeded the first time (the site's ZCML must be loaded).  Returns True
    if the site was new."""
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
        new = 'people' not in folder
        for name, factory in CONTAINERS:    # sites made before the
            if name not in folder:          # archives get them now
                folder[name] = factory()
        transaction.commit()    # the containers' parent is their oid
        if new:
            seed(folder)
        transaction.commit()
        return new
    finally:
        transaction.abort()
        connection.close()
