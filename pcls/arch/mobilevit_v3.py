"""MobileViTV3 (Wadekar & Chaurasia 2022, "MobileViTv3: Mobile-Friendly Vision Transformer with Simple and
Effective Fusion of Local, Global and Input Features"), weight-compatible with PaddleClas.

Three changes to the MobileViT block's fusion: the local 3x3 conv becomes depthwise, the fusion conv is 1x1 and
fuses the *local* features (not the block input) with the global ones, and the block input is added back.
XXS / XS / S (and the `_L2` models, with 2 instead of 4 transformer layers in stage 4) build on MobileViT's
multi-head attention over [B*P, N, C] tokens; x0_5 / x0_75 / x1_0 build on MobileViTV2's separable attention
(blocks shared from `pcls.arch.layers.mobilevit_blocks`).
"""

from __future__ import annotations

import paddle
import paddle.nn as nn

from pcls.arch.layers import ConvBNAct, attend, merge_heads, split_heads
from pcls.arch.layers.mobilevit_blocks import (
    MobileViTStyleNet,
    build_stages,
    fold_patches,
    separable_attention_factory,
    unfold_patches,
    v2_stages,
)
from pcls.arch.layers.weight_init import init_transformer_weights
from pcls.arch.registry import register

_CONV_NORM = ("conv", "norm")


class MultiHeadAttention(nn.Layer):
    def __init__(self, dim, num_heads, attn_drop=0.0):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv_proj = nn.Linear(dim, dim * 3)
        self.attn_drop = nn.Dropout(attn_drop)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x):
        q, k, v = split_heads(self.qkv_proj(x), 3, self.num_heads)
        return self.out_proj(merge_heads(attend(q, k, v, self.scale, attn_drop=self.attn_drop)))


class TransformerEncoder(nn.Layer):
    """Pre-norm transformer layer as two Sequentials (LN, attention, dropout) and (LN, fc, SiLU, dropout, fc,
    dropout), each added to its input."""

    def __init__(self, dim, ffn_dim, num_heads, drop=0.1, attn_drop=0.0, ffn_drop=0.0):
        super().__init__()
        self.pre_norm_mha = nn.Sequential(nn.LayerNorm(dim), MultiHeadAttention(dim, num_heads, attn_drop),
                                          nn.Dropout(drop))
        self.pre_norm_ffn = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, ffn_dim), nn.Silu(), nn.Dropout(ffn_drop),
                                          nn.Linear(ffn_dim, dim), nn.Dropout(drop))

    def forward(self, x):
        x = x + self.pre_norm_mha(x)
        return x + self.pre_norm_ffn(x)


class MobileViTV3Block(nn.Layer):
    """depthwise 3x3 + 1x1 to dim (local) -> transformers over 2x2 patches -> fold -> 1x1 back (conv_proj) ->
    1x1 fusion of [local, global] -> + block input."""

    def __init__(self, in_channels, dim, ffn_dim, depth, num_heads=4, patch_size=2, drop=0.1):
        super().__init__()
        self.patch = patch_size
        self.local_rep = nn.Sequential()
        self.local_rep.add_sublayer("conv_3x3", ConvBNAct(in_channels, in_channels, 3, groups=in_channels, act="silu",
                                                          names=_CONV_NORM))
        self.local_rep.add_sublayer("conv_1x1", nn.Sequential(("conv", nn.Conv2D(in_channels, dim, 1,
                                                                                 bias_attr=False))))
        self.global_rep = nn.Sequential(*[TransformerEncoder(dim, ffn_dim, num_heads, drop) for _ in range(depth)],
                                        nn.LayerNorm(dim))
        self.conv_proj = ConvBNAct(dim, in_channels, 1, act="silu", names=_CONV_NORM)
        self.fusion = ConvBNAct(dim + in_channels, in_channels, 1, act="silu", names=_CONV_NORM)

    def forward(self, x):
        local = self.local_rep(x)
        tokens, info = unfold_patches(local, self.patch, self.patch)
        fm = self.conv_proj(fold_patches(self.global_rep(tokens), info, self.patch, self.patch))
        return self.fusion(paddle.concat([local, fm], axis=1)) + x


def _transformer_factory(dropout):
    def make(in_channels, stage, dilation):
        # as in the reference, output_stride dilates only the MobileNetV2 block entering the stage, not the
        # transformer block's local 3x3 conv
        return MobileViTV3Block(in_channels, stage["dim"], stage["ffn_dim"], stage["depth"], drop=dropout)

    return make


class MobileViTV3(MobileViTStyleNet):
    """stem, stages: see `build_stages`; v2_based: the stages use MobileViTV2's separable-attention blocks (with
    V3's fusion) and there is no last 1x1 expansion conv."""

    def __init__(self, stem, stages, v2_based=False, class_num=1000, dropout=0.1, classifier_dropout=0.1,
                 output_stride=None, last_layer_exp_factor=4, use_ssld=False):
        super().__init__()
        self.class_num = class_num
        self.use_ssld = use_ssld  # only picks the published *_ssld weights (see the registry)
        make = separable_attention_factory(True) if v2_based else _transformer_factory(dropout)
        channels = build_stages(self, stem, stages, output_stride, make)
        if v2_based:
            self.conv_1x1_exp = nn.Identity()
        else:
            expanded = min(last_layer_exp_factor * channels, 960)
            self.conv_1x1_exp = ConvBNAct(channels, expanded, 1, act="silu", names=_CONV_NORM)
            channels = expanded
        self._build_head(channels, class_num, classifier_dropout)
        init_transformer_weights(self)


def _v1_stages(expand, layer1, layer2, transformer_stages):
    """MobileNetV2 stages 1-2 and three transformer stages (out, transformer dim, ffn dim, layers)."""
    stages = [dict(out=layer1, blocks=1, stride=1, expand=expand), dict(out=layer2, blocks=3, stride=2, expand=expand)]
    stages += [dict(out=out, dim=dim, ffn_dim=ffn, depth=depth, stride=2, expand=expand)
               for out, dim, ffn, depth in transformer_stages]
    return stages


_V1_BASED = {  # expand, layer_1, layer_2, (out, transformer dim, ffn dim, layers) of layers 3-5
    "XXS": (2, 16, 24, ((64, 64, 128, 2), (80, 80, 160, 4), (128, 96, 192, 3))),
    "XS": (4, 32, 48, ((96, 96, 192, 2), (160, 120, 240, 4), (160, 144, 288, 3))),
    "S": (4, 32, 64, ((128, 144, 288, 2), (256, 192, 384, 4), (320, 240, 480, 3))),
}


def _v1_based(variant, class_num, kwargs, layer4_depth=None):
    expand, layer1, layer2, transformer_stages = _V1_BASED[variant]
    if layer4_depth is not None:  # the _L2 models: fewer transformer layers in stage 4
        transformer_stages = list(transformer_stages)
        transformer_stages[1] = transformer_stages[1][:3] + (layer4_depth,)
    return MobileViTV3(16, _v1_stages(expand, layer1, layer2, transformer_stages), class_num=class_num, **kwargs)


def _v2_based(width_multiplier, class_num, kwargs):
    stem, stages = v2_stages(width_multiplier)
    return MobileViTV3(stem, stages, v2_based=True, class_num=class_num, **kwargs)


@register
def MobileViTV3_XXS(class_num=1000, **kwargs):
    return _v1_based("XXS", class_num, kwargs)


@register
def MobileViTV3_XS(class_num=1000, **kwargs):
    return _v1_based("XS", class_num, kwargs)


@register
def MobileViTV3_S(class_num=1000, **kwargs):
    return _v1_based("S", class_num, kwargs)


@register
def MobileViTV3_XXS_L2(class_num=1000, **kwargs):
    return _v1_based("XXS", class_num, kwargs, layer4_depth=2)


@register
def MobileViTV3_XS_L2(class_num=1000, **kwargs):
    return _v1_based("XS", class_num, kwargs, layer4_depth=2)


@register
def MobileViTV3_S_L2(class_num=1000, **kwargs):
    return _v1_based("S", class_num, kwargs, layer4_depth=2)


@register
def MobileViTV3_x0_5(class_num=1000, **kwargs):
    return _v2_based(0.5, class_num, kwargs)


@register
def MobileViTV3_x0_75(class_num=1000, **kwargs):
    return _v2_based(0.75, class_num, kwargs)


@register
def MobileViTV3_x1_0(class_num=1000, **kwargs):
    return _v2_based(1.0, class_num, kwargs)
