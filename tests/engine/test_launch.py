"""The engine owns launching: `pcls.train(cfg, nproc=2)` from Python, and a launched job leaves no copy of
the environment (secrets) in its run folder (#13.5)."""

import json

import numpy as np
import pytest

from pcls.config import load_config
from pcls.engine.callbacks import Callback
from pcls.engine.launch import launch_command, run_launcher, worker_env
from pcls.utils.state_files import load_state_file
from tests.engine.conftest import TINYNET, tiny_config, write_config

SECRET = "s3cret-0f-the-user"


def _files_containing(root, text):
    return [str(p) for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_launcher_environment_dumps_do_not_survive_the_job(tmp_path, monkeypatch):
    """Paddle's launcher writes the whole environment (envlog.N, backup_env.N.json, its own log) next to the
    worker logs; after the job only the workers' own output is left."""
    monkeypatch.setenv("MY_TOKEN", SECRET)
    script = tmp_path / "hello.py"
    script.write_text("import os\nprint('rank', os.environ.get('PADDLE_TRAINER_ID'), flush=True)\n")
    log_dir = tmp_path / "run" / "log"
    run_launcher(launch_command(script, [], log_dir=log_dir, nproc=2), log_dir, env=worker_env("cpu"))
    assert sorted(p.name for p in log_dir.iterdir()) == ["workerlog.0", "workerlog.1"]
    assert "rank 1" in (log_dir / "workerlog.1").read_text()
    assert _files_containing(tmp_path, SECRET) == []


def test_a_log_folder_that_is_a_link_is_refused_and_its_target_left_alone(tmp_path):
    """The runner removes old worker logs and exit marks from the log folder: never through a symbolic link."""
    from pcls.errors import PclsError

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "workerlog.0").write_text("not pcls's")
    (elsewhere / "exit.0").write_text("0")
    log_dir = tmp_path / "run" / "log"
    log_dir.parent.mkdir()
    log_dir.symlink_to(elsewhere)
    with pytest.raises(PclsError, match="symbolic link"):
        run_launcher(["true"], log_dir)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["exit.0", "workerlog.0"]


class PortableMarker(Callback):
    """A Python callback for a multi-process run: importable, plain attributes; leaves a file per process."""

    def __init__(self, folder):
        self.folder = folder
        self.batches = 0

    def on_batch_end(self, trainer, step, batch, outputs):
        self.batches += 1

    def on_train_end(self, trainer, summary):
        from pathlib import Path

        Path(self.folder).mkdir(parents=True, exist_ok=True)
        (Path(self.folder) / f"python_rank{trainer.run.rank}").write_text(str(self.batches))


@pytest.mark.slow
def test_train_with_nproc_2_from_python(tmp_path, colour_data, tinynet, monkeypatch):
    """pcls.train(cfg, callbacks=[...], nproc=2): the run equals one process on the same global batch, and
    both a Python callback and a config-declared one (Global.callbacks) run in every process."""
    import pcls
    import pcls.engine.model as model_module

    monkeypatch.setattr(model_module, "_plugins_loaded", True)  # TinyNet is imported here already
    monkeypatch.setenv("PCLS_PLUGINS", str(TINYNET))  # ... and loaded by the workers from the file
    monkeypatch.setenv("MY_TOKEN", SECRET)
    one = tiny_config(colour_data, tmp_path / "out", epochs=1)
    pcls.train(load_config(str(write_config(one, tmp_path / "one.yaml"))), run_name="one")
    marks = tmp_path / "marks"
    two = tiny_config(colour_data, tmp_path / "out", epochs=1, callbacks=[{"name": "RankMarker", "folder": str(marks)}])
    two["DataLoader"]["Train"]["sampler"]["batch_size"] = 4  # per process: the same global batch
    lines = []
    summary = pcls.train(str(write_config(two, tmp_path / "two.yaml")), nproc=2, run_name="two", log=lines.append,
                         callbacks=[PortableMarker(str(marks))])
    assert summary["status"] == "done" and summary["run_dir"] == str(tmp_path / "out/two")
    assert any(line.startswith("epoch 1/1") for line in lines)  # rank 0's log reaches the caller
    a = load_state_file(tmp_path / "out/one/latest.pdparams")
    b = load_state_file(tmp_path / "out/two/latest.pdparams")
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-5, err_msg=key)
    assert json.loads((tmp_path / "out/two/summary.json").read_text())["run_dir"] == summary["run_dir"]
    assert _files_containing(tmp_path / "out", SECRET) == []
    # 64 images: 8 batches of 4 per process, counted by each rank's own copy
    assert sorted(p.name for p in marks.iterdir()) == ["config_rank0", "config_rank1", "python_rank0", "python_rank1"]
    assert {(marks / f"python_rank{r}").read_text() for r in (0, 1)} == {"8"}


def test_a_callback_that_cannot_cross_into_worker_processes_is_refused_first(tmp_path, colour_data, tinynet):
    import pcls

    class Local(pcls.Callback):  # defined in a function: a worker cannot import it
        pass

    cfg = load_config(str(write_config(tiny_config(colour_data, tmp_path / "out"), tmp_path / "c.yaml")))
    with pytest.raises(pcls.PclsError, match="cannot be sent to the worker processes"):
        pcls.train(cfg, nproc=2, callbacks=[Local()])
    with pytest.raises(pcls.PclsError, match="cannot be sent"):
        pcls.train(cfg, nproc=2, callbacks=[PortableMarker(object())])
    assert not (tmp_path / "out").exists()


def test_a_portable_callback_is_rebuilt_with_its_attributes(tmp_path):
    from pcls.engine.callbacks import portable, rebuild

    sent = json.loads(json.dumps(portable(PortableMarker(str(tmp_path)))))
    again = rebuild(sent)
    assert type(again) is PortableMarker and again.folder == str(tmp_path) and again.batches == 0
