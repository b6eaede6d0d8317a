"""Downloads end in bounded time and never leave junk (#25.11, #25.12): a deadline and a minimum rate, redirects
within one scheme, content checked before it is cached, free space checked first, a read-only or full cache."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import threading
from collections import namedtuple
from urllib.parse import urlsplit

import numpy as np
import pytest

from pcls.errors import PclsError
from pcls.zoo.download import fetch, safe_extract_tar
from pcls.zoo.weights import resolve_weights


def _bounded(call, seconds: float = 60):
    """The exception `call()` raised, failing the test when it has not returned within `seconds` (a hang)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            outcome["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s: the download hangs"
    return outcome.get("error")


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def short_window(monkeypatch):
    monkeypatch.setattr("pcls.zoo.download.RATE_WINDOW_S", 0.5)


def test_a_trickling_server_is_dropped_below_the_minimum_rate(file_server, pcls_home, short_window, monkeypatch):
    monkeypatch.setenv("PCLS_DOWNLOAD_MIN_RATE", "1000")
    file_server.files["/w/slow.pdparams"] = b"x" * 1000
    file_server.trickle["/w/slow.pdparams"] = 0.2  # 5 bytes/s, and every read answers well within its timeout
    dest = pcls_home / "weights" / "slow.pdparams"
    error = _bounded(lambda: fetch(file_server.url("/w/slow.pdparams"), dest, progress=False))
    assert isinstance(error, PclsError) and "bytes/s over" in str(error) and "PCLS_DOWNLOAD_MIN_RATE" in str(error)
    assert _leftovers(dest.parent) == []  # no .part, no .part.json, no lock


def test_a_server_that_never_answers_fails_in_bounded_time(file_server, pcls_home, short_window):
    file_server.files["/w/mute.pdparams"] = b"x"
    file_server.silent.add("/w/mute.pdparams")
    dest = pcls_home / "weights" / "mute.pdparams"
    error = _bounded(lambda: fetch(file_server.url("/w/mute.pdparams"), dest, progress=False))
    assert isinstance(error, PclsError) and "received 0 bytes/s" in str(error), error
    assert _leftovers(dest.parent) == []


def test_the_deadline_ends_a_download_that_keeps_its_rate(file_server, pcls_home, monkeypatch):
    monkeypatch.setenv("PCLS_DOWNLOAD_DEADLINE", "0.5")
    monkeypatch.setenv("PCLS_DOWNLOAD_MIN_RATE", "0")
    file_server.files["/w/long.pdparams"] = b"x" * (1 << 20)
    file_server.chunk_delay = 0.05  # 64 chunks: about 3 s in all
    dest = pcls_home / "weights" / "long.pdparams"
    error = _bounded(lambda: fetch(file_server.url("/w/long.pdparams"), dest, progress=False))
    assert isinstance(error, PclsError) and "did not finish within 0.5 s" in str(error)
    assert "PCLS_DOWNLOAD_DEADLINE" in str(error) and _leftovers(dest.parent) == []


@pytest.mark.parametrize("name, value", [("PCLS_DOWNLOAD_DEADLINE", "soon"), ("PCLS_DOWNLOAD_DEADLINE", "0"),
                                         ("PCLS_DOWNLOAD_MIN_RATE", "-1"), ("PCLS_DOWNLOAD_MIN_RATE", "inf")])
def test_a_bad_limit_setting_is_one_line(file_server, pcls_home, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    file_server.files["/w/a.pdparams"] = b"x"
    with pytest.raises(PclsError, match=f"{name} must be a (positive|non-negative) number of .* \\(default .*\\), "
                                        f"got '{value}'"):
        fetch(file_server.url("/w/a.pdparams"), pcls_home / "weights" / "a.pdparams", progress=False)


def test_redirects_are_followed_within_one_scheme_and_errors_name_the_final_url(file_server, pcls_home):
    file_server.files["/real/w.bin"] = b"payload"
    file_server.redirects["/moved/w.bin"] = file_server.url("/real/w.bin")
    dest = fetch(file_server.url("/moved/w.bin"), pcls_home / "w.bin", progress=False)
    assert dest.read_bytes() == b"payload"
    file_server.redirects["/moved/gone.bin"] = file_server.url("/elsewhere/gone.bin")
    with pytest.raises(PclsError, match="HTTP 404") as err:
        fetch(file_server.url("/moved/gone.bin"), pcls_home / "gone.bin", progress=False)
    assert f"redirected to {file_server.url('/elsewhere/gone.bin')}" in str(err.value)


def test_a_redirect_to_another_scheme_is_refused(file_server, pcls_home):
    port = urlsplit(file_server.url("/")).port
    file_server.redirects["/w/x.bin"] = f"https://127.0.0.1:{port}/w/x.bin"
    with pytest.raises(PclsError, match="redirects to https://127.0.0.1.*from http to https"):
        fetch(file_server.url("/w/x.bin"), pcls_home / "x.bin", progress=False)
    assert _leftovers(pcls_home) == []


def test_a_download_that_is_not_a_state_dict_is_never_cached(file_server, pcls_home):
    file_server.files["/w/hello.pdparams"] = b"hello"
    with pytest.raises(PclsError, match="the download for .*hello.pdparams is not a weights file"):
        resolve_weights(file_server.url("/w/hello.pdparams"))
    assert _leftovers(pcls_home / "weights" / "url") == []


def test_free_space_is_checked_against_content_length_before_writing(file_server, pcls_home, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("pcls.zoo.download.shutil.disk_usage", lambda path: usage(10 << 20, 9 << 20, 1 << 20))
    file_server.files["/w/big.pdparams"] = b"x" * (2 << 20)
    dest = pcls_home / "weights" / "big.pdparams"
    with pytest.raises(PclsError, match=r"needs 2.1 MB but .* has 1.0 MB free"):
        fetch(file_server.url("/w/big.pdparams"), dest, progress=False)
    assert _leftovers(dest.parent) == []


# A small tmpfs makes "disk full" and "read-only" real (as root, permission bits do not stop writes).
@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN); the disk-full tests use a real small file system")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_disk_that_fills_during_a_download_is_one_line_and_leaves_nothing(file_server, small_disk, monkeypatch):
    monkeypatch.setattr("pcls.zoo.download._check_free_space", lambda *args: None)  # as if it lied about the size
    file_server.files["/w/huge.pdparams"] = b"x" * (1 << 20)
    dest = small_disk / "huge.pdparams"
    with pytest.raises(PclsError, match="cannot write huge.pdparams into .*No space left on device; free space"):
        fetch(file_server.url("/w/huge.pdparams"), dest, progress=False)
    assert _leftovers(small_disk) == [] and shutil.disk_usage(small_disk).used < (64 << 10)


def test_zoo_download_into_a_read_only_or_full_cache_is_one_line(file_server, small_disk, monkeypatch):
    from typer.testing import CliRunner

    from pcls.cli import app
    from pcls.zoo import catalog

    url = catalog.get_entry("AlexNet")["pretrained_url"]
    file_server.files["/mirror" + urlsplit(url).path] = b"x" * (1 << 20)  # more than the small disk holds
    monkeypatch.setenv("PCLS_ZOO_MIRROR", file_server.url("/mirror"))
    monkeypatch.delenv("PCLS_OFFLINE", raising=False)
    monkeypatch.setenv("PCLS_HOME", str(small_disk))
    full = CliRunner().invoke(app, ["zoo", "download", "AlexNet"])
    assert full.exit_code == 2 and "MB free" in full.output and "Traceback" not in full.output, full.output
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    read_only = CliRunner().invoke(app, ["zoo", "download", "AlexNet"])
    assert read_only.exit_code == 2 and "Read-only file system" in read_only.output, read_only.output
    assert "PCLS_HOME" in read_only.output


# -- tar archives on Pythons whose tarfile has no filter="data" (before 3.10.12) ---------------------------
def test_extraction_without_the_data_filter_still_refuses_escaping_members(tmp_path, monkeypatch):
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    good, bad = tmp_path / "good.tar", tmp_path / "bad.tar"
    for path, name in ((good, "top/file"), (bad, "../escape")):
        with tarfile.open(path, "w") as archive:
            info = tarfile.TarInfo(name)
            info.size = 2
            archive.addfile(info, __import__("io").BytesIO(b"ok"))
    assert (safe_extract_tar(good, tmp_path / "out") / "top" / "file").read_bytes() == b"ok"
    with pytest.raises(PclsError, match="outside the target folder"):
        safe_extract_tar(bad, tmp_path / "out2")
    assert not (tmp_path / "escape").exists()


def test_a_weights_url_serving_a_real_state_dict_is_cached(file_server, pcls_home, tmp_path):
    from pcls.utils.state_files import save_state_file

    body = save_state_file({"w": np.ones(3, "float32")}, tmp_path / "w.pdparams").read_bytes()
    file_server.files["/w/ok.pdparams"] = body
    path = resolve_weights(file_server.url("/w/ok.pdparams"))
    assert path.read_bytes() == body
