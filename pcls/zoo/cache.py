"""Where downloaded files live and how pcls trusts them: the cache root ($PCLS_HOME), the per-folder
manifest of recorded sizes and sha256 digests, and the file lock that serialises writers of one file.

Layout: $PCLS_HOME/weights/<name>.pdparams, $PCLS_HOME/static/<name>/ (legacy static-graph archives),
each folder with a `manifest.json` of what was downloaded into it. Nothing here imports paddle or httpx.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

from pcls.errors import PclsError
from pcls.utils.io import atomic_write_text, open_no_follow

MANIFEST_NAME = "manifest.json"
DEFAULT_HOME = Path("~/.cache/pcls")


def pcls_home() -> Path:
    """The cache root: $PCLS_HOME, default ~/.cache/pcls."""
    return Path(os.environ.get("PCLS_HOME") or DEFAULT_HOME).expanduser()


def weights_dir() -> Path:
    return pcls_home() / "weights"


def weights_path(name: str, directory=None) -> Path:
    """Where the dygraph weights of zoo model `name` are (or will be) stored."""
    return Path(directory or weights_dir()) / f"{name}.pdparams"


def static_dir(name: str, directory=None) -> Path:
    """Where the legacy static-graph archive of `name` is extracted."""
    return Path(directory or pcls_home() / "static") / name


def offline() -> bool:
    """PCLS_OFFLINE=1 (or true/yes) forbids every network access."""
    return os.environ.get("PCLS_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def mirrored(url: str) -> str:
    """`url` with its scheme and host replaced by $PCLS_ZOO_MIRROR (a base URL), when that is set.

    PCLS_ZOO_MIRROR=https://mirror.example.org/paddle turns
    https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/X.pdparams into
    https://mirror.example.org/paddle/dygraph/X.pdparams.
    """
    mirror = os.environ.get("PCLS_ZOO_MIRROR", "").strip()
    if not mirror:
        return url
    if not urlsplit(mirror).scheme:
        raise PclsError(f"PCLS_ZOO_MIRROR={mirror!r} is not a URL; set it to a base URL such as https://host/path")
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return mirror.rstrip("/") + tail


def sha256_file(path) -> str:
    return hexdigest_file(path, hashlib.sha256())


def hexdigest_file(path, digest, chunk_size: int = 1 << 20) -> str:
    """The hex digest of file `path` by `digest` (a fresh hashlib object), read in chunks."""
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- manifest -----------------------------------------------------------------------------------------
def _manifest_path(path: Path) -> Path:
    return path.parent / MANIFEST_NAME


def read_record(path) -> dict | None:
    """The recorded {url, size, sha256, downloaded} of a downloaded file, or None."""
    path = Path(path)
    return _records(_manifest_path(path)).get(path.name)


def _records(manifest: Path) -> dict:
    """A manifest's records, each checked for the types pcls wrote ({} when there is no manifest)."""
    if not manifest.is_file():
        return {}
    try:
        records = json.loads(manifest.read_text())
    except (OSError, ValueError) as err:
        raise PclsError(f"the download manifest {manifest} is unreadable ({err}); delete it to start afresh") from err
    problem = None
    if not isinstance(records, dict):
        problem = f"it holds a {type(records).__name__}, not an object of records"
    else:
        for name, record in records.items():
            problem = _record_problem(name, record)
            if problem:
                break
    if problem:
        raise PclsError(f"the download manifest {manifest} is malformed: {problem}; delete it to start afresh (files "
                        f"are recorded again on their next use)")
    return records


_RECORD_TYPES = {"url": (str, "a string"), "size": (int, "an integer"), "sha256": (str, "a string"),
                 "downloaded": (str, "a string")}


def _record_problem(name: str, record) -> str | None:
    if not isinstance(record, dict):
        return f"the record of {name[:60]!r} is a {type(record).__name__}, not an object"
    for key, (kind, kind_name) in _RECORD_TYPES.items():
        value = record.get(key)
        if key in ("size", "sha256") and value is None:
            return f"the record of {name[:60]!r} has no {key}"
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return f"the record of {name[:60]!r} has {key} {str(value)[:40]!r}, not {kind_name}"
    return None


def write_record(path, url: str, size: int, sha256: str) -> dict:
    """Record a finished download in the folder's manifest (under the folder's manifest lock)."""
    path = Path(path)
    manifest = _manifest_path(path)
    downloaded = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record = {"url": url, "size": size, "sha256": sha256, "downloaded": downloaded}
    with file_lock(manifest):
        records = _records(manifest)
        records[path.name] = record
        atomic_write_text(manifest, json.dumps(records, indent=1, sort_keys=True) + "\n")
    return record


def verify_cached(path, record: dict | None = None, expected_sha256=None, expected_size=None,
                  record_new: bool = True) -> dict:
    """Check a cached file against its recorded (and any expected) size and sha256; PclsError if it changed.

    Returns the record; a file with no record yet gets one now (first use records, later uses verify)
    unless `record_new` is off (a read-only cache).
    """
    path = Path(path)
    record = record if record is not None else read_record(path)
    size = path.stat().st_size
    want_size = expected_size if expected_size is not None else (record or {}).get("size")
    if want_size is not None and size != int(want_size):
        raise PclsError(
            f"{path} changed since it was downloaded: {size} bytes, expected {want_size}; "
            f"delete it and download it again"
        )
    digest = sha256_file(path)
    for label, want in (("recorded", (record or {}).get("sha256")), ("expected", expected_sha256)):
        if want and digest != want.lower():
            raise PclsError(
                f"{path} changed since it was downloaded: sha256 {digest[:16]}..., {label} {want[:16]}...; "
                f"delete it and download it again"
            )
    if record is None:
        record = {"url": "", "size": size, "sha256": digest}
        if record_new:
            record = write_record(path, url="", size=size, sha256=digest)
    return record


# -- lock ---------------------------------------------------------------------------------------------
def lock_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def file_lock(path, poll_message=None):
    """Hold an exclusive flock on `<path>.lock` (created beside `path`, removed on release).

    Threads and processes that want the same file wait here one at a time. The lock file is unlinked by
    its holder; a waiter that then wins the lock on the unlinked inode notices and locks the new file,
    so two holders can never coexist.
    """
    target = lock_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = open_no_follow(target, os.O_RDWR | os.O_CREAT)  # never a link: the lock is unlinked on release
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if poll_message:
                    poll_message()
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(target).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            target.unlink()
        except FileNotFoundError:  # pragma: no cover - only the holder unlinks
            pass
        os.close(fd)
