"""Patch embedding: image -> [B, N, C] tokens by a stride-`patch_size` conv (`proj`), optionally
LayerNorm-ed (`norm`; Swin, Twins). Inputs whose sides are not a multiple of the patch are padded."""

from __future__ import annotations

import paddle.nn as nn
import paddle.nn.functional as F


def to_2tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class PatchEmbed(nn.Layer):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768, norm=False, norm_epsilon=1e-5):
        super().__init__()
        self.img_size = to_2tuple(img_size)
        self.patch_size = to_2tuple(patch_size)
        self.grid_size = tuple(i // p for i, p in zip(self.img_size, self.patch_size))
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2D(in_chans, embed_dim, self.patch_size, stride=self.patch_size)
        self.norm = nn.LayerNorm(embed_dim, epsilon=norm_epsilon) if norm else None

    def forward(self, x):
        """x [B, C, H, W] -> (tokens [B, h*w, embed_dim], (h, w))."""
        height, width = x.shape[2], x.shape[3]
        pad_h, pad_w = -height % self.patch_size[0], -width % self.patch_size[1]
        if pad_h or pad_w:
            x = F.pad(x, [0, pad_w, 0, pad_h])
        x = self.proj(x)
        grid = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose([0, 2, 1])
        if self.norm is not None:
            x = self.norm(x)
        return x, grid
