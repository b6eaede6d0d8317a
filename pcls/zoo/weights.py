"""Weights files, read safely: `.pdparams` pickles through an unpickler that builds only numpy arrays,
and loading into a model that says exactly what was loaded, re-initialised or did not fit.

This module holds pcls's ONE unpickler: every pickle pcls reads (zoo weights, checkpoint weights, EMA,
optimizer state) goes through `_unpickle`. `paddle.load` and `pickle.load` are never called on a file:
unpickling runs whatever code the file names (tests/zoo/test_weights.py scans the package for that).
It also holds the one pickle writer, `dump_pickle`, whose files numpy 1.x environments read too.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from dataclasses import dataclass, field
from typing import Optional
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from pcls.errors import PclsError, did_you_mean
from pcls.zoo import catalog
from pcls.zoo.cache import mirrored, pcls_home, static_dir, weights_dir, weights_path

STRUCTURED_NAMES_KEY = "StructuredToParameterName@@"  # paddle.save's map of structured -> parameter names
WEIGHT_SUFFIXES = (".pdparams", ".safetensors")


def has_files(prefix: Path, suffixes) -> bool:
    """Whether `prefix` + any of `suffixes` is a file."""
    return any(prefix.with_name(prefix.name + s).is_file() for s in suffixes)


def find_in_run(folder, stem: str, suffixes=WEIGHT_SUFFIXES) -> Optional[Path]:
    """The prefix `stem` (e.g. latest, best_model) of a run folder in either layout, or None: `folder/stem`,
    else `folder/<sub>/stem` when exactly one sub-folder holds it (PaddleClas's `output/<Arch.name>/`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    if has_files(folder / stem, suffixes):
        return folder / stem
    found = sorted(sub / stem for sub in folder.iterdir() if sub.is_dir() and has_files(sub / stem, suffixes))
    if len(found) > 1:
        raise PclsError(f"{folder} holds several runs with {stem} ({', '.join(p.parent.name for p in found[:4])}); "
                        f"name one of them, e.g. {found[0].parent}")
    return found[0] if found else None
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


# -- finding weights ---------------------------------------------------------------------------------
def download_weights(name: str, directory=None, static: bool = False, progress: bool = True) -> Path:
    """Fetch zoo model `name` into the cache (or `directory`) and return the local path.

    static=True (or a model that only has one) fetches the legacy static-graph `.tar` and returns the
    folder it was extracted to.
    """
    from pcls.zoo.download import fetch, safe_extract_tar

    entry = catalog.get_entry(name)
    if static or not entry.get("pretrained_url"):
        url = entry.get("static_tar_url")
        if not url:
            raise PclsError(f"no weights are published for {name}")
        target = static_dir(name, directory)
        archive = fetch(mirrored(url), target.with_name(f"{name}.tar"), progress=progress)
        return safe_extract_tar(archive, target)
    return fetch(mirrored(entry["pretrained_url"]), weights_path(name, directory), progress=progress)


def resolve_weights(source, arch: str | None = None) -> Path:
    """A local weights file for `source`: True (the zoo's weights of `arch`), a zoo name, a file path
    (with or without .pdparams) or a URL; downloads into the cache when needed (and allowed)."""
    from pcls.zoo.download import fetch

    if source is True:
        if not arch:
            raise PclsError("pretrained=True needs a model name to find its zoo weights")
        source = arch
    text = str(source)
    if text.startswith(("http://", "https://")):
        filename = Path(urlsplit(text).path).name or "weights.pdparams"
        url_id = hashlib.sha256(text.encode()).hexdigest()[:10]  # two URLs ending in one file name never collide
        return fetch(text, weights_dir() / "url" / f"{url_id}-{filename}")
    path = Path(text).expanduser()
    if path.is_dir():  # PaddleClas writes best_model.pdparams beside a best_model/ folder: the prefix wins
        for suffix in WEIGHT_SUFFIXES:
            if path.with_name(path.name + suffix).is_file():
                return path.with_name(path.name + suffix)
        best = find_in_run(path, "best_model")  # a run folder, pcls's or PaddleClas's layout: its best weights
        if best is not None:
            return next(best.with_name(best.name + s) for s in WEIGHT_SUFFIXES if best.with_name(best.name + s).is_file())
    zoo_name = text in catalog.load_catalog()
    if path.is_file() or (path.exists() and not zoo_name):  # a zoo name beats a same-named folder
        return _checked_local(path)
    if zoo_name:
        entry = catalog.get_entry(text)
        if not entry.get("pretrained_url"):
            raise PclsError(
                f"only a legacy static-graph archive is published for {text}: a folder of static-graph "
                f"parameter files, not loadable as a dygraph state dict; 'pcls zoo download {text}' "
                f"extracts it to {static_dir(text)}"
            )
        return download_weights(text)
    for suffix in WEIGHT_SUFFIXES:
        if path.with_name(path.name + suffix).is_file():
            return path.with_name(path.name + suffix)
    if "/" in text or path.suffix in WEIGHT_SUFFIXES or path.suffix == ".tar":
        raise PclsError(f"weights file {text} not found (also looked for {text}.pdparams)")
    raise PclsError(
        f"'{text}' is neither a weights file nor a zoo model{did_you_mean(text, catalog.load_catalog())}; "
        f"see 'pcls zoo list'"
    )


def _checked_local(path: Path) -> Path:
    in_static_cache = path.resolve().is_relative_to(pcls_home().resolve() / "static")
    if path.is_dir() or path.suffix == ".tar" or in_static_cache:
        raise PclsError(
            f"{path} is a legacy static-graph archive or folder of parameter files, not loadable as a "
            f"dygraph state dict; use the .pdparams weights of the model (see 'pcls zoo info NAME')"
        )
    return path


# -- loading into a model ----------------------------------------------------------------------------
@dataclass
class LoadReport:
    """What `load_pretrained` did: loaded tensors out of the model's total, re-initialised classifier keys."""

    source: str
    loaded: int
    total: int
    reinitialised: list = field(default_factory=list)
    ignored: list = field(default_factory=list)  # classifier entries of the file the model has no place for

    def __str__(self) -> str:
        text = f"loaded {self.loaded}/{self.total} tensors from {self.source}"
        if self.reinitialised:
            text += f"; re-initialised: {', '.join(self.reinitialised)}"
        return text


def load_pretrained(model, source, verbose: bool = True, reinit_classifier: bool = False) -> LoadReport:
    """Load weights (`source` as for `resolve_weights`) into `model`; see `apply_state`."""
    arch = getattr(model, "model_name", None)
    path = resolve_weights(source, arch)
    state = load_state_file(path)
    hint = ""
    entry = catalog.load_catalog().get(str(source))
    if entry and arch and entry.get("arch") and entry["arch"] != arch:
        hint = f" (zoo weights {source} are for {entry['arch']}, the model is {arch})"
    return apply_state(model, state, str(path), verbose=verbose, hint=hint, reinit_classifier=reinit_classifier)


def apply_state(model, state: dict, source: str = "state dict", verbose: bool = True, hint: str = "",
                reinit_classifier: bool = False) -> LoadReport:
    """Set `state` into `model`. Every key must be present with its shape, else a PclsError listing them.

    Only with `reinit_classifier=True` (fine-tuning: new classes on pretrained features) is a classifier that
    does not fit (another class_num) left at its fresh initialisation instead; evaluating or exporting
    weights with a random head would report numbers that mean nothing. A model with
    `adapt_state_dict(state)` (e.g. transformers resizing position embeddings) adapts the state first.
    """
    from pcls.zoo.download import say

    adapt = getattr(model, "adapt_state_dict", None)
    if callable(adapt):
        state = adapt(state)
    own = model.state_dict(use_hook=False)  # the weights as held: an O2 model's save_dtype hook casts them
    prefixes = tuple(model.classifier_prefixes()) if hasattr(model, "classifier_prefixes") else ()
    in_head = (lambda key: key.startswith(prefixes)) if prefixes else (lambda key: False)

    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and tuple(np.shape(state[k])) != tuple(own[k].shape)]
    absent_or_resized = set(missing) | set(mismatched)
    reinitialised = [k for k in own if k in absent_or_resized and in_head(k)]
    ignored = [k for k in unexpected if in_head(k)]

    problems = []
    bad_missing = [k for k in missing if not in_head(k)]
    bad_unexpected = [k for k in unexpected if not in_head(k)]
    bad_shapes = [k for k in mismatched if not in_head(k)]
    if bad_missing:
        problems.append(f"{len(bad_missing)} missing ({_some(bad_missing)})")
    if bad_unexpected:
        problems.append(f"{len(bad_unexpected)} unexpected ({_some(bad_unexpected)})")
    if bad_shapes:
        shapes = [f"{k}: file {list(np.shape(state[k]))} vs model {list(own[k].shape)}" for k in bad_shapes]
        problems.append(f"{len(bad_shapes)} shape mismatches ({_some(shapes)})")
    if problems:
        name = getattr(model, "model_name", type(model).__name__)
        raise PclsError(f"weights {source} do not fit {name}{hint}: " + "; ".join(problems))
    if (reinitialised or ignored) and not reinit_classifier:
        raise PclsError(_head_mismatch(model, state, own, reinitialised or ignored, source, hint))

    to_set = {k: _as_dtype_of(state[k], own[k]) for k in own if k not in absent_or_resized}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paddle warns per skipped key; the report below says it once
        model.set_state_dict(to_set)
    if reinitialised and verbose:
        change = _class_change(state, own, reinitialised)
        why = f"class_num {change[0]} -> {change[1]}" if change else "not in the weights file"
        say(f"re-initialised classifier {', '.join(reinitialised)}: {why}")
    return LoadReport(source, len(to_set), len(own), reinitialised, ignored)


def _head_mismatch(model, state: dict, own: dict, keys: list, source: str, hint: str) -> str:
    name = getattr(model, "model_name", type(model).__name__)
    change = _class_change(state, own, keys)
    if change:
        return (f"weights {source} have {change[0]} classes but the {name} model is built for {change[1]}{hint}; "
                f"set the class count to {change[0]} (--class-num / Arch.class_num) or use weights trained on "
                f"{change[1]} classes (re-initialising the classifier is for fine-tuning only: pcls train)")
    return (f"weights {source} do not fit the classifier of {name}{hint} ({_some(keys)}); use weights of this "
            f"model and class count (re-initialising the classifier is for fine-tuning only: pcls train)")


def _as_dtype_of(array, tensor):
    """Cast a float array to the model's float dtype (e.g. float16 weights into a float32 model)."""
    array = np.asarray(array)
    want = str(tensor.dtype).rsplit(".", 1)[-1]
    if array.dtype.kind == "f" and want in ("float16", "float32", "float64") and array.dtype != np.dtype(want):
        return array.astype(want)
    return array


def _class_change(state: dict, own: dict, keys: list):
    """(file classes, model classes) read off the one dimension in which a classifier tensor differs."""
    for key in keys:
        if key not in state:
            continue
        a, b = tuple(np.shape(state[key])), tuple(own[key].shape)
        diff = [(x, y) for x, y in zip(a, b) if x != y] if len(a) == len(b) else []
        if len(diff) == 1:
            return diff[0]
    return None


def _some(items: list, limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... {len(items) - limit} more" if len(items) > limit else "")


