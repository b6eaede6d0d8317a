"""ConvNeXt: the channels-first LayerNorm of the stem and downsampling layers normalises each pixel's channel
vector, the per-block layer scale and drop-path schedule follow the options, and the 384 variants are the
224 architecture (same keys), published with weights trained at 384."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")


def test_layernorm2d_normalises_each_pixel_over_channels():
    from pcls.arch.layers.norm2d import LayerNorm2D

    norm = LayerNorm2D(6, epsilon=1e-6)
    rng = np.random.default_rng(0)
    weight, bias = rng.uniform(0.5, 1.5, 6).astype("float32"), rng.standard_normal(6).astype("float32")
    norm.weight.set_value(weight)
    norm.bias.set_value(bias)
    x = rng.standard_normal((2, 6, 3, 4)).astype("float32") * 5 + 2
    mean = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-6) * weight[None, :, None, None] + bias[None, :, None, None]
    np.testing.assert_allclose(norm(paddle.to_tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_options_layer_scale_and_drop_path_schedule():
    import pcls

    with paddle.LazyGuard():
        model = pcls.create_model("ConvNeXt_tiny", class_num=10, drop_path_rate=0.3, layer_scale_init_value=0.0,
                                  use_ssld=True)
    assert not [k for k in model.state_dict() if k.endswith("gamma")]
    rates = [block.drop_path.drop_prob for stage in model.stages for block in stage]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.3) and rates == sorted(rates)


def test_384_variant_is_the_224_architecture_at_384():
    import pcls

    with paddle.LazyGuard():
        keys_224 = {k: tuple(v.shape) for k, v in pcls.create_model("ConvNeXt_base_224").state_dict().items()}
        keys_384 = {k: tuple(v.shape) for k, v in pcls.create_model("ConvNeXt_base_384").state_dict().items()}
    assert keys_224 == keys_384
