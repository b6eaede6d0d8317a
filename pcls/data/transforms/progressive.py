"""PaddleClas's `Global.train_mode: efficientnetv2`: progressive learning (Tan & Le 2021, EfficientNetV2).

The run is split into four stages at 1/4, 2/4 and 3/4 of its epochs; stage s trains on crops of
int(128 + 172 (s + 1) / 4) px (171, 214, 257, 300) with the RandAugment magnitude 5 + 5 s / 3 (5 to 10), as
PaddleClas's trainer sets them: on the pipeline's RandCropImage and on its RandAugment-family operator
(PaddleClas looks for `RandAugment`, which its EfficientNetV2 config names RandAugmentV2; both are served here).
The engine's loader starts its workers each epoch, so a stage set before the epoch reaches them.
"""

from __future__ import annotations

import logging

from pcls.errors import PclsError

log = logging.getLogger(__name__)
STAGES = 4


def efficientnetv2_stage(epoch: int, epochs: int) -> tuple:
    """(stage, crop size, RandAugment magnitude) of the 0-based `epoch` of a run of `epochs`."""
    stones = [int(epochs * (i + 1) / STAGES) for i in range(STAGES)]
    stage = sum(epoch + 1 > stone for stone in stones)  # PaddleClas counts epochs from 1
    fraction = (stage + 1) / STAGES
    return stage, int(128 + (300 - 128) * fraction), 5 + 5 * stage / (STAGES - 1)


def _stage_targets(pipeline):
    from pcls.data.transforms.basic import RandCropImage

    crops = [op for op in pipeline.ops if isinstance(op, RandCropImage)]
    augments = [op for op in pipeline.ops if hasattr(op, "set_magnitude")]
    if not crops:
        raise PclsError("Global.train_mode: efficientnetv2 grows the training crop, but DataLoader.Train's "
                        "transform_ops have no RandCropImage")
    return crops[0], augments[0] if augments else None


class ProgressiveLearning:
    """The engine callback of `train_mode: efficientnetv2`: sets each stage's crop size and magnitude."""

    def __init__(self):
        self.stage = None

    def on_setup(self, trainer):
        _stage_targets(trainer.train_data.transforms)  # a pipeline it cannot drive fails before training

    def on_epoch_start(self, trainer):
        stage, size, magnitude = efficientnetv2_stage(trainer.epoch, trainer.run.epochs)
        if stage == self.stage:
            return
        crop, augment = _stage_targets(trainer.train_data.transforms)
        crop.size = (size, size)
        if augment is not None:
            augment.set_magnitude(magnitude)
        self.stage = stage
        log.info("progressive learning: stage %d/%d, %d px crops, RandAugment magnitude %.2f", stage + 1, STAGES,
                 size, magnitude)
