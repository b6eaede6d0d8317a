"""Multi-process training on CPU (gloo): 2 workers x half batch == 1 worker x full batch; a dying worker
fails the whole job quickly with its error; the launch command line."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pcls.config import load_config
from pcls.engine.launch import first_worker_error, launch_command
from pcls.utils.state_files import load_state_file
from tests.engine.conftest import pcls_env, tiny_config, write_config


def _pcls(args, cwd, env=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "pcls", *map(str, args)], cwd=cwd, env={**pcls_env(), **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def test_two_gloo_workers_on_half_batches_match_one_worker(tmp_path, colour_data, tinynet):
    from pcls.engine.trainer import train

    one = tiny_config(colour_data, tmp_path / "out", epochs=1)
    train(load_config(str(write_config(one, tmp_path / "one.yaml"))), run_name="one",
          log=lambda m: None)
    two = tiny_config(colour_data, tmp_path / "out", epochs=1)
    two["DataLoader"]["Train"]["sampler"]["batch_size"] = 4  # per process
    result = _pcls(["train", "-c", write_config(two, tmp_path / "two.yaml"), "--nproc", 2, "--name", "two"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    a = load_state_file(tmp_path / "out/one/latest.pdparams")
    b = load_state_file(tmp_path / "out/two/latest.pdparams")
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-5, err_msg=key)
    assert (tmp_path / "out/two/log/workerlog.1").is_file()


def test_dying_worker_fails_the_job_with_its_error(tmp_path, colour_data, tinynet):
    cfg = write_config(tiny_config(colour_data, tmp_path / "out", epochs=1), tmp_path / "c.yaml")
    started = time.monotonic()
    result = _pcls(["train", "-c", cfg, "--nproc", 2], tmp_path, env={"TINYNET_FAIL_RANK": "1"}, timeout=90)
    assert result.returncode == 1
    assert time.monotonic() - started < 60
    err = " ".join(result.stderr.split())
    assert "workerlog.1: RuntimeError: tinynet: injected failure on this rank" in err
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / "out")], capture_output=True, text=True).stdout
    assert leftovers.strip() == ""


def test_launch_command_line(tmp_path):
    cmd = launch_command("w.py", ["spec.json"], log_dir=tmp_path / "log", nproc=2)
    assert cmd[1:] == ["-m", "paddle.distributed.launch", "--log_dir", str(tmp_path / "log"),
                       "--nproc_per_node", "2", "w.py", "spec.json"]
    cmd = launch_command("w.py", [], log_dir="L", gpus="0,1", ips="10.0.0.1, 10.0.0.2")
    assert cmd[3:] == ["--log_dir", "L", "--devices", "0,1", "--ips", "10.0.0.1,10.0.0.2", "w.py"]


def test_first_worker_error_prefers_the_rank_that_failed_first(tmp_path):
    (tmp_path / "workerlog.0").write_text("Traceback (most recent call last):\n  x\nRuntimeError: gloo TIMEOUT\n")
    (tmp_path / "workerlog.1").write_text("noise\nTraceback (most recent call last):\n  File\nValueError: boom\n")
    assert first_worker_error(tmp_path) == "workerlog.1: ValueError: boom"
    (tmp_path / "workerlog.1").write_text("error: DataLoader.Train: list file x does not exist\n")
    assert first_worker_error(tmp_path) == "workerlog.1: DataLoader.Train: list file x does not exist"


def _processes_mentioning(text):
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                found.append(cmdline.parent.name)
        except OSError:
            pass
    return found


def test_sigkill_of_pcls_leaves_no_orphan_workers(tmp_path, colour_data, tinynet):
    cfg = write_config(tiny_config(colour_data, tmp_path / "out", epochs=100000), tmp_path / "c.yaml")
    proc = subprocess.Popen([sys.executable, "-m", "pcls", "train", "-c", str(cfg), "--nproc", "2"], cwd=tmp_path,
                            env=pcls_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "out/TinyNet/log/workerlog.0"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "epoch 1/" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.2)
    spec = str(tmp_path / "out/TinyNet/launch.json")
    assert len(_processes_mentioning(spec)) >= 3  # the launcher and two workers are running
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _processes_mentioning(spec):
        time.sleep(0.2)
    orphans = _processes_mentioning(spec)
    for pid in orphans:  # do not leave them running when the test fails
        os.kill(int(pid), signal.SIGKILL)
    assert orphans == []
