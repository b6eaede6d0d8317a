"""Keys PaddleClas 2.6's own configs use, implemented: MultiScaleSampler, MultiStepDecay and a fractional Step
size against paddle's schedulers, `by_epoch`, `Optimizer.clip_grad`, AMP's use_fp16_test / use_promote."""

import numpy as np
import paddle
import pytest

from pcls.data.sampler import MultiScaleSampler, build_sampler
from pcls.engine.amp import AmpSettings
from pcls.errors import PclsError
from pcls.optim import build_schedule
from pcls.optim.optimizer import grad_clip_from
from tests.engine.conftest import tiny_config


def _paddle_values(scheduler, steps):
    values = []
    for _ in range(steps):
        values.append(scheduler.get_lr())
        scheduler.step()
    return values


def test_multistep_decay_matches_paddle_in_epochs():
    schedule = build_schedule({"name": "MultiStepDecay", "learning_rate": 0.1, "milestones": [2, 5], "gamma": 0.5},
                              epochs=8, steps_per_epoch=3)
    reference = paddle.optimizer.lr.MultiStepDecay(0.1, milestones=[6, 15], gamma=0.5)
    np.testing.assert_allclose([schedule(t) for t in range(24)], _paddle_values(reference, 24), rtol=1e-12)


def test_fractional_step_size_is_epochs_times_steps_as_paddleclas():
    schedule = build_schedule({"name": "Step", "learning_rate": 0.1, "step_size": 2.4, "gamma": 0.97},
                              epochs=10, steps_per_epoch=3)
    # PaddleClas 2.6 hands paddle 2.x's StepDecay step_size * steps_per_epoch = 7.2 updates (not 7), which
    # floor-divides by it (paddle 3 refuses a float there, so the expected values are written out)
    expected = [0.1 * 0.97 ** (t // 7.2) for t in range(30)]
    assert expected[7] == 0.1 and expected[8] < 0.1
    np.testing.assert_allclose([schedule(t) for t in range(30)], expected, rtol=1e-12)


def test_by_epoch_changes_the_rate_once_per_epoch():
    schedule = build_schedule({"name": "Cosine", "learning_rate": 0.1, "by_epoch": True}, epochs=4,
                              steps_per_epoch=5)
    rates = [schedule(t) for t in range(20)]
    assert len(set(rates[:5])) == 1 and len(set(rates[5:10])) == 1 and rates[5] < rates[0]
    assert rates[5] == pytest.approx(0.05 * (1 + np.cos(np.pi / 4)))


def test_clip_grad_is_global_norm_clipping():
    from pcls.config.schema import validate_part

    clip = grad_clip_from(validate_part("Optimizer", {"clip_grad": 5.0}))
    assert isinstance(clip, paddle.nn.ClipGradByGlobalNorm) and clip.clip_norm == 5.0


def test_amp_reads_use_fp16_test_and_use_promote():
    from pcls.config.schema import validate

    def section(**keys):
        return validate({"Arch": {"name": "ResNet18"}, "AMP": keys})["AMP"]

    amp = AmpSettings.from_config(section(use_amp=True, use_fp16_test=True, use_promote=True), "gpu")
    assert amp.eval_fp16 and amp.use_promote and amp.eval_autocast is not None
    assert AmpSettings.from_config(section(use_amp=True), "gpu").eval_autocast is None  # PaddleClas: fp32 eval


def test_multi_scale_sampler_batches_keep_pixels_and_cover_the_epoch():
    sampler = MultiScaleSampler(100, [[32, 32], [64, 64], 48], first_bs=16, divided_factor=32, seed=1)
    assert sampler.scales == [(32, 32, 16), (64, 64, 4), (64, 64, 4)]  # 48 rounds up to 64
    batches = list(sampler)
    assert sorted(i for batch in batches for i, _, _ in batch) == list(range(100))
    for batch in batches:
        assert len({(w, h) for _, w, h in batch}) == 1
    assert len({(batch[0][1]) for batch in batches}) == 2 and len(batches) == len(sampler)
    sampler.set_start_batch(3)
    assert list(sampler) == batches[3:]  # a resume sees the same batches
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_multi_scale_sampler_without_scales_is_refused():
    with pytest.raises(PclsError, match="needs DataLoader.<split>.sampler.scales"):
        build_sampler({"name": "MultiScaleSampler", "batch_size": 8}, 10, train=True)


def test_training_with_multi_scale_sampler(tmp_path, colour_data, tinynet):
    from pcls.engine.trainer import train

    cfg = tiny_config(colour_data, tmp_path / "out", epochs=1)
    cfg["DataLoader"]["Train"]["sampler"] = {"name": "MultiScaleSampler", "scales": [16, 24, 32], "first_bs": 8,
                                             "divided_factor": 8, "is_training": True}
    seen = []
    from pcls.data import build_dataloader
    from pcls.engine.run_config import validated

    bundle = build_dataloader(validated(cfg)["DataLoader"]["Train"], train=True, seed=0)
    for images, labels in bundle.loader:
        seen.append(tuple(images.shape))
        assert images.shape[0] == labels.shape[0]
    assert {s[2] for s in seen} >= {16, 32} and all(s[2] == s[3] for s in seen)
    assert sum(s[0] for s in seen) == 64
    assert train(cfg)["status"] == "done"
