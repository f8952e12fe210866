"""The systems compared, each the way its users would write the workloads.

Every system implements :class:`bench.systems.base.System`.  A system whose
library is not installed (or, for zmongo's containers, not written yet) is
reported as unavailable, with the reason, never silently left out.
"""
import importlib

#: (name, module, class), in table order.  pymongo first: it is the floor.
SYSTEMS = (
    ('pymongo', 'bench.systems.pymongo_sys', 'PyMongoSystem'),
    ('zmongo-container', 'bench.systems.zmongo_sys', 'ContainerSystem'),
    ('zmongo-idnames', 'bench.systems.zmongo_sys', 'IdNamesSystem'),
    ('zmongo-dm', 'bench.systems.zmongo_sys', 'DataManagerSystem'),
    ('ming', 'bench.systems.ming_sys', 'MingSystem'),
    ('mongoengine', 'bench.systems.mongoengine_sys', 'MongoEngineSystem'),
    ('zodb', 'bench.systems.zodb_sys', 'ZODBSystem'),
)
NAMES = tuple(name for name, _, _ in SYSTEMS)
BASELINE = 'pymongo'


def load(name):
    """``(system class, None)`` or ``(None, why it is unavailable)``."""
    for sys_name, module, cls in SYSTEMS:
        if sys_name == name:
            break
    else:
        raise KeyError('unknown system %r (known: %s)'
                       % (name, ', '.join(NAMES)))
    try:
        klass = getattr(importlib.import_module(module), cls)
    except ImportError as err:
        return None, 'cannot import: %s' % err
    reason = klass.unavailable()
    if reason:
        return None, reason
    return klass, None
