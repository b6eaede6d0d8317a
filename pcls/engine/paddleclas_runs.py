"""PaddleClas 2.x run folders and checkpoints, read by pcls.

PaddleClas writes `Global.output_dir/<Arch.name>/` holding `latest.pdparams/.pdopt/.pdstates`,
`best_model.pdparams` (and a `best_model/` folder beside it), `epoch_N.*`; pcls writes
`output_dir/<run>/` with a `.json` per checkpoint. Wherever a run folder is accepted (`--weights`,
`--resume`), both layouts work: the folder itself, or its one sub-folder that holds the file.

A PaddleClas checkpoint resumes at its epoch with its optimizer state: `.pdstates` gives the epoch and best
metric, the optimizer's `LR_Scheduler.last_epoch` the update count, and the `.pdparams` name table maps
the optimizer's generated parameter names (`conv2d_3.w_0_velocity_0`) to the model's structured names.
What it cannot carry (EMA, the loss scaler, several optimizers) is said in one line.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pcls.errors import PclsError
from pcls.utils.run_files import has_files as _has

log = logging.getLogger(__name__)


def is_paddleclas_checkpoint(prefix: Path) -> bool:
    """A checkpoint PaddleClas wrote: weights and .pdstates / .pdopt, without pcls's .json."""
    prefix = Path(prefix)
    return (not prefix.with_name(prefix.name + ".json").exists() and _has(prefix, (".pdparams",))
            and _has(prefix, (".pdstates", ".pdopt")))


def load_paddleclas_checkpoint(prefix) -> dict:
    """A PaddleClas checkpoint in the form pcls.engine.checkpoint.load_checkpoint returns, but for the optimizer
    state, which still holds PaddleClas's generated parameter names: `optimizer_names` maps them to structured
    names (the caller renames, as it does for its own checkpoints)."""
    from pcls.utils.state_files import load_name_table, load_state_file, load_state_tree  # the restricted unpickler

    prefix = Path(prefix)
    files = {s: prefix.with_name(prefix.name + s) for s in (".pdparams", ".pdopt", ".pdstates")}
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        raise PclsError(f"PaddleClas checkpoint {prefix} is incomplete: {', '.join(missing)} missing (a resume "
                        f"needs .pdparams, .pdopt and .pdstates)")
    metrics = load_state_tree(files[".pdstates"])
    optimizer = load_state_tree(files[".pdopt"])
    if isinstance(optimizer, list):
        if len(optimizer) != 1:
            raise PclsError(f"{files['.pdopt']} holds {len(optimizer)} optimizer states; pcls trains a model with "
                            f"one optimizer and cannot resume it")
        optimizer = optimizer[0]
    skipped = [name for name in ("scaler_state",) if optimizer.pop(name, None) is not None]
    skipped += [p.name for p in (prefix.with_name(prefix.name + ".pdema"),
                                 prefix.with_name(prefix.name + ".ema.pdparams")) if p.is_file()]
    scheduler = optimizer.get("LR_Scheduler")
    if not isinstance(scheduler, dict) or not isinstance(scheduler.get("last_epoch"), int):
        raise PclsError(f"{files['.pdopt']} has no learning-rate scheduler position (LR_Scheduler.last_epoch); "
                        f"pcls cannot tell how many updates were made: start from the weights with "
                        f"-o Global.pretrained_model={prefix}")
    epoch = metrics.get("epoch")
    if not isinstance(epoch, int) or epoch < 0:
        raise PclsError(f"{files['.pdstates']} has no epoch number; it is not a PaddleClas training checkpoint")
    generated = {gen: structured for structured, gen in load_name_table(files[".pdparams"]).items()}
    if not generated:
        raise PclsError(f"{files['.pdparams']} has no parameter name table, so its optimizer state cannot be "
                        f"matched to the model; start from the weights with -o Global.pretrained_model={prefix}")
    if skipped:
        log.warning("resuming from PaddleClas checkpoint %s without %s (pcls restarts those)", prefix,
                    ", ".join(skipped))
    best = metrics.get("metric")
    state = {"epoch": epoch, "batch_in_epoch": 0, "global_step": int(scheduler["last_epoch"]), "world_size": 1,
             "callbacks": {"BestModel": {"metric": "val_top1", "value": float(best) if best is not None else None,
                                         "epoch": epoch if best is not None else None}},
             "history": [], "source": "PaddleClas"}
    return {"state": state, "model": load_state_file(files[".pdparams"]),
            "optimizer": optimizer, "optimizer_names": generated, "extra": {}, "prefix": prefix}
