"""The identity map: objects held weakly, and read safely while the
garbage collector frees some of them."""
import gc

import persistent

from zmongo._identitymap import IdentityMap


class Thing(persistent.Persistent):
    pass


class Slotted(persistent.Persistent):
    __slots__ = ('x',)


def test_objects_are_held_weakly():
    ids = IdentityMap()
    kept = Thing()
    ids['a'] = kept
    ids['b'] = Thing()
    gc.collect()
    assert ids.get('a') is kept
    assert ids.get('b') is None
    assert ids.take_collected() == ['b']
    assert ids.take_collected() == ()


def test_objects_without_weakref_are_held_strongly():
    ids = IdentityMap()
    ids['s'] = Slotted()
    gc.collect()
    assert isinstance(ids.get('s'), Slotted)


def test_reading_while_the_collector_frees_objects():
    """Objects in reference cycles are freed by the collector, which can
    run while ``items()`` builds its list (every allocation may start it):
    their callbacks must not change what is being read."""
    ids = IdentityMap()
    threshold = gc.get_threshold()
    gc.collect()
    gc.disable()
    try:
        keep = []
        for i in range(5000):
            obj = Thing()
            obj.cycle = obj           # freed only by the collector
            ids[i] = obj
            keep.append(obj)
        del obj
        gc.collect(0)                 # now in the older generation
        del keep                      # unreachable, not yet freed
        # The next collections of that generation start after a few
        # allocations: inside ``items()``, while it reads the map.
        gc.set_threshold(10, 1, 1)
        gc.enable()
        ids.items()
    finally:
        gc.enable()
        gc.set_threshold(*threshold)
    gc.collect()
    assert len(ids) == 0
