"""Items know where they live, however they were loaded: zope.traversing's
getPath, traverse and absoluteURL work for them."""
import pytest
import transaction
import zope.interface
import zope.traversing.testing
from ZODB import DB
from ZODB.MappingStorage import MappingStorage
from zope.container.btree import BTreeContainer
from zope.location.interfaces import IRoot
from zope.publisher.browser import TestRequest as Request
from zope.traversing.api import getPath, getRoot, traverse
from zope.traversing.browser.absoluteurl import absoluteURL

from tests import container_models as models
from tests.container_support import container_cache  # noqa: F401
from tests.container_support import registry  # noqa: F401
from zmongo import interfaces
from zmongo.provider import MongoDataManagerProvider


@pytest.fixture
def traversing(registry):
    zope.traversing.testing.setUp()


@pytest.fixture
def site(datamanager, traversing, container_cache):
    """site (IRoot) / people / {stephan, index.html, price$}, committed."""
    datamanager.root['site'] = site = models.Site()
    site['people'] = people = models.People()
    people['stephan'] = models.Person('Stephan')
    people['index.html'] = models.Person('Index')
    people['price$'] = models.Person('Price')
    people['func'] = models.FuncPerson()
    transaction.commit()
    return datamanager


def chain(obj):
    names = []
    while obj is not None:
        names.append(obj.__name__)
        obj = obj.__parent__
    return names


def test_items_loaded_through_the_container(site):
    people = site.root['site']['people']
    stephan = people['stephan']
    assert chain(stephan) == ['stephan', 'people', None]
    assert getRoot(stephan) is site.root['site']
    assert getPath(stephan) == '/people/stephan'
    assert getPath(people['index.html']) == '/people/index.html'
    assert [getPath(item) for _, item in sorted(people.items())] == [
        '/people/func', '/people/index.html', '/people/price$',
        '/people/stephan']
    assert absoluteURL(stephan, Request()) == \
        'http://127.0.0.1/people/stephan'
    assert absoluteURL(people['price$'], Request()) == \
        'http://127.0.0.1/people/price%24'
    assert traverse(site.root['site'], 'people/index.html') is \
        people['index.html']


def test_items_loaded_through_find(site):
    people = site.root['site']['people']
    stephan = people.find_one({'name': 'Stephan'})
    assert getPath(stephan) == '/people/stephan'
    found = {getPath(item) for item in people.find()}
    assert found == {'/people/stephan', '/people/index.html',
                     '/people/price$', '/people/func'}
    assert getPath(people.find_one(stephan._p_oid.id)) == '/people/stephan'


def test_items_loaded_straight_from_a_query(site, mongo):
    # No container involved: the item's own document says where it is.
    coll = site.get_collection(mongo.db_name, 'person')
    stephan = coll.find_one_object({'name': 'Stephan'})
    assert stephan.__name__ == 'stephan'
    assert isinstance(stephan.__parent__, models.People)
    assert getPath(stephan) == '/people/stephan'
    assert absoluteURL(stephan, Request()) == \
        'http://127.0.0.1/people/stephan'
    index = site.load(coll.find_one_object({'name': 'Index'})._p_oid)
    assert getPath(index) == '/people/index.html'
    assert stephan._p_changed is False


def test_getter_and_setter_functions(site, mongo):
    coll = site.get_collection(mongo.db_name, 'person')
    func = coll.find_one_object({'nick': 'func'})
    assert func.__name__ == 'func'
    assert getPath(func) == '/people/func'
    func.__name__ = 'renamed'            # the setter writes the attribute
    assert func.nick == 'renamed' and func._p_changed


def test_items_of_a_container_in_zodb(mongo, registry, traversing,
                                      container_cache):
    provider = MongoDataManagerProvider(client=mongo.client,
                                        default_database=mongo.db_name)
    zope.component.provideUtility(provider,
                                  interfaces.IMongoDataManagerProvider)
    db = DB(MappingStorage())
    conn = db.open()
    root = conn.root()
    root['app'] = app = BTreeContainer()
    zope.interface.alsoProvides(app, IRoot)
    app['people'] = models.People()
    transaction.commit()
    app['people']['stephan'] = models.Person('Stephan')
    transaction.commit()
    people = db.open().root()['app']['people']
    assert getPath(people['stephan']) == '/people/stephan'
    assert getPath(people.find_one({'name': 'Stephan'})) == '/people/stephan'
    assert [getPath(v) for v in people.values()] == ['/people/stephan']
    assert absoluteURL(people['stephan'], Request()) == \
        'http://127.0.0.1/people/stephan'
    transaction.abort()
    db.close()
