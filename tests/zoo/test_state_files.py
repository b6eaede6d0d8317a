"""The one restricted loader of pickles bounds what a file may describe while it loads (#25.9): memo-shared
bombs, deep nesting, cycles, huge shapes and non-string keys are one-line refusals, in bounded memory and time."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest

from pcls.errors import PclsError
from pcls.utils.state_files import MAX_DEPTH, dump_pickle, load_state_file, load_state_tree
from tests.hostile import run_capped

_LOAD = """
import sys
from pcls.errors import PclsError
from pcls.utils import state_files
try:
    getattr(state_files, sys.argv[1])(sys.argv[2])
except PclsError as err:
    print(err)
    sys.exit(2)
print("loaded")
"""


def _tuple_bomb_key(levels: int) -> bytes:
    """{t: 1} where t = (t', t'), t' = (t'', t'') ... `levels` deep, each level one memo entry: six bytes per
    level describe 2**levels tuples, which hashing the key (or printing it) expands."""
    data = bytearray(pickle.PROTO + b"\x04" + pickle.EMPTY_DICT + pickle.EMPTY_TUPLE + pickle.MEMOIZE + pickle.POP)
    for level in range(levels):
        data += pickle.BINGET + bytes([level]) + pickle.DUP + pickle.TUPLE2 + pickle.MEMOIZE + pickle.POP
    return bytes(data + pickle.BINGET + bytes([levels]) + pickle.BININT1 + b"\x01" + pickle.SETITEM + pickle.STOP)


def _nested_lists(depth: int) -> bytes:
    """{"state": [[[...]]]} nested `depth` deep, built without recursion."""
    key = b"state"
    data = pickle.PROTO + b"\x04" + pickle.EMPTY_DICT + pickle.SHORT_BINUNICODE + bytes([len(key)]) + key
    data += pickle.EMPTY_LIST * depth + pickle.APPEND * (depth - 1)
    return data + pickle.SETITEM + pickle.STOP


def test_a_memo_shared_tuple_key_is_refused_at_once_in_bounded_memory(tmp_path):
    bomb = tmp_path / "bomb.pdparams"
    bomb.write_bytes(_tuple_bomb_key(35))  # 2**35 tuples; hashing them as a dict key takes hours
    assert bomb.stat().st_size < 230
    for loader in ("load_state_file", "load_state_tree"):
        result = run_capped(_LOAD, loader, bomb, memory_mb=1024, timeout_s=60)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stdout.count("\n") == 1 and "refusing to load" in result.stdout
        assert "more than 2,000,000 objects" in result.stdout and str(bomb) in result.stdout


def test_a_pdopt_nested_100k_deep_is_one_line(tmp_path):
    deep = tmp_path / "latest.pdopt"
    deep.write_bytes(_nested_lists(100_000))
    result = run_capped(_LOAD, "load_state_tree", deep, memory_mb=1024, timeout_s=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.count("\n") == 1 and f"nests containers more than {MAX_DEPTH} deep" in result.stdout


def test_nesting_within_the_bound_loads(tmp_path):
    path = tmp_path / "ok.pdopt"
    path.write_bytes(_nested_lists(MAX_DEPTH - 1))
    assert load_state_tree(path)["state"] == _nest(MAX_DEPTH - 2)


def _nest(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def test_a_list_holding_itself_is_refused(tmp_path):
    path = tmp_path / "cycle.pdopt"
    data = pickle.PROTO + b"\x04" + pickle.EMPTY_DICT + pickle.SHORT_BINUNICODE + b"\x01a"
    data += pickle.EMPTY_LIST + pickle.MEMOIZE + pickle.BINGET + b"\x00" + pickle.APPEND + pickle.SETITEM + pickle.STOP
    path.write_bytes(data)
    with pytest.raises(PclsError, match="changes a container after using it"):
        load_state_tree(path)


def test_a_container_changed_after_use_is_refused(tmp_path):
    """[L] is built while L is empty, then L grows: measuring [L] at build time would undercount it."""
    data = pickle.PROTO + b"\x04" + pickle.EMPTY_DICT + pickle.SHORT_BINUNICODE + b"\x01a"
    data += pickle.EMPTY_LIST + pickle.MEMOIZE + pickle.POP  # L, in the memo only
    data += pickle.MARK + pickle.BINGET + b"\x00" + pickle.LIST  # [L]
    data += pickle.BINGET + b"\x00" + pickle.BININT1 + b"\x07" + pickle.APPEND + pickle.POP  # L.append(7)
    data += pickle.SETITEM + pickle.STOP
    path = tmp_path / "grow.pdopt"
    path.write_bytes(data)
    with pytest.raises(PclsError, match="changes a container after using it"):
        load_state_tree(path)


def test_an_array_larger_than_the_file_is_refused_before_it_is_allocated(tmp_path):
    from numpy.core.multiarray import _reconstruct

    class Huge:
        def __reduce__(self):
            return _reconstruct, (np.ndarray, (1 << 40,), b"b")

    path = tmp_path / "huge.pdparams"
    path.write_bytes(pickle.dumps({"w": Huge()}, protocol=4))
    result = run_capped(_LOAD, "load_state_file", path, memory_mb=1024, timeout_s=60)
    assert result.returncode == 2 and "larger than the file could hold" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("value, why", [({1, 2}, "holds a set"), (frozenset({1}), "holds a set")])
def test_sets_are_refused(tmp_path, value, why):
    path = tmp_path / "s.pdopt"
    path.write_bytes(pickle.dumps({"a": value}, protocol=4))
    with pytest.raises(PclsError, match=why):
        load_state_tree(path)


def test_a_tuple_key_is_refused_before_it_is_hashed(tmp_path):
    path = tmp_path / "k.pdparams"
    path.write_bytes(pickle.dumps({("a", "b"): np.zeros(2)}, protocol=4))
    with pytest.raises(PclsError, match="a dict key is a tuple"):
        load_state_file(path)


def test_an_optimizer_state_with_shared_names_and_integer_keys_loads(tmp_path):
    """What paddle writes: nested dicts, integer keys (LR schedulers), repeated strings, numpy scalars."""
    state = {"fc.weight_moment1_0": np.ones((3, 2), "float32"), "beta1_pow": np.float32(0.9),
             "LR_Scheduler": {"last_epoch": 4, "milestones": {30: 0.1, 60: 0.01}, "name": "piecewise"},
             "master_weights": {"fc.weight": np.zeros(2, "float32")}}
    path = tmp_path / "latest.pdopt"
    dump_pickle(state, path)
    loaded = load_state_tree(path)
    assert loaded["LR_Scheduler"] == state["LR_Scheduler"]
    assert np.array_equal(loaded["fc.weight_moment1_0"], state["fc.weight_moment1_0"])


def test_a_bytes_buffer_shared_by_many_arrays_is_refused(tmp_path):
    """One memo-shared 1 MiB buffer behind many arrays: small on disk, huge in memory."""
    buffer = b"\0" * (1 << 20)
    path = tmp_path / "shared.pdparams"
    shared = bytearray(pickle.PROTO + b"\x04" + pickle.EMPTY_DICT + pickle.MARK)
    shared += pickle.BINBYTES + struct.pack("<I", len(buffer)) + buffer + pickle.MEMOIZE + pickle.POP
    for i in range(200):
        name = f"w{i}".encode()
        shared += pickle.SHORT_BINUNICODE + bytes([len(name)]) + name + pickle.BINGET + b"\x00"
    shared += pickle.SETITEMS + pickle.STOP
    path.write_bytes(bytes(shared))
    with pytest.raises(PclsError, match="add up to more than"):
        load_state_file(path)


def test_a_scalar_of_a_huge_dtype_is_refused_before_it_is_allocated(tmp_path):
    huge = np.dtype(("V", 1 << 30))

    class Scalar:
        def __reduce__(self):
            from numpy.core.multiarray import scalar

            return scalar, (huge,)

    path = tmp_path / "scalar.pdparams"
    path.write_bytes(pickle.dumps({"w": Scalar()}, protocol=4))
    result = run_capped(_LOAD, "load_state_file", path, memory_mb=768, timeout_s=60)
    assert result.returncode == 2 and "a scalar of 1,073,741,824 bytes" in result.stdout, result.stdout + result.stderr
