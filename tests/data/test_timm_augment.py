"""TimmAutoAugment, RandAugmentV2/V3 and CropImageAtRatio against their published definitions (op ranges,
fill colour, magnitude noise), the evaluated strings in operator arguments, and DecodeImage's PIL backend."""

import io
import math

import cv2
import numpy as np
import pytest
from PIL import Image

from pcls.data.decode import ImageTooLarge
from pcls.data.transforms import build_batch_transforms, build_transforms
from pcls.data.transforms.timm_augment import TIMM_OPS, RandAugmentV2, RandAugmentV3, TimmAutoAugment
from pcls.errors import PclsError

NEAREST = Image.Resampling.NEAREST


def _dot_image(side=65, at=(52, 32)):
    """A black square image with one white pixel at (x, y)."""
    img = np.zeros((side, side, 3), dtype=np.uint8)
    img[at[1], at[0]] = 255
    return Image.fromarray(img)


def _bright_pixels(pil):
    ys, xs = np.nonzero(np.asarray(pil)[:, :, 0] > 200)
    return set(zip(xs.tolist(), ys.tolist()))


class _Sign:
    """A Generator stand-in whose integers() always gives `value` (random_sign: 0 -> -1, 1 -> +1)."""

    def __init__(self, value):
        self.value = value

    def integers(self, low, high=None):
        return self.value


def _timm(name, level, img, sign=1, fill=(0, 0, 0)):
    op, level_to_arg = TIMM_OPS[name]
    value = level_to_arg(level, _Sign(sign)) if level_to_arg else None
    return op(img, value, fill, NEAREST)


def test_rotate_at_full_level_turns_a_point_30_degrees_about_the_centre():
    out = _timm("Rotate", 1.0, _dot_image(), sign=1)  # +30 degrees, counter-clockwise on screen
    (x, y), = _bright_pixels(out)
    r = 52 - 32
    assert (x, y) == (round(32 + r * math.cos(math.radians(30))), round(32 - r * math.sin(math.radians(30))))


def test_shear_and_relative_translate_ranges():
    # ShearX at full level: output (x, y) samples input (x + 0.3 y, y); the dot at (52, 32) moves to 52 - 9.6
    (x, y), = _bright_pixels(_timm("ShearX", 1.0, _dot_image(), sign=1))
    assert y == 32 and abs(x - (52 - 0.3 * 32)) <= 1
    # TranslateXRel at level 0.5: 0.45 * 0.5 of the width, sign from the generator (-: content moves right)
    (x, y), = _bright_pixels(_timm("TranslateXRel", 0.5, _dot_image(at=(30, 32)), sign=0))
    assert y == 32 and abs(x - (30 + 0.225 * 65)) <= 1


def test_posterize_solarize_and_solarize_add_levels():
    ramp = Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (1, 1)).reshape(16, 16, 1).repeat(3, axis=2))
    values = np.asarray(ramp)[:, :, 0].ravel()
    assert np.array_equal(np.asarray(_timm("Posterize", 1.0, ramp))[:, :, 0].ravel(), values & 0xF0)  # 4 bits kept
    assert not np.asarray(_timm("PosterizeIncreasing", 1.0, ramp)).any()  # 0 bits kept: black
    assert np.array_equal(np.asarray(_timm("PosterizeOriginal", 0.0, ramp)), np.asarray(ramp) & 0xF0)
    assert np.array_equal(np.asarray(_timm("Solarize", 1.0, ramp)), np.asarray(ramp))  # threshold 256: nothing
    assert np.array_equal(np.asarray(_timm("SolarizeIncreasing", 1.0, ramp))[:, :, 0].ravel(), 255 - values)
    added = np.asarray(_timm("SolarizeAdd", 1.0, ramp))[:, :, 0].ravel()
    assert np.array_equal(added, np.where(values < 128, np.minimum(values + 110, 255), values))


def test_enhance_factors_span_point_one_to_one_point_nine():
    _, plain = TIMM_OPS["Color"]
    _, increasing = TIMM_OPS["ColorIncreasing"]
    assert plain(0.0, None) == pytest.approx(0.1) and plain(1.0, None) == pytest.approx(1.9)
    assert increasing(0.0, _Sign(1)) == 1.0  # magnitude 0 leaves the image alone
    assert increasing(1.0, _Sign(1)) == pytest.approx(1.9) and increasing(1.0, _Sign(0)) == pytest.approx(0.1)


def test_config_string_sections():
    op = TimmAutoAugment("rand-m9-mstd0.5-inc1")
    assert (op.magnitude, op.num_layers, op.ops[4], op.weights) == (9, 2, "PosterizeIncreasing", None)
    op = TimmAutoAugment("rand-n3-m5-w0-mmax15")
    assert (op.magnitude, op.num_layers, op.ops[4], op.noise.mmax) == (5, 3, "Posterize", 15)
    assert op.weights.sum() == pytest.approx(1.0) and (op.weights == 0).sum() == 2
    assert len(TimmAutoAugment("original-mstd0.5").policy) == len(TimmAutoAugment("v0").policy) == 25
    for bad, message in (("augmix-m3", "AugMix is not implemented"), ("rand-x3", "unknown section 'x3'"),
                         ("foo-m3", "must start with 'rand'"), ("rand-w1", "only the weight set w0")):
        with pytest.raises(PclsError, match=message):
            TimmAutoAugment(bad)


def test_magnitude_noise_is_gaussian_and_clipped_or_uniform():
    rng = np.random.default_rng(0)
    gauss = TimmAutoAugment("rand-m5-mstd1").noise
    levels = np.array([gauss.level(5, rng) for _ in range(4000)])
    assert abs(levels.mean() - 0.5) < 0.01 and abs(levels.std() - 0.1) < 0.01
    clipped = TimmAutoAugment("rand-m10-mstd1").noise
    assert max(clipped.level(10, rng) for _ in range(500)) == 1.0  # clipped at mmax 10 / 10
    uniform = TimmAutoAugment("rand-m8-mstd101").noise
    levels = np.array([uniform.level(8, rng) for _ in range(4000)])
    assert levels.min() >= 0 and levels.max() <= 0.8 and abs(levels.mean() - 0.4) < 0.02


def test_fill_is_the_mean_in_pixels_and_prob_zero_or_null_policy_is_identity():
    img = np.full((40, 40, 3), 200, dtype=np.uint8)
    op = TimmAutoAugment("rand-m10-n1-inc1", mean=[0.5, 0.25, 0.0])
    assert op.fill == (128, 64, 0)
    rotated = _timm("Rotate", 1.0, Image.fromarray(img), fill=op.fill)
    assert tuple(np.asarray(rotated)[0, 0]) == (128, 64, 0)  # a corner the rotation uncovers
    rng = np.random.default_rng(1)
    assert TimmAutoAugment("rand-m9", prob=0.0)(img, rng) is img
    assert TimmAutoAugment(None)(img, rng) is img  # FasterNet's config_str: null


def test_each_rand_op_applies_with_probability_one_half():
    # one layer of an op that always changes this image: half of the draws leave it as it was
    img = np.random.default_rng(2).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    op = TimmAutoAugment("rand-m10-n1-inc1")
    op.ops = ("Invert",)
    rng = np.random.default_rng(3)
    unchanged = sum(np.array_equal(op(img, rng), img) for _ in range(2000))
    assert abs(unchanged / 2000 - 0.5) < 0.04


def test_rand_augment_v2_ranges_differ_from_rand_augment():
    img = _dot_image()
    v2 = RandAugmentV2(num_layers=1, magnitude=5)
    # translations in pixels: 100 x 0.5 = 50 px, not a fraction of the width
    (x, y), = _bright_pixels(RandAugmentV2.ops["translateX"](v2, img, _Sign(1)))
    assert (x, y) == (2, 32)
    # colour factors 0.1 + 1.8 x level: at magnitude 0 the colour op greys the image almost completely
    colourful = Image.fromarray(np.array([[[255, 0, 0]]], dtype=np.uint8).repeat(8, 0).repeat(8, 1))
    grey = np.asarray(RandAugmentV2.ops["color"](RandAugmentV2(magnitude=0), colourful, None)).astype(int)
    assert grey[0, 0, 0] - grey[0, 0, 1] < 0.15 * 255
    # cutout: a square of half side 40 x 0.5 = 20 around a drawn centre, filled with fillcolor[0]
    white = Image.fromarray(np.full((100, 100, 3), 255, dtype=np.uint8))
    cut = np.asarray(RandAugmentV2.ops["cutout"](RandAugmentV2(magnitude=5, fillcolor=7), white, _Sign(50)))
    assert (cut[30:70, 30:70] == 7).all() and (cut[:30] == 255).all() and (cut[70:] == 255).all()
    with pytest.raises(PclsError, match="progressive training"):
        RandAugmentV2(progress_magnitude=[5, 15])


def test_rand_augment_v3_posterize_solarize_and_black_fill():
    ramp = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2))
    v3 = RandAugmentV3(magnitude=10)
    assert np.array_equal(np.asarray(RandAugmentV3.ops["posterize"](v3, ramp, None)), np.asarray(ramp) & 0xF0)
    solarized = np.asarray(RandAugmentV3.ops["solarize"](v3, ramp, None))[:, :, 0].ravel()
    assert np.array_equal(solarized, 255 - np.arange(256))  # threshold 255 x (1 - 1) = 0: everything inverted
    img = Image.fromarray(np.full((30, 30, 3), 200, dtype=np.uint8))
    shifted = np.asarray(RandAugmentV3.ops["translateX"](v3, img, _Sign(1)))
    assert (shifted[:, -5:] == 0).all()  # uncovered columns are black (MobileViTV2's fill)


def test_pipeline_runs_every_policy_on_uint8_images():
    img = np.random.default_rng(4).integers(0, 256, (48, 56, 3), dtype=np.uint8)
    for params in ({"TimmAutoAugment": {"config_str": "rand-m9-mstd0.5-inc1", "interpolation": "random"}},
                   {"TimmAutoAugment": {"config_str": "v0r-mstd0.5"}}, {"RandAugmentV2": {"magnitude": 1}},
                   {"RandAugmentV3": {"num_layers": 3}}):
        pipeline = build_transforms([params])
        for seed in range(25):
            out = pipeline(img, np.random.default_rng(seed))
            assert out.shape == img.shape and out.dtype == np.uint8
    with pytest.raises(PclsError, match="before NormalizeImage"):
        build_transforms([{"NormalizeImage": {}}, {"TimmAutoAugment": {}}])(img, np.random.default_rng(0))


def test_crop_image_at_ratio_takes_the_centre_square_then_resizes():
    img = np.random.default_rng(5).integers(0, 256, (100, 200, 3), dtype=np.uint8)
    out = build_transforms([{"CropImageAtRatio": {"size": 32, "pad": 8}}])(img)
    side = int(32 / 40 * 100)  # 80 of the short side
    expected = cv2.resize(img[10:90, 60:140], (32, 32), interpolation=cv2.INTER_LINEAR)
    assert side == 80 and np.array_equal(out, expected)


def test_arithmetic_and_literal_strings_in_operator_arguments_are_evaluated():
    erasing, = build_transforms([{"RandomErasing": {"sh": "1.0/3.0", "r1": "0.3", "mean": ["0.", "0.", "0."],
                                                    "attempt": "10"}}]).ops
    assert erasing.sh == pytest.approx(1 / 3) and erasing.mean == [0.0, 0.0, 0.0] and erasing.attempt == 10
    crop, = build_transforms([{"RandCropImage": {"size": "2*112", "interpolation": "bicubic"}}]).ops
    assert crop.size == (224, 224) and crop.resize.interp == "bicubic"  # other strings stay strings
    timm, = build_transforms([{"TimmAutoAugment": {"config_str": "None"}}]).ops
    assert timm.policy is None
    sampler, = build_batch_transforms([{"OpSampler": {"MixupOperator": {"alpha": "4/5", "prob": "0.5"}}}], 10).ops
    assert sampler.ops[0].alpha == pytest.approx(0.8)


def _jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_pil_backend_decodes_with_pillow_and_keeps_the_size_check(monkeypatch):
    rgb = np.random.default_rng(6).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    data = _jpeg(rgb)
    pillow = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    decoded = build_transforms([{"DecodeImage": {"backend": "pil", "to_rgb": True}}])(data)
    assert np.array_equal(decoded, pillow)
    bgr = build_transforms([{"DecodeImage": {"backend": "pil", "to_rgb": False}}])(data)
    assert np.array_equal(bgr, pillow[:, :, ::-1])
    grey = io.BytesIO()
    Image.fromarray(rgb[:, :, 0]).save(grey, "PNG")
    assert build_transforms([{"DecodeImage": {"backend": "pil"}}])(grey.getvalue()).shape == (30, 40, 3)
    monkeypatch.setenv("PCLS_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ImageTooLarge):
        build_transforms([{"DecodeImage": {"backend": "pil"}}])(data)
    with pytest.raises(PclsError, match="backend 'turbo'"):
        build_transforms([{"DecodeImage": {"backend": "turbo"}}])
