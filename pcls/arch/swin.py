"""Swin Transformer (Liu et al. 2021), weight-compatible with PaddleClas: attention inside shifted
windows with a relative position bias, 2x2 patch merging between stages.

Inputs whose stage grids are not a multiple of the window are padded (bottom/right) at every stage;
weights for another window size load through `pcls.arch.layers.pos_embed.adapt_state_dict`, which
resamples the relative position bias tables.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.base import Classifier
from pcls.arch.layers import DropPath, Mlp, PatchEmbed, WindowAttention
from pcls.arch.layers.pos_embed import AdaptsPositionTables
from pcls.arch.layers.weight_init import init_transformer_weights
from pcls.arch.registry import register


def window_partition(x, window):
    """[B, H, W, C] -> [B, windows, window*window, C]."""
    _, height, width, channels = x.shape
    x = x.reshape([-1, height // window, window, width // window, window, channels])
    return x.transpose([0, 1, 3, 2, 4, 5]).reshape([-1, (height // window) * (width // window), window**2, channels])


def window_reverse(windows, window, height, width):
    """[B, windows, window*window, C] -> [B, H, W, C]."""
    channels = windows.shape[-1]
    x = windows.reshape([-1, height // window, width // window, window, window, channels])
    return x.transpose([0, 1, 3, 2, 4, 5]).reshape([-1, height, width, channels])


@lru_cache(maxsize=32)
def shifted_window_mask(height: int, width: int, window: int, shift: int) -> np.ndarray:
    """[windows, w*w, w*w] additive mask: -100 between tokens that the cyclic shift brought together
    from different regions of the image."""
    regions = np.zeros((height, width), dtype="float32")
    label = 0
    for rows in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for cols in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            regions[rows, cols] = label
            label += 1
    windows = regions.reshape(height // window, window, width // window, window).transpose(0, 2, 1, 3)
    windows = windows.reshape(-1, window * window)
    differs = windows[:, None, :] != windows[:, :, None]
    return np.where(differs, -100.0, 0.0).astype("float32")


class SwinTransformerBlock(nn.Layer):
    def __init__(self, dim, num_heads, window_size, shift_size, mlp_ratio, qkv_bias, qk_scale, drop, attn_drop,
                 drop_path):
        super().__init__()
        # as in PaddleClas 2.6: the window and shift stay as given even when the window covers the
        # whole map (smaller maps are padded), so the last stage also alternates shifted windows
        self.window_size, self.shift_size = window_size, shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x, height, width):
        window, shift = self.window_size, self.shift_size
        channels = x.shape[-1]
        shortcut = x
        x = self.norm1(x).reshape([-1, height, width, channels])
        pad_h, pad_w = -height % window, -width % window
        if pad_h or pad_w:
            # NHWC pad order: [left, right, top, bottom]
            x = F.pad(x, [0, pad_w, 0, pad_h], data_format="NHWC")
        padded_h, padded_w = height + pad_h, width + pad_w
        mask = None
        if shift:
            x = paddle.roll(x, shifts=(-shift, -shift), axis=(1, 2))
            mask = paddle.to_tensor(shifted_window_mask(padded_h, padded_w, window, shift))
        x = self.attn(window_partition(x, window), mask)
        x = window_reverse(x, window, padded_h, padded_w)
        if shift:
            x = paddle.roll(x, shifts=(shift, shift), axis=(1, 2))
        if pad_h or pad_w:
            x = x[:, :height, :width, :]
        x = shortcut + self.drop_path(x.reshape([-1, height * width, channels]))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def gather_2x2(x, height, width):
    """Tokens [B, H*W, C] -> each 2x2 neighbourhood as one 4C token [B, H/2*W/2, 4C] (odd sizes padded), in the
    order (0,0), (1,0), (0,1), (1,1) (row offset varies fastest), and the new (height, width)."""
    channels = x.shape[-1]
    x = x.reshape([-1, height, width, channels])
    if height % 2 or width % 2:
        x = F.pad(x, [0, width % 2, 0, height % 2], data_format="NHWC")
        height, width = height + height % 2, width + width % 2
    # [B, H/2, dy, W/2, dx, C] -> [B, H/2, W/2, dx, dy, C]
    x = x.reshape([-1, height // 2, 2, width // 2, 2, channels]).transpose([0, 1, 3, 4, 2, 5])
    return x.reshape([-1, (height // 2) * (width // 2), 4 * channels]), (height // 2, width // 2)


class PatchMerging(nn.Layer):
    """Concatenate each 2x2 neighbourhood (4C) and project to 2C, with LayerNorm before the projection (Swin) or,
    `post_norm`, after it (Swin V2's res-post-norm design)."""

    def __init__(self, dim, post_norm=False):
        super().__init__()
        self.post_norm = post_norm
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias_attr=False)
        self.norm = nn.LayerNorm((2 if post_norm else 4) * dim)

    def forward(self, x, height, width):
        x, size = gather_2x2(x, height, width)
        if self.post_norm:
            return self.norm(self.reduction(x)), size
        return self.reduction(self.norm(x)), size


class BasicLayer(nn.Layer):
    """One stage: `depth` blocks alternating plain and shifted windows, then an optional merge."""

    def __init__(self, dim, depth, num_heads, window_size, mlp_ratio, qkv_bias, qk_scale, drop,
                 attn_drop, drop_path_rates, downsample):
        super().__init__()
        self.blocks = nn.LayerList(
            [
                SwinTransformerBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2,
                                     mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, drop_path_rates[i])
                for i in range(depth)
            ]
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x, height, width):
        for block in self.blocks:
            x = block(x, height, width)
        if self.downsample is not None:
            x, (height, width) = self.downsample(x, height, width)
        return x, (height, width)


class WindowedTransformer(AdaptsPositionTables, Classifier):
    """What Swin V1 and V2 share: patch_embed -> stages (`layers`, each returning the next map size) -> LayerNorm
    `norm`, and a Linear `head` over the mean token."""

    classifier_names = ("head",)

    def forward_features(self, x):
        """Image -> normed last-stage tokens [B, h*w, C]."""
        x, (height, width) = self.patch_embed(x)
        x = self.pos_drop(x)
        for layer in self.layers:
            x, (height, width) = layer(x, height, width)
        return self.norm(x)

    def forward_head(self, x):
        return self.head(x.mean(axis=1))


class SwinTransformer(WindowedTransformer):

    def __init__(self, img_size=224, patch_size=4, in_chans=3, class_num=1000, embed_dim=96, depths=(2, 2, 6, 2),
                 num_heads=(3, 6, 12, 24), window_size=7, mlp_ratio=4.0, qkv_bias=True, qk_scale=None, drop_rate=0.0,
                 attn_drop_rate=0.0, drop_path_rate=0.1):
        super().__init__()
        self.class_num = class_num
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim, norm=True)
        self.pos_drop = nn.Dropout(drop_rate)
        rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.layers = nn.LayerList()
        for i, depth in enumerate(depths):
            first = sum(depths[:i])
            self.layers.append(
                BasicLayer(embed_dim * 2**i, depth, num_heads[i], window_size, mlp_ratio, qkv_bias,
                           qk_scale, drop_rate, attn_drop_rate, rates[first:first + depth], i < len(depths) - 1)
            )
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, class_num)
        init_transformer_weights(self)



_SIZES = {
    "tiny": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.2),
    "small": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.1),
    "base": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), drop_path_rate=0.5),
    "large": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), drop_path_rate=0.1),
}


def _swin(size, window_size, img_size, class_num, kwargs):
    arch = dict(_SIZES[size], window_size=window_size, img_size=img_size)
    return SwinTransformer(class_num=class_num, **{**arch, **kwargs})


@register
def SwinTransformer_tiny_patch4_window7_224(class_num=1000, **kwargs):
    return _swin("tiny", 7, 224, class_num, kwargs)


@register
def SwinTransformer_small_patch4_window7_224(class_num=1000, **kwargs):
    return _swin("small", 7, 224, class_num, kwargs)


@register
def SwinTransformer_base_patch4_window7_224(class_num=1000, **kwargs):
    return _swin("base", 7, 224, class_num, kwargs)


@register
def SwinTransformer_base_patch4_window12_384(class_num=1000, **kwargs):
    return _swin("base", 12, 384, class_num, kwargs)


@register
def SwinTransformer_large_patch4_window7_224(class_num=1000, **kwargs):
    return _swin("large", 7, 224, class_num, kwargs)


@register
def SwinTransformer_large_patch4_window12_384(class_num=1000, **kwargs):
    return _swin("large", 12, 384, class_num, kwargs)
