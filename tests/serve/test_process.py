"""`pcls serve` as a real process on a loopback port: SIGTERM drains the request in flight and exits 0; the
command's own errors are one line and exit 2."""

import signal
import socket
import threading
import time

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'pcls[serve]')")
pytest.importorskip("paddle")

from pcls.cli import app  # noqa: E402
from tests.serve.conftest import b64, jpeg_bytes, server_process  # noqa: E402


def test_sigterm_finishes_the_request_in_flight_and_exits_0(export_dir):
    """A request held in the queue (max-wait 3 s for a batch of 8 that never fills) when SIGTERM arrives is
    still answered; the server then exits 0 and no longer listens."""
    import httpx

    with server_process(export_dir, "--max-batch", "8", "--max-wait-ms", "3000") as (process, base):
        answer = {}

        def call():
            answer["response"] = httpx.post(f"{base}/image-classification", json={"image": b64(jpeg_bytes(5))},
                                            timeout=60)

        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 60
        while "pcls_queue_depth 1.0" not in httpx.get(f"{base}/metrics", timeout=10).text:
            assert caller.is_alive() and time.monotonic() < deadline, answer
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        caller.join(timeout=60)
        code = process.wait(timeout=60)
        stderr = process.stderr.read()
    assert answer["response"].status_code == 200, answer["response"].text
    assert answer["response"].json()["result"]["categories"]
    assert code == 0, stderr
    port = int(base.rsplit(":", 1)[1])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # nobody listens any more


def test_serve_errors_are_one_line(tmp_path, export_dir):
    runner = CliRunner()
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
