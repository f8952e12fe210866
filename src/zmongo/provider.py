"""Data managers for a site: one per thread and transaction.

A Zope site registers one :class:`MongoDataManagerProvider` as its
``IMongoDataManagerProvider`` utility; containers that live in ZODB (and any
other code) call ``get()`` for the data manager of the current thread and
transaction.
"""
import inspect
import threading
import weakref

import pymongo
import transaction
import zope.interface

from zmongo import interfaces
from zmongo._cache import DEFAULT_BYTES
from zmongo._cache import DEFAULT_SIZE
from zmongo._cache import DocumentCache
from zmongo._namemap import NameMap
from zmongo.datamanager import MongoDataManager

__all__ = ['MongoDataManagerProvider']

_DATAMANAGER_SIGNATURE = inspect.signature(MongoDataManager)


@zope.interface.implementer(interfaces.IMongoDataManagerProvider)
class MongoDataManagerProvider:
    """Hands each thread a data manager of its own, renewed per transaction.

    * one ``pymongo.MongoClient`` for ``uri`` (thread-safe, shared by every
      thread), created on first use with ``client_options``; or the
      ``client`` given, which the provider then does not close;
    * ``get()`` returns the data manager of the calling thread, made anew
      when the thread's current transaction is not the one the previous data
      manager was made for -- objects of one thread or transaction never
      leak into another;
    * every data manager gets ``datamanager_options`` (``default_database``,
      ``root_database``, ``conflict_handler_factory``, ``transactions``,
      ``trusted_modules``, ...;
      checked here, so a misspelt option fails at once) and shares one
      :class:`zmongo._namemap.NameMap`, so the collection -> class map is
      read once per process, not once per transaction;
    * and one document cache (``cache``, a
      :class:`zmongo._cache.DocumentCache`): committed documents and
      container answers that later transactions of every thread are served
      from with no command, as long as the change stream says they did not
      change.  ``cache_size`` bounds its entries (documents and query
      answers; 0 turns it off), ``cache_bytes`` their bytes; least
      recently used first.  Off on a standalone server (logged once).
      See "The cache" in ``docs/transactions.rst``.
    """

    def __init__(self, uri='mongodb://localhost:27017/', *, client=None,
                 client_options=None, cache_size=DEFAULT_SIZE,
                 cache_bytes=DEFAULT_BYTES, **datamanager_options):
        options = dict(datamanager_options)
        options.setdefault('name_map', NameMap())
        #: The document cache shared by this provider's data managers.
        self.cache = DocumentCache(cache_size, cache_bytes)
        self._document_cache = options.pop(
            'document_cache', self.cache if self.cache.enabled else None)
        # Fail now, not in the first request, on an unknown option.
        _DATAMANAGER_SIGNATURE.bind(None, **options)
        self.uri = uri
        self.client_options = dict(client_options or {})
        self.datamanager_options = options
        self.name_map = options['name_map']
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def client(self):
        """The shared ``MongoClient`` (created on first use)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = pymongo.MongoClient(
                        self.uri, **self.client_options)
                client = self._client
        return client

    def _transaction_manager(self):
        manager = self.datamanager_options.get('transaction_manager')
        return transaction.manager if manager is None else manager

    def get(self):
        """The data manager of this thread and its current transaction."""
        txn = self._transaction_manager().get()
        client = self.client
        local = self._local
        dm = getattr(local, 'datamanager', None)
        made_for = getattr(local, 'transaction', None)
        if dm is None or made_for is None or made_for() is not txn or \
                getattr(local, 'client', None) is not client:
            dm = MongoDataManager(client,
                                  document_cache=self._document_cache,
                                  **self.datamanager_options)
            local.datamanager = dm
            local.transaction = weakref.ref(txn)
            local.client = client
        return dm

    def close(self):
        """Close the client if the provider made it (a later ``get()``
        makes a new one); a client that was given is left open."""
        self.cache.close()
        if not self._owns_client:
            return
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __repr__(self):
        # Not the URI: it may carry credentials.
        return '<%s default_database=%r>' % (
            type(self).__name__,
            self.datamanager_options.get('default_database'))
