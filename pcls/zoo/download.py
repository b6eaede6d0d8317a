"""Downloads that survive bad networks and concurrent users (httpx: resume, retry, verify, lock, atomic
rename), and tar extraction that cannot write outside its target folder."""

from __future__ import annotations

import errno
import hashlib
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
from pcls.utils.env import env_number
from pcls.utils.io import atomic_write_text, open_no_follow
from pcls.zoo import catalog
from pcls.zoo.cache import (file_lock, hexdigest_file, mirrored, offline, read_record, sha256_file, static_dir,
                             verify_cached, weights_path, write_record)

log = logging.getLogger(__name__)
RETRIES = 4  # extra attempts after the first, each resuming where the previous one stopped
BACKOFF_S = 1.0  # wait before the first retry, doubled for each further one
CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 60.0
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
# One whole download (retries and waits included) must end within the deadline, and receive at least the
# minimum rate over every RATE_WINDOW_S: a server trickling a byte now and then, or never answering, fails
# in bounded time instead of holding the command forever.
DEADLINE_ENV, MIN_RATE_ENV = "PCLS_DOWNLOAD_DEADLINE", "PCLS_DOWNLOAD_MIN_RATE"
DEFAULT_DEADLINE_S = 3600.0
DEFAULT_MIN_RATE = 1024.0  # bytes per second; 0 turns the check off
RATE_WINDOW_S = 30.0
FREE_SPACE_MARGIN = 1 << 20  # bytes left free beyond the announced Content-Length


class _Retryable(Exception):
    """A transient failure (dropped connection, 5xx): wait and resume from the bytes already on disk."""


class DownloadInterrupted(PclsError):
    """Retries ran out; the partial file is kept so that the next attempt resumes it."""


def download_limits() -> tuple:
    """(deadline in seconds, minimum rate in bytes/s) from $PCLS_DOWNLOAD_DEADLINE and $PCLS_DOWNLOAD_MIN_RATE."""
    return (env_number(DEADLINE_ENV, DEFAULT_DEADLINE_S,
                       f"a positive number of seconds (default {DEFAULT_DEADLINE_S:g})"),
            env_number(MIN_RATE_ENV, DEFAULT_MIN_RATE, f"a non-negative number of bytes per second (default "
                       f"{DEFAULT_MIN_RATE:g})", zero_ok=True))


def fetch(url: str, dest, expected_sha256=None, expected_size=None, progress=True, expected_md5=None,
          check=None) -> Path:
    """Download `url` to `dest` unless it is already there, and return `dest`.

    An existing `dest` is verified against the size and sha256 recorded when it was downloaded (and the
    expected ones, if given): a changed file is a PclsError. A new download streams into `<dest>.part`
    (resumed with an HTTP Range request after a dropped connection, with retries and backoff, within the
    deadline and minimum rate of `download_limits`), is checked (size, digests, then `check(part)`, which
    raises PclsError for content that is not what `dest` should hold), and is renamed onto `dest` only when
    complete. Any failure removes the `.part`, except running out of retries on a transient error, which keeps
    it for the next attempt to resume. One process at a time downloads a given `dest` (a file lock); the
    others wait and then find it done. PCLS_OFFLINE=1 forbids the network.
    """
    dest = Path(dest)
    if dest.is_file() and not os.access(dest.parent, os.W_OK):  # a read-only cache (e.g. baked into an image)
        verify_cached(dest, expected_sha256=expected_sha256, expected_size=expected_size, record_new=False)
        return dest
    part = dest.with_name(dest.name + ".part")
    try:
        with file_lock(dest, poll_message=lambda: say(f"waiting for another download of {dest.name} to finish")):
            if dest.exists():
                if expected_md5 and read_record(dest) is None:  # first use of a file put there by hand
                    _check_md5(dest, expected_md5, str(dest), "delete it and download it again")
                verify_cached(dest, expected_sha256=expected_sha256, expected_size=expected_size)
                return dest
            if offline():
                raise PclsError(
                    f"PCLS_OFFLINE=1 forbids downloading {url}; copy the file to {dest} or unset PCLS_OFFLINE"
                )
            try:
                final_url = _download(url, part, dest.name, progress)
                size = part.stat().st_size
                if expected_size is not None and size != int(expected_size):
                    raise PclsError(f"download of {final_url} has {size} bytes, expected {expected_size}; "
                                    f"nothing was kept")
                digest = sha256_file(part)
                if expected_sha256 and digest != expected_sha256.lower():
                    raise PclsError(
                        f"download of {final_url} has sha256 {digest[:16]}..., expected {expected_sha256[:16]}...; "
                        f"nothing was kept (check the URL or the mirror)"
                    )
                if expected_md5:
                    _check_md5(part, expected_md5, f"download of {final_url}", "nothing was kept (check the URL "
                               "or the mirror)")
                if check is not None:
                    check(part)
                with open(part, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(part, dest)
            except DownloadInterrupted:
                raise
            except (PclsError, OSError):
                part.unlink(missing_ok=True)
                part.with_name(part.name + ".json").unlink(missing_ok=True)
                raise
            write_record(dest, url, size, digest)
    except OSError as err:  # the cache itself: read-only, full, not a folder, a name too long
        full = err.errno == errno.ENOSPC
        what_to_do = "free space or choose a folder on another disk" if full else "choose a writable folder"
        raise PclsError(f"cannot write {dest.name} into {dest.parent}: {err.strerror or err}; {what_to_do} "
                        f"(PCLS_HOME for the model cache)") from None
    return dest


def _check_md5(path: Path, expected: str, what: str, what_to_do: str) -> None:
    digest = hexdigest_file(path, hashlib.md5(usedforsecurity=False))
    if digest != expected.lower():
        raise PclsError(f"{what} has md5 {digest}, expected {expected}; {what_to_do}")


def download_weights(name: str, directory=None, static: bool = False, progress: bool = True) -> Path:
    """Fetch zoo model `name` into the cache (or `directory`) and return the local path.

    static=True (or a model that only has one) fetches the legacy static-graph `.tar` and returns the
    folder it was extracted to. Dygraph weights must read as a state dict before they are kept.
    """
    entry = catalog.get_entry(name)
    if static or not entry.get("pretrained_url"):
        url = entry.get("static_tar_url")
        if not url:
            raise PclsError(f"no weights are published for {name}")
        target = static_dir(name, directory)
        archive = fetch(mirrored(url), target.with_name(f"{name}.tar"), progress=progress)
        return safe_extract_tar(archive, target)
    dest = weights_path(name, directory)
    return fetch(mirrored(entry["pretrained_url"]), dest, progress=progress, check=weights_check(dest))


def weights_check(dest: Path):
    """A `fetch` check: the downloaded file reads (safely) as a state dict of the kind `dest`'s suffix names."""
    from pcls.utils.state_files import load_state_file

    def check(part: Path) -> None:
        try:
            load_state_file(part, suffix=dest.suffix)
        except PclsError as err:
            raise PclsError(f"the download for {dest.name} is not a weights file ({err}); nothing was kept") \
                from None

    return check


class _Pace:
    """The deadline and minimum rate of one download, checked as bytes arrive and before each retry."""

    def __init__(self, url: str):
        self.url = url
        self.deadline_s, self.min_rate = download_limits()
        self.start = self.window_start = time.monotonic()
        self.window_bytes = 0

    def remaining(self) -> float:
        return self.start + self.deadline_s - time.monotonic()

    def timeout(self):
        import httpx

        read = min(READ_TIMEOUT_S, RATE_WINDOW_S if self.min_rate else READ_TIMEOUT_S)
        left = max(0.05, self.remaining())
        return httpx.Timeout(min(read, left), connect=min(CONNECT_TIMEOUT_S, left))

    def received(self, amount: int) -> None:
        self.window_bytes += amount
        self.check()

    def check(self) -> None:
        now = time.monotonic()
        if now - self.start > self.deadline_s:
            raise PclsError(f"download of {self.url} did not finish within {self.deadline_s:g} s; a larger "
                            f"{DEADLINE_ENV} allows more, or set PCLS_ZOO_MIRROR to a faster mirror")
        elapsed = now - self.window_start
        if self.min_rate and elapsed >= RATE_WINDOW_S:
            rate = self.window_bytes / elapsed
            if rate < self.min_rate:
                raise PclsError(f"download of {self.url} received {rate:.0f} bytes/s over {elapsed:.0f} s, below the "
                                f"minimum of {self.min_rate:g} ({MIN_RATE_ENV}; 0 turns the check off)")
            self.window_start, self.window_bytes = now, 0


def _same_scheme_only(scheme: str):
    """An httpx response hook that refuses a redirect to another scheme (https -> http) before it is followed."""

    def hook(response) -> None:
        if response.has_redirect_location:
            target = response.request.url.join(response.headers["location"])
            if target.scheme != scheme:
                raise PclsError(f"download of {response.request.url} redirects to {target}, from {scheme} to "
                                f"{target.scheme}; pcls follows redirects within one scheme only")

    return hook


def _download(url: str, part: Path, label: str, show_progress: bool) -> str:
    """Stream `url` into `part`, appending to bytes already there; returns the final URL (after redirects).
    Raises PclsError when it cannot finish.

    `<part>.json` keeps the URL and the ETag/Last-Modified of the response the partial bytes came from,
    so a resume (even in a later process) sends If-Range and never splices two versions of a file.
    """
    import httpx

    resume = _ResumeState(part, url)
    pace = _Pace(url)
    failures = 0
    hooks = {"response": [_same_scheme_only(urlsplit(url).scheme)]}
    with httpx.Client(follow_redirects=True, event_hooks=hooks) as client, _Bar(label, show_progress) as bar:
        while True:
            start = part.stat().st_size if part.exists() else 0
            headers = {"Accept-Encoding": "identity"}
            if start:
                headers["Range"] = f"bytes={start}-"
                if resume.validator:
                    headers["If-Range"] = resume.validator
            try:
                with client.stream("GET", url, headers=headers, timeout=pace.timeout()) as response:
                    pace.url = _named(url, response)
                    total = _receive(response, part, start, pace, bar, resume)
                if total is not None and part.stat().st_size != total:
                    raise _Retryable(f"got {part.stat().st_size} of {total} bytes")
                resume.clear()
                return str(response.url)
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
                raise PclsError(f"cannot download {pace.url!r}: {err}") from None
            except (httpx.TransportError, _Retryable) as err:
                if _unresolvable(err):  # no DNS answer now means none in a few seconds either: no retries
                    raise PclsError(
                        f"cannot download {pace.url}: the host name {urlsplit(pace.url).hostname} does not resolve "
                        f"({err}); check the network, or set PCLS_ZOO_MIRROR to a reachable mirror"
                    ) from None
                pace.check()
                failures = _retry_or_raise(err, failures, pace, part, label)


def _named(url: str, response) -> str:
    """`url`, and where it was redirected to: what errors name."""
    final = str(response.url)
    return url if final == url else f"{url} (redirected to {final})"


def _unresolvable(err: Exception) -> bool:
    """Whether a transport error comes from a failed host-name lookup (socket.gaierror somewhere in its chain)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, socket.gaierror):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def _retry_or_raise(err: Exception, failures: int, pace: _Pace, part: Path, label: str) -> int:
    """Count one failed attempt of a transient error; wait before the next one, or raise when retries ran out."""
    url = pace.url
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
    time.sleep(max(0.0, min(wait, pace.remaining())))
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


def _receive(response, part: Path, start: int, pace: _Pace, bar, resume: _ResumeState) -> int | None:
    """Write one response body to `part`; returns the full file size when the server told it."""
    url = pace.url
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
    if total is not None:
        _check_free_space(part, total - start, url)
    bar.begin(total, start)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "ab" else os.O_TRUNC)
    with os.fdopen(open_no_follow(part, flags), mode) as fh:  # a link at `.part` would write into what it names
        for chunk in response.iter_raw():  # as received, so a cut keeps every byte that arrived
            fh.write(chunk)
            bar.advance(len(chunk))
            pace.received(len(chunk))
    return total


def _check_free_space(part: Path, needed: int, url: str) -> None:
    free = shutil.disk_usage(part.parent).free
    if needed + FREE_SPACE_MARGIN > free:
        raise PclsError(f"download of {url} needs {needed / 1e6:,.1f} MB but {part.parent} has {free / 1e6:,.1f} MB "
                        f"free; free space, or choose a folder on another disk (PCLS_HOME for the model cache)")


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
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12: the standard library's checks as well
                archive.extractall(staging, members=members, filter="data")
            else:  # older Pythons: the member checks above are all there is
                archive.extractall(staging, members=members)
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
