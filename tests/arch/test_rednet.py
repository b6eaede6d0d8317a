"""RedNet's involution against a direct per-pixel evaluation of its definition, and a RedNet without a
reference fixture (the weights rule overflows it: the generated kernels grow activations quadratically per
block when BatchNorm does not normalise) giving a finite loss and gradients in a training step."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")


def _involution_by_definition(x, kernels, kernel_size, stride, group_channels):
    """out[n, c, i, j] = sum_{u,v} K[n, c // G, u*k+v, i, j] * xpad[n, c, i*s + u, j*s + v]."""
    n, c, h, w = x.shape
    pad = (kernel_size - 1) // 2
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = kernels.shape[-2:]
    out = np.zeros((n, c, oh, ow), dtype="float64")
    for ch in range(c):
        g = ch // group_channels
        for i in range(oh):
            for j in range(ow):
                window = xp[:, ch, i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size]
                out[:, ch, i, j] = (kernels[:, g, :, i, j] * window.reshape(n, -1)).sum(axis=1)
    return out


@pytest.mark.parametrize("stride", [1, 2])
def test_involution_matches_its_definition(stride):
    from pcls.arch.rednet import Involution

    paddle.seed(1)
    layer = Involution(32, kernel_size=3, stride=stride)
    layer.eval()
    x = np.random.default_rng(0).standard_normal((2, 32, 8, 8)).astype("float32")
    xt = paddle.to_tensor(x)
    with paddle.no_grad():
        out = layer(xt).numpy()
        pooled = paddle.nn.functional.avg_pool2d(xt, stride, stride) if stride > 1 else xt
        kernels = layer.conv2(layer.conv1(pooled)).numpy()
    kernels = kernels.reshape(2, 2, 9, *kernels.shape[-2:])  # 32 channels = 2 groups of 16
    expected = _involution_by_definition(x.astype("float64"), kernels, 3, stride, 16)
    assert out.shape == expected.shape == (2, 32, 4 if stride == 2 else 8, 4 if stride == 2 else 8)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_rednet26_training_step_is_finite():
    import pcls

    paddle.seed(0)
    model = pcls.create_model("RedNet26", class_num=10)
    model.train()
    logits = model(paddle.randn([2, 3, 64, 64]))
    loss = paddle.nn.functional.cross_entropy(logits, paddle.to_tensor([1, 7]))
    loss.backward()
    assert logits.shape == [2, 10] and np.isfinite(float(loss))
    grad = model.stem[1].conv2.conv.weight.grad
    assert grad is not None and np.isfinite(grad.numpy()).all()
