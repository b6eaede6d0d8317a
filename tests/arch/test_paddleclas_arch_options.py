"""Arch options PaddleClas 2.6's own configs pass to its constructors: TinyNet's (EfficientNet's)
`override_params`, StarNet's `drop_rate: 0`, and numbers written as YAML strings (`layer_scale_init_value: 1e-6`)."""

import pytest

from pcls.errors import PclsError

paddle = pytest.importorskip("paddle")


def _blocks(model):
    return len(model._ef._block_list)


def _batch_norms(model):
    return [layer for layer in model.sublayers() if isinstance(layer, paddle.nn.BatchNorm2D)]


def test_tinynet_override_params_set_bn_and_depth_rounding():
    import pcls

    with paddle.LazyGuard():
        default = pcls.create_model("TinyNet_E", class_num=10)
        tuned = pcls.create_model("TinyNet_E", class_num=10, override_params={
            "batch_norm_momentum": 0.9, "batch_norm_epsilon": "1e-5", "depth_trunc": "round",
            "drop_connect_rate": 0.0})
    # depth 0.6 x B0's repeats (1, 2, 2, 3, 3, 4, 1): ceil -> 1+2+2+2+2+3+1, round (at least 1) -> 1+1+1+2+2+2+1
    assert (_blocks(default), _blocks(tuned)) == (13, 10)
    assert {(bn._momentum, bn._epsilon) for bn in _batch_norms(default)} == {(0.99, 1e-3)}
    assert {(bn._momentum, bn._epsilon) for bn in _batch_norms(tuned)} == {(0.9, 1e-5)}
    assert any(block.drop_path is not None for block in default._ef._block_list)  # drop_connect_rate 0.2
    assert all(block.drop_path is None for block in tuned._ef._block_list)
    with pytest.raises(PclsError, match="width_coefficient not supported"):
        pcls.create_model("TinyNet_E", override_params={"width_coefficient": 1.0})
    with pytest.raises(PclsError, match="depth_trunc must be 'ceil' or 'round'"):
        pcls.create_model("TinyNet_E", override_params={"depth_trunc": "floor"})


def test_starnet_takes_drop_rate_zero_only():
    import pcls

    with paddle.LazyGuard():
        pcls.create_model("StarNet_S1", class_num=10, drop_rate=0)
    with pytest.raises(PclsError, match="no head dropout"):
        pcls.create_model("StarNet_S1", class_num=10, drop_rate=0.1)


def test_arch_strings_are_evaluated_before_the_constructor():
    from pcls.engine.backbone import build_backbone

    model = build_backbone({"name": "ConvNeXt_tiny", "class_num": 10, "layer_scale_init_value": "1e-6",
                            "drop_path_rate": "0.1", "head_init_scale": "1.0"})
    gammas = [p for name, p in model.named_parameters() if name.endswith("gamma")]
    assert gammas and float(gammas[0].numpy()[0]) == pytest.approx(1e-6)
