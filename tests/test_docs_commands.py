"""Commands the documentation suggests leave a checkout clean.

A newcomer runs them from the checkout, as shown.  A directory they create
inside it (a venv, the demo's ``--data``) must be one git ignores; else it
shows as untracked and ends up in someone's commit.
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
#: Options and commands whose argument is a directory they create.
_CREATES_DIRECTORY = re.compile(
    r'(?:--data(?:=|\s+)|-m venv\s+)(?P<path>[^\s;&|]+)')


def documents():
    return [os.path.join(ROOT, 'README.rst')] + sorted(
        glob.glob(os.path.join(ROOT, 'docs', '*.rst')))


def suggested_directories():
    """(document, line, path) for each directory a command in a literal
    block (an indented line, not a doctest) creates."""
    for path in documents():
        with open(path, encoding='utf-8') as f:
            for number, line in enumerate(f, 1):
                if not line.startswith('    ') or \
                        line.lstrip().startswith(('>>>', '...')):
                    continue
                for match in _CREATES_DIRECTORY.finditer(line):
                    yield (os.path.relpath(path, ROOT), number,
                           match.group('path').strip('\'"'))


def in_checkout(path):
    return not path.startswith(('/', '~', '$'))


def git_ignores(directory):
    # The trailing slash: a pattern for directories ('/.venv/') matches a
    # path that does not exist yet only when the path says it is one.
    out = subprocess.run(
        ['git', 'check-ignore', '-q', '--no-index',
         directory.rstrip('/') + '/'], cwd=ROOT,
        capture_output=True, text=True, timeout=60)
    if out.returncode not in (0, 1):
        raise AssertionError('git check-ignore failed: %s' % out.stderr)
    return out.returncode == 0


def test_the_documentation_suggests_directories():
    # The check below must have something to check.
    paths = [path for _, _, path in suggested_directories()]
    assert '.venv' in paths
    assert any(path for path in paths if 'demo' in path)


def test_directories_suggested_inside_the_checkout_are_ignored():
    if shutil.which('git') is None or \
            not os.path.exists(os.path.join(ROOT, '.git')):
        pytest.skip('not a git checkout')
    untracked = ['%s:%d: %s' % (doc, number, path)
                 for doc, number, path in suggested_directories()
                 if in_checkout(path) and not git_ignores(path)]
    assert not untracked, (
        'the documentation suggests creating these directories inside the '
        'checkout, and git does not ignore them: %s; add them to '
        '.gitignore or suggest a path outside the checkout'
        % '; '.join(untracked))
