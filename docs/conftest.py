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
module whose namespace *is* those globals, so ``zmongo_docs.Person``
resolves to the ``Person`` the doctest defined.  (The module's ``__dict__``
itself, not a ``__getattr__`` hook: zmongo looks names from documents up
without running hooks, see :mod:`zmongo._dotted`.)  The module is removed
again when the doctest ends.

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


def globals_module(dtest):
    """A module whose namespace is the globals ``dtest`` will run in: the
    doctest runs in the module's own ``__dict__`` (pytest fills it with
    ``doctest_namespace`` after the fixtures have run), so what it defines
    is an attribute of the module as it is defined."""
    module = types.ModuleType(DOCS_MODULE)
    namespace = vars(module)
    for name, value in dtest.globs.items():
        namespace.setdefault(name, value)
    dtest.globs = namespace
    return module


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
    sys.modules[DOCS_MODULE] = globals_module(request.node.dtest)
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
