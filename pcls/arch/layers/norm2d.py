"""LayerNorm over the channel axis of an NCHW map ("channels-first" LayerNorm of ConvNeXt-style networks):
every pixel's channel vector is normalised on its own, with a per-channel scale and shift."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F


class LayerNorm2D(nn.LayerNorm):
    """nn.LayerNorm(channels) applied to [B, C, H, W] (keys `weight`, `bias`, as the plain LayerNorm)."""

    def forward(self, x):
        x = paddle.transpose(x, [0, 2, 3, 1])
        x = F.layer_norm(x, x.shape[-1:], weight=self.weight, bias=self.bias, epsilon=self._epsilon)
        return paddle.transpose(x, [0, 3, 1, 2])
