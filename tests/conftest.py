import pytest

pytest_plugins = ['zmongo.testing', 'pytester']

#: The test suite's own model modules, trusted as an application trusts its
#: own (``trust_modules('myapp')``).  Modules whose classes must stay
#: untrusted (``tests/untrusted_models.py``, ``tests/import_recorder.py``)
#: are not under any of these prefixes.
TRUSTED_TEST_MODULES = (
    'tests.models', 'tests.serialize_models', 'tests.container_models',
    'tests.hardening_models', 'tests.traversal_models', 'tests.grokapp',
    'tests.container_support',
)


@pytest.fixture(autouse=True, scope='session')
def trusted_test_models():
    from zmongo.testing import trusting
    with trusting(modules=TRUSTED_TEST_MODULES):
        yield
