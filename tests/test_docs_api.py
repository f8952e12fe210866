"""The API reference (docs/api.rst) names every public name.

docs/api.rst is written by hand -- one autodoc directive per name, so the
page reads in a sensible order -- and a hand-written list drifts.  These
tests pin it to the public API: the names the specification promises, and
whatever a module declares public in ``__all__``.  (Whether each directive
renders is the Sphinx build's job: it runs with warnings as errors.)
"""
import importlib
import os
import re

import pytest

API_RST = os.path.join(os.path.dirname(__file__), os.pardir, 'docs',
                       'api.rst')

#: The public API, module by module (the specification's "Public API").
PUBLIC_API = {
    'zmongo.interfaces': [
        'IMongoDataManager', 'IMongoDataManagerProvider', 'IMongoContainer',
        'IMongoContained', 'IConflictHandler', 'IResolvingConflictHandler',
        'IObjectSerializer', 'IObjectReader', 'IObjectWriter',
        'IMongoSpecProcessor', 'ConflictError', 'CircularReferenceError',
    ],
    'zmongo.datamanager': ['MongoDataManager', 'Root', 'CollectionWrapper'],
    'zmongo.serialize': [
        'ObjectWriter', 'ObjectReader', 'ObjectSerializer', 'SERIALIZERS',
        'register_factory', 'unregister_factory', 'get_dotted_name',
        'PersistentDict', 'PersistentList',
    ],
    'zmongo.conflict': [
        'NoCheckConflictHandler', 'SimpleSerialConflictHandler',
        'ResolvingSerialConflictHandler',
    ],
    'zmongo.container': [
        'MongoContained', 'MongoContainer', 'IdNamesMongoContainer',
        'AllItemsMongoContainer', 'SubDocumentMongoContainer',
        'SimpleMongoContainer',
    ],
    'zmongo.mapping': ['MongoCollectionMapping'],
    'zmongo.provider': ['MongoDataManagerProvider'],
    'zmongo.annotation': ['IMongoAttributeAnnotatable',
                          'AttributeAnnotations'],
    'zmongo.dublincore': ['ZDCAnnotatableAdapter'],
    'zmongo.schema': ['MongoSequence', 'MongoMapping'],
    'zmongo.testing': ['EmbeddedServer', 'MongoFixture', 'CommandCounter',
                       'get_test_uri', 'mongo', 'datamanager', 'commands'],
    # The <mongo:provider> directive: its attributes are this schema.
    'zmongo.zcml': ['IProviderDirective'],
}

#: Modules whose ``__all__`` the reference must cover completely.
MODULES = sorted(set(PUBLIC_API) | {'zmongo.size', 'zmongo.sublocations'})

_DIRECTIVE = re.compile(
    r'^\.\. (?:auto(?:module|interface|class|exception|function|data|'
    r'attribute|method)|data|function|class)::\s+(zmongo[\w.]*)\s*$',
    re.MULTILINE)


def documented_names():
    with open(API_RST, encoding='utf-8') as f:
        return set(_DIRECTIVE.findall(f.read()))


def public_names():
    for module, names in sorted(PUBLIC_API.items()):
        for name in names:
            yield '%s.%s' % (module, name)


@pytest.mark.parametrize('dotted', sorted(set(public_names())))
def test_public_name_is_in_api_reference(dotted):
    assert dotted in documented_names(), (
        '%s is public but docs/api.rst has no autodoc directive for it'
        % dotted)


@pytest.mark.parametrize('module', MODULES)
def test_module_and_its_all_are_in_api_reference(module):
    documented = documented_names()
    assert module in documented, \
        'docs/api.rst has no automodule for %s' % module
    exported = getattr(importlib.import_module(module), '__all__', ())
    missing = ['%s.%s' % (module, name) for name in exported
               if '%s.%s' % (module, name) not in documented]
    assert not missing, (
        'in %s.__all__ but not in docs/api.rst: %s'
        % (module, ', '.join(missing)))


def test_documented_names_exist():
    # A renamed or removed name must leave the reference too.
    for dotted in sorted(documented_names()):
        module, _, name = dotted.rpartition('.')
        try:
            importlib.import_module(dotted)
            continue
        except ImportError:
            pass
        assert hasattr(importlib.import_module(module), name), \
            'docs/api.rst documents %s, which does not exist' % dotted


def test_specification_names_exist():
    for dotted in public_names():
        module, _, name = dotted.rpartition('.')
        assert hasattr(importlib.import_module(module), name), dotted


def _example_lines(path):
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f
                if line.strip().startswith(('>>>', '...'))]


def test_readme_example_is_tested_in_getting_started():
    # README.rst is not collected as a doctest (it is not under docs/);
    # its example must be the one docs/getting-started.rst runs.
    root = os.path.join(os.path.dirname(__file__), os.pardir)
    readme = _example_lines(os.path.join(root, 'README.rst'))
    guide = _example_lines(os.path.join(root, 'docs', 'getting-started.rst'))
    assert readme, 'README.rst has no example'
    starts = [i for i, line in enumerate(guide) if line == readme[0]]
    assert any(guide[i:i + len(readme)] == readme for i in starts), (
        "README.rst's example is not in docs/getting-started.rst")
