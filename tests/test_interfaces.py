"""Every public class provides the interface that documents it."""
import transaction.interfaces
from zope.interface.verify import verifyClass
from zope.interface.verify import verifyObject

from zmongo import conflict
from zmongo import datamanager
from zmongo import interfaces
from zmongo import serialize


def test_serializer_classes():
    assert verifyClass(interfaces.IObjectWriter, serialize.ObjectWriter)
    assert verifyClass(interfaces.IObjectReader, serialize.ObjectReader)
    assert verifyClass(interfaces.IObjectSerializer,
                       serialize.ObjectSerializer)


def test_writer_and_reader_of_a_data_manager(datamanager):
    assert verifyObject(interfaces.IObjectWriter, datamanager._writer)
    assert verifyObject(interfaces.IObjectReader, datamanager._reader)


def test_conflict_handler_classes():
    for handler in (conflict.NoCheckConflictHandler,
                    conflict.SimpleSerialConflictHandler,
                    conflict.ResolvingSerialConflictHandler):
        assert verifyClass(interfaces.IConflictHandler, handler)
    assert verifyClass(interfaces.IResolvingConflictHandler,
                       conflict.ResolvingSerialConflictHandler)


def test_data_manager_class():
    assert verifyClass(interfaces.IMongoDataManager,
                       datamanager.MongoDataManager)
    assert verifyClass(transaction.interfaces.IDataManager,
                       datamanager.MongoDataManager)


def test_exceptions():
    assert issubclass(interfaces.ConflictError,
                      transaction.interfaces.TransientError)
    assert issubclass(interfaces.CircularReferenceError, Exception)
    assert issubclass(interfaces.SerializationError, TypeError)
