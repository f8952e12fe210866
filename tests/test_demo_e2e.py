"""The demo site end to end: ``python -m zmongo.demo`` as a process, driven
by headless Chromium (Debian's ``chromium``, through Playwright; no browser
download).  Saves ``docs/_static/demo-contents.png`` for the README.
"""
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from zmongo.demo import main

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu',
                 '--disable-background-networking', '--no-first-run',
                 '--disable-component-update', '--disable-sync']
SCREENSHOT = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'docs', '_static', 'demo-contents.png')
START_TIMEOUT = 60


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Demo:
    """``python -m zmongo.demo`` in a process of its own."""

    def __init__(self, *args):
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'zmongo.demo', *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.errors = []
        self.started = threading.Event()
        threading.Thread(target=self._read, args=(self.process.stdout,
                                                  self.lines),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr,
                                                  self.errors),
                         daemon=True).start()

    def _read(self, stream, lines):
        for line in stream:
            lines.append(line)
            if 'http://' in line:
                self.started.set()

    def url(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.started.wait(0.1):
                line = [x for x in self.lines if 'http://' in x][0]
                return line.split()[2]
            if self.process.poll() is not None:
                break
        self.stop()
        pytest.fail('zmongo.demo did not start: %s' % ''.join(self.errors))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:   # pragma: no cover
            self.process.kill()
            raise


def go(page, selector):
    """Click and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def wait(process, timeout=30):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


@contextlib.contextmanager
def chromium():
    """Headless Chromium: Debian's, never a downloaded one.  Missing, the
    test fails (it is not skipped)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail('%s is missing: install Debian\'s chromium '
                    '(apt-get install chromium) to run the end-to-end test'
                    % CHROMIUM, pytrace=False)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_the_demo_in_a_browser(tmp_path):
    with chromium() as browser:
        drive_the_demo(tmp_path, browser)


def drive_the_demo(tmp_path, browser):
    data = str(tmp_path / 'data')
    port = free_port()
    demo = Demo('--data', data, '--port', str(port))
    try:
        url = demo.url()
        assert url == 'http://127.0.0.1:%d/' % port
        # The first start makes the manager and says how to log in.
        time.sleep(0.2)
        [how] = [line for line in demo.lines if 'log in as' in line]
        password = re.search(r'log in as admin with the password (\S+);',
                             how).group(1)
        context = browser.new_context(
            viewport={'width': 900, 'height': 560},
            http_credentials={'username': 'admin', 'password': password})
        page = context.new_page()
        page.goto(url)
        assert page.locator('h1').inner_text() == 'Welcome'
        go(page, 'a:text-is("People")')
        assert page.url == url + 'people'
        # Seeded, as README shows it.
        assert page.locator('#items a').all_inner_texts() == [
            'Ada Lovelace', 'Alan Turing', 'Grace Hopper']
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        page.screenshot(path=SCREENSHOT)
        response = page.goto(url + 'people/ada/projects/engine')
        assert response.status == 200
        assert page.locator('h1').inner_text() == 'Analytical Engine'

        # Log in: back where we were, with a word about it.
        go(page, '#login')
        assert page.url == url + 'people/ada/projects/engine'
        assert page.locator('.message').inner_text() == \
            'You are logged in as Manager.'
        assert page.locator('#user').inner_text() == 'Logged in as Manager'

        # Add a person; a name that would hide a page is refused.
        page.goto(url + 'people')
        go(page, 'a:text-is("Add person")')
        page.fill('[name="form.name"]', 'add')
        page.fill('[name="form.title"]', 'Edsger Dijkstra')
        go(page, 'input[value=Add]')
        assert page.locator('#errors li').all_inner_texts() == [
            'Name: add is the name of a page; choose another.']
        page.fill('[name="form.name"]', 'edsger')
        go(page, 'input[value=Add]')
        assert page.url == url + 'people'
        assert page.locator('.message').inner_text() == \
            'Added Edsger Dijkstra.'

        # Rename it.
        go(page, 'a:text-is("Edsger Dijkstra")')
        go(page, 'a:text-is("Rename, move or copy")')
        page.fill('#name', 'dijkstra')
        go(page, 'button[name=rename]')
        assert page.url == url + 'people/dijkstra'
        assert page.locator('.message').inner_text() == \
            'Renamed edsger to /people/dijkstra.'

        # Move Ada's engine to Grace.
        page.goto(url + 'people/ada/projects/engine/move')
        page.select_option('#target', '/people/grace/projects')
        go(page, 'button[name=rename]')
        assert page.url == url + 'people/grace/projects/engine'
        assert page.locator('.message').inner_text() == \
            'Moved engine to /people/grace/projects/engine.'

        # Archive Alan, find him from the home page, bring him back.
        page.goto(url + 'people/alan/move')
        page.select_option('#target', '/archived-people')
        go(page, 'button[name=rename]')
        assert page.url == url + 'archived-people/alan'
        assert page.locator('.message').inner_text() == \
            'Moved alan to /archived-people/alan.'
        page.goto(url)
        go(page, 'a:text-is("Archived people")')
        assert page.locator('#items a').all_inner_texts() == ['Alan Turing']
        go(page, 'a:text-is("Alan Turing")')
        go(page, 'a:text-is("Rename, move or copy")')
        page.select_option('#target', '/people')
        go(page, 'button[name=rename]')
        assert page.url == url + 'people/alan'
        assert page.locator('.message').inner_text() == \
            'Moved alan to /people/alan.'

        # Delete, after the confirmation page.
        page.goto(url + 'people/dijkstra')
        go(page, '.actions a:text-is("Delete")')
        assert page.url == url + 'people/dijkstra/delete'
        go(page, 'button[name=delete]')
        assert page.url == url + 'people'
        assert page.locator('.message').inner_text() == \
            'Deleted Edsger Dijkstra.'
        assert page.locator('#items a').all_inner_texts() == [
            'Ada Lovelace', 'Alan Turing', 'Grace Hopper']
        response = page.goto(url + 'people/dijkstra')
        assert response.status == 404
        assert page.locator('h1').inner_text() == 'Not found'

        # A second demo cannot take the port: one line, exit status 1.
        code, out, err = wait(subprocess.Popen(
            [sys.executable, '-m', 'zmongo.demo', '--data',
             str(tmp_path / 'other'), '--port', str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        assert code == 1
        assert err.strip().splitlines() == [
            'zmongo-demo: error: cannot listen on 127.0.0.1:%d: '
            'Address already in use' % port]

        # Nor its data directory.
        code, out, err = wait(subprocess.Popen(
            [sys.executable, '-m', 'zmongo.demo', '--data', data,
             '--port', str(free_port())],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        assert code == 1
        assert err.strip().splitlines() == [
            'zmongo-demo: error: %s is in use by another process (another '
            'zmongo-demo?)' % os.path.join(data, 'mongo')]
    finally:
        assert demo.stop() == 0
    assert demo.lines[-1] == 'zmongo demo: stopped\n'
    # An access line per request: method, path, status, time.
    log = ''.join(demo.lines)
    assert re.search(r'^GET /people 200 \d+ms$', log, re.M)
    assert re.search(r'^POST /people/dijkstra/delete 303 \d+ms$', log, re.M)
    assert re.search(r'^GET /people/dijkstra 404 \d+ms$', log, re.M)
    # The password was shown once, and is in no log.
    assert log.count(password) == 1
    assert password not in ''.join(demo.errors)
    # The embedded server let go of its files.
    main.check_unused(os.path.join(data, 'mongo'))

    # The data survive a restart; the password is not shown again.
    demo = Demo('--data', data, '--port', str(port))
    try:
        url = demo.url()
        page = browser.new_page()
        page.goto(url + 'people/grace/projects')
        assert page.locator('#items a').all_inner_texts() == [
            'A-0 System', 'COBOL', 'Analytical Engine']
    finally:
        assert demo.stop() == 0
    assert password not in ''.join(demo.lines)


def test_an_unreachable_uri_fails_in_bounded_time(tmp_path):
    started = time.monotonic()
    code, out, err = wait(subprocess.Popen(
        [sys.executable, '-m', 'zmongo.demo', '--data', str(tmp_path),
         '--port', str(free_port()), '--uri', 'mongodb://127.0.0.1:%d'
         % free_port(), '--timeout', '1'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    assert code == 1
    [line] = err.strip().splitlines()
    assert line.startswith('zmongo-demo: error: cannot reach MongoDB at '
                           'mongodb://127.0.0.1:')
    assert time.monotonic() - started < 20


def test_the_demo_on_a_given_server(tmp_path):
    """``--uri``: the content goes to that server, no embedded one runs."""
    import urllib.request

    from zmongo import testing
    uri = testing.get_test_uri()
    client = testing.make_client(uri)
    client.drop_database(main.DATABASE)
    demo = Demo('--data', str(tmp_path), '--port', str(free_port()),
                '--uri', uri)
    try:
        url = demo.url()
        assert 'MongoDB at %s' % uri in demo.lines[0]
        with urllib.request.urlopen(
                url + 'people/ada/projects/engine') as response:
            assert 'Analytical Engine' in response.read().decode()
        assert sorted(d['key'] for d in client[main.DATABASE].people.find()
                      ) == ['ada', 'alan', 'grace']
        assert not os.path.exists(tmp_path / 'mongo')
        assert os.path.exists(tmp_path / 'Data.fs')
    finally:
        assert demo.stop() == 0
        client.drop_database(main.DATABASE)
        client.close()
