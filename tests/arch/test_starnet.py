"""StarNet's block multiplies its two 1x1 branches element-wise (the "star" operation) and keeps the input as
a residual; the drop-path option reaches every block."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")


def test_star_block_multiplies_the_two_branches():
    from pcls.arch.starnet import StarBlock

    paddle.seed(0)
    block = StarBlock(8, mlp_ratio=2)
    block.eval()
    x = paddle.randn([1, 8, 5, 5])
    with paddle.no_grad():
        y = block.dwconv(x)
        star = paddle.clip(block.f1(y), 0, 6) * block.f2(y)
        expected = x + block.dwconv2(block.g(star))
        np.testing.assert_allclose(block(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
        # with f2 silenced the branch is only the biases' path: the product really gates it
        block.f2.conv.weight.set_value(paddle.zeros_like(block.f2.conv.weight))
        block.f2.conv.bias.set_value(paddle.zeros_like(block.f2.conv.bias))
        np.testing.assert_allclose(block(x).numpy(), (x + block.dwconv2(block.g(star * 0))).numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_drop_path_option_reaches_every_block():
    import pcls

    with paddle.LazyGuard():
        model = pcls.create_model("StarNet_S1", class_num=10, drop_path_rate=0.1, use_ssld=True)
    rates = [layer.drop_path.drop_prob for stage in model.stages for layer in list(stage)[1:]]
    assert len(rates) == 2 + 2 + 8 + 3 and rates[0] == 0.0 and rates[-1] == pytest.approx(0.1)
