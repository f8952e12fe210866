"""Child process for the crash test: write, flush, report, then hang until
killed -- so the kill lands between the writes and the commit."""
import sys
import time

import transaction

from tests import models
from zmongo import testing
from zmongo.datamanager import MongoDataManager


def main(uri, db_name, transactions):
    client = testing.make_client(uri)
    dm = MongoDataManager(client, default_database=db_name,
                          root_database=db_name,
                          transactions=transactions == 'on')
    for name in ('ada', 'bob'):
        dm.root[name].name = 'changed by the killed process'
    dm.root['new'] = models.Person('inserted by the killed process')
    dm.remove(dm.root['cy'])
    dm.flush()
    print('flushed', flush=True)
    time.sleep(120)
    transaction.commit()   # never reached


if __name__ == '__main__':
    main(*sys.argv[1:])
