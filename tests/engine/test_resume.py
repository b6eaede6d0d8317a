"""A run killed (SIGKILL) mid-epoch, or stopped with Ctrl-C, and resumed ends with the same weights as an
uninterrupted run (CPU, fixed seed, dropout on, so RNG state and data position must both be restored)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from pcls.config import load_config
from pcls.utils.state_files import load_state_file
from tests.engine.conftest import pcls_env, tiny_config, write_config


def _config(colour_data, tmp_path):
    raw = tiny_config(colour_data, tmp_path / "out", epochs=2, save_steps=3)
    raw["Arch"]["dropout"] = 0.3
    return write_config(raw, tmp_path / "c.yaml")


def _pcls(args, tmp_path, **env):
    return subprocess.run([sys.executable, "-m", "pcls", *args], cwd=tmp_path, env={**pcls_env(), **env},
                          capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("signal_at, expected_rc, position", [
    # SIGKILL in update 14 (epoch 2, batch 6): the last save was update 12 (save_steps 3), epoch 2 batch 4
    ("KILL:14", -9, (1, 4, 12)),
    # Ctrl-C in update 5: that update finishes, is saved, and the run exits 130
    pytest.param("INT:5", 130, (0, 5, 5), marks=pytest.mark.slow),
])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, colour_data, tinynet, signal_at, expected_rc,
                                                      position):
    from pcls.engine.trainer import train

    cfg_path = _config(colour_data, tmp_path)
    train(load_config(str(cfg_path)), run_name="full", log=lambda m: None)
    stopped = _pcls(["train", "-c", cfg_path, "--name", "cut"], tmp_path, TINYNET_SIGNAL_AT=signal_at)
    assert stopped.returncode == expected_rc, stopped.stderr[-2000:]
    run = tmp_path / "out/cut"
    if signal_at.startswith("INT"):
        assert "interrupted: saved" in stopped.stderr and f"--resume {run}" in stopped.stderr.replace("\n", "")
    state = json.loads((run / "latest.json").read_text())
    assert (state["epoch"], state["batch_in_epoch"], state["global_step"]) == position
    resumed = _pcls(["train", "--resume", str(run)], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"batch {position[1]} (update {position[2]})" in resumed.stderr
    full = load_state_file(tmp_path / "out/full/latest.pdparams")
    again = load_state_file(run / "latest.pdparams")
    assert set(full) == set(again)
    for key in full:
        np.testing.assert_allclose(again[key], full[key], rtol=0, atol=1e-6, err_msg=key)
