"""State files, read and written safely: the ONE reader and the ONE writer of the pickles pcls handles.

Every pickle pcls reads (zoo weights, checkpoint weights, EMA, optimizer state) goes through `_unpickle`,
whose unpickler builds only numpy arrays and plain containers, and bounds depth, node count and size while it
reads (a few hundred bytes can otherwise describe gigabytes). `paddle.load` and `pickle.load` are never called on
a file: unpickling runs whatever code the file names (tests/zoo/test_weights.py scans the package for that).
`dump_pickle` writes files numpy 1.x environments (stock PaddleClas) read too. The zoo and the engine's
checkpoints both use this module; it knows nothing of either.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from pcls.errors import PclsError

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


class _StateUnpickler(pickle.Unpickler):
    """Resolves globals from a fixed allow-list only; anything else is refused before it can run."""

    def __init__(self, fh, path: Path):
        super().__init__(fh)
        self._path = path
        self._allowed = _allowed_globals()

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
        raise PclsError(f"refusing to load {self._path}: it uses pickle persistent ids, which weights files never do")


def _unpickle(path: Path, what: str):
    """The object in pickle file `path`, built only from the allow-listed globals (never code)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        if head.startswith(b"PK"):
            raise PclsError(f"{path} is a zip archive (a PyTorch checkpoint?), not a Paddle {what} pickle")
        try:
            return _StateUnpickler(fh, path).load()
        except PclsError:
            raise
        except Exception as err:  # a truncated or foreign file fails in many ways; all mean the same here
            raise PclsError(
                f"{path} is not a readable {what} file ({type(err).__name__}: {err}); static-graph "
                f"parameter files are not loadable as a dygraph state dict"
            ) from err


def load_state_file(path) -> dict:
    """name -> numpy array from a `.pdparams` (restricted unpickling) or `.safetensors` file."""
    path = Path(path)
    if not path.is_file():
        raise PclsError(f"weights file {path} not found")
    if path.suffix == ".safetensors":
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
        if key == STRUCTURED_NAMES_KEY:
            continue
        if not isinstance(key, str):
            raise PclsError(f"{path} has a non-string key {key!r}; it is not a state dict")
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise PclsError(f"{path}: entry '{key}' is a {type(value).__name__}, not a numeric array")
        state[key] = value
    return state


_PLAIN = (str, int, float, bool, type(None))


def _check_tree(value, path: Path, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise PclsError(f"{path}: key {key!r} under '{where}' is not a string")
            _check_tree(item, path, f"{where}.{key}" if where else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_tree(item, path, f"{where}[{index}]")
    elif isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise PclsError(f"{path}: entry '{where}' is an object array; a state file holds numeric arrays only")
    elif not isinstance(value, _PLAIN + (np.generic,)):
        raise PclsError(f"{path}: entry '{where}' is a {type(value).__name__}; a state file holds only arrays, "
                        f"numbers, strings, lists and dicts")


def _load_safetensors(path: Path) -> dict:
    safetensors_numpy = _safetensors()
    try:
        return dict(safetensors_numpy.load_file(str(path)))
    except Exception as err:  # the Rust loader raises its own error type
        raise PclsError(f"{path} is not a readable .safetensors file ({err})") from err


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
