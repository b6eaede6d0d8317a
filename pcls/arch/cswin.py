"""CSWin Transformer (Dong et al., "CSWin Transformer: A General Vision Transformer Backbone with
Cross-Shaped Windows", CVPR 2022), weight-compatible with PaddleClas's `CSWinTransformer_*` models.

What is special: each block splits its heads into two halves; one half attends inside horizontal
stripes of height `split_size`, the other inside vertical stripes of that width, so the union is a
cross-shaped window. The position information is LePE (locally-enhanced positional encoding): a 3x3
depthwise conv of V inside each stripe (`get_v`), added to the attention output. The last stage has a
7x7 (12x12 at 384) map and attends globally with one branch. Stages are joined by a stride-2 3x3 conv
+ LayerNorm (`merge`); the stem is a stride-4 7x7 conv + LayerNorm.

Stripes span the whole map along their long side at run time, and the short side is padded (with
zeros, which then take part in the attention) to a multiple of `split_size`, so other input sizes run.
"""

from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.base import Classifier
from pcls.arch.layers import DropPath, Mlp, attend, merge_heads
from pcls.arch.layers.conv_tokens import ConvTokens, image_to_tokens, tokens_to_image
from pcls.arch.layers.weight_init import init_transformer_weights
from pcls.arch.registry import register


class LePEAttention(nn.Layer):
    """Attention inside stripes with LePE. `axis`: 0 = vertical stripes (full height, `split_size`
    wide), 1 = horizontal stripes, None = the whole map (last stage)."""

    def __init__(self, dim, num_heads, split_size, axis, qk_scale=None, attn_drop=0.0):
        super().__init__()
        self.num_heads, self.split_size, self.axis = num_heads, split_size, axis
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.get_v = nn.Conv2D(dim, dim, 3, padding=1, groups=dim)
        self.attn_drop = nn.Dropout(attn_drop)

    def stripe(self, height, width):
        if self.axis is None:
            return height, width
        return (height, self.split_size) if self.axis == 0 else (self.split_size, width)

    def forward(self, q, k, v, height, width):
        """q, k, v: [B, H*W, C] -> [B, H*W, C]."""
        stripe_h, stripe_w = self.stripe(height, width)
        pad_h, pad_w = -height % stripe_h, -width % stripe_w
        # [B * windows, C, h, w]
        q, k, v = (self.to_windows(t, height, width, stripe_h, stripe_w, pad_h, pad_w) for t in (q, k, v))
        lepe = self.get_v(v)
        q, k, v, lepe = (self.to_heads(t) for t in (q, k, v, lepe))
        out = attend(q, k, v, self.scale, attn_drop=self.attn_drop) + lepe
        out = merge_heads(out)  # [B*windows, h*w, C]
        return self.from_windows(out, height + pad_h, width + pad_w, stripe_h, stripe_w)[:, :, :height, :width]

    @staticmethod
    def to_windows(x, height, width, stripe_h, stripe_w, pad_h, pad_w):
        """[B, H*W, C] -> [B * windows, C, stripe_h, stripe_w]."""
        x = tokens_to_image(x, height, width)
        if pad_h or pad_w:
            x = F.pad(x, [0, pad_w, 0, pad_h])
        channels, height, width = x.shape[1], x.shape[2], x.shape[3]
        x = x.reshape([-1, channels, height // stripe_h, stripe_h, width // stripe_w, stripe_w])
        return x.transpose([0, 2, 4, 1, 3, 5]).reshape([-1, channels, stripe_h, stripe_w])

    def to_heads(self, x):
        """[B', C, h, w] -> [B', heads, h*w, C/heads]."""
        return x.reshape([0, self.num_heads, -1, x.shape[2] * x.shape[3]]).transpose([0, 1, 3, 2])

    @staticmethod
    def from_windows(x, height, width, stripe_h, stripe_w):
        """[B * windows, h*w, C] -> [B, C, H, W]."""
        channels = x.shape[-1]
        x = x.reshape([-1, height // stripe_h, width // stripe_w, stripe_h, stripe_w, channels])
        return x.transpose([0, 5, 1, 3, 2, 4]).reshape([-1, channels, height, width])


class CSWinBlock(nn.Layer):
    def __init__(self, dim, num_heads, split_size, mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, drop_path,
                 last_stage):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, dim * 3, bias_attr=None if qkv_bias else False)
        if last_stage:
            self.attns = nn.LayerList([LePEAttention(dim, num_heads, split_size, None, qk_scale, attn_drop)])
        else:
            self.attns = nn.LayerList([
                LePEAttention(dim // 2, num_heads // 2, split_size, axis, qk_scale, attn_drop) for axis in (0, 1)
            ])
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x, height, width):
        q, k, v = self.qkv(self.norm1(x)).chunk(3, axis=-1)
        if len(self.attns) == 1:
            out = image_to_tokens(self.attns[0](q, k, v, height, width))
        else:
            # first half of the channels (and heads) in vertical stripes, second half in horizontal ones
            halves = [t.chunk(2, axis=-1) for t in (q, k, v)]
            out = paddle.concat([image_to_tokens(attn(*(h[i] for h in halves), height, width))
                                 for i, attn in enumerate(self.attns)], axis=-1)
        x = x + self.drop_path(self.proj_drop(self.proj(out)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class CSWinStage(nn.Layer):
    def __init__(self, dim, depth, num_heads, split_size, mlp_ratio, qkv_bias, qk_scale, drop, attn_drop,
                 drop_path_rates, last_stage):
        super().__init__()
        self.blocks = nn.LayerList([
            CSWinBlock(dim, num_heads, split_size, mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, rate, last_stage)
            for rate in drop_path_rates
        ])
        self.merge = None if last_stage else ConvTokens(dim, dim * 2, 3, 2, 1, "conv")

    def forward(self, x, height, width):
        for block in self.blocks:
            x = block(x, height, width)
        if self.merge is not None:
            x, (height, width) = self.merge(tokens_to_image(x, height, width))
        return x, (height, width)


class CSWinTransformer(Classifier):
    classifier_names = ("head",)

    def __init__(self, img_size=224, in_chans=3, class_num=1000, embed_dim=64, depths=(1, 2, 21, 1),
                 split_size=(1, 2, 7, 7), num_heads=(2, 4, 8, 16), mlp_ratio=4.0, qkv_bias=True, qk_scale=None,
                 drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1):
        super().__init__()
        self.class_num = class_num
        self.img_size = img_size  # informational: stripes follow the actual map size
        self.patch_embedding = ConvTokens(in_chans, embed_dim, 7, 4, 2, "patch_embed")
        rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.LayerList()
        for i, depth in enumerate(depths):
            first = sum(depths[:i])
            self.stages.append(CSWinStage(
                embed_dim * 2**i, depth, num_heads[i], split_size[i], mlp_ratio, qkv_bias, qk_scale, drop_rate,
                attn_drop_rate, rates[first:first + depth], i == len(depths) - 1))
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, class_num)
        init_transformer_weights(self)

    def forward_features(self, x):
        """Image -> normed last-stage tokens [B, h*w, C]."""
        x, (height, width) = self.patch_embedding(x)
        for stage in self.stages:
            x, (height, width) = stage(x, height, width)
        return self.norm(x)

    def forward_head(self, x):
        return self.head(x.mean(axis=1))


_SIZES = {
    "tiny": dict(embed_dim=64, depths=(1, 2, 21, 1), num_heads=(2, 4, 8, 16), drop_path_rate=0.2),
    "small": dict(embed_dim=64, depths=(2, 4, 32, 2), num_heads=(2, 4, 8, 16), drop_path_rate=0.4),
    "base": dict(embed_dim=96, depths=(2, 4, 32, 2), num_heads=(4, 8, 16, 32), drop_path_rate=0.5),
    "large": dict(embed_dim=144, depths=(2, 4, 32, 2), num_heads=(6, 12, 24, 24), drop_path_rate=0.5),
}
# stripe widths per stage: the third stage's stripe (and the last stage's window) is the 14 / 24 map's half
_SPLITS = {224: (1, 2, 7, 7), 384: (1, 2, 12, 12)}


def _cswin(size, img_size, class_num, kwargs):
    kwargs.pop("use_ssld", None)  # only chooses the zoo weights (registry)
    arch = dict(_SIZES[size], img_size=img_size, split_size=_SPLITS[img_size])
    return CSWinTransformer(class_num=class_num, **{**arch, **kwargs})


@register
def CSWinTransformer_tiny_224(class_num=1000, **kwargs):
    return _cswin("tiny", 224, class_num, kwargs)


@register
def CSWinTransformer_small_224(class_num=1000, **kwargs):
    return _cswin("small", 224, class_num, kwargs)


@register
def CSWinTransformer_base_224(class_num=1000, **kwargs):
    return _cswin("base", 224, class_num, kwargs)


@register
def CSWinTransformer_large_224(class_num=1000, **kwargs):
    return _cswin("large", 224, class_num, kwargs)


@register
def CSWinTransformer_base_384(class_num=1000, **kwargs):
    return _cswin("base", 384, class_num, kwargs)


@register
def CSWinTransformer_large_384(class_num=1000, **kwargs):
    return _cswin("large", 384, class_num, kwargs)
