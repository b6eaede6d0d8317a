"""CvT (Wu et al., "CvT: Introducing Convolutions to Vision Transformers", ICCV 2021), weight-compatible
with PaddleClas's `CvT_13_224/384`, `CvT_21_224/384` and `CvT_W24_384`.

What is special: convolutions at both ends of attention. Each of the three stages starts with a
convolutional token embedding (7x7 / 4, then 3x3 / 2, + LayerNorm), and the attention's queries, keys
and values come from a "convolutional projection" - a 3x3 depthwise conv + BatchNorm over the token
map (stride 1 for queries, 2 for keys/values, so attention looks at a 4x smaller map) - before the
usual linear projections. There is no position embedding, so any input size works. A class token
joins in the last stage only, and the head reads it. As in the authors' code, scores are scaled by
dim ** -0.5 (the full width, not the head width), the MLPs use QuickGELU (x * sigmoid(1.702 x)) and
stochastic depth is set per stage (only the last stage drops paths by default).
"""

from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.base import Classifier
from pcls.arch.layers import ConvBNAct, DropPath, Mlp, attend, merge_heads, split_heads
from pcls.arch.layers.conv_tokens import ConvTokens, image_to_tokens, tokens_to_image
from pcls.arch.layers.weight_init import init_transformer_weights, trunc_normal_
from pcls.arch.registry import register


class QuickGELU(nn.Layer):
    """x * sigmoid(1.702 x), the sigmoid approximation of GELU CvT was trained with."""

    def forward(self, x):
        return x * F.sigmoid(1.702 * x)


class ConvAttention(nn.Layer):
    def __init__(self, dim, num_heads, qkv_bias, attn_drop, proj_drop, stride_kv=2, stride_q=1, has_cls_token=False):
        super().__init__()
        self.num_heads, self.has_cls_token = num_heads, has_cls_token
        self.scale = dim**-0.5
        for name, stride in (("q", stride_q), ("k", stride_kv), ("v", stride_kv)):
            setattr(self, f"conv_proj_{name}", ConvBNAct(dim, dim, 3, stride, groups=dim, act=None))
        bias = None if qkv_bias else False
        self.proj_q = nn.Linear(dim, dim, bias_attr=bias)
        self.proj_k = nn.Linear(dim, dim, bias_attr=bias)
        self.proj_v = nn.Linear(dim, dim, bias_attr=bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, height, width):
        cls_token = None
        if self.has_cls_token:
            cls_token, x = x[:, :1], x[:, 1:]
        image = tokens_to_image(x, height, width)
        heads = []
        for name in ("q", "k", "v"):
            tokens = image_to_tokens(getattr(self, f"conv_proj_{name}")(image))
            if cls_token is not None:
                tokens = paddle.concat([cls_token, tokens], axis=1)
            (projected,) = split_heads(getattr(self, f"proj_{name}")(tokens), 1, self.num_heads)
            heads.append(projected)
        out = merge_heads(attend(*heads, self.scale, attn_drop=self.attn_drop))
        return self.proj_drop(self.proj(out))


class CvTBlock(nn.Layer):
    def __init__(self, dim, num_heads, mlp_ratio, qkv_bias, drop, attn_drop, drop_path, has_cls_token):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ConvAttention(dim, num_heads, qkv_bias, attn_drop, drop, has_cls_token=has_cls_token)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act=QuickGELU(), drop=drop)

    def forward(self, x, height, width):
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class CvTStage(nn.Layer):
    def __init__(self, in_dim, dim, depth, num_heads, patch, mlp_ratio, qkv_bias, drop, attn_drop, drop_path_rates,
                 has_cls_token):
        super().__init__()
        kernel, stride, padding = patch
        self.patch_embed = ConvTokens(in_dim, dim, kernel, stride, padding, "proj")
        if has_cls_token:
            self.cls_token = self.create_parameter([1, 1, dim], default_initializer=trunc_normal_)
        else:
            self.cls_token = None
        self.pos_drop = nn.Dropout(drop)
        self.blocks = nn.LayerList([
            CvTBlock(dim, num_heads, mlp_ratio, qkv_bias, drop, attn_drop, rate, has_cls_token)
            for rate in drop_path_rates
        ])

    def forward(self, x):
        """image [B, C, H, W] -> (map [B, C', h, w], class token [B, 1, C'] or None)."""
        x, (height, width) = self.patch_embed(x)
        if self.cls_token is not None:
            x = paddle.concat([self.cls_token.expand([x.shape[0], -1, -1]), x], axis=1)
        x = self.pos_drop(x)
        for block in self.blocks:
            x = block(x, height, width)
        cls_token = None
        if self.cls_token is not None:
            cls_token, x = x[:, :1], x[:, 1:]
        return tokens_to_image(x, height, width), cls_token


# (kernel, stride, padding) of each stage's convolutional token embedding
_PATCHES = ((7, 4, 2), (3, 2, 1), (3, 2, 1))


class CvT(Classifier):
    """Stages are `stage0`..`stage2` (PaddleClas's names); forward_features returns the class token."""

    classifier_names = ("head",)

    def __init__(self, in_chans=3, class_num=1000, embed_dims=(64, 192, 384), depths=(1, 2, 10), num_heads=(1, 3, 6),
                 mlp_ratio=4.0, qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=(0.0, 0.0, 0.1),
                 img_size=None):
        super().__init__()
        self.class_num = class_num
        self.img_size = img_size  # informational: nothing in CvT depends on the input size
        self.num_stages = len(depths)
        if isinstance(drop_path_rate, (int, float)):
            drop_path_rate = (0.0,) * (len(depths) - 1) + (drop_path_rate,)  # a single rate: the last stage's
        dims = [in_chans] + list(embed_dims)
        for i, depth in enumerate(depths):
            rates = np.linspace(0, drop_path_rate[i], depth).tolist()  # grows within each stage
            setattr(self, f"stage{i}", CvTStage(
                dims[i], dims[i + 1], depth, num_heads[i], _PATCHES[i], mlp_ratio, qkv_bias, drop_rate,
                attn_drop_rate, rates, i == len(depths) - 1))
        self.num_features = embed_dims[-1]
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, class_num)
        init_transformer_weights(self)

    def forward_features(self, x):
        """Image -> normed class token [B, C]."""
        for i in range(self.num_stages):
            x, cls_token = getattr(self, f"stage{i}")(x)
        return self.norm(cls_token).squeeze(1)

    def forward_head(self, x):
        return self.head(x)


_SIZES = {
    "13": dict(embed_dims=(64, 192, 384), depths=(1, 2, 10), num_heads=(1, 3, 6)),
    "21": dict(embed_dims=(64, 192, 384), depths=(1, 4, 16), num_heads=(1, 3, 6)),
    "W24": dict(embed_dims=(192, 768, 1024), depths=(2, 2, 20), num_heads=(3, 12, 16), drop_path_rate=(0.0, 0.0, 0.3)),
}


def _cvt(size, img_size, class_num, kwargs):
    kwargs.pop("use_ssld", None)  # only chooses the zoo weights (registry)
    return CvT(class_num=class_num, img_size=img_size, **{**_SIZES[size], **kwargs})


@register
def CvT_13_224(class_num=1000, **kwargs):
    return _cvt("13", 224, class_num, kwargs)


@register
def CvT_13_384(class_num=1000, **kwargs):
    return _cvt("13", 384, class_num, kwargs)


@register
def CvT_21_224(class_num=1000, **kwargs):
    return _cvt("21", 224, class_num, kwargs)


@register
def CvT_21_384(class_num=1000, **kwargs):
    return _cvt("21", 384, class_num, kwargs)


@register
def CvT_W24_384(class_num=1000, **kwargs):
    return _cvt("W24", 384, class_num, kwargs)
