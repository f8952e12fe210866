"""Starting the site, once its ZCML is loaded: its ZODB and its WSGI
application.  ``docs/zope.rst`` runs these functions.
"""
import ZODB
import zope.component
import zope.event
import zope.processlifetime
from ZODB.interfaces import IDatabase
from zope.app.wsgi import WSGIPublisherApplication


def open_database(storage):
    """The site's ZODB.  Announcing it creates the root folder the first
    time (zope.app.appsetup's bootstrap, configured by Grok)."""
    db = ZODB.DB(storage, database_name='main')
    zope.component.provideUtility(db, IDatabase, 'main')
    zope.event.notify(zope.processlifetime.DatabaseOpened(db))
    return db


def application(db):
    """The WSGI application: Zope's publisher over ``db``."""
    return WSGIPublisherApplication(db)
