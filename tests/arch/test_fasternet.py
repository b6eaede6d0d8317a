"""FasterNet's partial convolution: only the first 1/n_div of the channels are convolved, the rest pass
through bit for bit; the variants' activations and drop-path defaults follow the paper."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")


def test_partial_conv_touches_only_the_first_quarter():
    from pcls.arch.fasternet import PartialConv

    paddle.seed(0)
    layer = PartialConv(16, n_div=4)
    x = paddle.randn([2, 16, 5, 5])
    with paddle.no_grad():
        out = layer(x)
        expected_head = layer.partial_conv3(x[:, :4])
    np.testing.assert_array_equal(out.numpy()[:, 4:], x.numpy()[:, 4:])
    np.testing.assert_allclose(out.numpy()[:, :4], expected_head.numpy(), rtol=1e-6)
    assert float((out[:, :4] - x[:, :4]).abs().max()) > 0


@pytest.mark.parametrize("name,act", [("FasterNet_T0", paddle.nn.GELU), ("FasterNet_T2", paddle.nn.ReLU)])
def test_variant_activation_and_options(name, act):
    import pcls

    with paddle.LazyGuard():
        model = pcls.create_model(name, class_num=10, drop_path_rate=0.2, use_ssld=False)
    assert isinstance(model.avgpool_pre_head[2], act)
    rates = [block.drop_path.drop_prob for stage in model.stages[::2] for block in stage.blocks]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2)
