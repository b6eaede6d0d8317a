"""pcls.zoo.download.fetch against a local server: clean download, resume, errors, checksums, lock."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest

from pcls.errors import PclsError
from pcls.zoo.cache import file_lock
from pcls.zoo.download import fetch


def _payload(size: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def _leftovers(folder) -> list:
    """Files a download must never leave behind: partial, lock and temp files."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".part", ".part.json", ".lock", ".tmp")))


def test_clean_download_records_size_and_sha256(file_server, pcls_home):
    body = _payload(300_000)
    file_server.files["/w/a.pdparams"] = body
    dest = pcls_home / "weights" / "a.pdparams"

    assert fetch(file_server.url("/w/a.pdparams"), dest, progress=False) == dest

    assert dest.read_bytes() == body
    record = json.loads((dest.parent / "manifest.json").read_text())["a.pdparams"]
    assert record["size"] == len(body)
    assert record["sha256"] == hashlib.sha256(body).hexdigest()
    assert record["url"] == file_server.url("/w/a.pdparams")
    assert _leftovers(dest.parent) == []
    # a later use is served from the cache without touching the network
    fetch(file_server.url("/w/a.pdparams"), dest, progress=False)
    assert len(file_server.gets("/w/a.pdparams")) == 1


def test_connection_cut_half_way_is_resumed_with_range(file_server, pcls_home):
    body = _payload(200_001, seed=1)
    file_server.files["/w/cut.pdparams"] = body
    file_server.cut_once.add("/w/cut.pdparams")
    dest = pcls_home / "weights" / "cut.pdparams"

    fetch(file_server.url("/w/cut.pdparams"), dest, progress=False)

    first, second = file_server.gets("/w/cut.pdparams")
    assert "range" not in first
    assert second["range"] == f"bytes={len(body) // 2}-"
    assert dest.read_bytes() == body
    assert _leftovers(dest.parent) == []


def test_interrupted_download_resumes_in_the_next_call(file_server, pcls_home, monkeypatch):
    body = _payload(100_000, seed=2)
    file_server.files["/w/b.pdparams"] = body
    file_server.cut_once.add("/w/b.pdparams")
    monkeypatch.setattr("pcls.zoo.download.RETRIES", 0)
    dest = pcls_home / "weights" / "b.pdparams"

    with pytest.raises(PclsError, match="resumes from there"):
        fetch(file_server.url("/w/b.pdparams"), dest, progress=False)
    assert not dest.exists()
    assert (dest.parent / "b.pdparams.part").stat().st_size == len(body) // 2

    fetch(file_server.url("/w/b.pdparams"), dest, progress=False)
    assert file_server.gets("/w/b.pdparams")[-1]["range"] == f"bytes={len(body) // 2}-"
    assert dest.read_bytes() == body


def test_a_file_changed_between_attempts_is_downloaded_afresh_not_spliced(file_server, pcls_home, monkeypatch):
    old, new = _payload(100_000, seed=6), _payload(100_000, seed=7)
    file_server.files["/w/v.pdparams"] = old
    file_server.cut_once.add("/w/v.pdparams")
    monkeypatch.setattr("pcls.zoo.download.RETRIES", 0)
    dest = pcls_home / "weights" / "v.pdparams"
    with pytest.raises(PclsError):
        fetch(file_server.url("/w/v.pdparams"), dest, progress=False)

    file_server.files["/w/v.pdparams"] = new  # republished: another ETag
    fetch(file_server.url("/w/v.pdparams"), dest, progress=False)

    last = file_server.gets("/w/v.pdparams")[-1]
    assert last["range"] == f"bytes={len(old) // 2}-" and last["if-range"]  # asked to resume the old version
    assert dest.read_bytes() == new
    assert _leftovers(dest.parent) == []


def test_transient_server_error_is_retried(file_server, pcls_home):
    file_server.files["/w/c.pdparams"] = b"x" * 1000
    file_server.fail_once["/w/c.pdparams"] = 503
    dest = pcls_home / "weights" / "c.pdparams"
    fetch(file_server.url("/w/c.pdparams"), dest, progress=False)
    assert len(file_server.gets("/w/c.pdparams")) == 2
    assert dest.read_bytes() == b"x" * 1000


def test_404_is_a_clear_error_and_leaves_nothing(file_server, pcls_home):
    dest = pcls_home / "weights" / "missing.pdparams"
    with pytest.raises(PclsError, match="HTTP 404"):
        fetch(file_server.url("/w/missing.pdparams"), dest, progress=False)
    assert list(dest.parent.iterdir()) == []


@pytest.fixture
def waits(monkeypatch):
    """The back-off waits a download makes (recorded, not slept)."""
    recorded = []
    # the download module's own `time`, not the time module (the test server sleeps with it too)
    monkeypatch.setattr("pcls.zoo.download.time", types.SimpleNamespace(sleep=recorded.append, monotonic=time.monotonic))
    return recorded


def test_4xx_fails_at_once(file_server, pcls_home, waits):
    file_server.files["/w/f.pdparams"] = b"x"
    file_server.fail_always["/w/f.pdparams"] = 403
    with pytest.raises(PclsError, match="HTTP 403"):
        fetch(file_server.url("/w/f.pdparams"), pcls_home / "weights" / "f.pdparams", progress=False)
    assert len(file_server.gets("/w/f.pdparams")) == 1 and waits == []


def test_5xx_is_retried_with_backoff_until_the_retries_run_out(file_server, pcls_home, waits, monkeypatch):
    monkeypatch.setattr("pcls.zoo.download.RETRIES", 3)
    file_server.files["/w/g.pdparams"] = b"x"
    file_server.fail_always["/w/g.pdparams"] = 502
    with pytest.raises(PclsError, match="failed after 4 attempts"):
        fetch(file_server.url("/w/g.pdparams"), pcls_home / "weights" / "g.pdparams", progress=False)
    assert len(file_server.gets("/w/g.pdparams")) == 4
    assert len(waits) == 3 and waits == sorted(waits) and waits[0] < waits[-1]  # backing off


def test_a_read_timeout_is_retried(file_server, pcls_home, waits, monkeypatch):
    monkeypatch.setattr("pcls.zoo.download.RETRIES", 1)
    monkeypatch.setattr("pcls.zoo.download.READ_TIMEOUT_S", 0.2)
    file_server.files["/w/t.pdparams"] = _payload(64 * 1024)
    file_server.chunk_delay = 5.0  # far beyond the read timeout: every attempt stalls after its first chunk
    with pytest.raises(PclsError, match="failed after 2 attempts") as failure:
        fetch(file_server.url("/w/t.pdparams"), pcls_home / "weights" / "t.pdparams", progress=False)
    assert "Timeout" in failure.value.message and len(file_server.gets("/w/t.pdparams")) == 2, failure.value.message


def test_an_unresolvable_host_fails_at_once(pcls_home, waits, monkeypatch):
    import httpx

    attempts = []
    stream = httpx.Client.stream

    def counted(self, *args, **kwargs):
        attempts.append(args)
        return stream(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "stream", counted)
    dest = pcls_home / "weights" / "u.pdparams"
    with pytest.raises(PclsError, match="host name nonexistent.invalid does not resolve"):
        fetch("http://nonexistent.invalid/u.pdparams", dest, progress=False)
    assert len(attempts) == 1 and waits == []
    assert not dest.exists() and _leftovers(dest.parent) == []


def test_changed_cached_file_is_an_error(file_server, pcls_home):
    body = _payload(5000, seed=3)
    file_server.files["/w/d.pdparams"] = body
    dest = pcls_home / "weights" / "d.pdparams"
    fetch(file_server.url("/w/d.pdparams"), dest, progress=False)

    dest.write_bytes(body[:-1] + bytes([body[-1] ^ 1]))  # same size, one bit flipped
    with pytest.raises(PclsError, match="changed since it was downloaded: sha256"):
        fetch(file_server.url("/w/d.pdparams"), dest, progress=False)
    dest.write_bytes(body + b"extra")
    with pytest.raises(PclsError, match="changed since it was downloaded: 5005 bytes"):
        fetch(file_server.url("/w/d.pdparams"), dest, progress=False)


def test_expected_checksum_mismatch_keeps_nothing(file_server, pcls_home):
    file_server.files["/w/e.pdparams"] = b"payload"
    dest = pcls_home / "weights" / "e.pdparams"
    with pytest.raises(PclsError, match="expected 0000000000000000"):
        fetch(file_server.url("/w/e.pdparams"), dest, expected_sha256="0" * 64, progress=False)
    assert list(dest.parent.iterdir()) == []
    good = hashlib.sha256(b"payload").hexdigest()
    assert fetch(file_server.url("/w/e.pdparams"), dest, expected_sha256=good, expected_size=7, progress=False)


def test_two_concurrent_downloads_of_one_file(file_server, pcls_home):
    body = _payload(400_000, seed=4)
    file_server.files["/w/f.pdparams"] = body
    file_server.chunk_delay = 0.005  # ~25 chunks: the second caller arrives while the first is downloading
    dest = pcls_home / "weights" / "f.pdparams"
    results, errors = [], []

    def worker():
        try:
            results.append(fetch(file_server.url("/w/f.pdparams"), dest, progress=False))
        except Exception as err:  # reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert results == [dest, dest]
    assert dest.read_bytes() == body
    assert len(file_server.gets("/w/f.pdparams")) == 1  # the second caller waited and found it done
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.pdparams", "manifest.json"]


_FETCH_IN_A_PROCESS = """
import sys
from pcls.cli.common import setup_logging
from pcls.zoo.download import fetch
setup_logging()  # the library logs 'waiting for another download'; show it on stderr as the CLI does
print(fetch(sys.argv[1], sys.argv[2], progress=False))
"""


def test_two_processes_downloading_one_file(file_server, pcls_home):
    body = _payload(300_000, seed=8)
    file_server.files["/w/proc.pdparams"] = body
    dest = pcls_home / "weights" / "proc.pdparams"
    command = [sys.executable, "-c", _FETCH_IN_A_PROCESS, file_server.url("/w/proc.pdparams"), str(dest)]
    with file_lock(dest):  # both processes start while the file is locked, so they must queue
        workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for _ in range(2)]
        for worker in workers:
            assert "waiting for another download of proc.pdparams" in worker.stderr.readline()
    outputs = [worker.communicate(timeout=120) for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert [stdout.strip() for stdout, _ in outputs] == [str(dest), str(dest)]
    assert dest.read_bytes() == body
    assert len(file_server.gets("/w/proc.pdparams")) == 1  # the one that got the lock second found it done
    assert sorted(p.name for p in dest.parent.iterdir()) == ["manifest.json", "proc.pdparams"]


def test_offline_forbids_the_network_but_not_the_cache(file_server, pcls_home, monkeypatch):
    file_server.files["/w/g.pdparams"] = b"cached"
    dest = pcls_home / "weights" / "g.pdparams"
    fetch(file_server.url("/w/g.pdparams"), dest, progress=False)

    monkeypatch.setenv("PCLS_OFFLINE", "1")
    assert fetch(file_server.url("/w/g.pdparams"), dest, progress=False) == dest
    with pytest.raises(PclsError, match="PCLS_OFFLINE=1 forbids downloading"):
        fetch(file_server.url("/w/h.pdparams"), pcls_home / "weights" / "h.pdparams", progress=False)
    assert len(file_server.requests) == 1


def test_progress_bar_runs(file_server, pcls_home):
    file_server.files["/w/p.pdparams"] = _payload(70_000, seed=5)
    dest = fetch(file_server.url("/w/p.pdparams"), pcls_home / "p.pdparams", progress=True)
    assert dest.stat().st_size == 70_000


def test_a_read_only_cache_is_verified_without_writing(file_server, pcls_home, monkeypatch):
    body = _payload(1000, seed=9)
    file_server.files["/w/ro.pdparams"] = body
    dest = pcls_home / "weights" / "ro.pdparams"
    fetch(file_server.url("/w/ro.pdparams"), dest, progress=False)
    dest.write_bytes(body[::-1])  # changed behind our back

    def no_writes(*args, **kwargs):
        raise PermissionError("read-only file system")

    # what a non-root user sees in a read-only folder (root passes every permission check, so fake it)
    monkeypatch.setattr("pcls.zoo.download.os.access", lambda path, mode: False)
    monkeypatch.setattr("pcls.zoo.download.file_lock", no_writes)
    monkeypatch.setattr("pcls.zoo.cache.write_record", no_writes)

    with pytest.raises(PclsError, match="changed since it was downloaded"):
        fetch(file_server.url("/w/ro.pdparams"), dest, progress=False)
    (dest.parent / "manifest.json").unlink()  # an unrecorded file is verified against nothing, and not recorded
    dest.write_bytes(body)
    assert fetch(file_server.url("/w/ro.pdparams"), dest, progress=False) == dest


def test_a_link_at_the_partial_file_is_refused_and_its_target_untouched(file_server, pcls_home, tmp_path):
    """`<dest>.part` is opened without following a link: a link there never makes a download write (or append)
    into the file it names, and only the link itself is removed."""
    file_server.files["/w/l.pdparams"] = _payload(50_000, seed=5)
    dest = pcls_home / "weights" / "l.pdparams"
    dest.parent.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    (dest.parent / "l.pdparams.part").symlink_to(victim)

    with pytest.raises(PclsError, match="symbolic link"):
        fetch(file_server.url("/w/l.pdparams"), dest, progress=False)

    assert victim.read_bytes() == b"keep me"
    assert not dest.exists()
    assert _leftovers(dest.parent) == []


def test_a_link_at_the_lock_file_is_refused(pcls_home, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    dest = pcls_home / "weights" / "k.pdparams"
    dest.parent.mkdir(parents=True)
    (dest.parent / "k.pdparams.lock").symlink_to(victim)

    with pytest.raises(PclsError, match="symbolic link"):
        with file_lock(dest):
            pass
    assert victim.read_bytes() == b"keep me"
