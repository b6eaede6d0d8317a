"""`Global.train_mode: efficientnetv2`: the four stages of progressive learning (crop size and RandAugment
magnitude, switched at 1/4, 2/4, 3/4 of the epochs counted from 1) reach the training pipeline."""

from types import SimpleNamespace

import numpy as np
import pytest

from pcls.data.transforms import build_transforms
from pcls.data.transforms.progressive import ProgressiveLearning, efficientnetv2_stage
from pcls.errors import PclsError


def test_stages_switch_after_each_quarter_of_the_run():
    # 350 epochs: quarters end after epochs 87, 175, 262 (1-based), so 0-based epoch 87 is the first of stage 2
    assert efficientnetv2_stage(0, 350) == (0, 171, 5.0)
    assert efficientnetv2_stage(86, 350)[0] == 0 and efficientnetv2_stage(87, 350)[:2] == (1, 214)
    assert efficientnetv2_stage(175, 350)[:2] == (2, 257)
    stage, size, magnitude = efficientnetv2_stage(349, 350)
    assert (stage, size) == (3, 300) and magnitude == pytest.approx(10.0)
    assert efficientnetv2_stage(87, 350)[2] == pytest.approx(5 + 5 / 3)


def _trainer(ops, epoch, epochs=8):
    return SimpleNamespace(epoch=epoch, run=SimpleNamespace(epochs=epochs),
                           train_data=SimpleNamespace(transforms=build_transforms(ops, to_chw=True)))


def test_the_callback_sets_the_crop_and_the_magnitude_of_the_pipeline():
    ops = [{"RandCropImage": {"size": 224}}, {"RandFlipImage": {}}, {"RandAugmentV2": {"magnitude": 5}},
           {"NormalizeImage": {}}]
    trainer = _trainer(ops, epoch=4)  # epochs 1-2 | 3-4 | 5-6 | 7-8: 0-based 4 is the third stage
    callback = ProgressiveLearning()
    callback.on_setup(trainer)
    callback.on_epoch_start(trainer)
    image = np.random.default_rng(0).integers(0, 256, (300, 320, 3), dtype=np.uint8)
    assert trainer.train_data.transforms(image, np.random.default_rng(1)).shape == (3, 257, 257)
    assert trainer.train_data.transforms.ops[2].level == pytest.approx((5 + 10 / 3) / 10)


def test_a_pipeline_without_a_random_crop_is_refused_before_training():
    with pytest.raises(PclsError, match="no RandCropImage"):
        ProgressiveLearning().on_setup(_trainer([{"ResizeImage": {"size": 32}}, {"NormalizeImage": {}}], 0))
