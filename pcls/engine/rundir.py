"""Where a run writes: `Global.output_dir/<name>`, never a directory that already holds another run.

A new run into an occupied directory gets the next free name (`output/demo-2`, `-3`, ...); with
`exist_ok` it takes the directory over after removing that run's own files: those its ledger
(`pcls.utils.io`) records pcls wrote, never anything else; a directory without a ledger (a PaddleClas run, an
older pcls run) is not taken over, and a ledger naming anything but pcls's files inside the folder (`..`, an
absolute path, a link) is refused whole. A run claims its folder with an exclusive lock (`.pcls-lock`, held until
the process ends), so two runs started at once with one name get two folders. A resumed run continues in place.
Nonsense or unwritable places are refused in one line before anything is written.
"""

from __future__ import annotations

import errno
import fcntl
import fnmatch
import itertools
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path, PurePosixPath

from pcls.errors import PclsError
from pcls.utils.io import LEDGER_NAME, clear_ledger, open_no_follow, start_ledger, written_entries

log = logging.getLogger(__name__)

# what a run leaves behind (engine, distillation, recipes, launcher); any of the MARKERS means "a run is here"
MARKERS = ("latest.json", "summary.json", "config.yaml", "best_model.pdparams", "metrics.jsonl", "launch.json")
# what other programs write inside the folders pcls creates for them (the launcher, VisualDL, the teacher cache)
RUN_FOLDERS = {"log": ("workerlog.*", "envlog.*", "backup_env.*", "default.*", "endpoints.log"),
               "vdl": ("*",), "teacher_cache_rank*": ("*.logits.f32",)}


LOCK_NAME = ".pcls-lock"
NAME_MAX = 255  # bytes in one file name on Linux and macOS file systems
_HELD: dict = {}  # resolved run folder -> descriptor of its locked .pcls-lock, open until the process ends


def holds_run(path: Path) -> bool:
    return any((path / marker).exists() for marker in MARKERS)


def run_dir_of(cfg: dict, run_name=None) -> Path:
    """The directory a config's run is meant for: Global.output_dir / (name, Global.run_name or Arch.name).
    The name must name a folder of its own below output_dir ('.', '..', '/x' do not)."""
    g = cfg["Global"]
    name = run_name if run_name is not None else (g.get("run_name") or cfg["Arch"]["name"])
    parts = Path(str(name)).parts
    too_long = [part for part in parts if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX]
    if too_long:
        raise PclsError(f"run name '{str(name)[:40]}...' has a part of {len(too_long[0])} characters; file names "
                        f"hold at most {NAME_MAX} bytes: pick a shorter --name")
    if not parts or Path(str(name)).is_absolute() or any(part in (".", "..") for part in parts) \
            or str(name).strip() in ("", "."):
        raise PclsError(f"run name '{name}' has no name of its own below {g['output_dir']}; pick one with "
                        f"--name NAME (outputs go to Global.output_dir/NAME)")
    return Path(g["output_dir"]) / str(name)


def check_run_dir(path: Path) -> None:
    """Refuse a run directory that cannot be a folder (it, or a parent, is a regular file) in one line."""
    for parent in [path, *path.parents]:
        try:
            exists = parent.exists()
        except OSError as err:  # ENAMETOOLONG and the like: exists() only hides "not found"
            raise PclsError(f"run directory {str(path)[:80]}...: {err.strerror or err}; choose a shorter "
                            f"Global.output_dir (-o Global.output_dir=DIR) or --name") from None
        if exists:
            if not parent.is_dir():
                raise PclsError(f"run directory {path}: {parent} is a file, not a folder; choose another "
                                f"Global.output_dir (-o Global.output_dir=DIR)")
            break


def make_run_dir(path: Path) -> Path:
    """Create `path` and prove it writable; one-line error otherwise (read-only disk, permissions)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path, prefix=".pcls-write-test"):  # a fresh name: never a user's file
            pass
        start_ledger(path)
    except OSError as err:
        raise PclsError(f"cannot write the run directory {path} ({err.strerror or err}); choose another with "
                        f"-o Global.output_dir=DIR") from None
    return path


def lock_run_dir(path: Path) -> bool:
    """Take `path`'s run lock for the rest of this process (True), or False when another process holds it.

    The lock is an flock on `path/.pcls-lock`: the system drops it when its holder ends, however it ends, so a
    crashed run never blocks its folder. This process taking a folder it holds again (a resume) succeeds.
    """
    key = path.resolve()
    if key in _HELD:
        return True
    try:
        fd = open_no_follow(path / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    except OSError as err:
        raise PclsError(f"cannot write the run directory {path} ({err.strerror or err}); choose another with "
                        f"-o Global.output_dir=DIR") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a person looking
    _HELD[key] = fd
    return True


def claim_for_resume(path: Path) -> Path:
    """The folder of a run to resume, locked for this process; a PclsError when a live run holds it."""
    path = Path(path)
    if not lock_run_dir(path):
        raise PclsError(f"{path} is in use by a run that is still going (process {_holder(path)}); resume it once "
                        f"that run has ended")
    return path


def clear_run(path: Path) -> list:
    """Remove the files a previous pcls run wrote into `path` (and nothing else); returns what was removed.

    Every ledger entry is checked before anything is removed: one that is not a regular file (or a folder pcls
    creates) strictly inside `path`, reached without a symbolic link, refuses the whole clear. The removal then
    works relative to descriptors of the run folder and its subfolders, opened without following links, so a
    file or folder swapped for a link after the check is left alone, never followed out of the run.
    """
    entries = written_entries(path)
    if entries is None:
        raise PclsError(f"{path} holds a run pcls has no record of writing (a PaddleClas or older pcls run): "
                        f"--exist-ok only replaces pcls's own runs; drop --exist-ok to get a new name, or pass --name")
    targets = _checked_entries(path, entries)
    try:
        run_fd = os.open(path, _FOLDER_FLAGS)
    except OSError as err:
        raise PclsError(f"refusing to clear {path}: it cannot be opened as a folder without following a link "
                        f"({err.strerror or err}); remove the old run's files yourself, or drop --exist-ok") from None
    removed = []
    try:
        for target, folder in targets:
            removed += _remove_entry(run_fd, target, target.relative_to(path).parts, folder)
    finally:
        os.close(run_fd)
    clear_ledger(path)
    return removed


# a folder opened for *at() calls; a symbolic link (ELOOP) or a non-folder (ENOTDIR) fails the open
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _remove_entry(run_fd: int, target: Path, parts: tuple, folder: bool) -> list:
    """Remove one checked ledger entry (`parts` below the run folder), reaching it through descriptors."""
    opened = []
    try:
        parent_fd = run_fd
        for part in parts[:-1]:
            parent_fd = os.open(part, _FOLDER_FLAGS, dir_fd=parent_fd)
            opened.append(parent_fd)
        if folder:
            return _clear_folder(parent_fd, parts[-1], target)
        if not stat.S_ISREG(os.stat(parts[-1], dir_fd=parent_fd, follow_symlinks=False).st_mode):
            log.warning("left %s: it is no longer a regular file pcls wrote", target)
            return []
        os.unlink(parts[-1], dir_fd=parent_fd)  # a link swapped in since the check is removed, never followed
        return [target]
    except FileNotFoundError:  # already gone
        return []
    except OSError as err:
        if err.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        log.warning("left %s: a folder on its way became a symbolic link or a file", target)
        return []
    finally:
        for fd in opened:
            os.close(fd)


def _clear_folder(parent_fd: int, name: str, folder: Path) -> list:
    """Empty a folder pcls created of what its programs write there (RUN_FOLDERS); remove it once empty."""
    patterns = next(p for folder_pattern, p in RUN_FOLDERS.items() if fnmatch.fnmatch(name, folder_pattern))
    folder_fd = os.open(name, _FOLDER_FLAGS, dir_fd=parent_fd)
    removed = []
    try:
        for item in sorted(os.listdir(folder_fd)):
            if not any(fnmatch.fnmatch(item, pattern) for pattern in patterns):
                continue
            if stat.S_ISDIR(os.stat(item, dir_fd=folder_fd, follow_symlinks=False).st_mode):
                shutil.rmtree(item, dir_fd=folder_fd)  # fd-based: never follows a link inside
            else:
                os.unlink(item, dir_fd=folder_fd)  # a file, or a link itself (never what it names)
            removed.append(folder / item)
        empty = not os.listdir(folder_fd)
    finally:
        os.close(folder_fd)
    if empty:
        os.rmdir(name, dir_fd=parent_fd)
    return removed


def _checked_entries(path: Path, entries: list) -> list:
    """[(target, is_folder)] of the ledger's entries; a PclsError naming those that are not pcls's own."""
    root = path.resolve()
    checked, bad = [], []
    for entry in entries:
        try:
            problem = _entry_problem(path, root, entry)
        except OSError as err:  # a forged name too long for the file system, say
            problem = f"cannot be checked ({err.strerror or err})"
        if problem:
            bad.append(f"'{entry[:80]}' {problem}")
        else:
            checked.append((path / entry.rstrip("/"), entry.endswith("/")))
    if bad:
        raise PclsError(f"refusing to clear {path}: its ledger {LEDGER_NAME} lists {len(bad)} entries that are not "
                        f"files pcls wrote inside it ({'; '.join(bad[:3])}); the ledger was edited or forged, so "
                        f"nothing was removed: remove the old run's files yourself, or drop --exist-ok")
    return checked


def _entry_problem(path: Path, root: Path, entry: str):
    folder = entry.endswith("/")
    relative = PurePosixPath(entry.rstrip("/"))
    if "\0" in entry or not relative.parts or relative.is_absolute() or any(p in (".", "..") for p in relative.parts):
        return "is not a path inside the run folder"
    if relative.name in (LOCK_NAME, LEDGER_NAME):  # removing the lock would let a second run in
        return "is pcls's own bookkeeping, never a file a run wrote"
    if folder and (len(relative.parts) != 1 or not any(relative.match(name) for name in RUN_FOLDERS)):
        return "is not a folder pcls creates"
    for depth in range(1, len(relative.parts) + 1):
        if (path / Path(*relative.parts[:depth])).is_symlink():
            return "goes through a symbolic link"
    target = path / Path(*relative.parts)
    if not target.exists():
        return None
    if folder != target.is_dir() or not (folder or target.is_file()):
        return "is a folder" if target.is_dir() else "is not a regular file"
    if not target.resolve().is_relative_to(root):
        return "leaves the run folder"
    return None


def allocate_run_dir(wanted: Path, *, exist_ok: bool = False) -> Path:
    """The directory a new run writes to, claimed (locked) for this process: `wanted` when free; else the next
    free `wanted-N`, or with `exist_ok` `wanted` itself after removing the previous run's files. A folder another
    run holds right now is never free, even before that run wrote anything. Created and checked writable."""
    wanted = Path(wanted)
    check_run_dir(wanted)
    later = (wanted.with_name(f"{wanted.name}-{i}") for i in itertools.count(2))
    for candidate in itertools.chain([wanted], later):
        replacing = exist_ok and candidate == wanted
        if holds_run(candidate):
            if not replacing:
                continue
            if written_entries(candidate) is None:
                clear_run(candidate)  # refuses, in one line, before anything is written there
        make_run_dir(candidate)
        if not lock_run_dir(candidate):
            if replacing:
                raise PclsError(f"{wanted} is in use by a run that is still going (process "
                                f"{_holder(wanted)}); --exist-ok replaces finished runs only: wait, or pick "
                                f"another --name")
            continue
        if holds_run(candidate):  # a run that finished between the look and the lock
            if not replacing:
                os.close(_HELD.pop(candidate.resolve()))
                continue
            removed = clear_run(candidate)
            log.warning("%s held an earlier run: removed its %d files (--exist-ok)", wanted, len(removed))
        if candidate != wanted:
            log.warning("%s holds another run: this run writes to %s (--exist-ok reuses %s)", wanted, candidate,
                        wanted)
        return candidate
    raise AssertionError("unreachable: itertools.count never ends")


def _holder(path: Path) -> str:
    try:
        return (path / LOCK_NAME).read_text().strip() or "unknown"
    except OSError:
        return "unknown"
