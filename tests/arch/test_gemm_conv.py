"""The batched-matrix-product convolution used for small maps in CPU training (pcls/arch/layers/gemm_conv.py):
same values and gradients as Paddle's conv2d, chosen only where it applies, invisible to the state dict."""

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from paddle import nn

from pcls.arch.layers import gemm_conv as gc


@pytest.mark.parametrize("in_ch, out_ch, kernel, stride, padding, dilation, height, width, bias", [
    (8, 16, 3, 1, 1, 1, 5, 6, True),
    (8, 16, 3, 2, 1, 1, 7, 8, False),
    (8, 16, 1, 2, 0, 1, 6, 5, True),     # strided 1x1 (ResNet's projection shortcut)
    (8, 16, 1, 1, 0, 1, 4, 4, False),
    (4, 6, 5, 1, 2, 1, 3, 3, True),
    (4, 6, 3, 1, 2, 2, 6, 7, False),     # dilated
    (4, 6, 7, 2, 3, 1, 9, 9, True),      # a stem-like 7x7/2
    (4, 6, (1, 3), 1, (0, 1), 1, 4, 5, True),  # rectangular kernel
])
def test_batched_conv_equals_paddles_conv_with_gradients(in_ch, out_ch, kernel, stride, padding, dilation, height,
                                                         width, bias):
    paddle.seed(3)
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    x = paddle.randn([3, in_ch, height, width])
    w = paddle.randn([out_ch, in_ch, kh, kw])
    b = paddle.randn([out_ch]) if bias else None
    for t in (x, w, b):
        if t is not None:
            t.stop_gradient = False
    expected = F.conv2d(x, w, b, stride, padding, dilation)
    got = gc.batched_conv2d(x, w, b, stride, padding, dilation)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-4)
    upstream = paddle.randn(expected.shape)
    inputs = [t for t in (x, w, b) if t is not None]
    for g_ref, g_new in zip(paddle.grad([expected], inputs, [upstream]), paddle.grad([got], inputs, [upstream])):
        np.testing.assert_allclose(g_new.numpy(), g_ref.numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("channels, kernel, stride, padding, height, bias", [
    (6, 3, 1, 1, 2, True), (6, 5, 1, 2, 1, False), (6, 5, 2, 2, 4, True), (6, 3, 2, 1, 3, False), (4, 3, 1, 1, 5, True),
])
def test_batched_depthwise_conv_equals_paddles_conv_with_gradients(channels, kernel, stride, padding, height, bias):
    paddle.seed(4)
    x = paddle.randn([3, channels, height, height])
    w = paddle.randn([channels, 1, kernel, kernel])
    b = paddle.randn([channels]) if bias else None
    inputs = [t for t in (x, w, b) if t is not None]
    for t in inputs:
        t.stop_gradient = False
    expected = F.conv2d(x, w, b, stride, padding, groups=channels)
    got = gc.batched_depthwise_conv2d(x, w, b, stride, padding, 1)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    upstream = paddle.randn(expected.shape)
    for g_ref, g_new in zip(paddle.grad([expected], inputs, [upstream]), paddle.grad([got], inputs, [upstream])):
        np.testing.assert_allclose(g_new.numpy(), g_ref.numpy(), rtol=1e-5, atol=1e-5)


def _net():
    return nn.Sequential(
        nn.Conv2D(3, 8, 3, padding=1),                               # switched
        nn.Conv2D(8, 8, 3, padding=1, groups=8),                     # depthwise: switched
        nn.Conv2D(8, 8, 3, padding=1, groups=2),                     # grouped: Paddle's kernel
        nn.Conv2D(8, 16, 3, padding=1, groups=8),                    # channel multiplier 2: Paddle's kernel
        nn.Conv2D(16, 8, 1),                                         # switched
        nn.Conv2D(8, 8, 3, padding="SAME"),                          # string padding: kept
        nn.Conv2D(8, 8, 3, padding=1, padding_mode="reflect"),       # not zero padding: kept
        nn.Conv2D(8, 8, 3, padding=[1, 1, 1, 1], bias_attr=False),   # explicit symmetric list: switched
        nn.Conv2D(8, 8, 3, padding=[0, 1, 1, 0]),                    # asymmetric: kept
        nn.Conv2D(8, 4, 1),                                          # switched
    )


def test_only_plain_zero_padded_dense_and_depthwise_convs_are_switched_and_the_state_dict_is_untouched(monkeypatch):
    monkeypatch.delenv(gc.SWITCH_ENV, raising=False)
    paddle.seed(0)
    net = _net()
    params_before = [id(p) for p in net.parameters()]
    keys_before = {k: v.shape for k, v in net.state_dict().items()}
    x = paddle.randn([2, 3, 2, 2])  # a map small enough for both batched paths
    net.eval()
    expected = net(x).numpy()
    assert gc.gemm_conv(net) == 5
    assert [type(layer) is gc.BatchedGemmConv2D for layer in net] == [True, True, False, False, True, False, False,
                                                                     True, False, True]
    assert [id(p) for p in net.parameters()] == params_before
    assert {k: v.shape for k, v in net.state_dict().items()} == keys_before
    np.testing.assert_allclose(net(x).numpy(), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("groups, path, limit", [(1, "batched_conv2d", "MAX_BATCHED_PIXELS"),
                                                  (4, "batched_depthwise_conv2d", "MAX_BATCHED_DEPTHWISE_PIXELS")])
def test_the_path_is_chosen_per_call_from_the_output_size(monkeypatch, groups, path, limit):
    calls = []
    real = getattr(gc, path)
    monkeypatch.setattr(gc, path, lambda *a: calls.append(a[0].shape) or real(*a))
    conv = nn.Conv2D(4, 4, 3, padding=1, groups=groups)
    gc.gemm_conv(conv)
    side = int(getattr(gc, limit) ** 0.5)
    conv(paddle.randn([2, 4, side, side]))          # at the limit: batched
    conv(paddle.randn([2, 4, side + 1, side + 1]))  # above it: Paddle's kernel
    assert calls == [[2, 4, side, side]]


def test_the_switch_turns_it_off(monkeypatch):
    monkeypatch.setenv(gc.SWITCH_ENV, "0")
    net = _net()
    assert gc.gemm_conv(net) == 0
    assert not any(isinstance(layer, gc.BatchedGemmConv2D) for layer in net.sublayers())


@pytest.mark.parametrize("arch", ["ResNet18_vd", "MobileNetV3_small_x1_0"])
def test_a_zoo_backbone_gives_the_same_logits_after_the_switch(monkeypatch, arch):
    from pcls.arch.registry import get_constructor

    monkeypatch.delenv(gc.SWITCH_ENV, raising=False)
    paddle.seed(0)
    net = get_constructor(arch)(class_num=10)
    net.eval()
    x = paddle.randn([4, 3, 32, 32])
    expected = net(x).numpy()
    assert gc.gemm_conv(net) > 0
    np.testing.assert_allclose(net(x).numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride, height, width, bias", [(1, 9, 10, True), (2, 11, 9, False), (1, 12, 12, False)])
def test_pointwise_conv_equals_paddles_conv_with_gradients(stride, height, width, bias):
    paddle.seed(5)
    x = paddle.randn([3, 8, height, width])
    w = paddle.randn([5, 8, 1, 1])
    b = paddle.randn([5]) if bias else None
    inputs = [t for t in (x, w, b) if t is not None]
    for t in inputs:
        t.stop_gradient = False
    expected = F.conv2d(x, w, b, stride)
    got = gc.pointwise_conv2d(x, w, b, stride)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    upstream = paddle.randn(expected.shape)
    for g_ref, g_new in zip(paddle.grad([expected], inputs, [upstream]), paddle.grad([got], inputs, [upstream])):
        np.testing.assert_allclose(g_new.numpy(), g_ref.numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("setting, expected_calls", [("all", 1), ("", 0)])
def test_the_1x1_switch_routes_large_maps_to_the_broadcast_product(monkeypatch, setting, expected_calls):
    monkeypatch.delenv(gc.SWITCH_ENV, raising=False)
    monkeypatch.setenv(gc.POINTWISE_ENV, setting)
    calls = []
    real = gc.pointwise_conv2d
    monkeypatch.setattr(gc, "pointwise_conv2d", lambda *a: calls.append(a[0].shape) or real(*a))
    net = nn.Sequential(nn.Conv2D(4, 6, 1), nn.Conv2D(6, 6, 3, padding=1))  # only the 1x1 one may take it
    paddle.seed(1)
    x = paddle.randn([2, 4, 12, 12])  # 144 pixels: above the small-map limit
    expected = net(x).numpy()
    assert gc.gemm_conv(net) == 2
    np.testing.assert_allclose(net(x).numpy(), expected, rtol=1e-5, atol=1e-4)
    assert len(calls) == expected_calls


@pytest.mark.parametrize("channels, kernel, padding, height, x_needs_grad, w_needs_grad", [
    (6, 3, 1, 9, True, True), (6, 5, 2, 8, True, True), (4, 3, 0, 7, True, True), (4, 5, 1, 9, True, True),
    (4, 3, 1, 6, False, True), (4, 3, 1, 6, True, False)])  # the first layer's input; a frozen filter
def test_depthwise_split_gradient_equals_paddles(channels, kernel, padding, height, x_needs_grad, w_needs_grad):
    paddle.seed(6)
    x = paddle.randn([3, channels, height, height])
    w = paddle.randn([channels, 1, kernel, kernel])
    x.stop_gradient, w.stop_gradient = not x_needs_grad, not w_needs_grad
    inputs = [t for t, needs in ((x, x_needs_grad), (w, w_needs_grad)) if needs]
    expected = F.conv2d(x, w, padding=padding, groups=channels)
    got = gc.split_grad_conv2d(x, w, (padding, padding), channels)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())  # the same forward kernel
    upstream = paddle.randn(expected.shape)
    for g_ref, g_new in zip(paddle.grad([expected], inputs, [upstream]), paddle.grad([got], inputs, [upstream])):
        np.testing.assert_allclose(g_new.numpy(), g_ref.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("setting, stride, expected_calls", [("", 1, 1), ("1", 1, 1), ("", 2, 0), ("0", 1, 0)])
def test_the_depthwise_switch_splits_only_stride_1_gradients_in_training(monkeypatch, setting, stride,
                                                                          expected_calls):
    monkeypatch.delenv(gc.SWITCH_ENV, raising=False)
    monkeypatch.setenv(gc.DEPTHWISE_GRAD_ENV, setting)
    calls = []
    real = gc.split_grad_conv2d
    monkeypatch.setattr(gc, "split_grad_conv2d", lambda *a: calls.append(a[0].shape) or real(*a))
    conv = nn.Conv2D(4, 4, 3, stride=stride, padding=1, groups=4)
    paddle.seed(2)
    x = paddle.randn([2, 4, 12, 12])
    expected = conv(x).numpy()
    gc.gemm_conv(conv)
    with paddle.no_grad():
        conv(x)  # evaluation: Paddle's kernel, nothing to split
    np.testing.assert_allclose(conv(x).numpy(), expected, rtol=1e-6, atol=1e-6)
    assert len(calls) == expected_calls


@pytest.mark.parametrize("name, value", [("POINTWISE_ENV", "yes"), ("DEPTHWISE_GRAD_ENV", "split")])
def test_a_wrong_opt_in_setting_is_refused_in_one_line(monkeypatch, name, value):
    from pcls.errors import PclsError

    monkeypatch.delenv(gc.SWITCH_ENV, raising=False)
    monkeypatch.setenv(getattr(gc, name), value)
    with pytest.raises(PclsError, match=f"{getattr(gc, name)}='{value}' is not a setting"):
        gc.gemm_conv(nn.Conv2D(4, 4, 1))


def _depthwise_net():
    return nn.Sequential(nn.Conv2D(3, 8, 1), nn.ReLU(), nn.Conv2D(8, 8, 3, padding=1, groups=8), nn.ReLU(),
                         nn.Conv2D(8, 8, 5, padding=2, groups=8), nn.AdaptiveAvgPool2D(1), nn.Flatten(), nn.Linear(8, 3))


def _grads(net, x, y):
    loss = F.cross_entropy(net(x), y, reduction="sum")
    return [g.numpy() for g in paddle.grad([loss], net.parameters())]


def test_split_depthwise_gradients_repeat_bit_for_bit_and_add_up_over_half_batches(monkeypatch):
    """What resume equality and distributed equivalence rest on: the same batch gives the same bits every time, and
    two half batches' gradients (two workers) add up to the whole batch's (one worker) within float rounding."""
    monkeypatch.delenv(gc.SWITCH_ENV, raising=False)
    monkeypatch.delenv(gc.DEPTHWISE_GRAD_ENV, raising=False)
    paddle.seed(7)
    net = _depthwise_net()
    assert gc.gemm_conv(net) == 3
    assert sum(getattr(layer, "_split_grad", False) for layer in net.sublayers()) == 2
    x, y = paddle.randn([8, 3, 10, 10]), paddle.randint(0, 3, [8])
    whole = _grads(net, x, y)
    for a, b in zip(whole, _grads(net, x, y)):
        np.testing.assert_array_equal(a, b)
    halves = [_grads(net, x[i:i + 4], y[i:i + 4]) for i in (0, 4)]
    for a, h0, h1 in zip(whole, *halves):
        np.testing.assert_allclose(h0 + h1, a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel, padding, bias", [((3, 3), (1, 1), False), ((5, 5), (2, 2), True),
                                                   ((3, 1), (1, 0), False), ((3, 3), (0, 0), True)])
def test_dense_split_gradient_equals_paddles(monkeypatch, kernel, padding, bias):
    monkeypatch.delenv(gc.SWITCH_ENV, raising=False)
    monkeypatch.setenv(gc.DENSE_GRAD_ENV, "1")
    monkeypatch.setattr(gc, "MIN_SPLIT_DENSE_PIXELS", 16)
    calls = []
    real = gc.split_grad_conv2d
    monkeypatch.setattr(gc, "split_grad_conv2d", lambda *a: calls.append(a[3]) or real(*a))
    paddle.seed(8)
    conv = nn.Conv2D(5, 7, kernel, padding=list(padding), bias_attr=None if bias else False)
    x = paddle.randn([3, 5, 12, 11])  # every output above the small-map limit
    x.stop_gradient = False
    expected = conv(x)
    inputs = [x] + conv.parameters()
    upstream = paddle.randn(expected.shape)
    reference = paddle.grad([expected], inputs, [upstream])
    gc.gemm_conv(conv)
    got = conv(x)
    assert calls == [1]
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    for g_ref, g_new in zip(reference, paddle.grad([got], inputs, [upstream])):
        np.testing.assert_allclose(g_new.numpy(), g_ref.numpy(), rtol=1e-5, atol=1e-5)
