"""The pytest fixtures of zmongo.testing, as a user's own suite meets them.

Each test runs a small test suite of its own (pytest's ``pytester``) with
``pytest_plugins = ['zmongo.testing']``.  The examples of
docs/getting-started.rst are taken from the page itself, so the page cannot
show a way of picking a mode that does not work.
"""
import os
import re
import subprocess
import sys
import textwrap

import pytest

from zmongo import testing

GUIDE = os.path.join(os.path.dirname(__file__), os.pardir, 'docs',
                     'getting-started.rst')
PLUGIN_CONFTEST = "pytest_plugins = ['zmongo.testing']\n"


def guide_text():
    with open(GUIDE, encoding='utf-8') as f:
        return f.read()


def literal_block(containing):
    """The guide's one literal block (after a ``::`` line) that contains
    ``containing``, dedented."""
    blocks = []
    lines = guide_text().splitlines()
    for i, line in enumerate(lines):
        if not line.rstrip().endswith('::'):
            continue
        block = []
        for following in lines[i + 1:]:
            if following.strip() and not following.startswith(' '):
                break
            block.append(following)
        blocks.append(textwrap.dedent('\n'.join(block)).strip() + '\n')
    found = [block for block in blocks if containing in block]
    assert len(found) == 1, (
        'docs/getting-started.rst should have one literal block with %r, '
        'has %d' % (containing, len(found)))
    return found[0]


@pytest.fixture(autouse=True)
def suites_use_this_server(monkeypatch):
    # The suites run on this process's server, not one more embedded server
    # each.  Autouse, so it runs before ``pytester``: the server (and so the
    # modules it imports) is started before pytester snapshots sys.modules,
    # which it restores afterwards -- and numpy, under the embedded server,
    # cannot be loaded twice in a process.
    monkeypatch.setenv(testing.ENV_URI, testing.get_test_uri())


def run_suite(pytester, conftest, **modules):
    pytester.makeconftest(conftest)
    pytester.makepyfile(**modules)
    # In a process of its own, for the same reason.
    return pytester.runpytest_subprocess('-v', '-p', 'no:cacheprovider')


def passed_ids(result):
    return sorted(re.findall(r'::(\S+) PASSED', result.stdout.str()))


def test_datamanager_runs_each_test_in_both_modes(pytester):
    result = run_suite(pytester, PLUGIN_CONFTEST, test_user='''
        def test_x(request, datamanager):
            mode = request.node.callspec.params['datamanager']
            assert datamanager.uses_transactions == (mode == 'transactions')
        ''')
    result.assert_outcomes(passed=2)
    assert passed_ids(result) == ['test_x[standalone]',
                                  'test_x[transactions]']


def test_guide_picks_one_mode_per_test(pytester):
    result = run_suite(pytester, PLUGIN_CONFTEST,
                       test_user=literal_block('indirect=True)\n'))
    result.assert_outcomes(passed=2)
    assert passed_ids(result) == ['test_in_server_transaction[transactions]',
                                  'test_undo[standalone]']


def test_guide_picks_one_mode_per_module(pytester):
    mark = re.search(r'``(pytestmark\s*=.*?)``', guide_text(), re.S).group(1)
    result = run_suite(pytester, PLUGIN_CONFTEST, test_user='''
        import pytest

        %s

        def test_a(datamanager):
            assert not datamanager.uses_transactions

        def test_b(datamanager):
            assert not datamanager.uses_transactions
        ''' % ' '.join(mark.split()))
    result.assert_outcomes(passed=2)
    assert passed_ids(result) == ['test_a[standalone]', 'test_b[standalone]']


def test_guide_picks_one_mode_for_the_suite(pytester):
    conftest = literal_block('def datamanager(mongo)')
    result = run_suite(pytester, conftest, test_user='''
        def test_x(datamanager):
            assert not datamanager.uses_transactions
        ''')
    result.assert_outcomes(passed=1)
    assert passed_ids(result) == ['test_x']


def test_unknown_mode_names_the_known_ones(pytester):
    result = run_suite(pytester, PLUGIN_CONFTEST, test_user='''
        import pytest

        @pytest.mark.parametrize('datamanager', ['transaction'],
                                 indirect=True)
        def test_x(datamanager):
            pass
        ''')
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*unknown mode 'transaction'*'transactions', 'standalone'*"])


def test_fixtures_are_importable_without_pytest():
    # The API reference documents them, and the docs extra has no pytest.
    code = textwrap.dedent('''
        import sys
        sys.modules['pytest'] = None          # import pytest -> ImportError
        import inspect
        import zmongo.testing as t
        for name in ('mongo', 'datamanager', 'commands'):
            function = getattr(t, name)
            assert inspect.isfunction(function), (name, function)
            assert function.__doc__, name
        print(list(inspect.signature(t.datamanager).parameters))
        ''')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["['request',", "'mongo']"]


def test_api_reference_builds_without_pytest(tmp_path):
    # What a newcomer does: build the documentation with only the docs
    # extra installed.  pytest is made unimportable for the build.
    pytest.importorskip('sphinx')
    docs = os.path.join(os.path.dirname(__file__), os.pardir, 'docs')
    code = textwrap.dedent('''
        import sys
        sys.modules['pytest'] = None
        from sphinx.cmd.build import main
        sys.exit(main(sys.argv[1:]))
        ''')
    out = subprocess.run(
        [sys.executable, '-c', code, '-q', '-W', '--keep-going', '-b', 'html',
         '-d', str(tmp_path / 'doctrees'), docs, str(tmp_path / 'html')],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
