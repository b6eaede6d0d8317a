"""Token maps <-> images, and the overlapping conv patch embedding of the hierarchical transformers
(CSWin, PVT v2, CvT): a strided conv on the image/map, flattened to tokens and LayerNorm-ed."""

from __future__ import annotations

import paddle.nn as nn


def tokens_to_image(x, height, width):
    """[B, H*W, C] -> [B, C, H, W]."""
    return x.transpose([0, 2, 1]).reshape([0, -1, height, width])


def image_to_tokens(x):
    """[B, C, H, W] -> [B, H*W, C]."""
    return x.flatten(2).transpose([0, 2, 1])


class ConvTokens(nn.Layer):
    """Strided conv (named `conv_name`, as the reference's keys) on an image, then LayerNorm on the tokens."""

    def __init__(self, in_dim, out_dim, kernel, stride, padding, conv_name="proj", epsilon=1e-5):
        super().__init__()
        self.conv_name = conv_name
        setattr(self, conv_name, nn.Conv2D(in_dim, out_dim, kernel, stride, padding))
        self.norm = nn.LayerNorm(out_dim, epsilon=epsilon)

    def forward(self, x):
        """x [B, C, H, W] -> (tokens [B, h*w, C'], (h, w))."""
        x = getattr(self, self.conv_name)(x)
        height, width = x.shape[2], x.shape[3]
        return self.norm(image_to_tokens(x)), (height, width)
