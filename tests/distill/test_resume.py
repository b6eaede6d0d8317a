"""`pcls distill --resume` after a SIGKILL continues the run in place and ends exactly where an
uninterrupted run ends: the student and teacher weights and the plain student file."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from pcls.utils.state_files import load_state_file
from tests.distill.conftest import distill_config
from tests.engine.conftest import pcls_env


def _pcls(args, cwd, **env):
    return subprocess.run([sys.executable, "-m", "pcls", *map(str, args)], cwd=cwd, env={**pcls_env(), **env},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_distill_resume_after_kill_equals_an_uninterrupted_run(tmp_path, scarce_data, tinynet):
    from pcls.engine.trainer import train

    # 208 lines / 26 = 8 batches per epoch; a checkpoint every 3 updates
    cfg = distill_config(scarce_data, scarce_data["labelled_unlabeled"], tmp_path / "out", False, epochs=2,
                         batch_size=26)
    cfg["Global"]["save_steps"] = 3
    train(cfg, run_name="full")
    cfg["Global"]["run_name"] = "cut"
    (tmp_path / "cut.yaml").write_text(yaml.safe_dump(cfg))
    # SIGKILL at the student's 14th training forward (epoch 2, batch 6): the last save was update 12
    stopped = _pcls(["distill", "-c", tmp_path / "cut.yaml"], tmp_path, TINYNET_SIGNAL_AT="KILL:14")
    assert stopped.returncode == -9, stopped.stderr[-2000:]
    run = tmp_path / "out/cut"
    state = json.loads((run / "latest.json").read_text())
    assert (state["epoch"], state["batch_in_epoch"], state["global_step"]) == (1, 4, 12)
    resumed = _pcls(["distill", "--resume", run, "--json"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "batch 4 (update 12)" in resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["run_dir"] == str(run) and summary["status"] == "done" and summary["epochs_done"] == 2
    assert summary["student_weights"] == str(run / "student/best_model.pdparams")
    # the epoch the kill cut in two reports the same per-term losses (the partial sums travel in the checkpoint)
    rows = [[json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
            for folder in (tmp_path / "out/full", run)]
    terms = [key for key in rows[0][-1] if key.startswith("train_loss_")]
    assert terms and [rows[1][-1][key] for key in terms] == pytest.approx([rows[0][-1][key] for key in terms], rel=1e-5)
    for name in ("latest.pdparams", "student/latest.pdparams"):
        full, again = load_state_file(tmp_path / "out/full" / name), load_state_file(run / name)
        assert set(full) == set(again)
        for key in full:
            np.testing.assert_allclose(again[key], full[key], rtol=0, atol=1e-6, err_msg=f"{name} {key}")
