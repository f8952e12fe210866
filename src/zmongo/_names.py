"""Reserved names: every magic field, attribute and default collection.

Defined once so that the serializer, the data manager, the conflict handlers
and the containers cannot drift apart, and so the storage format documented in
:mod:`zmongo.serialize` has one source of truth.
"""

# --- fields written into MongoDB documents ----------------------------------
ID = '_id'
PY_TYPE = '_py_type'
PY_FACTORY = '_py_factory'
PY_FACTORY_ARGS = '_py_factory_args'
PY_PERSISTENT_TYPE = '_py_persistent_type'
PY_CONSTANT = '_py_constant'
PY_SERIAL = '_py_serial'
PY_AWARE_DATETIME = '_py_aware_datetime'
DICT_DATA = 'dict_data'
TYPE_MARKER = 'type'          # {'_py_type': 'type', 'path': ...} is a class
TYPE_PATH = 'path'
#: How an item's document names a container stored in ZODB:
#: ``'zodb-<hex oid>'`` (a Mongo container's parent field).
ZODB_PARENT_PREFIX = 'zodb-'

#: The prefix of the names of the containers' indexes; the unique one is
#: ``CONTAINER_INDEX_PREFIX + '<parent field>_<name field>'``.
CONTAINER_INDEX_PREFIX = 'zmongo_container_'

#: Keys that give a sub-document a meaning other than "plain dict".
META_KEYS = frozenset({
    PY_TYPE, PY_FACTORY, PY_FACTORY_ARGS, PY_PERSISTENT_TYPE, PY_CONSTANT,
    PY_SERIAL, PY_AWARE_DATETIME, DICT_DATA, ID,
})

# --- collections ----------------------------------------------------------
DEFAULT_DATABASE = 'zmongo'
ROOT_COLLECTION = 'persistence_root'
NAME_MAP_COLLECTION = 'persistence_name_map'

# Fields of the name-map documents.
MAP_COLLECTION = 'collection'
MAP_DATABASE = 'database'
MAP_PATH = 'path'
MAP_DOC_HAS_TYPE = 'doc_has_type'

# Fields of the root documents.
ROOT_NAME = 'name'
#: The root's unique index on ``ROOT_NAME``: two transactions adding one
#: name cannot both commit.
ROOT_INDEX = 'zmongo_root_name'
ROOT_REF = 'ref'

# --- class / instance attributes users set ------------------------------
P_COLLECTION = '_p_mongo_collection'
P_DATABASE = '_p_mongo_database'
P_SUB_OBJECT = '_p_mongo_sub_object'
P_STORE_TYPE = '_p_mongo_store_type'
P_DOC_OBJECT = '_p_mongo_doc_object'

# MongoDB's own limit on one document (maxBsonObjectSize on every server).
MAX_BSON_SIZE = 16 * 1024 * 1024
