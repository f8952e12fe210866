"""Set-up for the documentation in ``docs/*.rst``, run as doctests.

Every ``.rst`` doctest gets, in its globals:

* ``conn`` -- a ``pymongo.MongoClient`` connected to the test server
  (``ZMONGO_TEST_URI`` or the embedded server, see :mod:`zmongo.testing`);
* ``DBNAME`` -- the name of a database of its own, dropped afterwards;
* ``mongo`` -- the :class:`zmongo.testing.MongoFixture` behind both.

Documents store classes by dotted path, so a class defined inside a doctest
must be importable while the doctest runs.  The doctest's globals get
``__name__ = 'zmongo_docs'`` (classes defined there have
``__module__ == 'zmongo_docs'``) and ``sys.modules['zmongo_docs']`` is a
module whose attributes are looked up in those globals, so
``zmongo_docs.Person`` resolves to the ``Person`` the doctest defined.  The
module is removed again when the doctest ends.

Each document runs alone or after any other, in any order: it starts with
an empty component registry and ends by emptying it again (a document that
configures a site need not undo it), and ``zope.event.subscribers`` holds
``zope.component``'s dispatcher before each document starts and exactly
what it held then after it ends.  (The dispatcher joins the list when
``zope.component.event`` is first imported -- by whichever document
imports it first -- so a document that put the list back as it found it
could otherwise drop the dispatcher for every later one, and ZCML event
subscribers would silently stop firing.)
"""
import sys
import types

import pytest
import transaction
import zope.component.event  # noqa: F401 (adds its dispatcher, see above)
import zope.component.testing
import zope.event

from zmongo.testing import MongoFixture
from zmongo.testing import trusting

#: The module name classes defined in the documentation are stored under.
DOCS_MODULE = 'zmongo_docs'


class DoctestGlobalsModule(types.ModuleType):
    """A module whose attributes are the globals of a running doctest."""

    def __init__(self, name, globs):
        super().__init__(name)
        # Not a module attribute: keep it out of the globals' namespace.
        object.__setattr__(self, '_globs', globs)

    def __getattr__(self, name):
        # Only called for names the module object itself lacks.
        try:
            return object.__getattribute__(self, '_globs')[name]
        except KeyError:
            raise AttributeError(
                'module %r has no attribute %r (not defined in the doctest '
                'yet?)' % (self.__name__, name)) from None


def _is_rst_doctest(node):
    # pytest's doctest items (from --doctest-glob) carry the DocTest as dtest.
    return getattr(node, 'dtest', None) is not None and \
        node.path.suffix == '.rst'


@pytest.fixture(autouse=True)
def rst_doctest_setup(request, doctest_namespace):
    if not _is_rst_doctest(request.node):
        yield
        return
    if DOCS_MODULE in sys.modules:
        raise RuntimeError('sys.modules already has a %r module; the '
                           'documentation needs that name' % DOCS_MODULE)
    subscribers = list(zope.event.subscribers)
    zope.component.testing.setUp()
    mongo = MongoFixture().setUp()
    extra = {
        '__name__': DOCS_MODULE,
        'conn': mongo.client,
        'DBNAME': mongo.db_name,
        'mongo': mongo,
    }
    # doctest_namespace is shared by every doctest of the session: add our
    # names for this one only.  pytest copies it into the doctest's globals
    # after the fixtures have run.
    saved = {name: doctest_namespace[name] for name in extra
             if name in doctest_namespace}
    doctest_namespace.update(extra)
    sys.modules[DOCS_MODULE] = DoctestGlobalsModule(
        DOCS_MODULE, request.node.dtest.globs)
    try:
        # What a document trusts or registers ends with it.
        with trusting():
            yield mongo
    finally:
        transaction.abort()
        zope.component.testing.tearDown()
        zope.event.subscribers[:] = subscribers
        sys.modules.pop(DOCS_MODULE, None)
        for name in extra:
            doctest_namespace.pop(name, None)
        doctest_namespace.update(saved)
        mongo.tearDown()
