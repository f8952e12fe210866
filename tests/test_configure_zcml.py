"""zmongo's configure.zcml: each registration, loaded with real ZCML and
used against the real server."""
import datetime

import pytest
import transaction
import zope.component
import zope.event
import zope.interface
from zope.annotation.attribute import AttributeAnnotations as ZODBAnnotations
from zope.annotation.interfaces import IAnnotations
from zope.annotation.interfaces import IAttributeAnnotatable
from zope.configuration import xmlconfig
from ZODB import DB
from ZODB.MappingStorage import MappingStorage
from zope.container.btree import BTreeContainer
from zope.container.size import ContainerSized
from zope.dublincore.annotatableadapter import ZDCAnnotatableAdapter as \
    ZODBDublinCore
from zope.dublincore.interfaces import IWriteZopeDublinCore
from zope.dublincore.interfaces import IZopeDublinCore
from zope.i18n import translate
from zope.lifecycleevent import ObjectCreatedEvent
from zope.lifecycleevent import ObjectModifiedEvent
from zope.lifecycleevent.interfaces import IObjectRemovedEvent
from zope.location.interfaces import ISublocations
from zope.proxy import removeAllProxies
from zope.security.adapter import TrustedAdapterFactory
from zope.security.checker import getCheckerForInstancesOf
from zope.size import DefaultSized
from zope.size.interfaces import ISized

import zmongo
import zmongo.interfaces
from tests import container_models
from tests import models
from tests.container_support import COLLECTION_KINDS, KINDS, Home
from tests.container_support import container_cache  # noqa: F401
from tests.container_support import registry  # noqa: F401
from zmongo import annotation
from zmongo import container
from zmongo import dublincore
from zmongo import size
from zmongo import sublocations
from zmongo.interfaces import IMongoContained
from zmongo.provider import MongoDataManagerProvider

READ = ('__contains__', '__getitem__', '__iter__', '__len__', 'get',
        'items', 'keys', 'values')
WRITE = ('__delitem__', '__setitem__')

#: A site that also loads the configuration of the packages zmongo builds
#: on (each registers generic adapters of its own).
WITH_ZOPE_PACKAGES = '''
<configure xmlns="http://namespaces.zope.org/zope">
  <include package="zope.component" />
  <include package="zope.annotation" />
  <include package="zope.dublincore" />
  <include package="zope.container" />
  <include package="zope.size" />
  <include package="zmongo" />
</configure>
'''


@pytest.fixture
def configured(registry):
    """zmongo's configure.zcml alone, in a clean registry."""
    xmlconfig.file('configure.zcml', zmongo)
    return registry


@pytest.fixture
def site_configured(registry):
    xmlconfig.string(WITH_ZOPE_PACKAGES)
    return registry


@zope.interface.implementer(IAttributeAnnotatable)
class AnnotatableFolder(BTreeContainer):
    """A ZODB container with zope.annotation's attribute annotations."""


def naked_type(obj):
    # Adapters registered with a permission come in a LocationProxy.
    return type(removeAllProxies(obj))


def registered_factories(registry, provided):
    return {reg.required: reg.factory
            for reg in registry.registeredAdapters()
            if reg.provided is provided}


def test_configure_zcml_loads_on_its_own(configured):
    annotations = registered_factories(configured, IAnnotations)
    assert annotations == {
        (annotation.IMongoAttributeAnnotatable,):
            annotation.AttributeAnnotations}
    dc = registered_factories(configured, IWriteZopeDublinCore)
    assert list(dc) == [(annotation.IMongoAttributeAnnotatable,)]
    # Trusted: zope.component wraps our factory.
    factory = dc[(annotation.IMongoAttributeAnnotatable,)]
    assert isinstance(factory, TrustedAdapterFactory)
    assert factory.factory is dublincore.ZDCAnnotatableAdapter
    sized = registered_factories(configured, ISized)
    assert set(sized) == {
        (zmongo.interfaces.IMongoContainer,),
        (zope.interface.implementedBy(container.SimpleMongoContainer),)}


@pytest.mark.parametrize('cls', [
    container.MongoContainer, container.IdNamesMongoContainer,
    container.AllItemsMongoContainer, container.SubDocumentMongoContainer,
])
def test_collection_containers_are_protected(configured, cls):
    checker = getCheckerForInstancesOf(cls)
    expected = dict.fromkeys(READ + ('find', 'find_one'), 'zope.View')
    expected.update(dict.fromkeys(WRITE + ('add', 'clear'),
                                  'zope.ManageContent'))
    assert checker.get_permissions == expected
    # Raw access to the collection is for trusted code only.
    for name in ('get_collection', 'raw_find', 'raw_find_one', '_p_jar',
                 '_m_collection'):
        assert name not in checker.get_permissions
    assert checker.set_permissions == {}


def test_simple_container_is_protected(configured):
    checker = getCheckerForInstancesOf(container.SimpleMongoContainer)
    expected = dict.fromkeys(READ, 'zope.View')
    expected.update(dict.fromkeys(WRITE + ('add', 'clear'),
                                  'zope.ManageContent'))
    assert checker.get_permissions == expected


def test_dublin_core_adapter_is_protected(configured):
    checker = getCheckerForInstancesOf(dublincore.ZDCAnnotatableAdapter)
    assert checker.get_permissions['title'] == 'zope.View'
    assert checker.get_permissions['created'] == 'zope.View'
    assert checker.get_permissions['Title'] == 'zope.View'
    assert checker.get_permissions['setQualifiedTitles'] == \
        'zope.ManageContent'
    assert checker.set_permissions['title'] == 'zope.ManageContent'
    assert checker.set_permissions['created'] == 'zope.ManageContent'


def test_annotations_adapter(configured, datamanager, mongo):
    datamanager.root['doc'] = doc = models.Document('Report')
    annotations = IAnnotations(doc)
    assert isinstance(annotations, annotation.AttributeAnnotations)
    annotations['my.app.rating'] = 5
    transaction.commit()
    assert mongo.db.documents.find_one()['my_app_rating'] == 5
    assert IAnnotations(datamanager.root['doc'])['my.app.rating'] == 5


def test_dublin_core_adapter(configured, datamanager, mongo):
    datamanager.root['doc'] = doc = models.Document('Report')
    dc = IWriteZopeDublinCore(doc)
    assert isinstance(dc, dublincore.ZDCAnnotatableAdapter)
    created = datetime.datetime(2024, 5, 17, 8, 30,
                                tzinfo=datetime.timezone.utc)
    dc.title = 'The report'
    dc.created = created
    dc.creators = ('ada', 'grace')
    transaction.commit()
    stored = mongo.db.documents.find_one()['dc']
    assert stored['Title'] == ['The report']
    assert stored['Creator'] == ['ada', 'grace']
    assert 'Date_Created' in stored
    # Read back through the read-only interface too.
    dc = IZopeDublinCore(datamanager.root['doc'])
    assert isinstance(dc, dublincore.ZDCAnnotatableAdapter)
    assert dc.title == 'The report'
    assert dc.created == created
    assert dc.creators == ('ada', 'grace')


def test_mongo_adapters_win_over_the_generic_ones(site_configured,
                                                  datamanager):
    """With zope.annotation, zope.dublincore, zope.container and zope.size
    configured too, Mongo objects get zmongo's adapters and everything
    else keeps the packages' own."""
    datamanager.root['doc'] = doc = models.Document('Report')
    assert isinstance(IAnnotations(doc), annotation.AttributeAnnotations)
    assert isinstance(IZopeDublinCore(doc), dublincore.ZDCAnnotatableAdapter)
    assert isinstance(IWriteZopeDublinCore(doc),
                      dublincore.ZDCAnnotatableAdapter)

    zodb_thing = AnnotatableFolder()
    assert isinstance(IAnnotations(zodb_thing), ZODBAnnotations)
    assert isinstance(IZopeDublinCore(zodb_thing), ZODBDublinCore)
    assert naked_type(ISized(zodb_thing)) is ContainerSized
    assert naked_type(ISized(object())) is DefaultSized
    for kind in KINDS:
        box = Home(kind, datamanager).get()
        assert naked_type(ISized(box)) is size.MongoContainerSized, kind


def fill(kind, datamanager, count):
    home = Home(kind, datamanager)
    box = home.get()
    for i in range(count):
        box.add(container_models.Item('item %d' % i),
                None if kind == 'idnames' else 'k%d' % i)
    transaction.commit()
    return home


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_sized_is_one_count_command(configured, kind, datamanager, mongo,
                                    container_cache):
    home = fill(kind, datamanager, 25)
    box = home.loaded()
    mongo.commands.reset()
    sized = ISized(box)
    assert sized.sizeForSorting() == ('item', 25)
    # One command, a count: no document of an item is read ...
    assert len(mongo.commands) == 1
    name, _, command = mongo.commands.commands[0]
    assert name == 'aggregate'                    # count_documents
    assert '$group' in command['pipeline'][-1]
    # ... and no item is loaded.
    assert not [obj for obj in datamanager._cache.values()
                if isinstance(obj, container_models.Item)]
    assert translate(sized.sizeForDisplay()) == '25 items'


def test_sized_of_the_simple_container_reads_no_item(configured,
                                                     datamanager, mongo):
    home = fill('simple', datamanager, 25)
    box = home.get()                     # a ghost: its document is unread
    mongo.commands.reset()
    assert ISized(box).sizeForSorting() == ('item', 25)
    assert mongo.commands.names == ['find']       # the container's document
    assert mongo.commands.commands[0][2]['find'] == 'zmongo.container.' \
        'SimpleMongoContainer'
    assert all(obj._p_changed is None for obj in datamanager._cache.values()
               if isinstance(obj, container_models.Item))


@pytest.mark.parametrize('kind', KINDS)
def test_sized_of_small_containers(configured, kind, datamanager):
    home = fill(kind, datamanager, 0)
    assert ISized(home.get()).sizeForSorting() == ('item', 0)
    assert translate(ISized(home.get()).sizeForDisplay()) == '0 items'
    home.get().add(container_models.Item('one'),
                   None if kind == 'idnames' else 'one')
    transaction.commit()
    assert ISized(home.get()).sizeForSorting() == ('item', 1)
    assert translate(ISized(home.get()).sizeForDisplay()) == '1 item'


def test_sized_counts_only_its_containers_items(configured, datamanager):
    # Two containers share the collection: each counts its own items.
    first = fill('mongo', datamanager, 3).get()
    second = fill('mongo', datamanager, 4).get()
    everything = container.AllItemsMongoContainer('person')
    datamanager.root['all'] = everything
    transaction.commit()
    assert ISized(first).sizeForSorting() == ('item', 3)
    assert ISized(second).sizeForSorting() == ('item', 4)
    assert ISized(datamanager.root['all']).sizeForSorting() == ('item', 7)


@pytest.fixture
def zodb_folder(site_configured, mongo):
    """A folder in ZODB, in a site that reaches MongoDB by the provider."""
    provider = MongoDataManagerProvider(client=mongo.client,
                                        default_database=mongo.db_name)
    zope.component.provideUtility(provider,
                                  zmongo.interfaces.IMongoDataManagerProvider)
    db = DB(MappingStorage())
    connection = db.open()
    connection.root()['folder'] = BTreeContainer()
    transaction.commit()
    yield connection.root()['folder']
    transaction.abort()
    db.close()


def test_sublocations_adapter_is_registered(configured):
    assert registered_factories(configured, ISublocations) == {
        (zmongo.interfaces.IMongoContainer,):
            sublocations.MongoContainerSublocations}


@pytest.mark.parametrize('cls', [container_models.People,
                                 container_models.IdPeople,
                                 container_models.AllPeople])
def test_a_new_container_joins_a_zodb_folder(cls, zodb_folder, mongo):
    """zope.container dispatches the added event to the sublocations of
    the new container: it has none yet, and nobody asks MongoDB."""
    mongo.commands.reset()
    zodb_folder['people'] = cls()
    assert mongo.commands.names == []
    transaction.commit()
    zodb_folder['people'].add(container_models.Item('Ada'),
                              None if cls is container_models.IdPeople
                              else 'ada')
    transaction.commit()
    assert [item.name for item in zodb_folder['people'].values()] == ['Ada']


@pytest.fixture
def removed_items(zodb_folder):
    removed = []

    @zope.component.adapter(IMongoContained, IObjectRemovedEvent)
    def record(item, event):
        removed.append((item.name, event.object))

    zope.component.provideHandler(record)
    return removed


def test_removing_a_container_tells_its_items_in_one_query(
        zodb_folder, removed_items, mongo):
    zodb_folder['people'] = container_models.People()
    transaction.commit()
    people = zodb_folder['people']
    for name in ('ada', 'bob', 'cid'):
        people[name] = container_models.Item(name.title())
    transaction.commit()
    people = zodb_folder['people']
    mongo.commands.reset()
    del zodb_folder['people']
    assert sorted(name for name, _ in removed_items) == ['Ada', 'Bob', 'Cid']
    assert all(obj is people for _, obj in removed_items)
    # zope.container's generic adapter would ask once per item too.  (The
    # provider's document cache reads the change events of the last
    # commit on the admin database: not a query of the items.)
    assert [name for name, db, _ in mongo.commands.commands
            if db != 'admin'] == ['find']


def test_an_all_items_container_has_no_sublocations(
        zodb_folder, removed_items):
    zodb_folder['people'] = container_models.People()
    zodb_folder['all'] = container_models.AllPeople()
    transaction.commit()
    zodb_folder['people']['ada'] = container_models.Item('Ada')
    transaction.commit()
    assert list(zodb_folder['all'].keys()) == ['ada']
    assert list(ISublocations(zodb_folder['all']).sublocations()) == []
    del zodb_folder['all']
    assert removed_items == []     # Ada still belongs to "people"
    transaction.commit()
    assert list(zodb_folder['people'].keys()) == ['ada']


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_sublocations_of_stored_containers(kind, configured, datamanager):
    home = fill(kind, datamanager, 3)
    found = list(ISublocations(home.get()).sublocations())
    if kind == 'allitems':
        assert found == []
    else:
        assert sorted(item.name for item in found) == [
            'item 0', 'item 1', 'item 2']
        assert all(item.__parent__ is home.get() for item in found)


def test_dublin_core_event_annotators_write_the_document(site_configured,
                                                         datamanager, mongo):
    """zope.dublincore's own subscribers (created/modified times) reach a
    Mongo object's ``dc`` field through zmongo's adapter."""
    datamanager.root['doc'] = doc = models.Document('Report')
    zope.event.notify(ObjectCreatedEvent(doc))
    transaction.commit()
    stored = mongo.db.documents.find_one()['dc']
    assert set(stored) >= {'Date_Created', 'Date_Modified'}
    created = IZopeDublinCore(datamanager.root['doc']).created
    assert created is not None
    transaction.commit()
    doc = datamanager.root['doc']
    doc.title = 'Changed'
    zope.event.notify(ObjectModifiedEvent(doc))
    transaction.commit()
    dc = IZopeDublinCore(datamanager.root['doc'])
    assert dc.created == created
    assert dc.modified >= created
