"""Downloads that survive bad networks and concurrent users (httpx: resume, retry, verify, lock, atomic
rename), and tar extraction that cannot write outside its target folder."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from pcls.errors import PclsError
from pcls.utils.io import atomic_write_text
from pcls.zoo import catalog
from pcls.zoo.cache import (file_lock, mirrored, offline, sha256_file, static_dir, verify_cached, weights_path,
                             write_record)

log = logging.getLogger(__name__)
RETRIES = 4  # extra attempts after the first, each resuming where the previous one stopped
BACKOFF_S = 1.0  # wait before the first retry, doubled for each further one
CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 60.0
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class _Retryable(Exception):
    """A transient failure (dropped connection, 5xx): wait and resume from the bytes already on disk."""


class DownloadInterrupted(PclsError):
    """Retries ran out; the partial file is kept so that the next attempt resumes it."""


def fetch(url: str, dest, expected_sha256=None, expected_size=None, progress=True) -> Path:
    """Download `url` to `dest` unless it is already there, and return `dest`.

    An existing `dest` is verified against the size and sha256 recorded when it was downloaded (and the
    expected ones, if given): a changed file is a PclsError. A new download streams into `<dest>.part`
    (resumed with an HTTP Range request after a dropped connection, with retries and backoff), is
    checked, and is renamed onto `dest` only when complete. One process at a time downloads a given
    `dest` (a file lock); the others wait and then find it done. PCLS_OFFLINE=1 forbids the network.
    """
    dest = Path(dest)
    if dest.is_file() and not os.access(dest.parent, os.W_OK):  # a read-only cache (e.g. baked into an image)
        verify_cached(dest, expected_sha256=expected_sha256, expected_size=expected_size, record_new=False)
        return dest
    with file_lock(dest, poll_message=lambda: say(f"waiting for another download of {dest.name} to finish")):
        if dest.exists():
            verify_cached(dest, expected_sha256=expected_sha256, expected_size=expected_size)
            return dest
        if offline():
            raise PclsError(
                f"PCLS_OFFLINE=1 forbids downloading {url}; copy the file to {dest} or unset PCLS_OFFLINE"
            )
        part = dest.with_name(dest.name + ".part")
        try:
            _download(url, part, dest.name, progress)
            size = part.stat().st_size
            if expected_size is not None and size != int(expected_size):
                raise PclsError(f"download of {url} has {size} bytes, expected {expected_size}; nothing was kept")
            digest = sha256_file(part)
            if expected_sha256 and digest != expected_sha256.lower():
                raise PclsError(
                    f"download of {url} has sha256 {digest[:16]}..., expected {expected_sha256[:16]}...; "
                    f"nothing was kept (check the URL or the mirror)"
                )
            with open(part, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(part, dest)
        except DownloadInterrupted:
            raise
        except PclsError:
            part.unlink(missing_ok=True)
            part.with_name(part.name + ".json").unlink(missing_ok=True)
            raise
        write_record(dest, url, size, digest)
    return dest


def download_weights(name: str, directory=None, static: bool = False, progress: bool = True) -> Path:
    """Fetch zoo model `name` into the cache (or `directory`) and return the local path.

    static=True (or a model that only has one) fetches the legacy static-graph `.tar` and returns the
    folder it was extracted to.
    """
    entry = catalog.get_entry(name)
    if static or not entry.get("pretrained_url"):
        url = entry.get("static_tar_url")
        if not url:
            raise PclsError(f"no weights are published for {name}")
        target = static_dir(name, directory)
        archive = fetch(mirrored(url), target.with_name(f"{name}.tar"), progress=progress)
        return safe_extract_tar(archive, target)
    return fetch(mirrored(entry["pretrained_url"]), weights_path(name, directory), progress=progress)


def _download(url: str, part: Path, label: str, show_progress: bool) -> None:
    """Stream `url` into `part`, appending to bytes already there; raise PclsError when it cannot finish.

    `<part>.json` keeps the URL and the ETag/Last-Modified of the response the partial bytes came from,
    so a resume (even in a later process) sends If-Range and never splices two versions of a file.
    """
    import httpx

    resume = _ResumeState(part, url)
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    failures = 0
    with httpx.Client(follow_redirects=True, timeout=timeout) as client, _Bar(label, show_progress) as bar:
        while True:
            start = part.stat().st_size if part.exists() else 0
            headers = {"Accept-Encoding": "identity"}
            if start:
                headers["Range"] = f"bytes={start}-"
                if resume.validator:
                    headers["If-Range"] = resume.validator
            try:
                with client.stream("GET", url, headers=headers) as response:
                    total = _receive(response, part, start, url, bar, resume)
                if total is not None and part.stat().st_size != total:
                    raise _Retryable(f"got {part.stat().st_size} of {total} bytes")
                resume.clear()
                return
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
                raise PclsError(f"cannot download {url!r}: {err}") from None
            except (httpx.TransportError, _Retryable) as err:
                if _unresolvable(err):  # no DNS answer now means none in a few seconds either: no retries
                    raise PclsError(
                        f"cannot download {url}: the host name {urlsplit(url).hostname} does not resolve ({err}); "
                        f"check the network, or set PCLS_ZOO_MIRROR to a reachable mirror"
                    ) from None
                failures = _retry_or_raise(err, failures, url, part, label)


def _unresolvable(err: Exception) -> bool:
    """Whether a transport error comes from a failed host-name lookup (socket.gaierror somewhere in its chain)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, socket.gaierror):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def _retry_or_raise(err: Exception, failures: int, url: str, part: Path, label: str) -> int:
    """Count one failed attempt of a transient error; wait before the next one, or raise when retries ran out."""
    failures += 1
    got = part.stat().st_size if part.exists() else 0
    if failures > RETRIES:
        kept = (f"{got} bytes are kept in {part} and the next attempt resumes from there" if got else
                "check the network, or set PCLS_ZOO_MIRROR to a reachable mirror")
        raise DownloadInterrupted(
            f"download of {url} failed after {failures} attempts ({_describe(err)}); {kept}"
        ) from err
    wait = BACKOFF_S * 2 ** (failures - 1)
    where = f"interrupted at {got} bytes ({_describe(err)}); resuming" if got else \
        f"failed ({_describe(err)}); retrying"
    say(f"download of {label} {where} in {wait:g} s")
    time.sleep(wait)
    return failures


class _ResumeState:
    """The validator of the partial download in `part`, persisted beside it as `<part>.json`."""

    def __init__(self, part: Path, url: str):
        self.path, self.url, self.validator = part.with_name(part.name + ".json"), url, None
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, ValueError):
            saved = {}
        if part.exists() and saved.get("url") not in (None, url):
            part.unlink()  # bytes of another URL (e.g. before a mirror change): start afresh
        elif part.exists():
            self.validator = saved.get("validator")

    def started(self, response) -> None:
        """A full body begins: remember what it is so that a resume asks for the same file."""
        self.validator = response.headers.get("etag") or response.headers.get("last-modified")
        atomic_write_text(self.path, json.dumps({"url": self.url, "validator": self.validator}))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _receive(response, part: Path, start: int, url: str, bar, resume: _ResumeState) -> int | None:
    """Write one response body to `part`; returns the full file size when the server told it."""
    status = response.status_code
    if status == 416 and start:  # our partial file is no prefix of the current file: start over
        part.unlink()
        raise _Retryable("the server refused to resume (HTTP 416)")
    if status in _RETRY_STATUS:
        raise _Retryable(f"HTTP {status}")
    if status >= 400:
        hint = " (is the model published, or PCLS_ZOO_MIRROR wrong?)" if status in (403, 404) else ""
        raise PclsError(f"download of {url} failed: HTTP {status} {response.reason_phrase}{hint}")
    if status == 206:
        first, total = _content_range(response.headers.get("content-range", ""))
        if first != start:
            part.unlink()
            raise _Retryable(f"the server resumed at byte {first}, not {start}")
        mode = "ab"
    else:  # a full body: the server ignored the Range header, or the file changed (If-Range)
        start, mode = 0, "wb"
        length = response.headers.get("content-length")
        total = int(length) if length and length.isdigit() else None
        resume.started(response)
    bar.begin(total, start)
    with open(part, mode) as fh:
        for chunk in response.iter_raw():  # as received, so a cut keeps every byte that arrived
            fh.write(chunk)
            bar.advance(len(chunk))
    return total


def _content_range(value: str):
    """'bytes 100-199/200' -> (100, 200); total None when the server gives '*'."""
    try:
        unit, _, rest = value.partition(" ")
        span, _, total = rest.partition("/")
        first = int(span.split("-")[0])
        return first, (int(total) if total.isdigit() else None)
    except ValueError:
        raise _Retryable(f"unreadable Content-Range {value!r}") from None


def _describe(err: Exception) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def say(message: str) -> None:
    """One log line (the CLI shows it on stderr; stdout carries results)."""
    log.info("%s", message)


class _Bar:
    """A Rich byte-progress bar on stderr (or nothing, when progress is off)."""

    def __init__(self, label: str, enabled: bool):
        self.label, self.enabled = label, enabled
        self._progress = self._task = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            from pcls.utils.console import PipeConsole  # piped: one full line, no clipped columns

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=PipeConsole(stderr=True),
                transient=False,
            )
            self._progress.start()
        return self

    def begin(self, total, completed) -> None:
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task(self.label, total=total, completed=completed)
        else:
            self._progress.update(self._task, total=total, completed=completed)

    def advance(self, amount: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()
        return False


# -- tar archives -------------------------------------------------------------------------------------
def safe_extract_tar(tar_path, dest) -> Path:
    """Extract a (possibly compressed) tar into `dest` and return `dest`.

    Every member is checked before anything is written: absolute names, '..' components, links and
    special files are refused with a PclsError naming the member. Top-level entries are extracted into
    a staging folder inside `dest` and renamed into place when complete; entries already present (a
    previous extraction) are kept as they are.
    """
    tar_path, dest = Path(tar_path), Path(dest)
    try:
        archive = tarfile.open(tar_path, "r:*")
    except (tarfile.TarError, OSError) as err:
        raise PclsError(f"{tar_path} is not a readable tar archive ({err}); delete it and download it again") from err
    with archive:
        members = archive.getmembers()
        for member in members:
            problem = _member_problem(member)
            if problem:
                raise PclsError(
                    f"refusing to extract {tar_path}: member '{member.name}' {problem}; nothing was extracted"
                )
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=dest))
        try:
            archive.extractall(staging, members=members, filter="data")
            for entry in sorted(staging.iterdir()):
                target = dest / entry.name
                if not target.exists():
                    os.replace(entry, target)
        except (tarfile.TarError, OSError) as err:
            raise PclsError(f"extracting {tar_path} into {dest} failed: {err}") from err
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dest


def _member_problem(member: tarfile.TarInfo) -> str | None:
    if member.issym() or member.islnk():
        return f"is a link (to '{member.linkname}'), which pcls never extracts"
    if not (member.isfile() or member.isdir()):
        return "is a special file (device or fifo)"
    name = member.name.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        return "would be written outside the target folder"
    return None
