"""Where a run writes: `Global.output_dir/<name>`, never a directory that already holds another run.

A new run into an occupied directory gets the next free name (`output/demo-2`, `-3`, ...); with
`exist_ok` it takes the directory over after removing that run's own files: those its ledger
(`pcls.utils.io`) records pcls wrote, never anything else; a directory without a ledger (a PaddleClas run, an
older pcls run) is not taken over. A resumed run continues in place. Nonsense or unwritable places are
refused in one line before anything is written.
"""

from __future__ import annotations

import itertools
import logging
import shutil
from pathlib import Path

from pcls.errors import PclsError
from pcls.utils.io import LEDGER_NAME, start_ledger, written_entries

log = logging.getLogger(__name__)

# what a run leaves behind (engine, distillation, recipes, launcher); any of the MARKERS means "a run is here"
MARKERS = ("latest.json", "summary.json", "config.yaml", "best_model.pdparams", "metrics.jsonl", "launch.json")
# what other programs write inside the folders pcls creates for them (the launcher, VisualDL, the teacher cache)
RUN_FOLDERS = {"log": ("workerlog.*", "envlog.*", "backup_env.*", "default.*", "endpoints.log"),
               "vdl": ("*",), "teacher_cache_rank*": ("*.logits.f32",)}


def holds_run(path: Path) -> bool:
    return any((path / marker).exists() for marker in MARKERS)


def run_dir_of(cfg: dict, run_name=None) -> Path:
    """The directory a config's run is meant for: Global.output_dir / (name, Global.run_name or Arch.name).
    The name must name a folder of its own below output_dir ('.', '..', '/x' do not)."""
    g = cfg["Global"]
    name = run_name if run_name is not None else (g.get("run_name") or cfg["Arch"]["name"])
    parts = Path(str(name)).parts
    if not parts or Path(str(name)).is_absolute() or any(part in (".", "..") for part in parts) \
            or str(name).strip() in ("", "."):
        raise PclsError(f"run name '{name}' has no name of its own below {g['output_dir']}; pick one with "
                        f"--name NAME (outputs go to Global.output_dir/NAME)")
    return Path(g["output_dir"]) / str(name)


def check_run_dir(path: Path) -> None:
    """Refuse a run directory that cannot be a folder (it, or a parent, is a regular file) in one line."""
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise PclsError(f"run directory {path}: {parent} is a file, not a folder; choose another "
                                f"Global.output_dir (-o Global.output_dir=DIR)")
            break


def make_run_dir(path: Path) -> Path:
    """Create `path` and prove it writable; one-line error otherwise (read-only disk, permissions)."""
    probe = path / ".pcls-write-test"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
        start_ledger(path)
    except OSError as err:
        raise PclsError(f"cannot write the run directory {path} ({err.strerror or err}); choose another with "
                        f"-o Global.output_dir=DIR") from None
    return path


def clear_run(path: Path) -> list:
    """Remove the files a previous pcls run wrote into `path` (and nothing else); returns what was removed."""
    entries = written_entries(path)
    if entries is None:
        raise PclsError(f"{path} holds a run pcls has no record of writing (a PaddleClas or older pcls run): "
                        f"--exist-ok only replaces pcls's own runs; drop --exist-ok to get a new name, or pass --name")
    removed = []
    for entry in entries:
        target = path / entry
        if entry.endswith("/"):
            removed += _clear_folder(target)
        elif target.is_file():
            target.unlink()
            removed.append(target)
    (path / LEDGER_NAME).write_text("")
    return removed


def _clear_folder(folder: Path) -> list:
    """Empty a folder pcls created of what its programs write there (RUN_FOLDERS); remove it once empty."""
    if not folder.is_dir():
        return []
    removed = []
    for name_pattern, patterns in RUN_FOLDERS.items():
        if not folder.match(name_pattern):
            continue
        for pattern in patterns:
            for item in folder.glob(pattern):
                if item.is_file():
                    item.unlink()
                elif item.is_dir():
                    shutil.rmtree(item)
                removed.append(item)
    if not any(folder.iterdir()):
        folder.rmdir()
    return removed


def allocate_run_dir(wanted: Path, *, exist_ok: bool = False) -> Path:
    """The directory a new run writes to: `wanted` when free; else the next free `wanted-N`, or with
    `exist_ok` `wanted` itself after removing the previous run's files. Created and checked writable."""
    wanted = Path(wanted)
    check_run_dir(wanted)
    chosen = wanted
    if holds_run(wanted):
        if exist_ok:
            removed = clear_run(wanted)
            log.warning("%s held an earlier run: removed its %d files (--exist-ok)", wanted, len(removed))
        else:
            chosen = next(candidate for candidate in (wanted.with_name(f"{wanted.name}-{i}")
                                                      for i in itertools.count(2)) if not holds_run(candidate))
            log.warning("%s holds another run: this run writes to %s (--exist-ok reuses %s)", wanted, chosen,
                        wanted)
    return make_run_dir(chosen)
