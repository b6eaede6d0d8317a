"""Weights into a model: what a weights source names (a zoo name, a file, a URL, a run folder), fetched when
needed, and loading it into a model with a report that says exactly what was loaded, re-initialised or did
not fit. Files are read by pcls.utils.state_files (the one restricted loader); downloads by pcls.zoo.download.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from pcls.errors import PclsError, did_you_mean
from pcls.utils.run_files import WEIGHT_SUFFIXES, file_of, find_in_run
from pcls.utils.state_files import load_state_file
from pcls.zoo import catalog
from pcls.zoo.cache import pcls_home, static_dir, weights_dir

log = logging.getLogger(__name__)


# -- finding weights ---------------------------------------------------------------------------------
def resolve_weights(source, arch: str | None = None) -> Path:
    """A local weights file for `source`: True (the zoo's weights of `arch`), a zoo name, a file path
    (with or without .pdparams) or a URL; downloads into the cache when needed (and allowed)."""
    from pcls.zoo.download import download_weights, fetch, weights_check

    if source is True:
        if not arch:
            raise PclsError("pretrained=True needs a model name to find its zoo weights")
        source = arch
    text = str(source)
    if text.startswith(("http://", "https://")):
        filename = Path(urlsplit(text).path).name or "weights.pdparams"
        url_id = hashlib.sha256(text.encode()).hexdigest()[:10]  # two URLs ending in one file name never collide
        dest = weights_dir() / "url" / f"{url_id}-{filename}"
        return fetch(text, dest, check=weights_check(dest))
    path = Path(text).expanduser()
    if path.is_dir():  # PaddleClas writes best_model.pdparams beside a best_model/ folder: the prefix wins
        beside = file_of(path)
        if beside is not None:
            return beside
        best = find_in_run(path, "best_model")  # a run folder, pcls's or PaddleClas's layout: its best weights
        if best is not None:
            return file_of(best)
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
    beside = file_of(path)
    if beside is not None:
        return beside
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
    nonfinite: list = field(default_factory=list)  # loaded tensors holding NaN or Inf (logged as a warning)

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

    wrong_kind = [f"{k}: {np.asarray(state[k]).dtype} for {_dtype_name(own[k])}" for k in own
                  if k not in absent_or_resized and not _takes(own[k], state[k])]
    if wrong_kind:
        raise PclsError(f"weights {source} have {len(wrong_kind)} tensors of a type the model cannot take "
                        f"({_some(wrong_kind)}); float parameters take float weights (pcls does not load "
                        f"quantised or integer weights into them)")
    to_set = {k: _as_dtype_of(state[k], own[k]) for k in own if k not in absent_or_resized}
    nonfinite = [k for k, v in to_set.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if nonfinite:
        log.warning("weights %s hold NaN or Inf values in %d tensors (%s): whatever the model computes from them "
                    "is meaningless", source, len(nonfinite), _some(nonfinite))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paddle warns per skipped key; the report below says it once
        model.set_state_dict(to_set)
    if reinitialised and verbose:
        change = _class_change(state, own, reinitialised)
        why = f"class_num {change[0]} -> {change[1]}" if change else "not in the weights file"
        say(f"re-initialised classifier {', '.join(reinitialised)}: {why}")
    return LoadReport(source, len(to_set), len(own), reinitialised, ignored, nonfinite)


def _head_mismatch(model, state: dict, own: dict, keys: list, source: str, hint: str) -> str:
    name = getattr(model, "model_name", type(model).__name__)
    change = _class_change(state, own, keys)
    if change:
        return (f"weights {source} have {change[0]} classes but the {name} model is built for {change[1]}{hint}; "
                f"set the class count to {change[0]} (--class-num / Arch.class_num) or use weights trained on "
                f"{change[1]} classes (re-initialising the classifier is for fine-tuning only: pcls train)")
    return (f"weights {source} do not fit the classifier of {name}{hint} ({_some(keys)}); use weights of this "
            f"model and class count (re-initialising the classifier is for fine-tuning only: pcls train)")


def _dtype_name(tensor) -> str:
    return str(tensor.dtype).rsplit(".", 1)[-1]  # paddle.float32 -> float32


def _takes(tensor, array) -> bool:
    """Whether a parameter of `tensor`'s dtype can take `array` (floats take floats; paddle saves bfloat16 as
    uint16; integers take integers; bool takes bool)."""
    dtype, want = np.asarray(array).dtype, _dtype_name(tensor)
    if want.startswith("float"):
        return dtype.kind == "f"
    if want == "bfloat16":
        return dtype.kind == "f" or dtype == np.uint16
    if want.startswith(("int", "uint")):
        return dtype.kind in "iu"
    if want == "bool":
        return dtype.kind == "b"
    return True


def _as_dtype_of(array, tensor):
    """Cast a float array to the model's float dtype (e.g. float16 weights into a float32 model)."""
    array = np.asarray(array)
    want = _dtype_name(tensor)
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


