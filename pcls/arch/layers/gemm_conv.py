"""Convolutions on small maps batched over the images: the CPU training path where Paddle loops per image.

Dense convolutions: Paddle's CPU `conv2d` and its gradient run one im2col + matrix product *per image*.
When the output map is small -- ResNet's later stages at 32 px input are 4x4, 2x2 and 1x1 -- each product
is tiny (a 512x4608 filter times a 4608x4 column block) and the kernel runs at a few percent of what the
math library reaches on big matrices. Unfolding the whole batch first and running a single product with
batch x pixels rows gives the library the big matrices it is fast on (measured on 2 cores, fwd+bwd,
batch 32: a 512-channel 3x3 conv on a 2x2 map 5.3x faster, on 4x4 1.5x; on 8x8 about even; above that
Paddle's own kernel wins, at 56x56 by 2x -- the unfolded copy is 9x the activation). So the path is
chosen per call from the output size, and large maps keep Paddle's kernel.

Depthwise convolutions have the same problem one level down: Paddle's CPU kernel loops over every image
*and channel*, so a 576-channel 5x5 depthwise conv on a 1x1 map costs 37 ms (fwd+bwd, batch 32) for 0.5M
multiply-adds. On outputs of at most 4 pixels, unfolding and one broadcast multiply-sum is 2-4x faster;
from 16 pixels on Paddle's kernel is as fast or faster (CHANGELOG #18).

Depthwise convolutions on larger maps keep Paddle's forward kernel, but their gradient is split: Paddle's
`depthwise_conv2d_grad` spends about four times the forward's time on the input gradient, which for stride 1 is
itself a depthwise convolution of the output gradient with the flipped filters -- computed by the forward kernel
at about the forward's cost. The filter gradient still comes from Paddle's gradient kernel, asked for the
filter alone (it skips the input part). Forward and filter gradient are bit-identical, the input gradient equal
within float rounding. Measured as CPU time of whole training steps, interleaved in one process (1 thread, batch
16, 224 px, load average ~5 on 2 cores; an A/B with no change gave 1.00x): MobileNetV3_large_x1_0 1.05-1.07x,
PPLCNet_x1_0 1.08x, PPHGNetV2_B0 1.00x (its depthwise maps are small); per layer 1.03-1.99x (CHANGELOG #29).
At stride 2 Paddle's gradient kernel is as fast as the split, so those layers keep it. The same split for dense
convolutions is opt-in (`PCLS_DENSE_GRAD=1`, see DENSE_GRAD_ENV): slower with 2 threads.
`PCLS_DEPTHWISE_GRAD=0` turns it off.

1x1 convolutions on larger maps (opt-in, `PCLS_GEMM_CONV_1X1=all`): one broadcast product of the [out, in]
filter with the [N, in, H*W] batch -- no unfolding and no transposes. Measured against Paddle's kernel (fwd+bwd,
CPU time, batch 16, 1 thread, CHANGELOG #29): 0.77-1.01x (0.77x at 14x14); Paddle's per-image product is
already large there. So it stays off by default and is kept for re-measuring each Paddle release
(`python benchmarks/bench_conv_paths.py`).

The result equals Paddle's convolution up to float summation order. Parameters, their names and the state
dict are untouched, so checkpoints and exports do not know this path exists (export builds a fresh model).
"""

from __future__ import annotations

import logging
import os

import paddle
import paddle.nn.functional as F
from paddle import nn

from pcls.errors import PclsError

log = logging.getLogger(__name__)

# Largest output map (height x width) computed as one batched product; at and below it the batched
# product was as fast or faster on 1 and 2 threads, above it Paddle's per-image kernel (see docstring).
MAX_BATCHED_PIXELS = 64
MAX_BATCHED_DEPTHWISE_PIXELS = 4
SWITCH_ENV = "PCLS_GEMM_CONV"  # "0" keeps Paddle's kernel everywhere (A/B benchmarks, bisecting a numeric issue)
DEPTHWISE_GRAD_ENV = "PCLS_DEPTHWISE_GRAD"  # "0": Paddle's own depthwise gradient kernel on larger maps too
# "1": the same split for stride-1 dense k x k convolutions on large maps. Opt-in: whole steps at 1 thread 1.01x
# (ResNet50_vd) and 1.04-1.06x (ResNet18_vd) at 224 px, but `pcls train` with its default 2 threads 0.78x
# (ResNet18_vd 224 px, load ~3): Paddle's gradient kernel uses the second thread better (CHANGELOG #29).
DENSE_GRAD_ENV = "PCLS_DENSE_GRAD"
MIN_SPLIT_DENSE_PIXELS = 28 * 28  # per layer 1.09x at 28x28, 1.24x at 56x56, 0.90x at 14x14 (CPU time, 1 thread)
POINTWISE_ENV = "PCLS_GEMM_CONV_1X1"  # "all": 1x1 convolutions above MAX_BATCHED_PIXELS as one broadcast product


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def _output_size(height, width, kernel, stride, padding, dilation) -> tuple:
    """(out_h, out_w) of a convolution over a height x width map."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _pair(kernel), _pair(stride), _pair(padding), _pair(dilation)
    return (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1


def _unfold(x, weight, stride, padding, dilation):
    """im2col of the whole batch: [N, C*kh*kw, out_h*out_w], and (out_h, out_w)."""
    kernel = list(weight.shape[2:])
    cols = F.unfold(x, kernel, strides=list(_pair(stride)), paddings=list(_pair(padding)),
                    dilations=list(_pair(dilation)))
    return cols, _output_size(x.shape[2], x.shape[3], kernel, stride, padding, dilation)


def batched_conv2d(x, weight, bias, stride, padding, dilation):
    """NCHW convolution (groups=1) as unfold + one [batch*pixels, C*kh*kw] x [C*kh*kw, out] product."""
    batch, channels = x.shape[:2]
    out_channels = weight.shape[0]
    if tuple(weight.shape[2:]) == (1, 1) and _pair(padding) == (0, 0):  # a 1x1 conv needs no unfolding
        sh, sw = _pair(stride)
        x = x[:, :, ::sh, ::sw] if (sh, sw) != (1, 1) else x
        (out_h, out_w), cols = x.shape[2:], x.transpose([0, 2, 3, 1]).reshape([-1, channels])
    else:
        cols, (out_h, out_w) = _unfold(x, weight, stride, padding, dilation)
        cols = cols.transpose([0, 2, 1]).reshape([-1, cols.shape[1]])
    out = paddle.matmul(cols, weight.reshape([out_channels, -1]), transpose_y=True)
    if bias is not None:
        out = out + bias
    return out.reshape([batch, out_h, out_w, out_channels]).transpose([0, 3, 1, 2])


def batched_depthwise_conv2d(x, weight, bias, stride, padding, dilation):
    """NCHW depthwise convolution (groups = channels, one filter each) as unfold + a broadcast multiply-sum."""
    batch, channels = x.shape[:2]
    taps = weight.shape[2] * weight.shape[3]
    cols, (out_h, out_w) = _unfold(x, weight, stride, padding, dilation)
    out = (cols.reshape([batch, channels, taps, out_h * out_w]) * weight.reshape([1, channels, taps, 1])).sum(axis=2)
    if bias is not None:
        out = out + bias.reshape([1, channels, 1])
    return out.reshape([batch, channels, out_h, out_w])


def pointwise_conv2d(x, weight, bias, stride):
    """NCHW 1x1 convolution (groups=1, no padding) as one broadcast [out, in] x [N, in, H*W] product."""
    sh, sw = _pair(stride)
    x = x[:, :, ::sh, ::sw] if (sh, sw) != (1, 1) else x
    batch, channels, out_h, out_w = x.shape
    out_channels = weight.shape[0]
    out = paddle.matmul(weight.reshape([1, out_channels, channels]), x.reshape([batch, channels, out_h * out_w]))
    if bias is not None:
        out = out + bias.reshape([1, out_channels, 1])
    return out.reshape([batch, out_channels, out_h, out_w])


class _InputGradByForwardKernel(paddle.autograd.PyLayer):
    """Passes a stride-1 convolution's output through unchanged and gives `x` its gradient: the correlation of the
    output gradient with the flipped filters (in and out channels swapped when dense), padded back to x's size --
    Paddle's forward kernel."""

    @staticmethod
    def forward(ctx, x, out, weight, padding, groups):
        ctx.save_for_backward(weight)
        ctx.padding, ctx.groups = padding, groups
        ctx.out_needs_grad = not out.stop_gradient  # a frozen filter: `out` needs none
        return out.clone()

    @staticmethod
    def backward(ctx, grad_out):
        (weight,) = ctx.saved_tensor()
        (ph, pw), (kh, kw) = ctx.padding, weight.shape[2:]
        flipped = weight.flip([2, 3])
        if ctx.groups == 1:
            flipped = flipped.transpose([1, 0, 2, 3])
        grad_x = F.conv2d(grad_out, flipped, padding=[kh - 1 - ph, kw - 1 - pw], groups=ctx.groups)
        return grad_x, grad_out if ctx.out_needs_grad else None


def split_grad_conv2d(x, weight, padding, groups):
    """Stride-1 dense (groups=1) or depthwise (groups=channels) convolution without bias by Paddle's forward
    kernel, with its gradient split in two: the filter's from Paddle's gradient kernel seeing a detached input
    (which skips the input part), the input's from `_InputGradByForwardKernel`."""
    out = F.conv2d(x.detach(), weight, padding=list(padding), groups=groups)
    if x.stop_gradient:
        return out
    return _InputGradByForwardKernel.apply(x, out, weight.detach(), padding, groups)


def _switch(name: str, value_on: str, meaning: str, default_on: bool = False) -> bool:
    """Whether the switch `name` is on: `value_on` turns it on, "0"/"off" off, unset keeps `default_on`; anything
    else is refused in one line."""
    value = os.environ.get(name, "").strip().lower()
    if value not in ("", "0", "off", value_on):
        raise PclsError(f"{name}={value!r} is not a setting; use {value_on!r} ({meaning}), '0' (off) or unset it")
    return default_on if value == "" else value == value_on


class BatchedGemmConv2D(nn.Conv2D):
    """An `nn.Conv2D` whose small outputs are computed by `batched_conv2d` (dense) or `batched_depthwise_conv2d`,
    and whose larger stride-1 ones may take `split_grad_conv2d` or `pointwise_conv2d`; only `gemm_conv` makes these."""

    def forward(self, x):
        height, width = x.shape[2], x.shape[3]
        if height < 0 or width < 0:  # a traced program's unknown size: Paddle's kernel handles any size
            return super().forward(x)
        out_h, out_w = _output_size(height, width, self._kernel_size, self._stride, self._plain_padding,
                                    self._dilation)
        depthwise = self._groups != 1
        if out_h * out_w > (MAX_BATCHED_DEPTHWISE_PIXELS if depthwise else MAX_BATCHED_PIXELS):
            if self._pointwise:
                return pointwise_conv2d(x, self.weight, self.bias, self._stride)
            if (self._split_grad and out_h * out_w >= (1 if depthwise else MIN_SPLIT_DENSE_PIXELS)
                    and paddle.is_grad_enabled() and not (x.stop_gradient and self.weight.stop_gradient)):
                out = split_grad_conv2d(x, self.weight, self._plain_padding, self._groups)
                return out if self.bias is None else out + self.bias.reshape([1, -1, 1, 1])
            return super().forward(x)
        batched = batched_depthwise_conv2d if depthwise else batched_conv2d
        return batched(x, self.weight, self.bias, self._stride, self._plain_padding, self._dilation)


def _symmetric_padding(layer: nn.Conv2D):
    """(pad_h, pad_w) when the layer pads each side of an axis equally with zeros, else None."""
    if layer._padding_mode != "zeros" or isinstance(layer._padding, str):
        return None
    pad = layer._padding
    if isinstance(pad, int):
        return (pad, pad)
    pad = list(pad)
    if len(pad) == 2 and all(isinstance(p, int) for p in pad):
        return tuple(pad)
    if len(pad) == 4 and all(isinstance(p, int) for p in pad) and pad[0] == pad[1] and pad[2] == pad[3]:
        return (pad[0], pad[2])
    return None


def gemm_conv(model: nn.Layer) -> int:
    """Switch every plain dense or depthwise NCHW `nn.Conv2D` in `model` to the batched path; returns how many.

    The layer's class is swapped in place rather than the layer replaced, so parameters (and an optimizer
    or EMA already holding them), hooks and attribute names stay exactly as they were. Other grouped
    convolutions (and depthwise ones with a channel multiplier), subclasses, NHWC and asymmetric or "same"
    padding keep Paddle's kernel.
    Stride-1 depthwise gradients on larger maps are split in two (`split_grad_conv2d`; `PCLS_DEPTHWISE_GRAD=0`
    turns that off). `PCLS_GEMM_CONV=0` turns every path off. Opt-in, not faster by default (module docstring):
    `PCLS_DENSE_GRAD=1` splits stride-1 dense k x k gradients on large maps too; `PCLS_GEMM_CONV_1X1=all` computes
    1x1 convolutions on larger maps as one broadcast product (`pointwise_conv2d`).
    """
    if os.environ.get(SWITCH_ENV, "1").strip() == "0":
        log.info("CPU: %s=0, every convolution uses Paddle's per-image kernel", SWITCH_ENV)
        return 0
    pointwise_everywhere = _switch(POINTWISE_ENV, "all", "1x1 convolutions as one broadcast product at every size")
    split_grad = _switch(DEPTHWISE_GRAD_ENV, "1", "stride-1 depthwise gradients split in two on larger maps",
                         default_on=True)
    split_dense = _switch(DENSE_GRAD_ENV, "1", "stride-1 dense gradients split in two on large maps")
    switched = 0
    for layer in model.sublayers(include_self=True):
        if type(layer) is not nn.Conv2D or layer._data_format != "NCHW":
            continue
        depthwise = layer._groups == layer._in_channels == layer._out_channels
        if layer._groups != 1 and not depthwise:
            continue
        padding = _symmetric_padding(layer)
        if padding is None:
            continue
        layer.__class__ = BatchedGemmConv2D
        layer._plain_padding = padding
        layer._pointwise = (pointwise_everywhere and layer._groups == 1 and tuple(layer._kernel_size) == (1, 1)
                            and padding == (0, 0) and tuple(_pair(layer._dilation)) == (1, 1))
        layer._split_grad = ((split_grad if depthwise else split_dense and max(layer._kernel_size) > 1)
                             and tuple(_pair(layer._stride)) == (1, 1) and tuple(_pair(layer._dilation)) == (1, 1)
                             and all(p <= k - 1 for p, k in zip(padding, layer._kernel_size)))
        switched += 1
    if switched:  # one line: a run's preamble stays short (the CLI shows it above any error)
        split = " and split stride-1 depthwise gradients in two on larger maps (%s=0 to turn that off)" % \
            DEPTHWISE_GRAD_ENV if split_grad else ""
        log.info("CPU: %d convolution(s) compute small maps (dense <= %d pixels, depthwise <= %d) batched over "
                 "the images (%s=0 to turn off)%s", switched, MAX_BATCHED_PIXELS, MAX_BATCHED_DEPTHWISE_PIXELS,
                 SWITCH_ENV, split)
    if pointwise_everywhere:
        log.info("CPU: %s=all, 1x1 convolutions on larger maps are one broadcast product", POINTWISE_ENV)
    if split_dense:
        log.info("CPU: stride-1 dense gradients on maps of %d+ pixels split in two (%s)", MIN_SPLIT_DENSE_PIXELS,
                 DENSE_GRAD_ENV)
    return switched
