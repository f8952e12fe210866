"""A module that must never be imported on a document's word.

Nothing in the test suite imports it by itself.  Importing it puts it in
``sys.modules`` and sets the environment variable ``IMPORTED_VARIABLE``, so
a test can tell that a load imported it.
"""
import os

IMPORTED_VARIABLE = 'ZMONGO_TEST_IMPORT_RECORDER'
os.environ[IMPORTED_VARIABLE] = 'imported'


class Thing:
    pass


def make_thing(*args):
    return Thing()


CONSTANT = 'imported'
