"""Golden tests of the deterministic operators: expected values derived by hand from each definition."""

import numpy as np
import pytest

from pcls.data.transforms import build_transforms, parse_number
from pcls.data.transforms.basic import (
    CropImage,
    DecodeError,
    DecodeImage,
    NormalizeImage,
    Pad,
    RandCropImage,
    RandFlipImage,
    ResizeImage,
    ToCHWImage,
)
from pcls.data.transforms.masking import Cutout, GridMask, HideAndSeek, RandomErasing
from pcls.errors import PclsError
from tests.data.conftest import ScriptedRng


def grid(h, w, c=3):
    """img[y, x, ch] = 100*y + 10*x + ch: every value says where it came from."""
    y, x, ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    return (100 * y + 10 * x + ch).astype(np.int64)


def test_decode_bgr_to_rgb_and_channel_first(jpeg_bytes):
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 20, 30  # B, G, R
    rgb = DecodeImage(to_rgb=True)(jpeg_bytes(bgr))
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [30, 20, 10]
    assert DecodeImage(to_rgb=False)(jpeg_bytes(bgr))[0, 0].tolist() == [10, 20, 30]
    chw = DecodeImage(to_rgb=True, channel_first=True)(jpeg_bytes(bgr))
    assert chw.shape == (3, 2, 3) and chw[:, 1, 2].tolist() == [30, 20, 10]


def test_decode_garbage_raises_decode_error():
    with pytest.raises(DecodeError):
        DecodeImage()(b"definitely not an image")
    with pytest.raises(DecodeError):
        DecodeImage()(b"")


def test_resize_short_keeps_aspect_with_round():
    img = np.zeros((200, 300, 3), np.uint8)  # h=200, w=300
    assert ResizeImage(resize_short=100)(img).shape == (100, 150, 3)
    # 333x250 (w x h) -> short side 256: w = round(333 * 256/250) = round(340.992) = 341
    assert ResizeImage(resize_short=256)(np.zeros((250, 333, 3), np.uint8)).shape == (256, 341, 3)
    # size is [w, h]
    assert ResizeImage(size=[40, 30])(img).shape == (30, 40, 3)
    assert ResizeImage(size=32)(img).shape == (32, 32, 3)


def test_resize_nearest_picks_floor_of_scaled_index():
    img = grid(4, 4).astype(np.uint8)
    out = ResizeImage(size=2, interpolation="nearest")(img)
    # nearest with scale 2: dst (y, x) <- src (2y, 2x)
    assert out[..., 0].tolist() == [[0, 20], [200 % 256, 220 % 256]]


def test_resize_bilinear_on_a_ramp_uses_half_pixel_centres():
    ramp = np.tile((np.arange(8) * 10).astype(np.uint8)[None, :, None], (2, 1, 3))  # f(x) = 10x, width 8
    out = ResizeImage(size=[4, 2], interpolation="bilinear")(ramp)
    # dst x samples src x = 2x + 0.5: f = 5, 25, 45, 65
    assert out[0, :, 0].tolist() == [5, 25, 45, 65]


@pytest.mark.parametrize("backend", ["cv2", "pil"])
def test_resize_backends_and_bad_interpolation(backend):
    img = np.full((10, 20, 3), 77, np.uint8)
    out = ResizeImage(size=[5, 4], interpolation="bicubic", backend=backend)(img)
    assert out.shape == (4, 5, 3) and (out == 77).all()
    with pytest.raises(PclsError, match="interpolation"):
        ResizeImage(size=5, interpolation="fancy", backend=backend)


def test_resize_needs_exactly_one_target():
    with pytest.raises(PclsError):
        ResizeImage()
    with pytest.raises(PclsError):
        ResizeImage(size=3, resize_short=4)


def test_center_crop_offsets():
    img = grid(5, 7)
    out = CropImage(size=3)(img)
    # x0 = (7 - 3) // 2 = 2, y0 = (5 - 3) // 2 = 1
    assert out[0, 0, 0] == 100 * 1 + 10 * 2
    assert out[2, 2, 0] == 100 * 3 + 10 * 4
    out = CropImage(size=[4, 2])(img)  # [w, h]
    assert out.shape == (2, 4, 3) and out[0, 0, 0] == 100 * 1 + 10 * 1
    with pytest.raises(PclsError, match="smaller than the crop"):
        CropImage(size=8)(img)


def test_eval_pipeline_resize_then_crop_shape():
    pipeline = build_transforms([{"ResizeImage": {"resize_short": 32}}, {"CropImage": {"size": 24}}])
    assert pipeline(np.zeros((60, 90, 3), np.uint8)).shape == (24, 24, 3)


def test_rand_crop_box_follows_the_single_draw_rule():
    op = RandCropImage(size=8, scale=[0.25, 1.0], ratio=[1.0, 4.0])
    # aspect 4 -> fw = 2, fh = 0.5; on 100x100 the bound is min(1/4, 1/0.25... ) = 0.25 -> area = 0.25
    # side = sqrt(10000 * 0.25) = 50 -> w = 100, h = 25; x0 in [0, 0], y0 drawn
    box = op.crop_box(100, 100, ScriptedRng(uniform=[4.0, 0.25], integers=[0, 30]))
    assert box == (0, 30, 100, 25)
    out = op(np.zeros((100, 100, 3), np.uint8), ScriptedRng(uniform=[1.0, 0.25], integers=[10, 20]))
    assert out.shape == (8, 8, 3)


def test_flip_codes():
    img = grid(2, 3)
    yes, no = ScriptedRng(integers=[1]), ScriptedRng(integers=[0])
    assert RandFlipImage(1)(img.astype(np.uint8), yes)[0, :, 0].tolist() == [20, 10, 0]
    assert RandFlipImage(1)(img, no) is img
    assert RandFlipImage(0)(img.astype(np.uint8), ScriptedRng(integers=[1]))[:, 0, 0].tolist() == [100, 0]


def test_normalize_matches_definition_hwc_and_chw():
    img = np.array([[[255, 0, 128], [10, 20, 30]]], np.uint8)  # 1x2x3
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    expected = (img.astype(np.float64) / 255.0 - np.array(mean)) / np.array(std)
    hwc = NormalizeImage(scale="1.0/255.0", mean=mean, std=std, order="")(img)
    assert hwc.dtype == np.float32 and hwc.shape == (1, 2, 3)
    np.testing.assert_allclose(hwc, expected, rtol=1e-6, atol=1e-6)
    chw = NormalizeImage(scale="1.0/255.0", mean=mean, std=std, order="chw")(img)
    assert chw.shape == (3, 1, 2)
    np.testing.assert_allclose(chw, expected.transpose(2, 0, 1), rtol=1e-6, atol=1e-6)
    # hand check of one value: (255/255 - 0.485) / 0.229 = 2.2489...
    assert abs(float(hwc[0, 0, 0]) - 2.24890829) < 1e-5


def test_normalize_fp16_and_fourth_channel():
    img = np.full((2, 2, 3), 255, np.uint8)
    out = NormalizeImage(scale=1 / 255, mean=[0, 0, 0], std=[1, 1, 1], order="chw", channel_num=4,
                         output_fp16=True)(img)
    assert out.dtype == np.float16 and out.shape == (4, 2, 2)
    assert out[:3].tolist() == np.ones((3, 2, 2)).tolist() and not out[3].any()


@pytest.mark.parametrize("text,value", [("1.0/255.0", 1 / 255), ("0.5", 0.5), (" 2*(3+1) ", 8.0), ("-1e-3", -0.001)])
def test_scale_strings_are_parsed_arithmetic(text, value):
    assert parse_number(text, "scale") == pytest.approx(value)


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "1/0", "abc", "2**10000", "[1]"])
def test_scale_strings_that_are_not_arithmetic_are_refused(text):
    with pytest.raises(PclsError, match="scale"):
        NormalizeImage(scale=text)


def test_to_chw_and_fused_pipeline_layout():
    img = grid(2, 3)
    assert ToCHWImage()(img)[2, 1, 0] == 100 + 2
    ops = [{"NormalizeImage": {"scale": 1, "mean": [0, 0, 0], "std": [1, 1, 1], "order": ""}},
           {"Cutout": {"n_holes": 0}}]
    fused = build_transforms(ops, to_chw=True)
    assert fused.output_layout == "chw" and not any(isinstance(op, ToCHWImage) for op in fused.ops)
    out = fused(img.astype(np.uint8), np.random.default_rng(0))
    assert out.shape == (3, 2, 3) and out[2, 1, 0] == 102
    plain = build_transforms(ops)
    assert plain.output_layout == "hwc" and plain(img.astype(np.uint8), None).shape == (2, 3, 3)
    # nothing to fuse into: a ToCHWImage is appended
    assert build_transforms([{"CropImage": {"size": 2}}], to_chw=True)(img.astype(np.uint8)).shape == (3, 2, 2)


def test_pad_modes():
    img = np.arange(4, dtype=np.uint8).reshape(2, 2, 1).repeat(3, axis=2)
    out = Pad(padding=[1, 0], fill=9)(img)  # left/right 1, top/bottom 0
    assert out[..., 0].tolist() == [[9, 0, 1, 9], [9, 2, 3, 9]]
    out = Pad(padding=1, padding_mode="edge")(img)
    assert out[..., 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    with pytest.raises(PclsError):
        Pad(padding=1, padding_mode="wrap")


def test_cutout_zeroes_the_clipped_square():
    img = np.ones((8, 8, 3), np.float32)
    out = Cutout(n_holes=1, length=4)(img, ScriptedRng(integers=[2, 3]))  # centre y=2, x=3
    # rows [max(2-2,0), min(2+2,8)) = [0,4); cols [1,5)
    expected = np.ones((8, 8), np.float32)
    expected[0:4, 1:5] = 0
    assert (out[..., 0] == expected).all() and (out[..., 2] == expected).all()
    # near a corner the square is clipped: centre (7, 0) -> rows [5, 8), cols [0, 2)
    out = Cutout(n_holes=1, length=4)(np.ones((8, 8, 3), np.float32), ScriptedRng(integers=[7, 0]))
    assert out[..., 0].sum() == 64 - 3 * 2


def test_cutout_in_chw_layout():
    op = Cutout(n_holes=1, length=2)
    op.bind_layout("chw")
    out = op(np.ones((3, 4, 4), np.float32), ScriptedRng(integers=[1, 1]))  # rows [0,2), cols [0,2)
    assert out[:, 0:2, 0:2].sum() == 0 and out.sum() == 3 * (16 - 4)


def test_gridmask_golden():
    # d = 4, band = ceil(4 * 0.5) = 2, offsets y=1, x=0, 6x6 image -> 9x9 grid (ceil(sqrt(72)) = 9).
    # Zero rows of the 9x9 grid: [1,3), [5,7); zero columns: [0,2), [4,6), [8,9).
    # Cropped at offset (9-6)//2 = 1: kept rows are 2,3 and kept columns 1,2,5 of the image.
    op = GridMask(d1=4, d2=5, rotate=1, ratio=0.5, mode=0, prob=1.0)
    out = op(np.ones((6, 6, 3), np.float32), ScriptedRng(random=[0.0], integers=[4, 1, 0, 0]))
    expected = np.zeros((6, 6))
    for r in (2, 3):
        for c in (1, 2, 5):
            expected[r, c] = 1
    assert (out[..., 1] == expected).all()
    inverse = GridMask(d1=4, d2=5, ratio=0.5, mode=1)(np.ones((6, 6, 3), np.float32),
                                                        ScriptedRng(random=[0.0], integers=[4, 1, 0, 0]))
    assert (inverse[..., 0] == 1 - expected).all()


def test_gridmask_skips_with_probability():
    img = np.ones((6, 6, 3), np.float32)
    assert GridMask(d1=4, d2=5, prob=0.5)(img, ScriptedRng(random=[0.9])) is img


def test_hide_and_seek_golden():
    img = np.ones((4, 4, 3), np.uint8)
    # grid size index 1 -> 2; cells in row-major order: hide when random() <= 0.5
    out = HideAndSeek(grid_sizes=[0, 2], hide_prob=0.5)(img, ScriptedRng(integers=[1], random=[0.1, 0.9, 0.9, 0.5]))
    assert out[..., 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]]


def test_random_erasing_golden_const_mean():
    img = np.zeros((10, 10, 3), np.float32)
    op = RandomErasing(EPSILON=1.0, sl=0.16, sh=0.16, r1=1.0, mean=[1.0, 2.0, 3.0])
    # area 16, aspect 1 -> 4x4 at (y0, x0) = (2, 5)
    out = op(img, ScriptedRng(random=[0.0], uniform=[0.16, 1.0], integers=[2, 5]))
    assert out[2:6, 5:9].tolist() == np.tile([1.0, 2.0, 3.0], (4, 4, 1)).tolist()
    assert out.sum() == 16 * 6


def test_normalize_then_to_chw_is_one_pass_with_the_same_values():
    img = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    ops = [{"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                               "order": ""}}, {"ToCHWImage": None}]
    folded = build_transforms(ops, to_chw=True)
    assert [type(op) for op in folded.ops] == [NormalizeImage] and folded.output_layout == "chw"
    expected = NormalizeImage(scale=1 / 255, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], order="")(img)
    np.testing.assert_array_equal(folded(img, None), expected.transpose(2, 0, 1))  # bit for bit
