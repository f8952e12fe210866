"""zope.traversing paths and absolute URLs of Mongo items, with the
traversing adapters and the AbsoluteURL views registered by ZCML."""
import pytest
import transaction
import zope.component
from zope.configuration import xmlconfig
# Imported under another name: pytest would try to collect a Test* class.
from zope.publisher.browser import TestRequest as Request
from zope.traversing.api import getPath, getRoot, traverse
from zope.traversing.browser.absoluteurl import absoluteURL

from tests import container_models as models
from tests import traversal_models
from tests.container_support import KINDS
from tests.container_support import container_cache  # noqa: F401
from tests.container_support import registry  # noqa: F401
from zmongo import container

ZCML = '''
<configure xmlns="http://namespaces.zope.org/zope" i18n_domain="zmongo">
  <include package="zope.component" file="meta.zcml" />
  <include package="zope.security" file="meta.zcml" />
  <include package="zope.location" />
  <include package="zope.traversing" />
  <include package="zope.traversing.browser" />
  <include package="zope.container" />
  <include package="zmongo" />
</configure>
'''

#: Names that need care: a dot, a space, a character URLs quote.
NAMES = ('ada', 'index.html', 'a b', 'price$')
QUOTED = {'ada': 'ada', 'index.html': 'index.html', 'a b': 'a%20b',
          'price$': 'price%24'}

#: The item class whose documents lead back to a container of each kind.
ITEM_CLASSES = {
    'mongo': models.Person,
    'idnames': traversal_models.IdPerson,
    'allitems': models.Item,
    'subdocument': models.Item,
    'simple': models.SimplePerson,
}


@pytest.fixture
def configured(registry):
    xmlconfig.string(ZCML)


def url(obj):
    return absoluteURL(obj, Request())


def new_container(kind):
    collection = kind + '_items'
    return {
        'mongo': container.MongoContainer,
        'idnames': container.IdNamesMongoContainer,
        'allitems': container.AllItemsMongoContainer,
        'subdocument': container.SubDocumentMongoContainer,
        'simple': lambda collection: container.SimpleMongoContainer(),
    }[kind](collection)


@pytest.fixture
def site(configured, datamanager, container_cache):
    """site (IRoot, in MongoDB) / <kind> / NAMES, for every kind."""
    datamanager.root['site'] = site = models.Site()
    for kind in KINDS:
        site[kind] = new_container(kind)
    transaction.commit()
    site = datamanager.root['site']
    for kind in KINDS:
        for name in NAMES:
            site[kind][name] = ITEM_CLASSES[kind](name.title())
    transaction.commit()
    return datamanager


@pytest.mark.parametrize('kind', KINDS)
def test_items_through_their_container(kind, site):
    root = site.root['site']
    box = root[kind]
    assert getPath(box) == '/' + kind
    assert url(root) == 'http://127.0.0.1'
    assert url(box) == 'http://127.0.0.1/' + kind
    for name in NAMES:
        item = box[name]
        assert getPath(item) == '/%s/%s' % (kind, name)
        assert getRoot(item) is root
        assert url(item) == 'http://127.0.0.1/%s/%s' % (kind, QUOTED[name])
        assert traverse(root, '%s/%s' % (kind, name)) is item
    # The absolute_url view, by name, as templates use it.
    view = zope.component.getMultiAdapter(
        (box['a b'], Request()), name='absolute_url')
    assert str(view) == 'http://127.0.0.1/%s/a%%20b' % kind
    assert [crumb['name'] for crumb in view.breadcrumbs()] == [
        '', kind, 'a b']
    assert sorted(getPath(item) for item in box.values()) == sorted(
        '/%s/%s' % (kind, name) for name in NAMES)
    assert sorted(url(item) for _, item in box.items()) == sorted(
        'http://127.0.0.1/%s/%s' % (kind, QUOTED[name]) for name in NAMES)


@pytest.mark.parametrize('kind', ['mongo', 'idnames', 'allitems',
                                  'subdocument'])
def test_items_found_by_the_container(kind, site):
    box = site.root['site'][kind]
    found = box.find_one({'name': 'A B'})
    assert getPath(found) == '/%s/a b' % kind
    assert url(found) == 'http://127.0.0.1/%s/a%%20b' % kind
    assert sorted(getPath(item) for item in box.find()) == sorted(
        '/%s/%s' % (kind, name) for name in NAMES)


@pytest.mark.parametrize('kind', ['mongo', 'idnames', 'simple'])
def test_items_loaded_straight_from_a_query(kind, site, mongo):
    """No container involved: the item's document leads back to it."""
    collection = {'mongo': 'mongo_items', 'idnames': 'idnames_items',
                  'simple': 'person'}[kind]
    coll = site.get_collection(mongo.db_name, collection)
    for name in NAMES:
        item = coll.find_one_object({'name': name.title()})
        assert item.__name__ == name
        assert getPath(item) == '/%s/%s' % (kind, name)
        assert url(item) == 'http://127.0.0.1/%s/%s' % (kind, QUOTED[name])
        assert item._p_changed is False


def test_a_container_that_is_an_item(configured, datamanager, mongo):
    """site / campaigns / spring (an item and a container) / ada."""
    datamanager.root['site'] = site = models.Site()
    site['campaigns'] = models.Campaigns()
    transaction.commit()
    campaigns = datamanager.root['site']['campaigns']
    campaigns['spring 24'] = traversal_models.LocatedCampaign('Spring')
    transaction.commit()
    datamanager.root['site']['campaigns']['spring 24']['ada'] = \
        models.Person('Ada')
    transaction.commit()

    root = datamanager.root['site']
    ada = root['campaigns']['spring 24']['ada']
    assert getPath(ada) == '/campaigns/spring 24/ada'
    assert url(ada) == 'http://127.0.0.1/campaigns/spring%2024/ada'
    assert traverse(root, 'campaigns/spring 24/ada') is ada
    transaction.commit()
    # Straight from a query: the item's parent is the campaign, whose own
    # document names its container.
    coll = datamanager.get_collection(mongo.db_name, 'person')
    ada = coll.find_one_object({'name': 'Ada'})
    assert isinstance(ada.__parent__, traversal_models.LocatedCampaign)
    assert getPath(ada) == '/campaigns/spring 24/ada'
    assert url(ada) == 'http://127.0.0.1/campaigns/spring%2024/ada'


def test_a_container_inside_an_items_document(configured, datamanager,
                                              mongo, container_cache):
    """site / projects / zmongo (an item) / tasks (in its document) / docs
    """
    datamanager.root['site'] = site = models.Site()
    site['projects'] = container.MongoContainer('projects')
    transaction.commit()
    datamanager.root['site']['projects']['zmongo'] = \
        traversal_models.Project('zmongo')
    transaction.commit()
    project = datamanager.root['site']['projects']['zmongo']
    project.tasks['docs'] = models.Item('Write the docs')
    transaction.commit()
    stored = mongo.db.projects.find_one()
    assert stored['tasks']['_py_persistent_type'] == \
        'tests.traversal_models.Tasks'

    root = datamanager.root['site']
    task = root['projects']['zmongo'].tasks['docs']
    assert getPath(task) == '/projects/zmongo/tasks/docs'
    assert url(task) == 'http://127.0.0.1/projects/zmongo/tasks/docs'
    assert traverse(root, 'projects/zmongo/tasks/docs') is task
    transaction.commit()
    # The project straight from a query: its tasks still know the way.
    coll = datamanager.get_collection(mongo.db_name, 'projects')
    project = coll.find_one_object({'name': 'zmongo'})
    assert getPath(project.tasks) == '/projects/zmongo/tasks'
    assert [getPath(t) for t in project.tasks.values()] == [
        '/projects/zmongo/tasks/docs']
    assert url(project.tasks['docs']) == \
        'http://127.0.0.1/projects/zmongo/tasks/docs'
