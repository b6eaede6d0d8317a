"""Mobile families (MobileNetV1/V2/V3, PP-LCNet, MixNet, ReXNet, EfficientNet): padding modes, channel
rounding, dropout behaviour and head options. Keys/shapes and reference logits live in
test_reference_contract.py."""

import re

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

import pcls  # noqa: E402
from pcls.errors import PclsError  # noqa: E402
from pcls.arch.efficientnet import conv_padding, same_padding  # noqa: E402
from pcls.arch.layers.channels import make_divisible  # noqa: E402
from pcls.arch.mixnet import split_channels  # noqa: E402
from pcls.arch.rexnet import LinearBottleneck  # noqa: E402
from tests.reference import fill_weights  # noqa: E402


def _image(size, batch=1, seed=0):
    return paddle.to_tensor(np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype("float32"))


def _convs(model):
    return {name: layer for name, layer in model.named_sublayers() if isinstance(layer, paddle.nn.Conv2D)}


# -- channel rounding -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [(5.6, 8), (25.2, 24), (42.0, 40), (84.0, 88), (336.0, 336), (10.0, 16), (3.0, 8), (1280 * 1.4, 1792)],
)
def test_make_divisible_rounds_to_nearest_multiple_of_8_never_below_90_percent(value, expected):
    assert make_divisible(value) == expected


@pytest.mark.parametrize("name", ["MobileNetV3_large_x0_35", "MobileNetV3_small_x0_75", "PPLCNet_x0_35", "MixNet_L"])
def test_scaled_models_have_conv_widths_that_are_multiples_of_8(name):
    with paddle.LazyGuard():
        model = pcls.create_model(name)
    widths = {}
    for conv_name, conv in _convs(model).items():
        # SE reductions (channels // 4 or // 12) and MixNet's per-kernel splits are not rounded in the reference
        if re.search(r"(^|\.)(mid_)?se\.|\.conv\.\d+$", conv_name):
            continue
        widths[conv_name] = conv._out_channels
    assert len(widths) > 10
    odd = {k: v for k, v in widths.items() if v % 8}
    assert not odd, odd


def test_mobilenet_v3_scale_follows_the_rounding_rule():
    with paddle.LazyGuard():
        model = pcls.create_model("MobileNetV3_large_x0_35")
    # 16 * 0.35 = 5.6 -> 8 ; 0.35 * 72 = 25.2 -> 24 ; 0.35 * 120 = 42 -> 40 ; 0.35 * 960 = 336
    assert model.conv.conv._out_channels == 8
    assert model.blocks[3].expand_conv.conv._out_channels == 24
    assert model.blocks[4].expand_conv.conv._out_channels == 40
    assert model.last_second_conv.conv._out_channels == 336


def test_mixnet_splits_channels_with_remainder_on_the_first_group():
    assert split_channels(10, 3) == [4, 3, 3]
    assert split_channels(96, 2) == [48, 48]


# -- EfficientNet padding -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, kernel, stride, expected",
    [
        (224, 3, 2, [0, 2, 0, 2]),  # even map, stride 2: less padding on top/left
        (56, 5, 2, [1, 3, 1, 3]),
        (15, 5, 2, [2, 2, 2, 2]),  # odd map: symmetric
        (112, 3, 1, [1, 1, 1, 1]),  # stride 1: symmetric
        (14, 1, 1, [0, 0, 0, 0]),
    ],
)
def test_same_padding_values(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected


def test_same_padding_matches_the_pad_then_crop_formulation():
    """The reference pads top+stride symmetrically and drops the first output row/column."""
    rng = np.random.default_rng(1)
    x = paddle.to_tensor(rng.standard_normal((1, 2, 16, 16)).astype("float32"))
    w = paddle.to_tensor(rng.standard_normal((2, 1, 5, 5)).astype("float32"))
    ours = paddle.nn.functional.conv2d(x, w, stride=2, padding=same_padding(16, 5, 2), groups=2)
    cropped = paddle.nn.functional.conv2d(x, w, stride=2, padding=1 + 2, groups=2)[:, :, 1:, 1:]
    assert ours.shape == cropped.shape == [1, 2, 8, 8]
    np.testing.assert_allclose(ours.numpy(), cropped.numpy(), rtol=1e-5, atol=1e-5)


def test_dynamic_padding_is_symmetric():
    assert conv_padding("DYNAMIC", 224, 3, 2) == 1
    assert conv_padding("DYNAMIC", 224, 5, 2) == 2
    assert conv_padding("DYNAMIC", 224, 5, 1) == 2
    with pytest.raises(PclsError, match="padding_type"):
        pcls.create_model("EfficientNetB0", padding_type="SAMEISH")


def test_efficientnet_same_and_dynamic_padding_differ_only_in_stride_2_convs_and_run_on_odd_sizes():
    paddle.seed(0)
    same = pcls.create_model("EfficientNetB0", padding_type="SAME")
    dynamic = pcls.create_model("EfficientNetB0", padding_type="DYNAMIC")
    fill_weights(same)  # weights of a realistic scale, so that padding differences show in the features
    dynamic.set_state_dict(same.state_dict())
    same_convs, dynamic_convs = _convs(same), _convs(dynamic)
    assert same_convs.keys() == dynamic_convs.keys()
    differing = {name for name, conv in same_convs.items()
                 if conv._updated_padding != dynamic_convs[name]._updated_padding}
    strided = {name for name, conv in same_convs.items() if conv._stride[0] == 2}
    # B0 at 224: every stride-2 conv sees an even map, so exactly those pad asymmetrically
    assert differing == strided and len(strided) == 5
    same.eval()
    dynamic.eval()
    x = _image(65)  # odd size: both modes must still produce maps of the same sizes
    with paddle.no_grad():
        f_same, f_dynamic = same.forward_features(x), dynamic.forward_features(x)
        assert f_same.shape == f_dynamic.shape == [1, 1280, 3, 3]
        assert same(x).shape == [1, 1000]
    difference = np.abs(f_same.numpy() - f_dynamic.numpy()).max()
    assert difference > 1e-2 * np.abs(f_same.numpy()).max()


def test_efficientnet_b0_small_defaults_to_dynamic_padding_and_no_se():
    with paddle.LazyGuard():
        model = pcls.create_model("EfficientNetB0_small")
    assert not any("_se" in key for key in model.state_dict())
    stem = model._ef._conv_stem._conv._conv._conv
    assert stem._updated_padding == [1, 1]


# -- dropout / drop-connect -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, options",
    [
        ("MobileNetV3_small_x0_35", dict(dropout_prob=0.5)),
        ("PPLCNet_x0_25", dict(dropout_prob=0.5)),
        ("ReXNet_1_0", dict(dropout_ratio=0.5)),
        ("EfficientNetB0_small", dict(dropout_prob=0.5, drop_connect_rate=0.5)),
    ],
)
def test_dropout_is_random_in_train_and_inactive_in_eval(name, options):
    paddle.seed(0)
    model = pcls.create_model(name, class_num=10, **options)
    x = _image(32, batch=2)
    model.train()
    assert not np.allclose(model(x).numpy(), model(x).numpy())
    model.eval()
    with paddle.no_grad():
        np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())


def test_mobilenet_v3_dropout_scales_at_inference_like_the_reference():
    """'downscale_in_infer': eval multiplies the fc input by 1 - p (pretrained weights expect it)."""
    paddle.seed(0)
    with_dropout = pcls.create_model("MobileNetV3_small_x0_35", class_num=10, dropout_prob=0.2)
    without = pcls.create_model("MobileNetV3_small_x0_35", class_num=10, dropout_prob=None)
    without.set_state_dict(with_dropout.state_dict())
    with_dropout.eval()
    without.eval()
    x = _image(32)
    bias = with_dropout.fc.bias.numpy()
    with paddle.no_grad():
        scaled, plain = with_dropout(x).numpy(), without(x).numpy()
    np.testing.assert_allclose(scaled - bias, 0.8 * (plain - bias), rtol=1e-4, atol=1e-5)


# -- heads and options ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["PPLCNet_x0_25", "MobileNetV3_small_x0_35"])
def test_use_last_conv_false_feeds_pooled_features_to_fc(name):
    with paddle.LazyGuard():
        model = pcls.create_model(name, class_num=7, use_last_conv=False)
    keys = model.state_dict()
    assert not any(key.startswith("last_conv") for key in keys)
    in_features = 128 if name.startswith("PPLCNet") else 200  # 512 * 0.25 ; make_divisible(576 * 0.35)
    assert tuple(keys["fc.weight"].shape) == (in_features, 7)


@pytest.mark.parametrize("name", ["PPLCNet_x0_25", "MobileNetV3_small_x0_35"])
def test_class_expand_sets_the_last_conv_width(name):
    with paddle.LazyGuard():
        model = pcls.create_model(name, class_expand=640)
    assert tuple(model.state_dict()["fc.weight"].shape) == (640, 1000)


@pytest.mark.parametrize(
    "name", ["MobileNetV1_x0_25", "MobileNetV2_x0_25", "MixNet_S", "ReXNet_1_0", "PPLCNet_x0_25"]
)
def test_class_num_sets_the_output_width(name):
    paddle.seed(0)
    model = pcls.create_model(name, class_num=5)
    model.eval()
    with paddle.no_grad():
        assert model(_image(32)).shape == [1, 5]


def test_rexnet_shortcut_is_added_to_the_first_input_channels_only():
    paddle.seed(0)
    block = LinearBottleneck(8, 12, expansion=6, stride=1, use_se=True)
    block.eval()
    x = _image(8)[:, :1].tile([1, 8, 1, 1])
    with paddle.no_grad():
        branch, out = block.out(x).numpy(), block(x).numpy()
    np.testing.assert_allclose(out[:, :8], branch[:, :8] + x.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out[:, 8:], branch[:, 8:])


def test_pplcnet_lr_mult_list_sets_per_stage_learning_rates():
    with paddle.LazyGuard():
        model = pcls.create_model("PPLCNet_x0_25", lr_mult_list=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert model.conv1.conv.weight.optimize_attr["learning_rate"] == 0.0
    assert model.blocks3[0].dw_conv.bn.weight.optimize_attr["learning_rate"] == 0.2
    assert model.blocks6[1].se.conv1.weight.optimize_attr["learning_rate"] == 0.5
    assert model.fc.weight.optimize_attr["learning_rate"] == 1.0
    with pytest.raises(PclsError, match="lr_mult_list"):
        pcls.create_model("PPLCNet_x0_25", lr_mult_list=[1.0, 1.0])


def test_rexnet_conv_classifier_can_be_reset():
    paddle.seed(0)
    model = pcls.create_model("ReXNet_1_0")
    model.reset_classifier(3)
    model.eval()
    assert tuple(model.state_dict()["output.1.weight"].shape) == (3, 1280, 1, 1)
    with paddle.no_grad():
        assert model(_image(32)).shape == [1, 3]
