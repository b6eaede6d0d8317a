"""`pcls serve` as a real process on a loopback port: SIGTERM drains the request in flight and exits 0; the
command's own errors are one line and exit 2."""

import json
import os
import signal
import socket
import time

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'pcls[serve]')")
pytest.importorskip("paddle")

from pcls.cli import app  # noqa: E402
from tests.serve.conftest import b64, jpeg_bytes, server_process  # noqa: E402


def test_sigterm_finishes_the_request_in_flight_and_exits_0(export_dir):
    """A request the server is reading when SIGTERM arrives (its handler has asked for the body: uvicorn said
    '100 Continue') is still answered; new connections are refused; the server then exits 0."""
    with server_process(export_dir) as (process, base):
        port = int(base.rsplit(":", 1)[1])
        body = json.dumps({"image": b64(jpeg_bytes(5)), "topk": 2}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.sendall(b"POST /image-classification HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                         b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
            assert conn.recv(1024).startswith(b"HTTP/1.1 100")  # the handler is waiting for the body
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 60
            while _accepts(port):  # stops accepting
                assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
                time.sleep(0.05)
            conn.sendall(body)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        code = process.wait(timeout=60)
        stderr = process.stderr.read()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    assert len(json.loads(payload)["result"]["categories"]) == 2
    assert code == 0, stderr


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_errors_are_one_line(tmp_path, export_dir):
    runner = CliRunner()
    shown = runner.invoke(app, ["serve", "--help"])
    assert shown.exit_code == 0 and "--max-batch" in shown.output and "--api-key" in shown.output
    missing = runner.invoke(app, ["serve", str(tmp_path / "nosuch") + "/"])
    assert missing.exit_code == 2 and "not found" in missing.output and "Traceback" not in missing.output
    bad_batch = runner.invoke(app, ["serve", str(export_dir), "--max-batch", "0"])
    assert bad_batch.exit_code == 2 and "--max-batch must be >= 1" in bad_batch.output

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = runner.invoke(app, ["serve", str(export_dir), "--port", str(port), "--runtime", "paddle",
                                   "--threads", "1"])
    assert busy.exit_code == 2 and f"could not listen on 127.0.0.1:{port}" in busy.output


def test_serve_lets_openmp_threads_spin_1_ms_unless_the_user_chose(tmp_path, monkeypatch):
    """Set before the model loads (so also when loading then fails), and a KMP_BLOCKTIME the user set wins."""
    runner = CliRunner()
    monkeypatch.setenv("KMP_BLOCKTIME", "placeholder")  # recorded, so the test's changes are undone afterwards
    monkeypatch.delenv("KMP_BLOCKTIME")
    assert runner.invoke(app, ["serve", str(tmp_path / "nosuch") + "/"]).exit_code == 2
    assert os.environ.get("KMP_BLOCKTIME") == "1"
    monkeypatch.setenv("KMP_BLOCKTIME", "50")
    assert runner.invoke(app, ["serve", str(tmp_path / "nosuch") + "/"]).exit_code == 2
    assert os.environ["KMP_BLOCKTIME"] == "50"
