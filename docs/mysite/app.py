"""A Grok application keeping its content in MongoDB.

The application object lives in ZODB, as Grok applications do.  It holds
``entries``, a MongoContainer: each entry is a document of the ``entries``
collection.  No code here connects to MongoDB -- the container finds its
data manager through the IMongoDataManagerProvider utility that
``site.zcml`` registers.
"""
import persistent
import zope.interface
import zope.schema
from grokcore.component.interfaces import IContext

import grok
from zmongo.container import MongoContained
from zmongo.container import MongoContainer


class IEntry(zope.interface.Interface):
    title = zope.schema.TextLine(title='Title')


class IAddEntry(IEntry):
    name = zope.schema.TextLine(title='Name')


# IContext: zmongo's classes are no grok.Model, so say that Grok views may
# have them as their context.
@zope.interface.implementer(IEntry, IContext)
class Entry(MongoContained, persistent.Persistent):
    """One entry: a document of the ``entries`` collection."""
    _p_mongo_collection = 'entries'

    def __init__(self, title):
        self.title = title


@zope.interface.implementer(IContext)
class Entries(MongoContainer):
    """The entries, a container over the ``entries`` collection."""
    _m_collection = 'entries'


class App(grok.Application, grok.Container):
    """The application, stored in ZODB."""


@grok.subscribe(App, grok.IObjectAddedEvent)
def add_entries(app, event):
    app['entries'] = Entries()


class EntriesIndex(grok.View):
    """The listing: every entry, with a link to it."""
    grok.context(Entries)
    grok.name('index')

    def entries(self):
        return sorted(self.context.items())


entriesindex = grok.PageTemplate('''\
<html><body>
<h1>Entries (<span tal:replace="python:len(context)" />)</h1>
<ul>
  <li tal:repeat="item view/entries"><a
      tal:attributes="href python:view.url(item[1])"
      tal:content="python:item[1].title">title</a></li>
</ul>
</body></html>
''')


class EntryIndex(grok.View):
    """One entry."""
    grok.context(Entry)
    grok.name('index')


entryindex = grok.PageTemplate('''\
<html><body>
<h1 tal:content="context/title">title</h1>
<a tal:attributes="href python:view.url(context.__parent__)">All entries</a>
</body></html>
''')


class AddEntry(grok.AddForm):
    """Adding an entry needs zope.ManageContent."""
    grok.context(Entries)
    grok.name('add')
    grok.require('zope.ManageContent')

    form_fields = grok.Fields(IAddEntry).select('name', 'title')

    @grok.action('Add entry')
    def add(self, name, title):
        if name in self.context:
            self.status = 'The name %s is taken.' % name
            return
        self.context[name] = Entry(title)
        self.redirect(self.url(self.context))
