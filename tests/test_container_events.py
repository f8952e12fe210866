"""Events: exactly those zope.container's setitem/uncontained fire, on every
path, for every container class."""
import pytest
import transaction
from zope.container.contained import ContainerModifiedEvent
from zope.container.sample import SampleContainer
from zope.lifecycleevent import ObjectAddedEvent
from zope.lifecycleevent import ObjectMovedEvent
from zope.lifecycleevent import ObjectRemovedEvent

from tests import container_models as models
from tests.container_support import KINDS, Home
from tests.container_support import container_cache  # noqa: F401
from tests.container_support import events, registry  # noqa: F401


def describe(events, **names):
    """Events as comparable tuples; objects by the names given."""
    def name(obj):
        for key, value in names.items():
            if value is obj:
                return key
        return obj
    out = []
    for event in events:
        row = (type(event).__name__, name(event.object))
        if isinstance(event, ObjectMovedEvent):
            row += (name(event.oldParent), event.oldName,
                    name(event.newParent), event.newName)
        out.append(row)
    return out


ADDED = [('ObjectAddedEvent', 'item', None, None, 'c', 'x'),
         ('ContainerModifiedEvent', 'c')]
REMOVED = [('ObjectRemovedEvent', 'item', 'c', 'x', None, None),
           ('ContainerModifiedEvent', 'c')]


def test_the_reference_is_zope_containers_own(events):
    # The expectations below are what a SampleContainer fires.
    c, item = SampleContainer(), models.Item('x')
    c['x'] = item
    assert describe(events, c=c, item=item) == ADDED
    del events[:]
    del c['x']
    assert describe(events, c=c, item=item) == REMOVED


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('path', ['key', 'none', 'add'])
def test_adding_fires_added_and_modified(
        kind, path, datamanager, events, container_cache):
    c = Home(kind, datamanager).get()
    item = models.Item('X', key='x')
    if path == 'key':
        c['x'] = item
    elif path == 'none':
        c[None] = item
    else:
        c.add(item)
    name = item.__name__
    if path == 'key' or kind not in ('idnames', 'simple'):
        assert name == 'x'
    expected = [('ObjectAddedEvent', 'item', None, None, 'c', name),
                ('ContainerModifiedEvent', 'c')]
    assert describe(events, c=c, item=item) == expected
    assert isinstance(events[0], ObjectAddedEvent)
    assert isinstance(events[1], ContainerModifiedEvent)


@pytest.mark.parametrize('kind', KINDS)
def test_removing_fires_removed_and_modified(
        kind, datamanager, events, container_cache):
    home = Home(kind, datamanager)
    home.get()['x'] = models.Item('X')
    transaction.commit()
    del events[:]
    c = home.get()
    item = c['x']
    del c['x']
    assert describe(events, c=c, item=item) == REMOVED
    assert isinstance(events[0], ObjectRemovedEvent)


@pytest.mark.parametrize('kind', KINDS)
def test_clear_fires_removed_for_each_item(
        kind, datamanager, events, container_cache):
    home = Home(kind, datamanager)
    for name in ('a', 'b'):
        home.get()[name] = models.Item(name)
    transaction.commit()
    del events[:]
    c = home.get()
    a, b = c['a'], c['b']
    c.clear()
    rows = describe(events, c=c, a=a, b=b)
    assert sorted(rows[0::2]) == [
        ('ObjectRemovedEvent', 'a', 'c', 'a', None, None),
        ('ObjectRemovedEvent', 'b', 'c', 'b', None, None)]
    assert rows[1::2] == [('ContainerModifiedEvent', 'c')] * 2


@pytest.mark.parametrize('kind', KINDS)
def test_no_events_when_nothing_changes(kind, datamanager, events):
    c = Home(kind, datamanager).get()
    item = models.Item('X')
    c['x'] = item
    del events[:]
    c['x'] = item                        # the same item again
    with pytest.raises(KeyError):
        c['x'] = models.Item('other')    # a name already used
    assert events == []


@pytest.mark.parametrize('kind', ['mongo', 'subdocument', 'simple'])
def test_moving_fires_moved(kind, datamanager, events, container_cache):
    source = Home(kind, datamanager).get()
    target = Home(kind, datamanager).get()
    source['x'] = item = models.Item('X')
    del events[:]
    target['y'] = item
    assert describe(events, source=source, target=target, item=item) == [
        ('ObjectMovedEvent', 'item', 'source', 'x', 'target', 'y'),
        ('ContainerModifiedEvent', 'target')]
    assert target['y'] is item


@pytest.mark.parametrize('kind', KINDS)
def test_values_that_need_a_proxy(kind, datamanager, events):
    c = Home(kind, datamanager).get()
    c['foo'] = 'FOO'
    assert [type(e).__name__ for e in events] == [
        'ObjectAddedEvent', 'ContainerModifiedEvent']
    assert events[0].object == 'FOO'
    assert events[0].object is c['foo']
    del events[:]
    del c['foo']
    assert [type(e).__name__ for e in events] == [
        'ObjectRemovedEvent', 'ContainerModifiedEvent']
    assert events[0].oldName == 'foo' and events[0].oldParent is c


def test_an_exception_in_a_subscriber_leaves_the_item(datamanager, registry):
    import zope.component
    from zope.lifecycleevent.interfaces import IObjectAddedEvent

    @zope.component.adapter(IObjectAddedEvent)
    def refuse(event):
        raise RuntimeError('no')

    zope.component.provideHandler(refuse)
    c = Home('mongo', datamanager).get()
    with pytest.raises(RuntimeError):
        c['x'] = models.Item('X')
    assert c.keys() == ['x']
