"""Annotations and Dublin Core stored in the object's document."""
import datetime

import pytest
import transaction
import zope.component
from zope.annotation.interfaces import IAnnotations
from zope.dublincore.interfaces import IWriteZopeDublinCore
from zope.interface.verify import verifyObject

from tests import models
from zmongo import annotation
from zmongo import dublincore


@pytest.fixture
def adapters():
    gsm = zope.component.getGlobalSiteManager()
    gsm.registerAdapter(annotation.AttributeAnnotations)
    gsm.registerAdapter(dublincore.ZDCAnnotatableAdapter,
                        (annotation.IMongoAttributeAnnotatable,),
                        IWriteZopeDublinCore)
    yield
    gsm.unregisterAdapter(annotation.AttributeAnnotations)
    gsm.unregisterAdapter(dublincore.ZDCAnnotatableAdapter,
                          (annotation.IMongoAttributeAnnotatable,),
                          IWriteZopeDublinCore)


def stored(mongo):
    return mongo.db.documents.find_one()


def test_annotations_are_fields_with_dots_replaced(datamanager, mongo,
                                                    adapters):
    datamanager.root['doc'] = doc = models.Document('Report')
    annotations = IAnnotations(doc)
    assert verifyObject(IAnnotations, annotations)
    annotations['my.app.rating'] = {'stars': 5}
    transaction.commit()
    assert stored(mongo)['my_app_rating'] == {'stars': 5}
    assert stored(mongo)[annotation.KEYS_FIELD] == ['my_app_rating']
    annotations = IAnnotations(datamanager.root['doc'])
    assert annotations['my.app.rating'] == {'stars': 5}
    assert list(annotations) == ['my_app_rating']
    assert len(annotations) == 1
    assert annotations.get('missing') is None
    with pytest.raises(KeyError):
        annotations['missing']


def test_deleting_an_annotation(datamanager, mongo, adapters):
    datamanager.root['doc'] = doc = models.Document('Report')
    IAnnotations(doc)['a.b'] = 1
    transaction.commit()
    del IAnnotations(datamanager.root['doc'])['a.b']
    transaction.commit()
    assert 'a_b' not in stored(mongo)
    assert stored(mongo)[annotation.KEYS_FIELD] == []
    with pytest.raises(KeyError):
        del IAnnotations(datamanager.root['doc'])['a.b']


def test_annotation_keys_must_be_strings(datamanager, adapters):
    doc = models.Document('Report')
    with pytest.raises(TypeError, match='annotation keys are str'):
        IAnnotations(doc)[42] = 1


def test_dublin_core_in_the_dc_field(datamanager, mongo, adapters):
    datamanager.root['doc'] = doc = models.Document('Report')
    dc = IWriteZopeDublinCore(doc)
    created = datetime.datetime(2026, 11, 24, 12, 30,
                                tzinfo=datetime.timezone.utc)
    dc.created = created
    dc.title = 'A report'
    dc.creators = ('ada', 'bob')
    transaction.commit()
    dc_field = stored(mongo)['dc']
    assert set(dc_field) == {'Date_Created', 'Title', 'Creator'}
    assert dc_field['Title'] == ['A report']
    dc = IWriteZopeDublinCore(datamanager.root['doc'])
    assert dc.title == 'A report'
    assert dc.creators == ('ada', 'bob')
    assert dc.created == created
    # Queryable by a plain field name.
    assert mongo.db.documents.count_documents({'dc.Title': 'A report'}) == 1


def test_reading_dublin_core_does_not_mark_changed(datamanager, adapters):
    datamanager.root['doc'] = doc = models.Document('Report')
    IWriteZopeDublinCore(doc).title = 'T'
    transaction.commit()
    loaded = datamanager.root['doc']
    assert IWriteZopeDublinCore(loaded).title == 'T'
    assert loaded._p_changed is False
