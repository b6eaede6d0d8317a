"""Twins (Chu et al. 2021), weight-compatible with PaddleClas: Twins-PCPVT (pyramid stages of global
sub-sampled attention) and Twins-SVT, here `alt_gvt` (alternating locally-grouped window attention and
global sub-sampled attention). A depthwise conv after each stage's first block (`pos_block`) gives the
position information, so any input size works; window attention pads maps that are not a multiple
of the window."""

from __future__ import annotations

import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.base import Classifier
from pcls.arch.layers import Attention, DropPath, Mlp, PatchEmbed, attend, merge_heads, split_heads
from pcls.arch.layers.weight_init import init_transformer_weights
from pcls.arch.registry import register


class SubsampledAttention(nn.Layer):
    """Global sub-sampled attention: keys/values from the map shrunk by a stride-`sr_ratio` conv."""

    def __init__(self, dim, num_heads, qkv_bias, qk_scale, attn_drop, proj_drop, sr_ratio):
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        bias = None if qkv_bias else False
        self.q = nn.Linear(dim, dim, bias_attr=bias)
        self.kv = nn.Linear(dim, dim * 2, bias_attr=bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2D(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x, height, width):
        (q,) = split_heads(self.q(x), 1, self.num_heads)
        source = x
        if self.sr_ratio > 1:
            source = x.transpose([0, 2, 1]).reshape([0, x.shape[-1], height, width])
            source = self.norm(self.sr(source).flatten(2).transpose([0, 2, 1]))
        k, v = split_heads(self.kv(source), 2, self.num_heads)
        x = merge_heads(attend(q, k, v, self.scale, attn_drop=self.attn_drop))
        return self.proj_drop(self.proj(x))


class GroupedAttention(Attention):
    """Locally-grouped attention: self-attention inside non-overlapping ws x ws windows."""

    def __init__(self, dim, num_heads, qkv_bias, qk_scale, attn_drop, proj_drop, window):
        super().__init__(dim, num_heads, qkv_bias, qk_scale, attn_drop, proj_drop)
        self.window = window

    def forward(self, x, height, width):
        ws, channels = self.window, x.shape[-1]
        x = x.reshape([0, height, width, channels])
        pad_h, pad_w = -height % ws, -width % ws
        if pad_h or pad_w:
            x = F.pad(x, [0, pad_w, 0, pad_h], data_format="NHWC")
        rows, cols = (height + pad_h) // ws, (width + pad_w) // ws
        x = x.reshape([0, rows, ws, cols, ws, channels]).transpose([0, 1, 3, 2, 4, 5])
        x = super().forward(x.reshape([0, rows * cols, ws * ws, channels]))
        x = x.reshape([0, rows, cols, ws, ws, channels]).transpose([0, 1, 3, 2, 4, 5])
        x = x.reshape([0, rows * ws, cols * ws, channels])
        if pad_h or pad_w:
            x = x[:, :height, :width]
        return x.reshape([0, height * width, channels])


class Block(nn.Layer):
    def __init__(self, dim, num_heads, mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, drop_path, epsilon, sr_ratio,
                 window=1):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, epsilon=epsilon)
        if window > 1:
            self.attn = GroupedAttention(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop, window)
        else:
            self.attn = SubsampledAttention(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop, sr_ratio)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, epsilon=epsilon)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x, height, width):
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PosConv(nn.Layer):
    """Conditional position encoding: a 3x3 depthwise conv over the token map, added back."""

    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2D(dim, dim, 3, padding=1, groups=dim))

    def forward(self, x, height, width):
        feature = x.transpose([0, 2, 1]).reshape([0, x.shape[-1], height, width])
        return (self.proj(feature) + feature).flatten(2).transpose([0, 2, 1])


class Twins(Classifier):
    """windows=None gives PCPVT; windows=(ws, ...) gives alt_gvt (SVT): even blocks of stage i attend in
    windows[i] x windows[i] windows, odd blocks globally."""

    classifier_names = ("head",)

    def __init__(self, img_size=224, patch_size=4, in_chans=3, class_num=1000, embed_dims=(64, 128, 256, 512),
                 num_heads=(1, 2, 4, 8), mlp_ratios=(4, 4, 4, 4), qkv_bias=True, qk_scale=None, drop_rate=0.0,
                 attn_drop_rate=0.0, drop_path_rate=0.0, epsilon=1e-6, depths=(3, 4, 6, 3), sr_ratios=(8, 4, 2, 1),
                 windows=None):
        super().__init__()
        self.class_num = class_num
        self.patch_embeds = nn.LayerList()
        for i, dim in enumerate(embed_dims):
            size = img_size if i == 0 else img_size // patch_size // 2 ** (i - 1)
            self.patch_embeds.append(
                PatchEmbed(size, patch_size if i == 0 else 2, in_chans if i == 0 else embed_dims[i - 1], dim, norm=True)
            )
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(sum(depths) - 1, 1) for i in range(sum(depths))]
        self.blocks = nn.LayerList()
        for i, depth in enumerate(depths):
            first = sum(depths[:i])
            stage = []
            for j in range(depth):
                window = windows[i] if windows is not None and j % 2 == 0 else 1
                stage.append(Block(embed_dims[i], num_heads[i], mlp_ratios[i], qkv_bias, qk_scale, drop_rate,
                                   attn_drop_rate, rates[first + j], epsilon, sr_ratios[i], window))
            self.blocks.append(nn.LayerList(stage))
        self.pos_block = nn.LayerList([PosConv(dim) for dim in embed_dims])
        self.norm = nn.LayerNorm(embed_dims[-1], epsilon=epsilon)
        self.head = nn.Linear(embed_dims[-1], class_num)
        init_transformer_weights(self)

    def forward_features(self, x):
        """Image -> normed last-stage tokens [B, h*w, C]."""
        height = width = None  # each stage's patch embedding sets them; the next stage reshapes by them
        for i, (embed, stage, pos) in enumerate(zip(self.patch_embeds, self.blocks, self.pos_block)):
            if i:
                x = x.transpose([0, 2, 1]).reshape([0, x.shape[-1], height, width])
            x, (height, width) = embed(x)
            x = self.pos_drop(x)
            for j, block in enumerate(stage):
                x = block(x, height, width)
                if j == 0:
                    x = pos(x, height, width)
        return self.norm(x)

    def forward_head(self, x):
        return self.head(x.mean(axis=1))


_PCPVT = dict(embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4))
_SVT = dict(mlp_ratios=(4, 4, 4, 4), windows=(7, 7, 7, 7))


def _twins(class_num, kwargs, **arch):
    return Twins(class_num=class_num, **{**arch, **kwargs})


@register
def pcpvt_small(class_num=1000, **kwargs):
    return _twins(class_num, kwargs, depths=(3, 4, 6, 3), **_PCPVT)


@register
def pcpvt_base(class_num=1000, **kwargs):
    return _twins(class_num, kwargs, depths=(3, 4, 18, 3), **_PCPVT)


@register
def pcpvt_large(class_num=1000, **kwargs):
    return _twins(class_num, kwargs, depths=(3, 8, 27, 3), **_PCPVT)


@register
def alt_gvt_small(class_num=1000, **kwargs):
    return _twins(class_num, kwargs, embed_dims=(64, 128, 256, 512), num_heads=(2, 4, 8, 16), depths=(2, 2, 10, 4),
                  **_SVT)


@register
def alt_gvt_base(class_num=1000, **kwargs):
    return _twins(class_num, kwargs, embed_dims=(96, 192, 384, 768), num_heads=(3, 6, 12, 24), depths=(2, 2, 18, 2),
                  **_SVT)


@register
def alt_gvt_large(class_num=1000, **kwargs):
    return _twins(class_num, kwargs, embed_dims=(128, 256, 512, 1024), num_heads=(4, 8, 16, 32),
                  depths=(2, 2, 18, 2), **_SVT)
