"""PVT v2 (Wang et al., "PVT v2: Improved Baselines with Pyramid Vision Transformer", CVMJ 2022),
weight-compatible with PaddleClas's `PVT_V2_B0`..`B5` and `PVT_V2_B2_Linear`.

A four-stage pyramid like PVT v1, with the three v2 changes: overlapping patch embeddings (7x7 / 4,
then 3x3 / 2 convs), a 3x3 depthwise conv inside every MLP (`mlp.dwconv`, which also supplies the
position information, so there is no position embedding and any input size works), and - in the
`_Linear` variant - linear spatial-reduction attention: keys/values from the map average-pooled to 7x7
and projected by a 1x1 conv (+ LayerNorm + GELU), so the attention cost no longer grows with the image
squared. The other variants shrink keys/values with a stride-`sr_ratio` conv, as in PVT v1 and Twins
(whose `SubsampledAttention` is reused).
"""

from __future__ import annotations

import numpy as np
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.base import Classifier
from pcls.arch.layers import DropPath, make_act
from pcls.arch.layers.conv_tokens import ConvTokens, tokens_to_image
from pcls.arch.layers.weight_init import init_transformer_weights
from pcls.arch.registry import register
from pcls.arch.twins import SubsampledAttention

# the pooled size of keys/values in linear spatial-reduction attention
_LINEAR_POOL = 7


class PooledConv(nn.Conv2D):
    """Adaptive average pooling to 7x7, then this (1x1) conv: the `sr` of linear SRA, with a conv's keys."""

    def forward(self, x):
        return super().forward(F.adaptive_avg_pool2d(x, _LINEAR_POOL))


class LayerNormGELU(nn.LayerNorm):
    """LayerNorm then GELU (linear SRA's reduced keys/values), with a LayerNorm's keys."""

    def forward(self, x):
        return F.gelu(super().forward(x))


class PVTAttention(SubsampledAttention):
    def __init__(self, dim, num_heads, qkv_bias, qk_scale, attn_drop, proj_drop, sr_ratio, linear):
        super().__init__(dim, num_heads, qkv_bias, qk_scale, attn_drop, proj_drop, 1 if linear else sr_ratio)
        if linear:
            self.sr = PooledConv(dim, dim, 1)
            self.norm = LayerNormGELU(dim)
            self.sr_ratio = _LINEAR_POOL  # any ratio > 1 routes keys/values through sr + norm


class DWConvMlp(nn.Layer):
    """fc1 -> (ReLU, linear variant) -> 3x3 depthwise conv on the token map -> GELU -> fc2."""

    def __init__(self, dim, hidden, drop, linear):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.relu = nn.ReLU() if linear else None
        self.dwconv = nn.Sequential()
        self.dwconv.add_sublayer("dwconv", nn.Conv2D(hidden, hidden, 3, padding=1, groups=hidden))
        self.act = make_act("gelu")
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x, height, width):
        x = self.fc1(x)
        if self.relu is not None:
            x = self.relu(x)
        x = self.dwconv(tokens_to_image(x, height, width)).flatten(2).transpose([0, 2, 1])
        return self.drop(self.fc2(self.drop(self.act(x))))


class PVTBlock(nn.Layer):
    def __init__(self, dim, num_heads, mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, drop_path, sr_ratio, linear):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, epsilon=1e-6)
        self.attn = PVTAttention(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop, sr_ratio, linear)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, epsilon=1e-6)
        self.mlp = DWConvMlp(dim, int(dim * mlp_ratio), drop, linear)

    def forward(self, x, height, width):
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.mlp(self.norm2(x), height, width))


class PVTv2(Classifier):
    """Stage i: `patch_embed{i}`, `block{i}` (a list of blocks), `norm{i}` (PaddleClas's flat names)."""

    classifier_names = ("head",)

    def __init__(self, img_size=224, in_chans=3, class_num=1000, embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8),
                 mlp_ratios=(8, 8, 4, 4), qkv_bias=True, qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0,
                 drop_path_rate=0.1, depths=(3, 4, 6, 3), sr_ratios=(8, 4, 2, 1), linear=False):
        super().__init__()
        self.class_num = class_num
        self.img_size = img_size  # informational: nothing in PVT v2 depends on the input size
        self.num_stages = len(depths)
        rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        dims = [in_chans] + list(embed_dims)
        for i, depth in enumerate(depths):
            first = sum(depths[:i])
            embed = ConvTokens(dims[i], dims[i + 1], 7, 4, 3, "proj") if i == 0 else \
                ConvTokens(dims[i], dims[i + 1], 3, 2, 1, "proj")
            blocks = nn.LayerList([
                PVTBlock(dims[i + 1], num_heads[i], mlp_ratios[i], qkv_bias, qk_scale, drop_rate, attn_drop_rate,
                         rates[first + j], sr_ratios[i], linear)
                for j in range(depth)
            ])
            setattr(self, f"patch_embed{i + 1}", embed)
            setattr(self, f"block{i + 1}", blocks)
            setattr(self, f"norm{i + 1}", nn.LayerNorm(dims[i + 1], epsilon=1e-6))
        self.num_features = embed_dims[-1]
        self.head = nn.Linear(self.num_features, class_num)
        init_transformer_weights(self)

    def forward_features(self, x):
        """Image -> normed last-stage tokens [B, h*w, C]."""
        for i in range(1, self.num_stages + 1):
            x, (height, width) = getattr(self, f"patch_embed{i}")(x)
            for block in getattr(self, f"block{i}"):
                x = block(x, height, width)
            x = getattr(self, f"norm{i}")(x)
            if i < self.num_stages:
                x = tokens_to_image(x, height, width)
        return x

    def forward_head(self, x):
        return self.head(x.mean(axis=1))


_WIDE = dict(embed_dims=(64, 128, 320, 512))
# name -> architecture, as PaddleClas builds them
VARIANTS = {
    "PVT_V2_B0": dict(embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2)),
    "PVT_V2_B1": dict(_WIDE, depths=(2, 2, 2, 2)),
    "PVT_V2_B2": dict(_WIDE, depths=(3, 4, 6, 3)),
    "PVT_V2_B2_Linear": dict(_WIDE, depths=(3, 4, 6, 3), linear=True),
    "PVT_V2_B3": dict(_WIDE, depths=(3, 4, 18, 3)),
    "PVT_V2_B4": dict(_WIDE, depths=(3, 8, 27, 3)),
    "PVT_V2_B5": dict(_WIDE, depths=(3, 6, 40, 3), mlp_ratios=(4, 4, 4, 4)),
}


def _pvt_v2(name, class_num, kwargs):
    kwargs.pop("use_ssld", None)  # only chooses the zoo weights (registry)
    return PVTv2(class_num=class_num, **{**VARIANTS[name], **kwargs})


@register
def PVT_V2_B0(class_num=1000, **kwargs):
    return _pvt_v2("PVT_V2_B0", class_num, kwargs)


@register
def PVT_V2_B1(class_num=1000, **kwargs):
    return _pvt_v2("PVT_V2_B1", class_num, kwargs)


@register
def PVT_V2_B2(class_num=1000, **kwargs):
    return _pvt_v2("PVT_V2_B2", class_num, kwargs)


@register
def PVT_V2_B2_Linear(class_num=1000, **kwargs):
    return _pvt_v2("PVT_V2_B2_Linear", class_num, kwargs)


@register
def PVT_V2_B3(class_num=1000, **kwargs):
    return _pvt_v2("PVT_V2_B3", class_num, kwargs)


@register
def PVT_V2_B4(class_num=1000, **kwargs):
    return _pvt_v2("PVT_V2_B4", class_num, kwargs)


@register
def PVT_V2_B5(class_num=1000, **kwargs):
    return _pvt_v2("PVT_V2_B5", class_num, kwargs)
