"""Routes next to those of ``tests/test_loader_attacks.py`` that its fixes
close too: the same attacks by another shape of document."""
import sys

import pytest

from tests import untrusted_models as um
from tests.test_loader_attacks import (
    CANARY, REFUSED, THIS, UNSAFE, assert_located, call, clean_canary,  # noqa
    colliding_pairs, load, typ)
from zmongo import _safety


def test_tuple_factory_slot_state_cannot_replace_the_jar(mongo):
    """The ``(dict, slots)`` state as a ``builtins.tuple`` factory instead
    of an array reached ``Persistent.__setstate__`` unchecked."""
    state = call('builtins.tuple', [{'title': 'x'}, {'_p_jar': typ(THIS)}])
    with pytest.raises(UNSAFE) as info:
        load(mongo, state, place='_py_state')
    assert_located(info.value, mongo, '_py_state')
    assert '_p_jar' in str(info.value)


def test_plain_object_slot_state_cannot_switch_its_class(mongo):
    """A plain object's ``(dict, slots)`` state sets declared slots only:
    ``__class__`` would make it an instance of an untrusted class."""
    with pytest.raises(UNSAFE) as info:
        load(mongo, {'_py_type': 'tests.serialize_models.Plain',
                     '_py_state': [{'a': 1}, {
                         '__class__': typ('tests.untrusted_models.Recorder')}]})
    assert_located(info.value, mongo, 'value._py_state')
    assert um.CALLS == []


@pytest.mark.parametrize('factory', ['builtins.set', 'builtins.frozenset',
                                     'collections.Counter'])
def test_colliding_set_elements_are_refused(mongo, factory):
    elements = [list(pair) for pair in colliding_pairs(
        _safety.MAX_SAME_HASH + 1)]
    value = call(factory, [call('builtins.tuple', e) for e in elements])
    with pytest.raises(UNSAFE) as info:
        load(mongo, value)
    assert_located(info.value, mongo, 'value')
    assert 'share the hash value' in str(info.value)


def test_colliding_dict_pairs_are_refused(mongo):
    pairs = [[call('builtins.tuple', list(pair)), 1]
             for pair in colliding_pairs(_safety.MAX_SAME_HASH + 1)]
    with pytest.raises(UNSAFE) as info:
        load(mongo, call('builtins.dict', pairs))
    assert_located(info.value, mongo, 'value')


def test_a_few_equal_hashes_and_duplicates_still_load(mongo):
    """Real data: -1 and -2 hash alike; repeated elements are one key."""
    obj = load(mongo, [call('builtins.set', [-1, -2, 1, 1, 1, 1, 1, 1, 1,
                                             1, 1, 1]),
                       {'dict_data': [[list(pair), i] for i, pair in
                                      enumerate(colliding_pairs(
                                          _safety.MAX_SAME_HASH))]}])
    assert obj.value[0] == {-1, -2, 1}
    assert len(obj.value[1]) == _safety.MAX_SAME_HASH


def test_flag_combinations_of_own_members_load(mongo):
    obj = load(mongo, call('tests.untrusted_models.Access', 3))
    assert obj.value == um.Access.READ | um.Access.WRITE
    with pytest.raises(UNSAFE):
        load(mongo, call('tests.untrusted_models.Access', 4))


def test_zone_factory_takes_known_zones_only(mongo):
    obj = load(mongo, call('zoneinfo.ZoneInfo', 'UTC'))
    assert obj.value.key == 'UTC'
    for bad in ('No_Such/Zone_Here', '../../etc/passwd', '/etc/localtime'):
        with pytest.raises(UNSAFE) as info:
            load(mongo, call('zoneinfo.ZoneInfo', bad))
        assert_located(info.value, mongo, 'value')


def test_no_main_module_is_imported_even_when_trusted(mongo, tmp_path,
                                                      monkeypatch):
    """A package's ``__main__`` is its command line: never imported on a
    document's word, even under a trusted prefix."""
    package = tmp_path / 'zmongo_main_probe'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / '__main__.py').write_text(
        'import sys\nsys.modules["zmongo_main_probe"].RAN = True\n'
        'class X:\n    pass\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    import zmongo_main_probe
    try:
        with _safety.saved():
            _safety.REGISTRY.trust(['zmongo_main_probe'])
            with pytest.raises(REFUSED):
                load(mongo, typ('zmongo_main_probe.__main__.X'))
        assert not hasattr(zmongo_main_probe, 'RAN')
        assert 'zmongo_main_probe.__main__' not in sys.modules
    finally:
        sys.modules.pop('zmongo_main_probe', None)
