"""Writes that lose nothing and touch nothing else: every file pcls produces goes to a temp name in the same
folder and is renamed into place, so an interrupted write never leaves a half-written file under the real name,
and no write follows a symbolic link (a link where pcls writes is refused: it could point at any file).
A folder pcls owns (a run directory) keeps a ledger of what pcls wrote into it, so pcls can later remove exactly
its own files and nothing a user put there. And reads of the user's text files (lists, labels) that say which
file, line and byte is not UTF-8."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from pcls.errors import PclsError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temp path beside `path`; on success it is fsynced and renamed onto `path`.

    On an exception the temp file is removed and `path` is left as it was.
    """
    path = Path(path)
    refuse_link(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the mode open() would
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    record_written(path)


# The ledger of a folder pcls owns: one relative path per line; a trailing "/" marks a folder pcls created.
LEDGER_NAME = ".pcls-written"


def refuse_link(path, doing: str = "write") -> None:
    """A PclsError when `path` is a symbolic link: writing through it would change whatever file it names."""
    path = Path(path)
    if path.is_symlink():
        raise PclsError(f"refusing to {doing} {path}: it is a symbolic link (to {os.readlink(path)}), and pcls "
                        f"never follows a link where it writes; remove the link or choose another folder")


def open_no_follow(path, flags: int, doing: str = "write") -> int:
    """os.open of a regular file that is never a symbolic link (refused in one line, like a fifo or a device:
    opening one for writing could block forever). The caller closes the descriptor."""
    path = Path(path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as err:
        if err.errno == errno.ELOOP:
            refuse_link(path, doing)
        if err.errno == errno.ENXIO:  # a fifo nobody reads
            raise PclsError(f"refusing to {doing} {path}: it is not a regular file") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PclsError(f"refusing to {doing} {path}: it is not a regular file")
    return fd


def start_ledger(folder) -> None:
    """Mark `folder` as pcls's: from now on every file pcls writes into it (or one level below) is recorded."""
    os.close(open_no_follow(Path(folder) / LEDGER_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND))


def record_written(path, folder: bool = False) -> None:
    """Record `path` in the ledger of its folder or of the folder above (no ledger there: nothing to do)."""
    path = Path(path)
    for root in (path.parent, path.parent.parent):
        ledger = root / LEDGER_NAME
        try:
            fd = open_no_follow(ledger, os.O_WRONLY | os.O_APPEND)
        except (FileNotFoundError, NotADirectoryError):
            continue
        entry = path.relative_to(root).as_posix() + ("/" if folder else "")
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(entry + "\n")
        return


def clear_ledger(folder) -> None:
    """Empty `folder`'s ledger (its files were removed)."""
    os.close(open_no_follow(Path(folder) / LEDGER_NAME, os.O_WRONLY | os.O_TRUNC))


def written_entries(folder):
    """The distinct entries of `folder`'s ledger in the order first written, or None when it has no ledger."""
    ledger = Path(folder) / LEDGER_NAME
    try:
        fd = open_no_follow(ledger, os.O_RDONLY, "read")
    except FileNotFoundError:
        return None
    with os.fdopen(fd, encoding="utf-8", errors="replace") as fh:
        return list(dict.fromkeys(line for line in fh.read().splitlines() if line))


_WHAT_TO_DO = {errno.ENAMETOOLONG: "a file name holds at most 255 bytes: use a shorter name or path",
               errno.ENOSPC: "free space or choose a folder on another disk",
               errno.EROFS: "choose a writable folder", errno.EACCES: "check its permissions or choose another",
               errno.EPERM: "check its permissions or choose another"}


def file_error(err: OSError) -> PclsError:
    """A file-system error that reached the command line (a path too long, a read-only or full disk), as the
    one-line error it should be: the path (shortened), what went wrong, what to do."""
    name = str(err.filename)
    shown = name if len(name) <= 80 else f"{name[:40]}...{name[-20:]} ({len(name)} characters)"
    what_to_do = _WHAT_TO_DO.get(err.errno, "check the path")
    return PclsError(f"{shown}: {err.strerror or err}; {what_to_do}")


def umask_mode(mode: int = 0o666) -> int:
    """`mode` as the user's umask leaves it: what open()/mkdir() would give a new file or folder."""
    return mode & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def read_text(path, what: str) -> str:
    """The UTF-8 text of a user's file (a leading BOM is dropped); `what` names it in errors ("list file").

    Bytes that are not UTF-8 are one PclsError naming the file, line and byte, instead of a traceback or
    silently replaced characters that would name files that do not exist.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise PclsError(f"cannot read {what} {path}: {err.strerror or err}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise PclsError(f"{path}:{line}: byte 0x{data[err.start]:02x} at column {column} is not UTF-8; a {what} "
                        f"must be UTF-8 text: re-save it as UTF-8 (e.g. iconv -f GBK -t UTF-8)") from None
