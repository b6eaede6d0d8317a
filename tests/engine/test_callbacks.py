"""The loop's callbacks: a user callback sees every event in order; an interrupted run reports only the files
that exist; the learning rate in the metrics is the rate of the epoch's last update."""

import json
import math
import os
import signal
from pathlib import Path

import pytest

from pcls.config import load_config
from tests.engine.conftest import tiny_config, write_config


class Recorder:
    """Records (event, detail) for every hook the engine calls."""

    def __init__(self, interrupt_at_batch=None):
        self.events = []
        self.interrupt_at_batch = interrupt_at_batch

    def on_setup(self, trainer):
        self.events.append(("setup", None))

    def on_train_start(self, trainer):
        self.events.append(("train_start", None))

    def on_epoch_start(self, trainer):
        self.events.append(("epoch_start", trainer.epoch + 1))

    def on_batch_end(self, trainer, step, batch, outputs):
        self.events.append(("batch_end", step.batch))
        if step.batch == self.interrupt_at_batch:
            os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C: the run stops after this update

    def on_checkpoint(self, trainer, tag, path):
        self.events.append(("checkpoint", tag))

    def on_eval_end(self, trainer, metrics):
        self.events.append(("eval_end", round(metrics["val_top1"], 6)))

    def on_epoch_end(self, trainer, row):
        self.events.append(("epoch_end", row["epoch"]))

    def on_interrupt(self, trainer):
        self.events.append(("interrupt", trainer.batch_in_epoch))

    def on_train_end(self, trainer, summary):
        self.events.append(("train_end", summary["status"]))


def _cfg(tmp_path, colour_data, **global_overrides):
    raw = tiny_config(colour_data, tmp_path / "out", **global_overrides)
    return load_config(str(write_config(raw, tmp_path / "c.yaml")))


def test_a_user_callback_sees_every_event_in_order(tmp_path, colour_data, tinynet):
    import pcls

    recorder = Recorder()
    summary = pcls.train(_cfg(tmp_path, colour_data, epochs=2, save_interval=2), callbacks=[recorder])
    rows = [json.loads(x) for x in (tmp_path / "out/TinyNet/metrics.jsonl").read_text().splitlines()]
    val = [round(row["val_top1"], 6) for row in rows]
    expected = [("setup", None), ("train_start", None)]
    for epoch in (1, 2):
        improved = epoch == 1 or val[1] > val[0]  # best_model is written when val_top1 improves
        expected += [("epoch_start", epoch)] + [("batch_end", b) for b in range(1, 9)]
        # checkpoints are written after the event that asked for them (epoch_end), each then announced
        expected += [("eval_end", val[epoch - 1]), ("epoch_end", epoch)]
        expected += [("checkpoint", "best_model")] if improved else []
        expected += [("checkpoint", "latest")] + ([("checkpoint", "epoch_2")] if epoch == 2 else [])
    expected += [("train_end", "done")]
    assert recorder.events == expected
    assert summary["status"] == "done"


def test_interrupt_event_and_a_summary_of_existing_files_only(tmp_path, colour_data, tinynet):
    import pcls

    recorder = Recorder(interrupt_at_batch=3)
    summary = pcls.train(_cfg(tmp_path, colour_data, epochs=2), callbacks=[recorder])
    assert summary["status"] == "interrupted"
    assert recorder.events[-4:] == [("batch_end", 3), ("interrupt", 3), ("checkpoint", "latest"),
                                    ("train_end", "interrupted")]
    # nothing of an epoch end was written: no best model, no metrics, no curves -- and none is listed
    assert set(summary["files"]) == {"latest", "config"}
    assert all(Path(path).is_file() for path in summary["files"].values())
    on_disk = json.loads((tmp_path / "out/TinyNet/summary.json").read_text())
    assert on_disk["files"] == summary["files"]


def test_epoch_lr_is_the_rate_of_its_last_update(tmp_path, colour_data, tinynet):
    import pcls

    raw = tiny_config(colour_data, tmp_path / "out", epochs=3)
    raw["Optimizer"]["lr"] = {"name": "Cosine", "learning_rate": 0.05, "warmup_epoch": 1}
    steps = []

    class Lr(pcls.Callback):
        def on_batch_end(self, trainer, step, batch, outputs):
            steps.append(trainer.lr)

    summary = pcls.train(load_config(str(write_config(raw, tmp_path / "c.yaml"))), callbacks=[Lr()])
    rows = [json.loads(x) for x in (tmp_path / "out/TinyNet/metrics.jsonl").read_text().splitlines()]
    # 8 updates per epoch: warm-up over updates 0..7, then cosine over 16 updates
    assert rows[0]["lr"] == pytest.approx(0.05 * 7 / 8)  # under warm-up, not the epoch-start 0.0
    assert rows[2]["lr"] == pytest.approx(0.025 * (1 + math.cos(math.pi * 15 / 16)))
    assert summary["final"]["lr"] == rows[2]["lr"] == steps[-1]
    assert [rows[0]["lr"], rows[1]["lr"]] == [steps[7], steps[15]]


def test_a_callback_can_end_the_run_early(tmp_path, colour_data, tinynet):
    import pcls

    class StopAfterOne(pcls.Callback):  # the README's example, with a threshold every run reaches
        def on_epoch_end(self, trainer, row):
            if row["val_top1"] >= 0.0:
                trainer.stop()

    summary = pcls.train(_cfg(tmp_path, colour_data, epochs=3), callbacks=[StopAfterOne()])
    assert summary["status"] == "done" and summary["epochs_done"] == 1


class Counter:
    """A stateful callback: counts updates; its count travels with every checkpoint."""

    name = "Counter"

    def __init__(self):
        self.updates, self.restored = 0, None

    def state_dict(self):
        return {"updates": self.updates}

    def load_state_dict(self, state):
        self.updates = self.restored = state["updates"]

    def on_batch_end(self, trainer, step, batch, outputs):
        images, labels = batch
        assert len(images) == len(labels) and "loss" in outputs and "output" in outputs
        self.updates += int(step.update)


def test_callback_state_is_saved_with_checkpoints_and_restored_on_resume(tmp_path, colour_data, tinynet):
    import pcls

    first = Counter()
    summary = pcls.train(_cfg(tmp_path, colour_data, epochs=1), callbacks=[first])
    assert json.loads((Path(summary["run_dir"]) / "latest.json").read_text())["callbacks"]["Counter"] == {"updates": 8}
    again = Counter()
    pcls.train(_cfg(tmp_path, colour_data, epochs=2), resume=summary["run_dir"], callbacks=[again])
    assert again.restored == 8 and again.updates == 16


def test_priorities_order_callbacks_and_a_name_replaces_a_built_in(tmp_path, colour_data, tinynet):
    import pcls
    from pcls.engine.trainer import Trainer

    order = []

    class Late(pcls.Callback):
        priority = 90

        def on_train_start(self, trainer):
            order.append("late")

    class Early(pcls.Callback):
        priority = 10

        def on_train_start(self, trainer):
            order.append("early")

    class QuietSteps(pcls.Callback):
        name = "StepLog"  # replaces the step log lines

    quiet = QuietSteps()
    trainer = Trainer(_cfg(tmp_path, colour_data, epochs=1), callbacks=[Late(), Early(), quiet])
    assert trainer.callbacks.get("StepLog") is quiet
    assert sum(type(c).__name__ == "StepLog" for c in trainer.callbacks.callbacks) == 0
    trainer.fit()
    assert order == ["early", "late"]


def test_ema_owns_its_copy_from_creation_to_resume(tmp_path, colour_data, tinynet):
    import numpy as np

    import pcls
    from pcls.engine.trainer import Trainer
    from pcls.utils.state_files import load_state_file

    raw = tiny_config(colour_data, tmp_path / "out", epochs=1)
    raw["EMA"] = {"decay": 0.9}
    summary = pcls.train(load_config(str(write_config(raw, tmp_path / "c.yaml"))))
    saved = load_state_file(Path(summary["run_dir"]) / "latest_ema.pdparams")
    raw["Global"]["epochs"] = 2
    trainer = Trainer(load_config(str(write_config(raw, tmp_path / "c2.yaml"))), resume=summary["run_dir"])
    shadow = trainer.callbacks.get("Ema").ema.shadow
    assert set(shadow) == set(saved)
    for key, value in saved.items():
        np.testing.assert_array_equal(shadow[key].numpy(), value, err_msg=key)
    assert not np.allclose(trainer.net.state_dict()["fc.weight"].numpy(), saved["fc.weight"])  # its own copy
