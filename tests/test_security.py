"""Containers and items behind zope.security proxies.

Real configuration (zmongo's configure.zcml, the principal registry and
zope.securitypolicy's ZopeSecurityPolicy, all loaded from ZCML), a real
interaction per principal, and the real server behind the containers.
"""
import contextlib

import bson
import pytest
import transaction
import zope.interface
from zope.annotation.interfaces import IAnnotations
from zope.configuration import xmlconfig
from zope.dublincore.interfaces import IZopeDublinCore
from zope.principalregistry.principalregistry import principalRegistry
from zope.security.checker import ProxyFactory
from zope.security.interfaces import ForbiddenAttribute
from zope.security.interfaces import Unauthorized
from zope.security.management import endInteraction
from zope.security.management import newInteraction
from zope.security.proxy import removeSecurityProxy
from zope.security.testing import Participation
from zope.securitypolicy.interfaces import IPrincipalPermissionManager
from zope.size.interfaces import ISized

from tests import container_models
from tests import models
from tests.container_support import COLLECTION_KINDS, KINDS, Home
from tests.container_support import registry  # noqa: F401
from zmongo import container
from zmongo.annotation import IMongoAttributeAnnotatable

ZCML = '''
<configure xmlns="http://namespaces.zope.org/zope" i18n_domain="zmongo">
  <include package="zope.component" file="meta.zcml" />
  <include package="zope.security" file="meta.zcml" />
  <include package="zope.securitypolicy" file="meta.zcml" />
  <include package="zope.principalregistry" file="meta.zcml" />
  <include package="zope.principalregistry" />

  <include package="zmongo" />
  %(extra)s

  <securityPolicy
      component="zope.securitypolicy.zopepolicy.ZopeSecurityPolicy" />

  <principal id="test.reader" title="Reader" login="reader" password="r" />
  <principal id="test.editor" title="Editor" login="editor" password="e" />
  <principal id="test.stranger" title="Stranger" login="stranger"
             password="s" />

  <role id="test.Reader" title="Reader" />
  <role id="test.Editor" title="Editor" />
  <grant role="test.Reader" permission="zope.View" />
  <grant role="test.Editor" permission="zope.View" />
  <grant role="test.Editor" permission="zope.ManageContent" />
  <grant role="test.Reader" principal="test.reader" />
  <grant role="test.Editor" principal="test.editor" />

  <!-- The application's own classes: items, and container subclasses. -->
  <class class="tests.container_models.Item">
    <require permission="zope.View" attributes="name" />
    <require permission="zope.ManageContent" set_attributes="name" />
  </class>
  <class class="tests.models.Document">
    <require permission="zope.View" attributes="title" />
  </class>
  <class class="tests.container_models.People">
    <require like_class="zmongo.container.MongoContainer" />
  </class>
  <class class="tests.test_security.LocallyGrantedPeople">
    <require like_class="zmongo.container.MongoContainer" />
  </class>
</configure>
'''


@zope.interface.implementer(IMongoAttributeAnnotatable)
class LocallyGrantedPeople(container.MongoContainer):
    """A container whose local grants are kept in its own document."""
    _m_collection = 'person'


@pytest.fixture
def secured(registry):
    xmlconfig.string(ZCML % {'extra': ''})
    yield
    endInteraction()


@pytest.fixture
def secured_with_local_grants(registry):
    # zope.securitypolicy's adapters store local grants in annotations.
    xmlconfig.string(ZCML % {
        'extra': '<include package="zope.securitypolicy" />'})
    yield
    endInteraction()


@contextlib.contextmanager
def acting_as(principal_id):
    """A real interaction of a principal of the principal registry."""
    newInteraction(Participation(principalRegistry.getPrincipal(principal_id)))
    try:
        yield
    finally:
        endInteraction()


def is_proxied(obj):
    return removeSecurityProxy(obj) is not obj


def fill(kind, datamanager, count=3):
    """A committed container of ``kind`` with ``count`` items; its names."""
    home = Home(kind, datamanager)
    box = home.get()
    for i in range(count):
        box.add(container_models.Item('item %d' % i),
                None if kind == 'idnames' else 'k%d' % i)
    transaction.commit()
    names = sorted(home.get().keys())
    transaction.commit()
    return home, names


def stored_names(kind, mongo):
    """The ``name`` of every item document (simple containers keep their
    items in the collection of the item class)."""
    coll = 'tests.container_models.Item' if kind == 'simple' else 'person'
    return sorted(doc['name'] for doc in mongo.db[coll].find())


def new_item_name(kind):
    """A name an item may be added under (id-named: an ObjectId's)."""
    return str(bson.ObjectId()) if kind == 'idnames' else 'new'


@pytest.mark.parametrize('kind', KINDS)
def test_zope_view_reads_containers_and_items(kind, secured, datamanager):
    home, names = fill(kind, datamanager)
    box = ProxyFactory(home.get())
    with acting_as('test.reader'):
        assert sorted(box.keys()) == names
        assert sorted(box) == names
        assert len(box) == 3
        assert names[0] in box
        item = box[names[0]]
        assert is_proxied(item)
        assert item.name.startswith('item ')
        assert item.__name__ == names[0]
        assert removeSecurityProxy(item.__parent__) is \
            removeSecurityProxy(box)
        assert box.get('missing') is None
        assert sorted(v.name for v in box.values()) == [
            'item 0', 'item 1', 'item 2']
        assert all(is_proxied(v) for _, v in box.items())
        assert ISized(box).sizeForSorting() == ('item', 3)
        assert ProxyFactory(ISized(box)).sizeForSorting() == ('item', 3)


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_zope_view_queries(kind, secured, datamanager):
    home, names = fill(kind, datamanager)
    box = ProxyFactory(home.get())
    with acting_as('test.reader'):
        found = box.find_one({'name': 'item 1'})
        assert is_proxied(found)
        assert found.name == 'item 1'
        assert sorted(item.name for item in box.find()) == [
            'item 0', 'item 1', 'item 2']


@pytest.mark.parametrize('kind', KINDS)
def test_reading_is_not_changing(kind, secured, datamanager, mongo):
    home, names = fill(kind, datamanager)
    box = ProxyFactory(home.get())
    before = stored_names(kind, mongo)
    assert before == ['item 0', 'item 1', 'item 2']
    with acting_as('test.reader'):
        item = box[names[0]]
        with pytest.raises(Unauthorized):
            box[new_item_name(kind)] = \
                container_models.Item('new')
        with pytest.raises(Unauthorized):
            box.add(container_models.Item('new'), 'other')
        with pytest.raises(Unauthorized):
            del box[names[0]]
        with pytest.raises(Unauthorized):
            box.clear()
        with pytest.raises(Unauthorized):
            item.name = 'changed'
        # Never declared: refused to everybody behind a proxy.
        with pytest.raises(ForbiddenAttribute):
            box.get_collection
        with pytest.raises(ForbiddenAttribute):
            box._p_jar
        with pytest.raises(ForbiddenAttribute):
            item._p_jar
    transaction.commit()
    assert stored_names(kind, mongo) == before
    assert sorted(home.get().keys()) == names


@pytest.mark.parametrize('kind', COLLECTION_KINDS)
def test_raw_access_is_for_trusted_code_only(kind, secured, datamanager):
    home, _ = fill(kind, datamanager)
    box = ProxyFactory(home.get())
    with acting_as('test.editor'):
        for name in ('raw_find', 'raw_find_one', 'get_collection'):
            with pytest.raises(ForbiddenAttribute):
                getattr(box, name)


@pytest.mark.parametrize('kind', KINDS)
def test_zope_managecontent_adds_and_deletes(kind, secured, datamanager,
                                             mongo):
    home, names = fill(kind, datamanager)
    box = ProxyFactory(home.get())
    new_name = new_item_name(kind)
    with acting_as('test.editor'):
        box[new_name] = container_models.Item('added')
        if kind == 'idnames':
            box.add(container_models.Item('added too'))
        else:
            box.add(container_models.Item('added too'), 'too')
        del box[names[0]]
        box[names[1]].name = 'renamed'
        assert len(box) == 4
    transaction.commit()
    box = home.get()
    assert box[new_name].name == 'added'
    assert names[0] not in box
    assert sorted(item.name for item in box.values()) == [
        'added', 'added too', 'item 2', 'renamed']
    assert stored_names(kind, mongo) == [
        'added', 'added too', 'item 2', 'renamed']


@pytest.mark.parametrize('kind', KINDS)
def test_nobody_else_reads(kind, secured, datamanager):
    home, names = fill(kind, datamanager)
    box = ProxyFactory(home.get())
    with acting_as('test.stranger'):
        for attempt in (lambda: box[names[0]], lambda: box.keys(),
                        lambda: list(box), lambda: len(box),
                        lambda: names[0] in box, lambda: box.items(),
                        lambda: box.values(), lambda: box.get(names[0]),
                        lambda: ISized(box).sizeForSorting()):
            with pytest.raises(Unauthorized):
                attempt()
        if kind != 'simple':
            with pytest.raises(Unauthorized):
                box.find()
            with pytest.raises(Unauthorized):
                box.find_one({'name': 'item 0'})
        with pytest.raises(Unauthorized):
            box['x'] = container_models.Item('x')
    # An item handed out to someone else is no more readable.
    with acting_as('test.reader'):
        item = box[names[0]]
    with acting_as('test.stranger'):
        with pytest.raises(Unauthorized):
            item.name


def test_subclasses_need_their_own_declarations(secured, datamanager):
    """Checkers belong to a class: a container subclass is protected by
    declaring it like_class; one nobody declared is closed."""
    datamanager.root['people'] = container_models.People()
    datamanager.root['keeping'] = container_models.KeepingPeople()
    transaction.commit()
    datamanager.root['people']['ada'] = container_models.Item('Ada')
    transaction.commit()
    people = ProxyFactory(datamanager.root['people'])
    keeping = ProxyFactory(datamanager.root['keeping'])
    with acting_as('test.editor'):
        assert people['ada'].name == 'Ada'
        people['bob'] = container_models.Item('Bob')
        with pytest.raises(ForbiddenAttribute):
            keeping.keys()
        with pytest.raises(ForbiddenAttribute):
            keeping['bob'] = container_models.Item('Bob')
    with acting_as('test.reader'):
        with pytest.raises(Unauthorized):
            people['cid'] = container_models.Item('Cid')
    transaction.commit()
    assert sorted(datamanager.root['people'].keys()) == ['ada', 'bob']


def test_dublin_core_behind_proxies(secured, datamanager, mongo):
    datamanager.root['doc'] = models.Document('Report')
    transaction.commit()
    doc = ProxyFactory(datamanager.root['doc'])
    with acting_as('test.editor'):
        dc = IZopeDublinCore(doc)
        assert is_proxied(dc)
        dc.title = 'The report'
        assert doc.title == 'Report'
    transaction.commit()
    assert mongo.db.documents.find_one()['dc']['Title'] == ['The report']
    doc = ProxyFactory(datamanager.root['doc'])
    with acting_as('test.reader'):
        dc = IZopeDublinCore(doc)
        assert dc.title == 'The report'
        with pytest.raises(Unauthorized):
            dc.title = 'Changed'
        with pytest.raises(Unauthorized):
            dc.setQualifiedTitles([])
        # Annotations are for trusted code (as with zope.annotation's):
        # behind a proxy they show nothing and take nothing.
        annotations = IAnnotations(doc)
        assert annotations.get('dc') is None
        assert list(annotations) == []
        with pytest.raises(ForbiddenAttribute):
            annotations['my.note'] = 'sneaked in'
    with acting_as('test.stranger'):
        with pytest.raises(Unauthorized):
            IZopeDublinCore(doc).title
        with pytest.raises(Unauthorized):
            doc.title
    transaction.commit()
    assert mongo.db.documents.find_one()['dc']['Title'] == ['The report']


def test_local_grants_kept_in_the_document(secured_with_local_grants,
                                           datamanager, mongo):
    """zope.securitypolicy's local grants, stored through zmongo's
    annotations, are honoured after a reload."""
    datamanager.root['open'] = LocallyGrantedPeople()
    datamanager.root['closed'] = LocallyGrantedPeople()
    transaction.commit()
    IPrincipalPermissionManager(datamanager.root['open']) \
        .grantPermissionToPrincipal('zope.ManageContent', 'test.reader')
    transaction.commit()
    stored = mongo.db[
        'tests.test_security.LocallyGrantedPeople'].find_one(
            {'_id': datamanager.root['open']._p_oid.id})
    assert stored['_m_annotation_keys'] == [
        'zopel_app_security_AnnotationPrincipalPermissionManager']
    open_box = ProxyFactory(datamanager.root['open'])
    closed_box = ProxyFactory(datamanager.root['closed'])
    with acting_as('test.reader'):
        open_box['ada'] = container_models.Item('Ada')
        with pytest.raises(Unauthorized):
            closed_box['ada'] = container_models.Item('Ada')
    with acting_as('test.stranger'):
        with pytest.raises(Unauthorized):
            open_box['bob'] = container_models.Item('Bob')
    transaction.commit()
    assert list(datamanager.root['open'].keys()) == ['ada']
    assert list(datamanager.root['closed'].keys()) == []
