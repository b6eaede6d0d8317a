"""GhostNet's ghost module (half the channels from a 1x1 conv, the other half from a cheap depthwise conv on
them) and its SE gate, which clips to [0, 1] instead of a sigmoid."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")


def test_ghost_module_first_half_is_the_primary_conv():
    from pcls.arch.ghostnet import GhostModule

    paddle.seed(0)
    module = GhostModule(8, 12, relu=True)
    module.eval()
    x = paddle.randn([1, 8, 6, 6])
    with paddle.no_grad():
        out = module(x)
        primary = module.primary_conv(x)
    assert out.shape == [1, 12, 6, 6]
    np.testing.assert_array_equal(out.numpy()[:, :6], primary.numpy())
    np.testing.assert_allclose(out.numpy()[:, 6:], module.cheap_operation(primary).numpy(), rtol=1e-6)


def test_se_gate_clips_to_unit_interval():
    from pcls.arch.ghostnet import GhostBottleneck

    block = GhostBottleneck(16, 32, 16, 3, 1, use_se=True)
    se = block.se_block
    with paddle.no_grad():
        se.excitation.bias.set_value(paddle.full([32], 5.0))  # gate input >> 1: a sigmoid would give < 1
        se.excitation.weight.set_value(paddle.zeros([8, 32]))
        x = paddle.ones([1, 32, 2, 2])
        np.testing.assert_array_equal(se(x).numpy(), x.numpy())
        se.excitation.bias.set_value(paddle.full([32], -5.0))
        assert float(se(x).abs().max()) == 0.0


@pytest.mark.parametrize("name,last", [("GhostNet_x0_5", 480), ("GhostNet_x1_3", 1248)])
def test_width_scaling(name, last):
    import pcls

    model = pcls.create_model(name, class_num=3)
    model.eval()
    features = model.forward_features(paddle.randn([1, 3, 64, 64]))
    assert features.shape == [1, last, 2, 2] and model.forward_head(features).shape == [1, 3]
