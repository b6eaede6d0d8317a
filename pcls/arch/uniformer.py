"""UniFormer (Li et al. 2022, "UniFormer: Unifying Convolution and Self-attention for Visual Recognition"),
weight-compatible with PaddleClas.

A four-stage pyramid whose blocks share one shape - dynamic position embedding (a 3x3 depthwise conv added
back), token "affinity", feed-forward - and differ in the affinity: the two shallow stages learn *local*
affinity with a 5x5 depthwise conv between 1x1 convs (BatchNorm, on the feature map), the two deep stages
*global* affinity with multi-head self-attention (LayerNorm, on tokens). Stages are joined by strided patch
embeddings (non-overlapping 4x4 / 2x2 convs + LayerNorm, or the "plus" models' overlapping 3x3 conv-BN stem).
No position tables, so any input size works. `_ls` adds layer scale to the attention blocks.
"""

from __future__ import annotations

import numpy as np
import paddle.nn as nn

from pcls.arch.layers.patch_stages import PatchStageClassifier
from pcls.arch.layers import Attention, DropPath, Mlp
from pcls.arch.layers.conv_mlp import ConvMlp
from pcls.arch.layers.weight_init import init_transformer_weights
from pcls.arch.registry import register


class PatchEmbed(nn.Layer):
    """Non-overlapping patch x patch conv, then LayerNorm over channels; stays a [B, C, H, W] map."""

    def __init__(self, in_channels, out_channels, patch_size):
        super().__init__()
        self.norm = nn.LayerNorm(out_channels)
        self.proj_conv = nn.Conv2D(in_channels, out_channels, patch_size, stride=patch_size)

    def forward(self, x):
        x = self.proj_conv(x)
        return self.norm(x.transpose([0, 2, 3, 1])).transpose([0, 3, 1, 2])


class ConvEmbed(nn.Layer):
    """Overlapping stride-2 3x3 conv-BN embedding ("plus" models); the first stage uses two, GELU between."""

    def __init__(self, in_channels, out_channels, first=False):
        super().__init__()
        layers = []
        if first:
            mid = out_channels // 2
            layers = [nn.Conv2D(in_channels, mid, 3, 2, 1), nn.BatchNorm2D(mid), nn.GELU()]
            in_channels = mid
        self.proj = nn.Sequential(*layers, nn.Conv2D(in_channels, out_channels, 3, 2, 1),
                                  nn.BatchNorm2D(out_channels))

    def forward(self, x):
        return self.proj(x)


class CBlock(nn.Layer):
    """Local-affinity block: x + dwconv3(x); x + 1x1 -> dwconv5 -> 1x1 (BN first); x + conv MLP (BN first)."""

    def __init__(self, dim, mlp_ratio=4.0, drop=0.0, drop_path=0.0):
        super().__init__()
        self.pos_embed = nn.Conv2D(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.BatchNorm2D(dim)
        self.conv1 = nn.Conv2D(dim, dim, 1)
        self.conv2 = nn.Conv2D(dim, dim, 1)
        self.attn = nn.Conv2D(dim, dim, 5, padding=2, groups=dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.BatchNorm2D(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio), drop=drop, names=("fc1_conv", "fc2_conv"))

    def forward(self, x):
        x = x + self.pos_embed(x)
        x = x + self.drop_path(self.conv2(self.attn(self.conv1(self.norm1(x)))))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SABlock(nn.Layer):
    """Global-affinity block: x + dwconv3(x), then a pre-norm transformer block on the flattened tokens
    (with per-channel layer scale gamma_1/gamma_2 when layer_scale is set)."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=True, qk_scale=None, drop=0.0, attn_drop=0.0,
                 drop_path=0.0, epsilon=1e-6, layer_scale=None):
        super().__init__()
        self.pos_embed = nn.Conv2D(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim, epsilon=epsilon)
        self.attn = Attention(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, epsilon=epsilon)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.gamma_1 = self.gamma_2 = None
        if layer_scale:
            init = nn.initializer.Constant(layer_scale)
            self.gamma_1 = self.create_parameter([dim], default_initializer=init)
            self.gamma_2 = self.create_parameter([dim], default_initializer=init)

    def forward(self, x):
        x = x + self.pos_embed(x)
        height, width = x.shape[2], x.shape[3]
        x = x.flatten(2).transpose([0, 2, 1])
        attn = self.attn(self.norm1(x))
        if self.gamma_1 is not None:
            attn = self.gamma_1 * attn
        x = x + self.drop_path(attn)
        mlp = self.mlp(self.norm2(x))
        if self.gamma_2 is not None:
            mlp = self.gamma_2 * mlp
        x = x + self.drop_path(mlp)
        return x.transpose([0, 2, 1]).reshape([0, 0, height, width])


class UniFormer(PatchStageClassifier):
    """depth: blocks per stage (two CBlock stages, two SABlock stages); head_dim sets the attention heads
    (dim // head_dim); conv_stem: the overlapping conv-BN patch embeddings of the "plus" models;
    layer_scale: initial value of the attention blocks' layer scale (None: no layer scale)."""


    def __init__(self, depth=(3, 4, 8, 3), embed_dim=(64, 128, 320, 512), head_dim=64, mlp_ratio=4.0, qkv_bias=True,
                 qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0, epsilon=1e-6, conv_stem=False,
                 layer_scale=None, in_chans=3, class_num=1000, use_ssld=False):
        super().__init__()
        self.class_num = class_num
        self.use_ssld = use_ssld  # only picks the published *_ssld weights (see the registry)
        channels = [in_chans, *embed_dim]
        for i in range(4):
            if conv_stem:
                embed = ConvEmbed(channels[i], channels[i + 1], first=i == 0)
            else:
                embed = PatchEmbed(channels[i], channels[i + 1], 4 if i == 0 else 2)
            setattr(self, f"patch_embed{i + 1}", embed)
        self.pos_drop = nn.Dropout(drop_rate)
        rates = np.linspace(0, drop_path_rate, sum(depth)).tolist()
        for i, (dim, blocks) in enumerate(zip(embed_dim, depth)):
            stage_rates = rates[sum(depth[:i]):sum(depth[:i + 1])]
            if i < 2:
                stage = [CBlock(dim, mlp_ratio, drop_rate, rate) for rate in stage_rates]
            else:
                stage = [SABlock(dim, dim // head_dim, mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate, rate,
                                 epsilon, layer_scale) for rate in stage_rates]
            setattr(self, f"blocks{i + 1}", nn.LayerList(stage))
        self.norm = nn.BatchNorm2D(embed_dim[-1])
        self.head = nn.Linear(embed_dim[-1], class_num)
        init_transformer_weights(self)



_SMALL = dict(depth=(3, 4, 8, 3), drop_path_rate=0.1)
_SMALL_PLUS = dict(depth=(3, 5, 9, 3), conv_stem=True, drop_path_rate=0.1)
_BASE = dict(depth=(5, 8, 20, 7), drop_path_rate=0.3)


def _uniformer(class_num, kwargs, **arch):
    return UniFormer(class_num=class_num, **{**arch, **kwargs})


@register
def UniFormer_small(class_num=1000, **kwargs):
    return _uniformer(class_num, kwargs, **_SMALL)


@register
def UniFormer_small_plus(class_num=1000, **kwargs):
    return _uniformer(class_num, kwargs, head_dim=32, **_SMALL_PLUS)


@register
def UniFormer_small_plus_dim64(class_num=1000, **kwargs):
    return _uniformer(class_num, kwargs, head_dim=64, **_SMALL_PLUS)


@register
def UniFormer_base(class_num=1000, **kwargs):
    return _uniformer(class_num, kwargs, **_BASE)


@register
def UniFormer_base_ls(class_num=1000, **kwargs):
    return _uniformer(class_num, kwargs, layer_scale=1e-6, **_BASE)
