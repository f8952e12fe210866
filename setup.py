"""zmongo: keep Zope content in MongoDB."""
import os

from setuptools import find_packages, setup


def read(*names):
    with open(os.path.join(os.path.dirname(__file__), *names),
              encoding='utf-8') as f:
        return f.read()


TESTS_REQUIRE = [
    'pytest >= 7',
    'hypothesis',
    'ZODB',
    'zope.testing',
    'zope.traversing',
    'zope.publisher',
    'secantusdb == 0.7.0b3',
    # Security, traversal and the Grok application of the Zope tests.
    'zope.i18n',
    'zope.securitypolicy',
    'zope.principalregistry',
    'zope.app.appsetup',
    'zope.app.publication',
    'zope.app.wsgi',
    'zope.testbrowser',
    # Rename, move, copy and the ZMI's Contents view over the containers.
    'zope.app.container',
    'grok >= 6.2',
    # The demo site's tests: in-process and end to end in Chromium.
    'waitress',
    'platformdirs',
    'playwright',
]

# The demo site (zmongo-demo): Grok pages, ZODB, the embedded server.
DEMO_REQUIRE = [
    'grok >= 6.2',
    'ZODB',
    'zope.app.wsgi',
    'zope.app.publication',
    'waitress',
    'platformdirs',
    'secantusdb == 0.7.0b3',
]

# Building docs/ with Sphinx (sphinx-build -W, as .ci/run does).
DOCS_REQUIRE = [
    'sphinx >= 7',
    'furo',
    'repoze.sphinx.autointerface >= 1.0',
]

ZCML_REQUIRE = [
    'zope.annotation',
    # configure.zcml: copying, moving and renaming (zmongo._copypaste).
    'zope.copy',
    'zope.copypastemove',
    'zope.configuration',
    'zope.dublincore',
    'zope.security',
    'zope.size',
]

setup(
    name='zmongo',
    version='0.1.0.dev0',
    description='Persistent Python objects and Zope containers in MongoDB',
    long_description=read('README.rst') + '\n\n' + read('CHANGES.rst'),
    long_description_content_type='text/x-rst',
    license='ZPL-2.1',
    keywords='zope mongodb persistent transaction container',
    classifiers=[
        'Development Status :: 3 - Alpha',
        'Framework :: Zope :: 3',
        'License :: OSI Approved :: Zope Public License',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.12',
        'Topic :: Database',
    ],
    python_requires='>=3.10',
    package_dir={'': 'src'},
    packages=find_packages('src'),
    include_package_data=True,
    package_data={'zmongo': ['*.zcml'],
                  'zmongo.demo': ['*.zcml', 'app_templates/*.pt']},
    zip_safe=False,
    entry_points={
        'console_scripts': ['zmongo-demo = zmongo.demo.main:main'],
    },
    install_requires=[
        'pymongo >= 4.6, < 5',
        'persistent >= 4.9',
        'transaction >= 3.0',
        'zope.interface',
        'zope.component',
        'zope.container',
        'zope.lifecycleevent',
        'zope.location',
        'zope.schema',
        'zope.dottedname',
    ],
    extras_require={
        'test': TESTS_REQUIRE + ZCML_REQUIRE + DOCS_REQUIRE,
        'zcml': ZCML_REQUIRE,
        # The API reference imports the ZCML modules too.
        'docs': DOCS_REQUIRE + ZCML_REQUIRE,
        # zmongo-demo: the demo site (see README.rst).
        'demo': DEMO_REQUIRE + ZCML_REQUIRE,
        # The embedded MongoDB wire-protocol server is GPL-2.0-only: it is
        # only ever used by tests and the demo, never by the library.
        'embedded': ['secantusdb == 0.7.0b3'],
        # bench/: the peers it measures zmongo against, and a profiler.
        'bench': [
            'secantusdb == 0.7.0b3',
            'ZODB',
            'Ming >= 0.17',
            'mongoengine >= 0.29',
            'pyinstrument',
        ],
    },
)
