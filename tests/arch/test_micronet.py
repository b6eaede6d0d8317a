"""MicroNet's Dynamic Shift-Max mixes every channel with its partner in the next group (one position further
inside it), and its classifier ends with a BatchNorm1D that a new class count must resize too."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")


def test_dynamic_shift_max_mixes_each_channel_with_its_partner():
    from pcls.arch.micronet import DYShiftMax

    groups, per_group = 3, 4
    layer = DYShiftMax(groups * per_group, reduction=4, init_a=(1.0, 1.0), init_b=(0.0, 0.0), groups=groups,
                       two_mixes=False)
    layer.eval()
    channels = groups * per_group
    last = layer.fc[2]
    # a zero last layer with these biases fixes the coefficients: hard-sigmoid(0) = 0.5 -> a = 0 + init 1;
    # hard-sigmoid(3) = 1 -> b = (1 - 0.5) * 2 * act_max = 2
    last.weight.set_value(np.zeros(last.weight.shape, "float32"))
    last.bias.set_value(np.concatenate([np.zeros(channels), np.full(channels, 3.0)]).astype("float32"))
    x = np.random.default_rng(0).standard_normal((2, channels, 3, 3)).astype("float32")
    partner = [((i + 1) % groups) * per_group + (j + 1) % per_group for i in range(groups) for j in range(per_group)]
    with paddle.no_grad():
        out = layer(paddle.to_tensor(x)).numpy()
    np.testing.assert_allclose(out, x + 2.0 * x[:, partner], rtol=1e-5, atol=1e-6)


def test_reset_classifier_resizes_the_final_batchnorm():
    import pcls

    model = pcls.create_model("MicroNet_M0", class_num=1000, dropout_prob=0.0, use_ssld=True)
    model.reset_classifier(7)
    assert model.classifier[2].linear[1].weight.shape == [7]
    model.eval()
    with paddle.no_grad():
        assert model(paddle.randn([2, 3, 64, 64])).shape == [2, 7]
