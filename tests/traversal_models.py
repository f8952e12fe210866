"""Classes the traversal tests store (module level, so they can load).

Each item class knows its way back from its own document, the way an
application's classes would, so that an item loaded straight from a query
(not through its container) still has its full path.
"""
import persistent

from tests.container_models import Campaign
from zmongo import container


class IdPerson(container.MongoContained, persistent.Persistent):
    """An item of an id-named container: its name is its ``_id``."""
    _m_parent_attr = 'parent'

    def _m_name_getter(self):
        oid = self._p_oid
        return None if oid is None else str(oid.id)

    def __init__(self, name):
        self.name = name


class LocatedCampaign(Campaign):
    """A container that is itself an item of a Mongo container, and finds
    its name and parent in its own document."""
    _m_name_attr = 'key'
    _m_parent_attr = 'parent'


class Tasks(container.SubDocumentMongoContainer):
    """A container kept inside the document of the item that has it; after
    a load it knows that item (``_p_mongo_doc_object``) as its parent."""
    _m_collection = 'tasks'
    _m_name_getter = lambda self: 'tasks'                  # noqa: E731
    _m_parent_getter = lambda self: getattr(               # noqa: E731
        self, '_p_mongo_doc_object', None)


class Project(container.MongoContained, persistent.Persistent):
    """An item holding a container of its own in its document."""
    _p_mongo_collection = 'projects'
    _m_name_attr = 'key'
    _m_parent_attr = 'parent'

    def __init__(self, name):
        self.name = name
        self.tasks = Tasks()
        self.tasks.__parent__ = self
