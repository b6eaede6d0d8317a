"""State files, read and written safely: the ONE reader and the ONE writer of the pickles pcls handles.

Every pickle pcls reads (zoo weights, checkpoint weights, EMA, optimizer state) goes through `_unpickle`,
whose unpickler builds only numpy arrays and plain containers, and bounds depth, node count and size while it
reads (a few hundred bytes can otherwise describe gigabytes). `paddle.load` and `pickle.load` are never called on
a file: unpickling runs whatever code the file names (tests/zoo/test_weights.py scans the package for that).
`dump_pickle` writes files numpy 1.x environments (stock PaddleClas) read too. The zoo and the engine's
checkpoints both use this module; it knows nothing of either.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from pcls.errors import PclsError, clip, short_repr

STRUCTURED_NAMES_KEY = "StructuredToParameterName@@"  # paddle.save's map of structured -> parameter names
PICKLE_PROTOCOL = 4  # paddle.save's default; numpy 1.x and every Python 3 PaddleClas runs on read it


# -- reading and writing state files -----------------------------------------------------------------
def _allowed_globals() -> dict:
    """The only globals a state-dict pickle needs (numpy arrays, dtypes and scalars, latin-1 bytes)."""
    import _codecs
    import collections

    core = getattr(np, "_core", None) or np.core  # numpy 2 moved numpy.core to numpy._core
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _codecs.encode}
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = core.multiarray._reconstruct
        allowed[(module, "scalar")] = core.multiarray.scalar
    return allowed


# Bounds a state file never comes near (a large model's optimizer state is a few thousand arrays, nested
# a few levels); a pickle beyond them is a bomb: memo references let a few hundred bytes describe a structure
# of 2**60 nodes, which hashing, walking or printing it would take forever to expand.
MAX_DEPTH = 64
MAX_NODES = 2_000_000
EXTRA_BYTES = 64 << 20  # expanded bytes allowed beyond twice the file's size (arrays are stored inline, once)


class _Refused(Exception):
    """Why a pickle is refused, raised from inside the unpickler; `_unpickle` names the file."""


class _StateUnpickler(pickle._Unpickler):
    """The pure-Python unpickler, restricted: globals come from a fixed allow-list only (anything else is
    refused before it can run), and every container is measured as it is built.

    Each object built gets its expanded node count, depth and byte size (a memo-shared object counts every
    time it is used), so a bomb is refused at the opcode that crosses a bound, before anything expands it.
    Dict keys must be strings or integers before they are hashed (a nested tuple key is hashed by expanding
    it); sets and bare object construction, which state files never use, are refused. A container that was
    placed into another may not change afterwards (pickle's own writer never does that outside cycles), so
    the measures stay exact and no structure can contain itself.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, fh, path: Path, file_size: int):
        super().__init__(fh)
        self._path = path
        self._allowed = _allowed_globals()
        self._byte_limit = 2 * file_size + EXTRA_BYTES
        # id(obj) -> (obj, nodes, depth, bytes) of containers and arrays built so far; holding obj keeps it alive,
        # so that its id is never reused during the load
        self._measure = {}
        self._used = set()  # ids of containers already placed into another (no longer allowed to change)

    def find_class(self, module, name):
        target = self._allowed.get((module, name))
        if target is None:
            raise PclsError(
                f"refusing to load {self._path}: it references the Python global '{module}.{name}', which a "
                f"weights or state file never needs (only numpy arrays); the file may be malicious - "
                f"do not paddle.load it"
            )
        return target

    def persistent_load(self, pid):
        raise _Refused("it uses pickle persistent ids, which weights files never do")

    # -- measuring ---------------------------------------------------------------------------------------
    def _size_of(self, obj):
        found = self._measure.get(id(obj))
        if found is not None:
            return found[1:]
        if isinstance(obj, (str, bytes, bytearray)):
            return 1, 0, len(obj)
        return 1, 0, 0

    def _record(self, obj, nodes: int, depth: int, size: int):
        if depth > MAX_DEPTH:
            raise _Refused(f"it nests containers more than {MAX_DEPTH} deep")
        if nodes > MAX_NODES:
            raise _Refused(f"it describes more than {MAX_NODES:,} objects (memo-shared parts counted each time "
                           f"they are used)")
        if size > self._byte_limit:
            raise _Refused(f"its parts add up to more than {self._byte_limit:,} bytes, far more than the file holds")
        self._measure[id(obj)] = (obj, nodes, depth, size)

    def _built(self, obj, parts) -> None:
        """`obj` was just made of `parts`: measure it."""
        self._add(obj, (1, 1, 0), parts)

    def _grows(self, container, parts) -> None:
        """`parts` are about to go into `container`: refuse a used container, a cycle or a bound crossed."""
        if id(container) in self._used or any(part is container for part in parts):
            raise _Refused("it changes a container after using it (a cycle or a hand-made pickle)")
        self._add(container, self._size_of(container), parts)

    def _add(self, obj, start, parts) -> None:
        nodes, depth, size = start
        for part in parts:
            part_nodes, part_depth, part_size = self._size_of(part)
            nodes, depth, size = nodes + part_nodes, max(depth, part_depth + 1), size + part_size
            if nodes > MAX_NODES:  # stop before summing a huge container's every part
                break
        self._used.update(id(part) for part in parts if id(part) in self._measure)
        self._record(obj, nodes, depth, size)

    def _check_keys(self, keys) -> None:
        for key in keys:
            if not isinstance(key, (str, int)):
                raise _Refused(f"a dict key is a {type(key).__name__}; state files key by names (strings)")


def _measured(opcode: bytes, before=None, after=None):
    """Wrap the pure-Python unpickler's handler of `opcode` with a check before it and a measure after it."""
    handler = pickle._Unpickler.dispatch[opcode[0]]

    def op(self):
        if before is not None:
            before(self)
        handler(self)
        if after is not None:
            after(self)

    _StateUnpickler.dispatch[opcode[0]] = op


def _refuse(why: str):
    def op(self):
        raise _Refused(why)
    return op


def _top_built_of_itself(self):
    self._built(self.stack[-1], self.stack[-1])


def _top_dict_built(self):
    top = self.stack[-1]
    self._built(top, [*top.keys(), *top.values()])


def _check_dict_items(self):
    self._check_keys(self.stack[0::2])


def _before_append(self):
    self._grows(self.stack[-2], [self.stack[-1]])


def _before_appends(self):
    self._grows(self.metastack[-1][-1], self.stack)


def _before_setitem(self):
    self._check_keys([self.stack[-2]])
    self._grows(self.stack[-3], self.stack[-2:])


def _before_setitems(self):
    self._check_keys(self.stack[0::2])
    self._grows(self.metastack[-1][-1], self.stack)


def _before_reduce(self):
    func, args = self.stack[-2], self.stack[-1]
    if func is self._allowed[("numpy.core.multiarray", "_reconstruct")]:
        _check_shape(self, args[1] if isinstance(args, tuple) and len(args) > 1 else None)
    elif func is self._allowed[("numpy.core.multiarray", "scalar")]:  # allocates one item of its dtype
        dtype = args[0] if isinstance(args, tuple) and args else None
        if isinstance(dtype, np.dtype) and dtype.itemsize > self._byte_limit:
            raise _Refused(f"a scalar of {dtype.itemsize:,} bytes is larger than the file could hold")


def _after_reduce(self):
    result = self.stack[-1]
    if isinstance(result, (list, dict, np.ndarray)):  # a fresh container or array; dtypes are shared singletons
        self._built(result, [])


def _before_build(self):
    obj, state = self.stack[-2], self.stack[-1]
    if isinstance(obj, np.dtype):
        return
    if not isinstance(obj, np.ndarray):
        raise _Refused(f"it sets the state of a {type(obj).__name__}, which state files never do")
    if isinstance(state, tuple) and len(state) > 1:
        _check_shape(self, state[1])
    self._grows(obj, [state])


def _check_shape(self, shape) -> None:
    """An array shape worth allocating: a tuple of non-negative ints whose product the file can hold."""
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise _Refused("an array's shape is not a tuple of sizes")
    count = 1
    for n in shape:
        count *= n
        if count > self._byte_limit:
            raise _Refused(f"an array of shape {short_repr(shape, 60)} is larger than the file could hold")


for _op in (pickle.TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3, pickle.LIST):
    _measured(_op, after=_top_built_of_itself)
_measured(pickle.DICT, before=_check_dict_items, after=_top_dict_built)
for _op in (pickle.EMPTY_LIST, pickle.EMPTY_DICT):
    _measured(_op, after=_top_built_of_itself)
_measured(pickle.APPEND, before=_before_append)
_measured(pickle.APPENDS, before=_before_appends)
_measured(pickle.SETITEM, before=_before_setitem)
_measured(pickle.SETITEMS, before=_before_setitems)
_measured(pickle.REDUCE, before=_before_reduce, after=_after_reduce)
_measured(pickle.BUILD, before=_before_build)
for _op in (pickle.EMPTY_SET, pickle.ADDITEMS, pickle.FROZENSET):
    _StateUnpickler.dispatch[_op[0]] = _refuse("it holds a set, which state files never do")
for _op in (pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.OBJ, pickle.INST):
    _StateUnpickler.dispatch[_op[0]] = _refuse("it constructs objects directly, which state files never do")


def _unpickle(path: Path, what: str):
    """The object in pickle file `path`, built only from the allow-listed globals (never code), within bounds."""
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        if head.startswith(b"PK"):
            raise PclsError(f"{path} is a zip archive (a PyTorch checkpoint?), not a Paddle {what} pickle")
        try:
            return _StateUnpickler(fh, path, os.fstat(fh.fileno()).st_size).load()
        except PclsError:
            raise
        except _Refused as why:
            raise PclsError(f"refusing to load {path}: {why}; a weights or state file never does that, so the "
                            f"file is damaged or malicious") from None
        except RecursionError:
            raise PclsError(f"refusing to load {path}: it nests too deeply for a {what} file") from None
        except Exception as err:  # a truncated or foreign file fails in many ways; all mean the same here
            raise PclsError(
                f"{path} is not a readable {what} file ({type(err).__name__}: {clip(err, 120)}); "
                f"static-graph parameter files are not loadable as a dygraph state dict"
            ) from None


def load_state_file(path, suffix: str = None) -> dict:
    """name -> numpy array from a `.pdparams` (restricted unpickling) or `.safetensors` file; `suffix` says
    which when the file's own name does not (a download's `.part`)."""
    path = Path(path)
    if not path.is_file():
        raise PclsError(f"weights file {path} not found")
    if (suffix or path.suffix) == ".safetensors":
        return _load_safetensors(path)
    return _as_state(_unpickle(path, ".pdparams"), path)


def load_state_tree(path) -> dict:
    """An optimizer / scheduler state (`.pdopt`) read through the restricted unpickler.

    Such states hold only arrays, numbers, strings, lists and dicts (paddle.save turns tensors into numpy
    arrays); anything else is refused. paddle.save's structured-name table is dropped, as paddle.load does.
    """
    path = Path(path)
    if not path.is_file():
        raise PclsError(f"state file {path} not found")
    obj = _unpickle(path, ".pdopt")
    if not isinstance(obj, dict):
        raise PclsError(f"{path} holds a {type(obj).__name__}, not a state dict")
    obj.pop(STRUCTURED_NAMES_KEY, None)
    _check_tree(obj, path, "")
    return obj


def load_name_table(path) -> dict:
    """paddle.save's structured -> generated parameter name table of a `.pdparams` ({} when absent): what
    maps the generated names keying another process's optimizer state back to the model's own names."""
    path = Path(path)
    obj = _unpickle(path, ".pdparams")
    table = obj.get(STRUCTURED_NAMES_KEY) if isinstance(obj, dict) else None
    if not isinstance(table, dict):
        return {}
    _check_tree(table, path, STRUCTURED_NAMES_KEY)
    return {str(k): str(v) for k, v in table.items()}


def _as_state(obj, path: Path) -> dict:
    if not isinstance(obj, dict):
        raise PclsError(f"{path} holds a {type(obj).__name__}, not a state dict (name -> array)")
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str):  # checked first: comparing or printing a hostile key can take forever
            raise PclsError(f"{path} has a key that is a {type(key).__name__} ({short_repr(key, 60)}), not a name; "
                            f"it is not a state dict")
        if key == STRUCTURED_NAMES_KEY:
            continue
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray):
            raise PclsError(f"{path}: entry '{clip(key, 60)}' is a {type(value).__name__}, not a numeric array")
        state[key] = _numeric(value, path, key)
    return state


# array kinds a state file holds: bool, signed and unsigned integers, floats (complex, text, bytes, dates,
# times, void records and objects are never weights)
NUMERIC_KINDS = "biuf"


def _numeric(array: np.ndarray, path: Path, where: str) -> np.ndarray:
    if array.dtype.kind not in NUMERIC_KINDS:
        raise PclsError(f"{path}: entry '{clip(where, 60)}' has dtype {array.dtype} ({array.dtype.name}); a weights or "
                        f"state file holds real numbers only (float, integer or bool arrays)")
    return array


_PLAIN = (str, int, float, bool, type(None))


def _check_tree(value, path: Path, where: str) -> None:
    """Refuse anything but arrays, numbers, strings, lists and dicts; the loader bounded depth and size."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise PclsError(f"{path}: a key under '{clip(where, 60)}' is a {type(key).__name__}, not a string")
            _check_tree(item, path, f"{where}.{key}" if where else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_tree(item, path, f"{where}[{index}]")
    elif isinstance(value, (np.ndarray, np.generic)):
        _numeric(np.asarray(value), path, where)
    elif not isinstance(value, _PLAIN):
        raise PclsError(f"{path}: entry '{clip(where, 60)}' is a {type(value).__name__}; a state file holds only "
                        f"arrays, numbers, strings, lists and dicts")


def _load_safetensors(path: Path) -> dict:
    safetensors_numpy = _safetensors()
    try:
        state = dict(safetensors_numpy.load_file(str(path)))
    except Exception as err:  # the Rust loader raises its own error type
        raise PclsError(f"{path} is not a readable .safetensors file ({clip(err, 120)})") from None
    return {key: _numeric(value, path, key) for key, value in state.items()}


def _safetensors():
    try:
        import safetensors.numpy
    except ImportError:
        raise PclsError("reading or writing .safetensors needs the safetensors package: pip install safetensors") \
            from None
    return safetensors.numpy


# -- writing pickles numpy 1.x reads ---------------------------------------------------------------------
# numpy 2 pickles arrays through `numpy._core.multiarray._reconstruct`; numpy 1.x (a stock `pip install
# paddleclas` environment) has no `numpy._core` and fails on such a file, while numpy 2 still reads the old
# `numpy.core` names. So every pickle pcls writes spells numpy's globals the old way.
_NUMPY_NEW, _NUMPY_OLD = "numpy._core", "numpy.core"


class _Numpy1Pickler(pickle._Pickler):
    """The pure-Python pickler with numpy's moved module spelt as numpy 1.x and 2.x both import it."""

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", None) or ""
        if module == _NUMPY_NEW or module.startswith(_NUMPY_NEW + "."):
            self.save(_NUMPY_OLD + module[len(_NUMPY_NEW):])
            self.save(name or obj.__qualname__)
            self.write(pickle.STACK_GLOBAL)
            self.memoize(obj)
            return
        super().save_global(obj, name)


def plain_tree(obj):
    """`obj` with every paddle Tensor turned into a numpy array (dicts, lists and tuples walked), as
    paddle.save stores it."""
    if isinstance(obj, dict):
        return {key: plain_tree(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain_tree(value) for value in obj)
    if isinstance(obj, (np.ndarray, np.generic, str, bytes, int, float, bool, type(None))):
        return obj
    if hasattr(obj, "numpy"):  # a paddle Tensor / Parameter
        return np.asarray(obj.numpy())
    return obj


def state_with_names(state: dict) -> dict:
    """A model state dict as paddle.save writes it: arrays plus the structured -> parameter name table."""
    arrays, names = {}, {}
    for key, value in state.items():
        if key == STRUCTURED_NAMES_KEY:
            continue
        if not isinstance(value, np.ndarray) and getattr(value, "name", None):
            names[key] = value.name
        arrays[key] = plain_tree(value)
    if names:
        arrays[STRUCTURED_NAMES_KEY] = names
    return arrays


def dump_pickle(obj, path) -> None:
    """Pickle `obj` (Tensors -> arrays) to `path` with numpy.core names; the caller makes it atomic."""
    with open(Path(path), "wb") as fh:
        _Numpy1Pickler(fh, protocol=PICKLE_PROTOCOL).dump(plain_tree(obj))


def save_state_file(state: dict, path) -> Path:
    """Write a state dict (paddle Tensors or numpy arrays) atomically, as paddle.save does: a pickle of
    name -> numpy array; `.safetensors` when `path` ends so."""
    from pcls.utils.io import atomic_path

    path = Path(path)
    arrays = state_with_names(state)
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            arrays.pop(STRUCTURED_NAMES_KEY, None)
            _safetensors().save_file({k: np.ascontiguousarray(np.asarray(v)) for k, v in arrays.items()}, str(tmp))
        else:
            dump_pickle(arrays, tmp)  # numpy.core names: numpy 1.x environments (stock PaddleClas) read it too
    return path
