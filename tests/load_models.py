"""Classes for tests/test_load_from_document.py (trusted by that module)."""
import persistent


class Plain(persistent.Persistent):
    """Loaded straight from its document (``Persistent.__setstate__``)."""

    def __init__(self, name):
        self.name = name


class OwnSetstate(persistent.Persistent):
    """Its ``__setstate__`` sets an attribute: it is loaded as a ghost is
    (what it sets is no change)."""

    def __setstate__(self, state):
        super().__setstate__(state)
        self.derived = 'from %s' % state.get('name')
