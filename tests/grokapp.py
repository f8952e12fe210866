"""A Grok 6 application keeping its content in MongoDB.

The application object lives in ZODB (as Grok applications do); it holds a
:class:`zmongo.container.MongoContainer`, ``entries``, whose items are the
documents of the ``entries`` collection.  The site reaches MongoDB through
the ``IMongoDataManagerProvider`` utility its ZCML registers with
``<mongo:provider>``: no Python connects it.

Grokked by ``tests/test_grok_app.py``.
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


@zope.interface.implementer(IEntry, IContext)
class Entry(MongoContained, persistent.Persistent):
    """An item: a document of the ``entries`` collection."""
    _p_mongo_collection = 'entries'

    def __init__(self, title):
        self.title = title


@zope.interface.implementer(IContext)
class Entries(MongoContainer):
    """The Mongo container (IContext: Grok's default view is ``index``)."""
    _m_collection = 'entries'


class App(grok.Application, grok.Container):
    """The application, in ZODB."""


@grok.subscribe(App, grok.IObjectAddedEvent)
def add_entries(app, event):
    app['entries'] = Entries()


class Index(grok.View):
    grok.context(App)


index = grok.PageTemplate('''\
<html><body>
<a tal:attributes="href python:view.url(context['entries'])">Entries</a>
</body></html>
''')


class EntriesIndex(grok.View):
    """The container's items: names, titles, links."""
    grok.context(Entries)
    grok.name('index')

    def entries(self):
        return sorted(self.context.items())


entriesindex = grok.PageTemplate('''\
<html><body>
<h1>Entries (<span id="count" tal:content="python:len(context)" />)</h1>
<ul>
  <li tal:repeat="item view/entries">
    <a tal:attributes="href python:view.url(item[1])"
       tal:content="python:item[1].title">title</a>
    <code tal:content="python:item[0]">name</code>
  </li>
</ul>
</body></html>
''')


class EntryIndex(grok.View):
    """One item."""
    grok.context(Entry)
    grok.name('index')


entryindex = grok.PageTemplate('''\
<html><body>
<h1 tal:content="context/title">title</h1>
<p id="name" tal:content="context/__name__">name</p>
<p id="url" tal:content="python:view.url(context)">url</p>
<a id="up" tal:attributes="href python:view.url(context.__parent__)">up</a>
</body></html>
''')


class AddEntry(grok.AddForm):
    """Adding an item needs zope.ManageContent."""
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


class Rename(grok.EditForm):
    """Changing an item's title, stored by the next commit."""
    grok.context(Entry)
    grok.require('zope.ManageContent')

    form_fields = grok.Fields(IEntry)


class Broken(grok.View):
    """Changes an item and adds one, then fails: the publisher aborts the
    transaction, and with it the MongoDB changes."""
    grok.context(Entries)
    grok.require('zope.ManageContent')

    def render(self):
        for entry in self.context.values():
            entry.title = 'changed by a failed request'
        self.context['doomed'] = Entry('Doomed')
        raise RuntimeError('this request fails')
