"""Sphinx configuration for zmongo's documentation.

Build it with::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The pages are also doctests: ``python -m pytest docs`` runs every example
in them against a MongoDB server (see ``docs/conftest.py``).
"""
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))


def _setup_version():
    # setup.py is the one place the version is written down; reading it
    # (rather than importing zmongo) keeps the build honest for a checkout
    # that is not installed yet.
    with open(os.path.join(HERE, os.pardir, 'setup.py'),
              encoding='utf-8') as f:
        return re.search(r"""version=['"]([^'"]+)['"]""", f.read()).group(1)


project = 'zmongo'
author = 'zmongo contributors'
copyright = 'zmongo contributors, ZPL-2.1'
release = _setup_version()
version = '.'.join(release.split('.')[:2])

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.viewcode',
    # zope.interface interfaces are not classes: autodoc's class documenter
    # cannot introspect them, this extension renders their attributes and
    # method signatures (``.. autointerface::``).
    'repoze.sphinx.autointerface',
]

# No intersphinx: the documentation must build without network access.

exclude_patterns = ['_build']

root_doc = 'index'
source_suffix = {'.rst': 'restructuredtext'}

autodoc_member_order = 'bysource'
autodoc_typehints = 'none'
# Only zmongo's own words: a method without a docstring of its own is left
# to the interface that documents it, rather than showing the docstring of
# whatever base class (MutableMapping, a pymongo listener, a zope.schema
# field) it overrides.
autoclass_content = 'class'
autodoc_inherit_docstrings = False

html_theme = 'furo'
html_title = 'zmongo %s' % release
html_static_path = ['_static']
