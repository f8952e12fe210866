"""Collections as a data manager hands them out.

Every operation runs in the data manager's session (and so inside its server
transaction, when it has one); pending changes are flushed first, so a query
sees what the transaction changed; query filters pass through the optional
``IMongoSpecProcessor`` adapter.  Writes go into the data manager's write
log (``direct_write``): undone on abort in standalone mode, sent again by a
savepoint rollback in server-transaction mode.  Anything else is the pymongo collection's.
"""
import bson

from zmongo import _names
from zmongo import _oid
from zmongo import interfaces

#: Methods that read or write documents: flushed first, run in the session.
SESSION_METHODS = frozenset({
    'find', 'find_one', 'find_raw_batches', 'aggregate',
    'aggregate_raw_batches', 'count_documents', 'distinct',
    'find_one_and_delete', 'find_one_and_replace', 'find_one_and_update',
    'insert_one', 'insert_many', 'replace_one', 'update_one', 'update_many',
    'delete_one', 'delete_many', 'bulk_write', 'watch',
})
#: The session methods that write.
WRITE_METHODS = frozenset({
    'find_one_and_delete', 'find_one_and_replace', 'find_one_and_update',
    'insert_one', 'insert_many', 'replace_one', 'update_one', 'update_many',
    'delete_one', 'delete_many', 'bulk_write',
})
#: Methods whose first argument (or ``filter``) is a query filter.
SPEC_METHODS = frozenset({
    'find', 'find_one', 'find_raw_batches', 'count_documents',
    'find_one_and_delete', 'find_one_and_replace', 'find_one_and_update',
})
#: Attributes of a pymongo collection that send nothing: reading them
#: needs no sharding check (see ``CollectionWrapper.__getattr__``).
LOCAL_ATTRIBUTES = frozenset({
    'name', 'full_name', 'database', 'codec_options', 'read_preference',
    'read_concern', 'write_concern',
})


def process_spec(collection, spec):
    """Pass ``spec`` through the registered ``IMongoSpecProcessor``, if any."""
    processor = interfaces.IMongoSpecProcessor(None, None)
    if processor is None:
        return spec
    return processor.process(collection, spec)


class _SessionCall:
    __slots__ = ('_wrapper', '_name', '_method')

    def __init__(self, wrapper, name, method):
        self._wrapper = wrapper
        self._name = name
        self._method = method

    def __call__(self, *args, **kwargs):
        wrapper = self._wrapper
        jar = wrapper._datamanager
        jar.flush()
        if self._name in SPEC_METHODS:
            collection = wrapper.collection
            if args:
                args = (process_spec(collection, args[0]),) + args[1:]
            elif 'filter' in kwargs:
                kwargs['filter'] = process_spec(collection, kwargs['filter'])
            elif self._name in ('find', 'find_one', 'find_raw_batches'):
                args = (process_spec(collection, None),)
        read = getattr(jar, 'read', None)
        if kwargs.get('session') is None:
            if read is not None and self._name not in WRITE_METHODS and \
                    self._name != 'watch':
                # In the session; a read that finds the server transaction
                # lost starts a new one and is sent again.
                return read(self._method, *args, **kwargs)
            kwargs['session'] = jar.op_session(
                writing=self._name in WRITE_METHODS)
        direct_write = getattr(jar, 'direct_write', None)
        if self._name in WRITE_METHODS and direct_write is not None:
            # Part of the transaction: logged, undone, sent again.
            return direct_write(wrapper.collection, self._name,
                                self._method, args, kwargs)
        return self._method(*args, **kwargs)


class CollectionWrapper:
    """A pymongo collection bound to a data manager (see module docstring).

    ``collection`` is the raw pymongo collection.
    """

    def __init__(self, collection, datamanager):
        self.__dict__['collection'] = collection
        self.__dict__['_datamanager'] = datamanager
        # The data manager's sharding check of the collection waits for
        # the server: made before the first operation, not here (a wrapper
        # is made without talking to the server).
        self.__dict__['_checked'] = False

    def _dbref(self, doc):
        return _oid.oid(self.collection.name, doc[_names.ID],
                          self.collection.database.name)

    def find_objects(self, *args, **kwargs):
        """Like ``find`` but yields the loaded objects, with no further
        query per object."""
        jar = self._datamanager
        for doc in self.find(*args, **kwargs):
            yield jar.load_from_document(self._dbref(doc), doc)

    def find_one_object(self, *args, **kwargs):
        """Like ``find_one`` but returns the loaded object (or None)."""
        doc = self.find_one(*args, **kwargs)
        if doc is None:
            return None
        return self._datamanager.load_from_document(self._dbref(doc), doc)

    def __getattr__(self, name):
        if not self.__dict__['_checked'] and name not in LOCAL_ATTRIBUTES:
            check = getattr(self._datamanager, 'check_collection', None)
            if check is not None:
                collection = self.collection
                check(collection.database.name, collection.name)
            self.__dict__['_checked'] = True
        attr = getattr(self.collection, name)
        if name in SESSION_METHODS:
            return _SessionCall(self, name, attr)
        return attr

    def __getitem__(self, name):
        return CollectionWrapper(self.collection[name], self._datamanager)

    def __setattr__(self, name, value):
        setattr(self.collection, name, value)

    def __delattr__(self, name):
        delattr(self.collection, name)

    def __eq__(self, other):
        if isinstance(other, CollectionWrapper):
            return self.collection == other.collection
        return NotImplemented

    def __hash__(self):
        return hash(self.collection)

    def __repr__(self):
        return '<CollectionWrapper %s.%s>' % (
            self.collection.database.name, self.collection.name)
