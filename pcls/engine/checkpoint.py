"""Checkpoints that lose nothing: `<prefix>.pdparams` (model), `.pdopt` (optimizer), `.json` (epoch, step,
position in the epoch, config, RNG states, the callbacks' states, file digests) and the files callbacks keep
their state in (`_ema.pdparams` when EMA is on).

All files of one checkpoint are written to temp names and renamed together at the end; the JSON records
the size and sha1 of each, so a checkpoint cut in the middle of those renames is detected, not loaded.
Optimizer state is stored under the model's structured parameter names (paddle keys it by generated
names like `linear_3.w_0`, which change with layer creation order), so a resume never depends on what
else the process built first.

The `.pdparams`/`.pdopt` files hold what paddle.save writes (PaddleClas reads them, under numpy 1 too: see
pcls.utils.state_files.dump_pickle), but they are read
back only through the restricted unpickler of `pcls.utils.state_files`, and the RNG states are plain JSON: a
checkpoint someone handed you cannot run code when resumed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import random
from pathlib import Path

import numpy as np

from pcls.errors import PclsError
from pcls.utils.io import atomic_path

STATE_VERSION = 1
log = logging.getLogger(__name__)


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- RNG ----------------------------------------------------------------------------------------------
def rng_state() -> dict:
    """Python, numpy and paddle generator states, as plain JSON values (no pickle)."""
    import paddle

    py = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "paddle": [_generator_fields(s) for s in paddle.get_rng_state()],
    }


def _generator_fields(state) -> dict:
    # GeneratorState pickles as (device, seed, offset, engine text as bytes); keep those values, not the pickle
    device, seed, offset, engine = state.__getstate__()
    return {"device": int(device), "seed": int(seed), "offset": int(offset), "engine": bytes(engine).decode("ascii")}


_MALFORMED_RNG = "the checkpoint's RNG state is malformed ({}); resume from another checkpoint"


def _generator_state(fields):
    """A paddle GeneratorState from `_generator_fields` output, after checking every value's type."""
    from paddle.base import core

    keys = ("device", "seed", "offset", "engine")
    ok = isinstance(fields, dict) and set(fields) == set(keys)
    ok = ok and all(isinstance(fields[k], int) and not isinstance(fields[k], bool) for k in keys[:3])
    ok = ok and isinstance(fields["engine"], str) and fields["engine"].isascii()  # text paddle parses itself
    if not ok:
        raise PclsError(_MALFORMED_RNG.format("paddle: expected integers device, seed, offset and the engine text"))
    state = core.GeneratorState.__new__(core.GeneratorState)
    state.__setstate__((fields["device"], fields["seed"], fields["offset"], list(fields["engine"].encode("ascii"))))
    return state


def set_rng_state(state: dict) -> None:
    """Restore `rng_state()` output; malformed values are a PclsError, never a traceback."""
    import paddle

    try:
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
        saved = state.get("paddle")
        if isinstance(saved, list):
            paddle.set_rng_state([_generator_state(fields) for fields in saved])
    except PclsError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, RuntimeError) as err:
        raise PclsError(_MALFORMED_RNG.format(f"{type(err).__name__}: {err}".splitlines()[0])) from None
    if saved is not None and not isinstance(saved, list):
        # older pcls stored a base64 pickle here; unpickling it could run code, so it is not read
        log.warning("the checkpoint stores paddle's RNG state in an old pickled form, which pcls no longer reads: "
                    "paddle's random stream restarts (the resumed run is not bit-identical)")


# -- optimizer state under structured names -----------------------------------------------------------
def _name_map(model) -> dict:
    """paddle generated parameter name -> structured name ('linear_0.w_0' -> 'fc.weight')."""
    return {param.name: name for name, param in model.named_parameters()}


def _rename_keys(state, mapping: dict):
    """Rename accumulator keys '<param name>_<suffix>' (and nested dicts like master_weights)."""
    by_length = sorted(mapping, key=len, reverse=True)
    out = {}
    for key, value in state.items():
        if isinstance(value, dict) and key != "LR_Scheduler":
            out[key] = _rename_keys(value, mapping)
            continue
        new_key = key
        for old in by_length:
            if key == old or key.startswith(old + "_"):
                new_key = mapping[old] + key[len(old):]
                break
        out[new_key] = value
    return out


def optimizer_state(optimizer, model) -> dict:
    return _rename_keys(optimizer.state_dict(), _name_map(model))


def load_optimizer_state(optimizer, model, state: dict) -> None:
    reverse = {structured: generated for generated, structured in _name_map(model).items()}
    optimizer.set_state_dict(_rename_keys(state, reverse))


# -- save / load --------------------------------------------------------------------------------------
def save_checkpoint(prefix, weights: dict, optimizer_state: dict = None, state: dict = None,
                    extra_files: dict = None) -> Path:
    """Write one checkpoint under `prefix` (e.g. output/run/latest); returns the JSON path.

    weights: the model's state_dict; optimizer_state: from `optimizer_state(optimizer, model)`;
    extra_files: {suffix: arrays} written beside them, e.g. the EMA callback's {"_ema.pdparams": weights}.
    A failed write (disk full, read-only folder) is a PclsError; the previous checkpoint stays intact.
    """
    from pcls.utils.state_files import dump_pickle, state_with_names

    prefix = Path(prefix)
    files = {".pdparams": state_with_names(weights)}
    if optimizer_state is not None:
        files[".pdopt"] = optimizer_state
    files.update(extra_files or {})
    state = dict(state or {})
    state["version"] = STATE_VERSION
    json_path = prefix.with_name(prefix.name + ".json")
    try:
        with contextlib.ExitStack() as stack:
            digests = {}
            for suffix, obj in files.items():
                final = prefix.with_name(prefix.name + suffix)
                tmp = stack.enter_context(atomic_path(final))
                dump_pickle(obj, tmp)  # paddle.save's content, numpy names numpy 1.x reads too
                digests[final.name] = {"size": tmp.stat().st_size, "sha1": _sha1(tmp)}
            state["files"] = digests
            tmp = stack.enter_context(atomic_path(json_path))
            tmp.write_text(json.dumps(state, indent=1, default=_plain))
    except OSError as err:
        full = err.errno == errno.ENOSPC
        why = "the disk is full" if full else (err.strerror or str(err))
        what_to_do = "free space or choose another output folder" if full else "choose another output folder"
        raise PclsError(f"cannot write checkpoint {prefix} in {prefix.parent}: {why}; the previous checkpoint "
                        f"there is unchanged - {what_to_do}") from err
    return json_path


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "numpy"):
        return np.asarray(value.numpy()).tolist()
    return str(value)


def checkpoint_prefix(path) -> Path:
    """A run directory (-> its `latest`; pcls's or PaddleClas's `output_dir/<Arch.name>/` layout) or a
    checkpoint prefix, with or without an extension; pcls's checkpoints and PaddleClas's."""
    from pcls.engine.paddleclas_runs import is_paddleclas_checkpoint
    from pcls.utils.run_files import find_in_run

    path = Path(path)
    if path.is_dir():
        path = find_in_run(path, "latest", (".json", ".pdstates")) or path / "latest"
    for suffix in (".pdparams", ".pdopt", ".json", ".pdstates"):
        if path.name.endswith(suffix):
            path = path.with_name(path.name[: -len(suffix)])
    if is_paddleclas_checkpoint(path):
        return path
    if not path.with_name(path.name + ".json").exists():
        if path.with_name(path.name + ".pdparams").exists():
            raise PclsError(f"{path}.json is missing: this is weights only, not a checkpoint to resume; "
                            f"use Global.pretrained_model={path} to start from these weights")
        raise PclsError(f"no checkpoint at {path} (expected {path}.json and {path}.pdparams); "
                        f"pass a run directory like output/<run> or a checkpoint prefix")
    return path


def checkpoint_state(prefix: Path):
    """The JSON state pcls saved beside checkpoint `prefix` (epoch, world size, config, ...); None when there is
    none (a PaddleClas checkpoint); a PclsError naming the file when it cannot be read."""
    json_path = prefix.with_name(prefix.name + ".json")
    if not json_path.exists():
        return None
    try:
        return json.loads(json_path.read_text())
    except (OSError, ValueError) as err:
        raise PclsError(f"checkpoint state {json_path} is unreadable ({err}); resume from another checkpoint") from err


def load_checkpoint(path) -> dict:
    """{"state": json state, "model": ..., "optimizer": ... or None, "extra": {suffix: arrays}} (the
    files callbacks keep their state in, e.g. "_ema.pdparams").

    Verifies every file against the sizes/digests in the JSON; a mismatch or unreadable file is a
    PclsError naming the file. The pickles go through the restricted unpickler: arrays come back as numpy.
    """
    from pcls.utils.state_files import load_state_file, load_state_tree

    prefix = checkpoint_prefix(path)
    json_path = prefix.with_name(prefix.name + ".json")
    state = checkpoint_state(prefix)
    if state is None:  # checkpoint_prefix accepted it: PaddleClas wrote it
        from pcls.engine.paddleclas_runs import load_paddleclas_checkpoint

        loaded = load_paddleclas_checkpoint(prefix)
        loaded["optimizer"] = _rename_keys(loaded["optimizer"], loaded.pop("optimizer_names"))
        return loaded
    files = state.get("files")
    if not isinstance(files, dict) or not any(name.endswith(".pdparams") for name in files):
        raise PclsError(f"checkpoint state {json_path} lists no weights file; it was not written by pcls train")
    loaded = {"state": state, "model": None, "optimizer": None, "extra": {}, "prefix": prefix}
    model_file, optimizer_file = prefix.name + ".pdparams", prefix.name + ".pdopt"
    for name, meta in files.items():
        file = prefix.parent / name
        if not file.exists() or file.stat().st_size != meta.get("size") or _sha1(file) != meta.get("sha1"):
            raise PclsError(f"checkpoint file {file} is missing or does not match {json_path.name} "
                            f"(corrupt or cut short); resume from another checkpoint, e.g. an epoch_N one")
        if name == model_file:
            loaded["model"] = load_state_file(file)
        elif name == optimizer_file:
            loaded["optimizer"] = load_state_tree(file)
        elif name.startswith(prefix.name):
            loaded["extra"][name[len(prefix.name):]] = load_state_tree(file)
    return loaded
