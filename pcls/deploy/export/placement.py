"""Where an export's files go: the output-folder checks, the staging folder, the swap into place, and the
filesystem errors (full disk included) turned into one line. Nothing here deletes a file pcls did not write in
this call, and nothing follows a symbolic link to write."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Optional

from pcls.deploy.spec import export_owned_names
from pcls.errors import PclsError
from pcls.utils.io import umask_mode

NO_SPACE = "no space left on device"


def no_space_message(shown, folder) -> str:
    return f"{NO_SPACE} for the export to {shown} (in {folder}); free some space or choose another --out"


def is_no_space(err: BaseException) -> bool:
    """A full disk, whether Python (OSError ENOSPC) or Paddle's C++ writer (a message naming it) reports it."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(err)


@contextlib.contextmanager
def filesystem_errors(shown, folder=None):
    """OSErrors (and full disks reported by Paddle's C++ side) -> one line naming the output folder."""
    try:
        yield
    except PclsError:
        raise
    except Exception as err:  # noqa: BLE001 - only filesystem failures are translated; others re-raised below
        if is_no_space(err):
            raise PclsError(no_space_message(shown, folder or shown)) from None
        if not isinstance(err, OSError):
            raise
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        raise PclsError(f"cannot write the export to {shown}: {err.strerror or err}{where}; "
                        "choose a writable output folder with --out") from None


@contextlib.contextmanager
def terminate_cleanly(what: str):
    """Turn SIGTERM into an exception for the duration (main thread only), so the `except`/`finally` blocks remove
    temp files; otherwise the process dies in Paddle's C++ signal handler and leaves them behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise PclsError(f"{what} interrupted (SIGTERM); nothing was written")

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def resolve_out_dir(out_dir) -> Path:
    """The folder to export into: a symbolic link given as --out is resolved to the folder it names (the link
    itself is kept), so the export never replaces the link or writes through it later."""
    path = Path(os.path.abspath(out_dir))
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def check_out_dir(out_dir: Path, shown, force: bool) -> Optional[set]:
    """Refuse an output folder an export must not replace; the names a previous export there owns.

    None: the folder does not exist yet. A set: the folder exists and the entries named in it were written by
    pcls (empty for an empty folder or, with --force, a foreign one whose files are all kept).
    """
    cwd = Path.cwd().resolve()
    resolved = out_dir.resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise PclsError(f"--out {shown} is the current folder (or contains it); export into a new folder, "
                        "e.g. --out ./inference")
    for parent in resolved.parents:
        if parent.exists() and not parent.is_dir():
            raise PclsError(f"--out {shown}: {parent} is a file, not a folder; choose another output folder")
    if resolved.exists() and not resolved.is_dir():
        raise PclsError(f"--out {shown} is a file, not a folder; choose another output folder")
    if not resolved.exists():
        return None
    if not any(resolved.iterdir()):
        return set()
    owned = export_owned_names(resolved)
    if owned is not None:
        return owned
    if not force:
        raise PclsError(f"--out {shown} is not empty and holds no pcls export; export into a new folder "
                        f"(e.g. --out {Path(str(shown)) / 'inference'}) or add --force to write beside its files")
    return set()


def make_staging(out_dir: Path) -> Path:
    """A fresh private folder beside `out_dir` the export is written into before it is moved into place."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))


def check_free_space(folder: Path, needed_bytes: int, shown) -> None:
    """Refuse before writing when the disk cannot hold the export (a full disk mid-way fails verification)."""
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise PclsError(f"{NO_SPACE} for the export to {shown}: about {needed_bytes / 1e6:.0f} MB needed, "
                        f"{free / 1e6:.0f} MB free in {folder}; free some space or choose another --out")


def move_into_place(staging: Path, out_dir: Path, owned: Optional[set]) -> None:
    """Swap the verified export in as one rename. Files pcls did not write in an existing folder are moved
    into the new export first, so replacing a previous export never deletes them. The previous export goes into a
    backup folder created in this call, and only that folder is removed."""
    if owned is None:
        staging.chmod(umask_mode(0o777))  # mkdtemp made it 0700; give it the mode mkdir would
        staging.rename(out_dir)
        return
    foreign = [p for p in out_dir.iterdir() if p.name not in owned]
    clash = [p.name for p in foreign if (staging / p.name).exists() or (staging / p.name).is_symlink()]
    if clash:
        raise PclsError(f"{out_dir} holds {clash[0]}, which pcls did not write and the export would replace; "
                        "move it away or export into a new folder")
    staging.chmod(stat.S_IMODE(out_dir.stat().st_mode))
    backup_root = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))  # unique: ours alone
    backup = backup_root / out_dir.name
    moved = []
    try:
        for path in foreign:
            path.rename(staging / path.name)
            moved.append(path.name)
        out_dir.rename(backup)
        staging.rename(out_dir)
    except BaseException:
        if backup.exists() and not out_dir.exists():
            backup.rename(out_dir)
        kept = _give_back(moved, staging, out_dir, backup_root)
        with contextlib.suppress(OSError):
            backup_root.rmdir()  # only when empty: a backup that could not be restored is kept
        if kept is not None:
            raise PclsError(f"the export to {out_dir} failed and {', '.join(sorted(p.name for p in kept.iterdir()))} "
                            f"could not be moved back there; they are in {kept}") from None
        raise
    shutil.rmtree(backup_root, ignore_errors=True)  # holds only what the previous export wrote


def _give_back(moved: list, staging: Path, out_dir: Path, backup_root: Path) -> Optional[Path]:
    """Move the user's files back from `staging` (which the caller removes) into `out_dir`. Those that cannot go
    back are moved into a kept folder inside `backup_root` instead: that folder, or None when all went back."""
    stranded = []
    for name in moved:
        try:
            (staging / name).rename(out_dir / name)
        except OSError:
            stranded.append(name)
    if not stranded:
        return None
    keep = Path(tempfile.mkdtemp(prefix="not-moved-back.", dir=backup_root))
    for name in stranded:
        (staging / name).rename(keep / name)
    return keep
