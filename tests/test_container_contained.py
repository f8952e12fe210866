"""MongoContained: where an item's __name__ and __parent__ come from."""
import persistent
import pytest
import transaction
from zope.interface.verify import verifyObject
from zope.location.interfaces import IContained

from tests import container_models as models
from zmongo import container
from zmongo import interfaces


def test_it_is_contained_but_not_persistent():
    assert not issubclass(container.MongoContained, persistent.Persistent)
    item = models.Item('x')
    assert IContained.providedBy(item)
    assert interfaces.IMongoContained.providedBy(item)
    assert verifyObject(interfaces.IMongoContained, item)
    assert isinstance(models.PersistentFirstItem('y'), persistent.Persistent)
    assert IContained.providedBy(models.PersistentFirstItem('y'))


@pytest.mark.parametrize('klass', [models.Item, models.PersistentFirstItem])
def test_volatile_name_and_parent_change_nothing(klass, datamanager):
    item = klass('x')
    datamanager.insert(item)
    transaction.commit()
    item = datamanager.load(item._p_oid)
    item._p_activate()
    assert (item.__name__, item.__parent__) == (None, None)
    item._v_name = 'simple'
    item._v_parent = parent = object()
    assert item.__name__ == 'simple' and item.__parent__ is parent
    assert item._p_changed is False
    # Assigning goes through persistence's __setattr__ (which flags the
    # object, as in mongopersist), but nothing of it is stored.
    item.__name__ = 'simple2'
    assert item.__name__ == 'simple2'
    assert item.__getstate__() == {'name': 'x'}


def test_name_and_parent_attributes(datamanager):
    people = models.People()
    datamanager.insert(people)
    person = models.Person('Stephan', key='stephan')
    person.parent = people
    assert person.__name__ == 'stephan'
    assert person.__parent__ is people
    # Assigning only changes the volatile view; the attributes stay.
    person.__name__ = 'other'
    person.__parent__ = other = object()
    assert person.__name__ == 'other' and person.key == 'stephan'
    assert person.__parent__ is other and person.parent is people
    person._v_name = person._v_parent = None
    assert person.__name__ == 'stephan'


def test_getter_and_setter_functions_get_the_instance():
    func = models.FuncPerson('f', 'owner')
    assert func.__name__ == 'f' and func.__parent__ == 'owner'
    func.__name__ = 'g'
    func.__parent__ = 'someone'
    assert func.nick == 'g' and func.owner == 'someone'
    assert func.__name__ == 'g'


def test_functions_set_on_the_instance_also_get_it():
    item = models.Item('x')
    item._m_name_getter = lambda obj: obj.name.upper()
    assert item.__name__ == 'X'
    item._m_parent_getter = lambda obj: 'parent of ' + obj.name
    assert item.__parent__ == 'parent of x'


def test_a_mixed_item_finds_its_zodb_parent_with_a_getter():
    from zope.container.btree import BTreeContainer
    mixers = BTreeContainer()

    class Mixer(container.MongoContained, persistent.Persistent):
        _m_name_attr = 'name'
        _m_parent_getter = lambda self: mixers     # noqa: E731

    mixer = Mixer()
    mixer.name = 'mixer'
    assert mixer.__name__ == 'mixer' and mixer.__parent__ is mixers


def test_contained_items_that_store_their_location(datamanager):
    # Plain zope.container items keep __name__/__parent__ as attributes.
    people = models.People()
    datamanager.insert(people)
    people['roy'] = models.SimplePerson('Roy')
    transaction.commit()
    people = datamanager.load(people._p_oid)
    roy = people['roy']
    assert roy.__name__ == 'roy' and roy.__parent__ is people
    del people['roy']
    transaction.commit()
    assert datamanager.load(people._p_oid).keys() == []
