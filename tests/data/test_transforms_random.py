"""Statistical tests of the random operators, plus reproducibility and config errors."""

import math

import numpy as np
import pytest
from scipy import stats

from pcls.data.transforms import build_batch_transforms, build_transforms
from pcls.data.transforms.basic import RandCropImage, RandFlipImage
from pcls.data.transforms.batch import CutmixOperator, MixupOperator
from pcls.data.transforms.masking import RandomErasing
from pcls.errors import PclsError


def test_rand_crop_area_and_ratio_within_bounds_and_uniform():
    op = RandCropImage(size=32, scale=[0.2, 0.5], ratio=[3 / 4, 4 / 3])
    rng = np.random.default_rng(0)
    areas, ratios = [], []
    for _ in range(3000):
        x0, y0, w, h = op.crop_box(400, 400, rng)
        assert 0 <= x0 and x0 + w <= 400 and 0 <= y0 and y0 + h <= 400
        areas.append(w * h / 400**2)
        ratios.append(w / h)
    areas, ratios = np.array(areas), np.array(ratios)
    # int() truncation of each side loses at most one pixel
    assert areas.min() >= 0.2 * (1 - 2 / 89) and areas.max() <= 0.5
    assert ratios.min() >= 0.75 * (1 - 1 / 89) and ratios.max() <= 4 / 3 * (1 + 1 / 89)
    # on a square image the bound never binds here: area fraction ~ U(0.2, 0.5), w/h ~ U(3/4, 4/3)
    assert abs(areas.mean() - 0.35) < 0.01
    assert abs(ratios.mean() - (0.75 + 4 / 3) / 2) < 0.015


def test_rand_crop_default_bounds_on_a_wide_image():
    op = RandCropImage(size=16)
    rng = np.random.default_rng(1)
    for _ in range(2000):
        x0, y0, w, h = op.crop_box(375, 500, rng)
        assert 0.08 * (1 - 0.02) <= w * h / (375 * 500) <= 1.0
        assert w <= 500 and h <= 375


def test_flip_rate_is_one_half():
    op = RandFlipImage(1)
    img = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    rng = np.random.default_rng(2)
    flips = sum(op(img, rng)[0, 0, 0] == 3 for _ in range(4000))
    assert abs(flips / 4000 - 0.5) < 0.03


@pytest.mark.parametrize("alpha", [0.2, 1.0])
def test_mixup_lambda_follows_beta(alpha):
    op = MixupOperator(class_num=2, alpha=alpha)
    images = np.stack([np.zeros((1, 1, 1), np.float32), np.ones((1, 1, 1), np.float32)])
    rng = np.random.default_rng(3)
    lams = []
    for _ in range(3000):
        mixed, targets = op(images, np.array([0, 1]), rng)
        assert targets.shape == (2, 2) and np.allclose(targets.sum(1), 1)
        if targets[0, 1] > 0 or mixed[0, 0, 0, 0] > 0:  # the pair was swapped: lam is observable
            lams.append(targets[0, 0])
            assert mixed[0, 0, 0, 0] == pytest.approx(1 - targets[0, 0], abs=1e-6)
    assert len(lams) > 1000
    assert stats.kstest(lams, stats.beta(alpha, alpha).cdf).pvalue > 1e-3


def test_cutmix_target_equals_pasted_area():
    op = CutmixOperator(class_num=2, alpha=1.0)
    images = np.stack([np.zeros((3, 16, 16), np.float32), np.ones((3, 16, 16), np.float32)])
    rng = np.random.default_rng(4)
    for _ in range(200):
        mixed, targets = op(images, np.array([0, 1]), rng)
        pasted = mixed[0, 0].mean()  # ones pasted into the zeros image (0 when not swapped)
        if targets[0, 1] > 0:
            assert targets[0, 1] == pytest.approx(pasted, abs=1e-6)
        assert np.allclose(targets.sum(1), 1)


def test_random_erasing_area_and_aspect_within_bounds():
    op = RandomErasing(EPSILON=1.0, sl=0.02, sh=0.4, r1=0.3, mean=[0, 0, 0])
    rng = np.random.default_rng(5)
    for _ in range(500):
        out = op(np.ones((100, 100, 3), np.float32), rng)
        erased = out[..., 0] == 0
        area = erased.mean()
        rows, cols = np.nonzero(erased.any(1))[0], np.nonzero(erased.any(0))[0]
        if area == 0:
            continue
        h, w = rows.size, cols.size
        assert h * w == erased.sum()  # one rectangle
        # rounding each side to an int moves the area by at most about one row/column
        assert 0.02 - (h + w + 1) / 1e4 <= area <= 0.4 + (h + w + 1) / 1e4
        assert 0.3 * 0.8 <= h / w <= (1 / 0.3) * 1.25


def test_random_erasing_probability():
    op = RandomErasing(EPSILON=0.5)
    rng = np.random.default_rng(6)
    erased = sum(bool((op(np.ones((20, 20, 3), np.float32), rng) == 0).any()) for _ in range(2000))
    assert abs(erased / 2000 - 0.5) < 0.04


IMAGENET_TRAIN = [
    {"DecodeImage": {"to_rgb": True, "channel_first": False}},
    {"RandCropImage": {"size": 24}},
    {"RandFlipImage": {"flip_code": 1}},
    {"AutoAugment": None},
    {"RandAugment": {"num_layers": 2, "magnitude": 5}},
    {"ColorJitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1}},
    {"RandomRotation": {"degrees": 15}},
    {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                        "order": ""}},
    {"RandomErasing": {"EPSILON": 0.5}},
    {"GridMask": {"d1": 4, "d2": 12}},
    {"HideAndSeek": None},
    {"Cutout": {"n_holes": 1, "length": 6}},
]


def test_every_operator_runs_and_is_reproducible(jpeg_bytes):
    data = jpeg_bytes(np.random.default_rng(7).integers(0, 256, (40, 50, 3), dtype=np.uint8))
    pipeline = build_transforms(IMAGENET_TRAIN, to_chw=True)
    runs = [pipeline(data, np.random.default_rng([42, k])) for k in (0, 0, 1)]
    assert runs[0].shape == (3, 24, 24) and runs[0].dtype == np.float32
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_policies_preserve_shape_and_dtype():
    img = np.random.default_rng(8).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for op_cfg in IMAGENET_TRAIN[3:7]:
        op = build_transforms([op_cfg]).ops[0]
        for seed in range(20):
            out = op(img, np.random.default_rng(seed))
            assert out.shape == img.shape and out.dtype == np.uint8


def test_opsampler_picks_by_probability():
    ops = build_batch_transforms(
        [{"OpSampler": {"MixupOperator": {"alpha": 0.8, "prob": 0.3}, "CutmixOperator": {"alpha": 1.0, "prob": 0.3}}}],
        class_num=3,
    )
    images = np.stack([np.zeros((1, 8, 8), np.float32), np.ones((1, 8, 8), np.float32)])
    rng = np.random.default_rng(9)
    plain = 0
    for _ in range(2000):
        _, targets = ops(images, np.array([0, 2]), rng)
        assert targets.shape == (2, 3)
        plain += bool(np.array_equal(targets, np.eye(3, dtype=np.float32)[[0, 2]]))
    # no op with p = 0.4, plus mixing that happened not to swap (identity permutation, p = 1/2 of 0.6)
    assert abs(plain / 2000 - (0.4 + 0.6 * 0.5)) < 0.04


@pytest.mark.parametrize(
    "ops,message",
    [
        ([{"RandCropImge": {"size": 3}}], "did you mean RandCropImage"),
        ([{"RandCropImage": {"sise": 3}}], "unknown parameter"),
        ([{"MixupOperator": {"alpha": 0.2}}], "batch operator"),
        ([{"RandomErasing": {"EPSILON": 2}}], "EPSILON"),
        (["DecodeImage", 3], r"transform_ops\[1\]"),
    ],
)
def test_config_mistakes_are_clear_errors(ops, message):
    with pytest.raises(PclsError, match=message):
        build_transforms(ops)


def test_batch_ops_need_class_num():
    with pytest.raises(PclsError, match="class_num"):
        build_batch_transforms([{"MixupOperator": {"alpha": 0.2}}])
    with pytest.raises(PclsError, match="alpha"):
        build_batch_transforms([{"CutmixOperator": {"alpha": 0}}], class_num=3)


def test_mixup_rejects_labels_outside_class_num():
    with pytest.raises(PclsError, match="outside"):
        MixupOperator(class_num=2, alpha=1.0)(np.zeros((2, 1, 1, 1), np.float32), np.array([0, 5]),
                                              np.random.default_rng(0))


def test_rand_crop_log_aspect_is_log_uniform():
    op = RandCropImage(size=8, scale=[0.1, 0.1], ratio=[0.5, 2.0], use_log_aspect=True)
    rng = np.random.default_rng(10)
    logs = []
    for _ in range(2000):
        _, _, w, h = op.crop_box(1000, 1000, rng)
        logs.append(math.log(w / h))
    assert abs(np.mean(logs)) < 0.03  # symmetric around log(1) = 0
