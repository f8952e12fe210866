"""Attacks on the document cache (issue 17): scenarios the cache's own
tests do not cover, each run in both commit modes where it matters (on a
standalone server the cache is off and the same scenario checks that
nothing changed there)."""
import uuid

import bson
import pytest
import transaction

from tests import container_models as models
from tests.test_cache import Site, read_committed, seed
from zmongo.testing import make_client


@pytest.fixture
def site(datamanager, mongo):
    site = Site(mongo, datamanager.uses_transactions)
    yield site
    site.close()


def warm_up(site, dm, tm, read, times=2):
    for _ in range(times):
        read(dm)
        tm.commit()


# -- _id values Python calls equal but MongoDB does not ---------------------

def test_an_id_of_true_is_not_served_the_document_of_1(site):
    """``True == 1`` and ``hash(True) == hash(1)`` in Python; MongoDB keeps
    ``{_id: 1}`` and ``{_id: true}`` apart.  A data manager with an empty
    identity map asking for ``_id: true`` must get that document, not the
    cached one of ``_id: 1``."""
    coll = site.mongo.db['things']
    coll.insert_many([{'_id': 'x', 'n': 'x'}, {'_id': 1, 'n': 'int'},
                      {'_id': True, 'n': 'bool'}, {'_id': 0, 'n': 'zero'},
                      {'_id': False, 'n': 'false'}])
    db = site.mongo.db_name

    def ref(id_):
        return bson.DBRef('things', id_, db)

    tm, dm = site.open()
    for _ in range(2):
        dm.load_document(ref('x'))
        assert dm.load_document(ref(1))['n'] == 'int'
        assert dm.load_document(ref(0))['n'] == 'zero'
        tm.commit()
    tm2, other = site.open()
    other.load_document(ref('x'))           # fixes the snapshot
    assert other.load_document(ref(True))['n'] == 'bool'
    assert other.load_document(ref(False))['n'] == 'false'
    tm2.commit()


# -- query keys encoded with the client's codec -------------------------------

def test_a_query_with_a_uuid_under_the_clients_uuid_representation(
        site, mongo):
    """A client made with ``uuidRepresentation='standard'`` sends UUIDs in
    filters; the cache's key for such a query must be made with the
    client's codec options too, or the cached path fails where the
    uncached one works."""
    client = make_client(mongo.uri, [], uuidRepresentation='standard')
    value = uuid.UUID(int=7)
    try:
        client[site.mongo.db_name]['things'].insert_one(
            {'_id': 'u', 'u': value})
        tm, dm = site.open(client=client)
        for _ in range(3):
            docs = dm.find_cached(site.mongo.db_name, 'things', {'u': value},
                                  one=True)
            assert [d['_id'] for d in docs] == ['u']
            assert dm.count_cached(site.mongo.db_name, 'things',
                                   {'u': value}) == 1
            tm.commit()
    finally:
        transaction.abort()
        site.cache.close()
        client.close()
