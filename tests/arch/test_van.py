"""VAN behaviour beyond the reference fixtures: Large Kernel Attention's receptive field (5x5 depthwise, then
7x7 depthwise with dilation 3: 23x23), its gating by the input itself, and other input sizes."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from pcls.arch.van import VAN, LargeKernelAttention  # noqa: E402
from tests.arch.eval_checks import assert_runs_in_eval  # noqa: E402


def _changed(layer, size, pixel):
    layer.eval()
    x = np.random.default_rng(0).standard_normal((1, 2, size, size)).astype("float32")
    y = x.copy()
    y[0, :, pixel[0], pixel[1]] += 1.0
    with paddle.no_grad():
        a, b = layer(paddle.to_tensor(x)).numpy(), layer(paddle.to_tensor(y)).numpy()
    return np.abs(a - b).max(axis=1)[0] > 1e-6  # [H, W]


def test_large_kernel_attention_sees_a_23x23_neighbourhood():
    paddle.seed(0)  # fixed conv weights: no output in the field can cancel to ~0 by chance
    lka = LargeKernelAttention(2)
    moved = _changed(lka, 41, (20, 20))
    rows, cols = np.nonzero(moved)
    # 5x5 (reach 2) then 7x7 dilated by 3 (reach 9): every output within 11 of the pixel, none beyond
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (9, 31, 9, 31)


def test_large_kernel_attention_gates_the_input():
    lka = LargeKernelAttention(2)
    x = paddle.to_tensor(np.random.default_rng(1).standard_normal((1, 2, 9, 9)).astype("float32"))
    with paddle.no_grad():
        gate = lka.conv1(lka.conv_spatial(lka.conv0(x)))
        np.testing.assert_allclose(lka(x).numpy(), (x * gate).numpy(), rtol=1e-6)
        # a zero input gives a zero output whatever the (biased) gate is
        assert float(lka(paddle.zeros([1, 2, 9, 9])).abs().max()) == 0.0


@pytest.mark.parametrize("size", [64, 96])
def test_other_input_sizes_run_and_eval_is_deterministic(size):
    model = VAN(embed_dims=(8, 16, 24, 32), depths=(1, 1, 1, 1), class_num=10, drop_rate=0.1, drop_path_rate=0.2)
    assert_runs_in_eval(model, size, 10, seed=2)
