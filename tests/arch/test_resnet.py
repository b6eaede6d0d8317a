"""ResNet-family options PaddleClas configs use: lr_mult_list, data_format, return_patterns/return_stages,
class_num, use_ssld; plus pcls.arch.measure on ResNet18."""

import numpy as np
import pytest

from tests.reference import fill_weights, trainable_params

paddle = pytest.importorskip("paddle")

import pcls  # noqa: E402
from pcls.errors import PclsError  # noqa: E402


def _lr(model) -> dict:
    return {name: p.optimize_attr["learning_rate"] for name, p in model.named_parameters()}


def _input(size=64, seed=0):
    return paddle.to_tensor(np.random.default_rng(seed).standard_normal((1, 3, size, size)).astype("float32"))


@pytest.mark.parametrize("name", ["ResNet18_vd", "ResNet50"])
def test_lr_mult_list_sets_stem_and_stage_multipliers(name):
    with paddle.LazyGuard():
        model = pcls.create_model(name, lr_mult_list=[0.1, 0.2, 0.3, 0.4, 0.5])
    lr = _lr(model)
    # stage s's first block index in the flat `blocks` list: cumulative depths
    depths = [2, 2, 2, 2] if name == "ResNet18_vd" else [3, 4, 6, 3]
    firsts = np.cumsum([0] + depths[:-1])
    assert lr["stem.0.conv.weight"] == 0.1 and lr["stem.0.bn.weight"] == 0.1 and lr["stem.0.bn.bias"] == 0.1
    for stage, (first, mult) in enumerate(zip(firsts, [0.2, 0.3, 0.4, 0.5])):
        block = f"blocks.{first}"
        assert lr[f"{block}.conv0.conv.weight"] == mult, stage
        assert lr[f"{block}.conv1.bn.bias"] == mult, stage
        assert lr[f"{block}.short.conv.weight"] == mult, stage
        assert lr[f"{block}.short.bn.weight"] == mult, stage
    assert lr["fc.weight"] == 1.0 and lr["fc.bias"] == 1.0


@pytest.mark.parametrize("bad", [[1.0, 1.0], [1.0] * 6, "0.1,0.2", [1, 1, 1, 1, "x"]])
def test_lr_mult_list_of_wrong_length_is_a_user_error(bad):
    with pytest.raises(PclsError, match="lr_mult_list"):
        pcls.create_model("ResNet50_vd", lr_mult_list=bad)


def test_bad_data_format_is_a_user_error():
    with pytest.raises(PclsError, match="data_format"):
        pcls.create_model("ResNet18", data_format="HWC")


@pytest.mark.parametrize("name", ["ResNet18_vd", "ResNet50", "SE_ResNet18_vd"])
def test_nhwc_and_nchw_give_the_same_logits(name):
    nchw = pcls.create_model(name, class_num=10)
    fill_weights(nchw)
    nhwc = pcls.create_model(name, class_num=10, data_format="NHWC", return_stages=[0])
    nhwc.set_state_dict(nchw.state_dict())
    nchw.eval()
    nhwc.eval()
    x = _input()  # both take NCHW input; the NHWC model transposes internally
    with paddle.no_grad():
        a, out = nchw(x).numpy(), nhwc(x)
    b = out["logits"].numpy()
    first_stage = out[nhwc.stage_paths[0]]
    assert first_stage.shape[1:3] == [16, 16] and first_stage.shape[3] in (64, 256)  # channels last inside
    assert a.shape == b.shape == (1, 10)
    assert np.abs(a - b).max() <= 1e-4 * max(1.0, np.abs(a).max())


def test_return_patterns_give_stage_outputs():
    stages = ["blocks.2", "blocks.6", "blocks.12", "blocks.15"]
    model = pcls.create_model("ResNet50", return_patterns=stages)
    model.eval()
    with paddle.no_grad():
        out = model(_input())
    assert set(out) == {"logits", *stages}
    assert out["logits"].shape == [1, 1000]
    shapes = [out[s].shape for s in stages]
    assert shapes == [[1, 256, 16, 16], [1, 512, 8, 8], [1, 1024, 4, 4], [1, 2048, 2, 2]]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("ResNet18", {"blocks.1": 64, "blocks.3": 128, "blocks.5": 256, "blocks.7": 512}),
        ("RegNetX_200MF", {"s1_b1": 24, "s2_b1": 56, "s3_b4": 152, "s4_b7": 368}),
    ],
)
def test_return_stages_names_the_last_block_of_each_stage(name, expected):
    model = pcls.create_model(name, return_stages=True)
    model.eval()
    with paddle.no_grad():
        out = model(_input())
    assert {k: v.shape[1] for k, v in out.items() if k != "logits"} == expected
    # strides 4, 8, 16, 32 on a 64x64 input
    assert [v.shape[2] for k, v in out.items() if k != "logits"] == [16, 8, 4, 2]


def test_unknown_return_pattern_is_a_user_error():
    with pytest.raises(PclsError, match="blocks.99"):
        pcls.create_model("ResNet18", return_patterns=["blocks.99"])


@pytest.mark.parametrize("name, fc", [("ResNet50_vd", "fc"), ("ResNeXt50_32x4d", "out"), ("Res2Net50_26w_4s", "out")])
def test_class_num_sets_the_classifier_shape(name, fc):
    with paddle.LazyGuard():
        model = pcls.create_model(name, class_num=7)
    state = model.state_dict()
    assert tuple(state[f"{fc}.weight"].shape) == (2048, 7)
    assert tuple(state[f"{fc}.bias"].shape) == (7,)
    assert model.classifier_prefixes() == [f"{fc}."]


def test_class_num_changes_the_logits():
    model = pcls.create_model("ResNet18", class_num=3)
    model.eval()
    with paddle.no_grad():
        assert model(_input(32)).shape == [1, 3]


def test_use_ssld_does_not_change_the_architecture():
    with paddle.LazyGuard():
        plain = pcls.create_model("ResNet50_vd")
        ssld = pcls.create_model("ResNet50_vd", use_ssld=True)
    assert {k: tuple(v.shape) for k, v in plain.state_dict().items()} == {
        k: tuple(v.shape) for k, v in ssld.state_dict().items()
    }
    assert ssld.use_ssld and not plain.use_ssld


def test_measure_resnet18_matches_the_catalog():
    from pcls.arch.measure import measure
    from pcls.zoo.catalog import get_entry

    result = measure("ResNet18")
    assert result["params"] == trainable_params("ResNet18")
    half_flops = get_entry("ResNet18")["flops_g"] * 1e9 / 2
    assert abs(result["macs"] - half_flops) <= 0.05 * half_flops


def test_return_patterns_win_over_return_stages_in_every_family():
    """PaddleClas's rule (PULC's configs set both): the named patterns are the taps, with or without stage taps of
    the family's own (ResNet has them, PPLCNet has none)."""
    for name, pattern in (("ResNet18", "blocks[3]"), ("PPLCNet_x0_25", "blocks3")):
        model = pcls.create_model(name, return_patterns=[pattern], return_stages=True)
        model.eval()
        with paddle.no_grad():
            out = model(_input())
        assert set(out) == {"logits", pattern.replace("[", ".").rstrip("]")}


def test_a_type_error_inside_a_backbone_is_not_taken_for_a_bad_option(monkeypatch):
    from pcls.arch.registry import BACKBONES

    def Faulty(class_num=1000, **kwargs):
        return None + class_num  # a bug in the family's code, whatever the options

    monkeypatch.setitem(BACKBONES._items, "Faulty", Faulty)
    with pytest.raises(TypeError, match="unsupported operand"):
        pcls.create_model("Faulty", return_patterns=["x"], return_stages=True)
    with pytest.raises(PclsError, match="bad option for backbone ResNet18: .*unexpected keyword argument 'wings'"):
        pcls.create_model("ResNet18", wings=2)
