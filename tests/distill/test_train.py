"""Distillation end to end on generated data: a student taught by a stronger teacher on a large unlabeled
pool beats the same student trained alone for the same steps; unlabeled lines feed the teacher-student
term only; the teacher cache replays logits exactly on a deterministic pipeline and is refused otherwise."""

from pathlib import Path

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from tests.distill.conftest import distill_config, plain_config, quiet  # noqa: E402


def test_distilled_student_beats_student_trained_alone(tmp_path, scarce_data, trained_teacher):
    from pcls.engine.trainer import train

    alone = train(plain_config(scarce_data, scarce_data["labelled_repeated"], tmp_path / "alone"),
                  log=quiet)
    distilled = train(distill_config(scarce_data, scarce_data["labelled_unlabeled"], tmp_path / "kd",
                                     trained_teacher["weights"]), log=quiet)
    # same student, seed, batch size, epochs and number of updates; only the training signal differs
    assert distilled["final"]["epoch"] == alone["final"]["epoch"] == 10
    assert len(open(scarce_data["labelled_repeated"]).read().split("\n")) == \
        len(open(scarce_data["labelled_unlabeled"]).read().split("\n"))
    alone_top1, distilled_top1 = alone["final"]["val_top1"], distilled["final"]["val_top1"]
    # measured over 9 seeds while writing this test: alone 0.44-0.53, distilled 0.60-0.66, teacher ~0.65
    assert trained_teacher["top1"] > alone_top1 + 0.05
    assert distilled_top1 > alone_top1 + 0.05, (alone_top1, distilled_top1)
    assert distilled["student_weights"].endswith("student/best_model.pdparams")


def test_unlabeled_lines_reach_only_the_distillation_term(tmp_path, scarce_data, trained_teacher, monkeypatch):
    from pcls.engine.trainer import Trainer
    from pcls.loss.registry import CombinedLoss

    seen = []
    original = CombinedLoss.__call__

    def recording(self, output, target):
        parts = original(self, output, target)
        if isinstance(output, dict) and output["Student"].stop_gradient is False:  # training batches
            seen.append({"student": output["Student"].numpy(), "teacher": output["Teacher"].numpy(),
                         "labels": target.numpy().reshape(-1),
                         **{k: float(v) for k, v in parts.items()}})
        return parts

    monkeypatch.setattr(CombinedLoss, "__call__", recording)
    cfg = distill_config(scarce_data, scarce_data["labelled_unlabeled"], tmp_path / "out",
                         trained_teacher["weights"], epochs=1, batch_size=16)
    Trainer(cfg, log=quiet).fit()

    labels = np.concatenate([batch["labels"] for batch in seen])
    assert (labels == -1).sum() == 200 and (labels >= 0).sum() == 8  # every line once, unlabeled as -1
    mixed = 0
    for batch in seen:
        s, t, y = batch["student"], batch["teacher"], batch["labels"]
        log_p = s - np.log(np.exp(s - s.max(1, keepdims=True)).sum(1, keepdims=True)) - s.max(1, keepdims=True)
        q = np.exp(t - t.max(1, keepdims=True))
        q /= q.sum(1, keepdims=True)
        # the soft-label term averages over every sample in the batch, labelled or not
        assert batch["loss_ce_Student_Teacher"] == pytest.approx(float(-(q * log_p).sum(1).mean()), rel=1e-4)
        # the ground-truth term averages over the labelled ones only (0 when there are none)
        keep = y >= 0
        gt = float(-log_p[keep, y[keep]].mean()) if keep.any() else 0.0
        assert batch["loss_gt_ce_Student"] == pytest.approx(gt, rel=1e-4, abs=1e-6)
        mixed += bool(keep.any() and not keep.all())
    assert mixed >= 1  # at least one batch had both kinds, where the two averages differ


def _teacher_calls(monkeypatch):
    from pcls.distill.model import DistillationModel

    calls = []
    original = DistillationModel._run_frozen

    def counting(self, model, x):
        if self.training:
            calls.append(int(x.shape[0]))
        return original(self, model, x)

    monkeypatch.setattr(DistillationModel, "_run_frozen", counting)
    return calls


def test_teacher_cache_replays_logits_on_a_deterministic_pipeline(tmp_path, scarce_data, trained_teacher,
                                                                  monkeypatch):
    from pcls.engine.trainer import train
    from pcls.utils.state_files import load_state_file

    def run(name, cache):
        cfg = distill_config(scarce_data, scarce_data["labelled_unlabeled"], tmp_path / name,
                             trained_teacher["weights"], epochs=2, batch_size=26)
        messages = []
        summary = train(cfg, strategy={"cache_teacher": cache}, log=messages.append)
        return summary, messages

    calls = _teacher_calls(monkeypatch)
    cached, messages = run("cached", True)
    assert calls == [26] * 8  # the teacher ran on the 8 batches of epoch 1 only
    assert cached["teacher_cache"] == {"hits": 208, "misses": 208, "rows": 208}
    assert any("computed in the first epoch and reused" in m for m in messages)
    assert not list(Path(cached["run_dir"]).glob("teacher_cache*"))  # scratch tables removed after the run
    calls.clear()
    plain, _ = run("plain", False)
    assert calls == [26] * 16 and "teacher_cache" not in plain
    # the student trained on replayed logits ends where the one with a live teacher does
    assert cached["final"]["train_loss"] == pytest.approx(plain["final"]["train_loss"], rel=1e-4)
    assert cached["final"]["val_top1"] == plain["final"]["val_top1"]
    a, b = load_state_file(cached["student_weights"]), load_state_file(plain["student_weights"])
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_teacher_cache_is_refused_on_a_random_pipeline(tmp_path, scarce_data, trained_teacher, monkeypatch):
    from pcls.engine.trainer import train

    calls = _teacher_calls(monkeypatch)
    cfg = distill_config(scarce_data, scarce_data["labelled_unlabeled"], tmp_path / "out",
                         trained_teacher["weights"], epochs=2, batch_size=52, random_aug=True)
    messages = []
    summary = train(cfg, strategy={"cache_teacher": True}, log=messages.append)
    notes = [m for m in messages if m.startswith("--cache-teacher")]
    assert len(notes) == 1 and "not used" in notes[0] and "RandFlipImage" in notes[0]
    assert "teacher_cache" not in summary and calls == [52] * 8
