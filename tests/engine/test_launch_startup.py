"""A launched job's start and end: the parent starts the launcher without importing paddle, ranks join rank 0's
store as soon as it listens, and the runner returns as soon as every worker has exited cleanly, without waiting
for the launcher's next look."""

import os
import socket
import subprocess
import sys
import threading

import pytest

from pcls.engine.env import store_endpoint, wait_for_store
from pcls.errors import PclsError
from tests.engine.conftest import tiny_config, write_config


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_store_endpoint_is_the_one_paddle_connects_to(monkeypatch):
    """In Paddle 3.3's order (python/paddle/distributed/parallel.py, init_parallel_env)."""
    for name in ("PADDLE_MASTER", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PADDLE_TRAINER_ENDPOINTS", "10.0.0.5:6170,10.0.0.6:6171")
    assert store_endpoint() == ("10.0.0.5", 6170)
    monkeypatch.setenv("PADDLE_MASTER", "127.0.0.1:41234")
    assert store_endpoint() == ("127.0.0.1", 41234)
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.9")
    assert store_endpoint() == ("127.0.0.1", 41234)  # an address without a port is not used
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert store_endpoint() == ("10.0.0.9", 29500)
    monkeypatch.delenv("MASTER_ADDR")
    monkeypatch.delenv("MASTER_PORT")
    monkeypatch.delenv("PADDLE_MASTER")
    monkeypatch.delenv("PADDLE_TRAINER_ENDPOINTS")
    assert store_endpoint() is None


def test_wait_for_store_returns_once_rank_0_listens():
    port = _free_port()
    server = socket.socket()
    listening = threading.Event()

    def listen_later():
        listening.wait()
        server.bind(("127.0.0.1", port))
        server.listen()

    thread = threading.Thread(target=listen_later)
    thread.start()
    try:
        assert not wait_for_store(("127.0.0.1", port), timeout=0.05)  # nobody listens yet
        listening.set()
        assert wait_for_store(("127.0.0.1", port), timeout=30)
    finally:
        listening.set()
        thread.join()
        server.close()


# A stand-in for Paddle's launcher: starts one child per argument "MARK:STATUS" (each records MARK with
# record_exit, as worker.py does, then exits with STATUS), looks at them only after LOOK_AFTER seconds,
# then exits with the first failure, or LAUNCHER_EXIT when they all succeeded.
LAUNCHER = """
import os, subprocess, sys, time
log_dir = sys.argv[1]
children = []
for rank, spec in enumerate(sys.argv[2:]):
    mark, status = spec.split(":")
    env = dict(os.environ, PADDLE_LOG_DIR=log_dir, PADDLE_LOCAL_RANK=str(rank))
    code = f"import os; from pcls.engine.launch import record_exit; record_exit({mark}); os._exit({status})"
    children.append(subprocess.Popen([sys.executable, "-c", code], env=env))
time.sleep(float(os.environ["LOOK_AFTER"]))
codes = [child.wait() for child in children]
sys.exit(next((c for c in codes if c), int(os.environ["LAUNCHER_EXIT"])))
"""


def _run_stand_in(tmp_path, monkeypatch, specs, look_after, launcher_exit):
    from pcls.engine.launch import run_launcher

    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER)
    monkeypatch.setenv("LOOK_AFTER", str(look_after))
    monkeypatch.setenv("LAUNCHER_EXIT", str(launcher_exit))
    log_dir = tmp_path / "log"
    cmd = [sys.executable, str(script), str(log_dir), *specs]
    return log_dir, lambda: run_launcher(cmd, log_dir, local_workers=len(specs))


def test_the_job_is_done_when_every_worker_exited_with_0(tmp_path, monkeypatch):
    """The launcher would exit 3 only after 60 s: the runner returns 0 on the workers' own word and
    stops the launcher; no exit mark is left behind."""
    log_dir, run = _run_stand_in(tmp_path, monkeypatch, ["0:0", "0:0"], look_after=60, launcher_exit=3)
    assert run() == 0
    assert list(log_dir.glob("exit.*")) == []
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / "launcher.py")], capture_output=True, text=True).stdout
    assert leftovers.strip() == ""  # the launcher was stopped


def test_a_worker_that_failed_leaves_the_verdict_to_the_launcher(tmp_path, monkeypatch):
    log_dir, run = _run_stand_in(tmp_path, monkeypatch, ["0:0", "2:2"], look_after=0.5, launcher_exit=0)
    with pytest.raises(PclsError) as failed:
        run()
    assert "exit 2" in failed.value.message
    assert list(log_dir.glob("exit.*")) == []


def test_a_worker_that_crashed_after_recording_0_is_not_taken_at_its_word(tmp_path, monkeypatch):
    """Its process status (a zombie's exit code in /proc) says otherwise: wait for the launcher."""
    _, run = _run_stand_in(tmp_path, monkeypatch, ["0:0", "0:5"], look_after=3, launcher_exit=0)
    with pytest.raises(PclsError) as failed:
        run()
    assert "exit 5" in failed.value.message


# `pcls train --nproc 2` up to the launch: the launcher's command is printed instead of run
PARENT = """
import sys
import pcls.engine.launch as launch

def report(cmd, log_dir, **options):
    print("LAUNCH", "paddle" in sys.modules, " ".join(cmd))
    raise SystemExit(0)

launch.run_launcher = report
sys.argv = ["pcls", *sys.argv[1:]]
from pcls.cli import main
main()
"""


def test_the_parent_of_a_launched_job_does_not_import_paddle(tmp_path, colour_data):
    """Checks, run directory and job spec need no paddle: the launcher and the workers import it anyway."""
    cfg = tiny_config(colour_data, tmp_path / "out", epochs=1)
    cfg["Arch"] = {"name": "ResNet18_vd", "class_num": 4}  # a built-in backbone: no plugin file runs
    env = {k: v for k, v in os.environ.items() if k != "PCLS_PLUGINS"}
    result = subprocess.run([sys.executable, "-c", PARENT, "train", "-c", str(write_config(cfg, tmp_path / "c.yaml")),
                             "--nproc", "2"], env=env, capture_output=True, text=True, timeout=120)
    launched = [line for line in result.stdout.splitlines() if line.startswith("LAUNCH")]
    assert launched and launched[0].startswith("LAUNCH False "), result.stdout + result.stderr[-2000:]
    assert "paddle.distributed.launch" in launched[0]
    assert (tmp_path / "out/ResNet18_vd/launch.json").is_file()
