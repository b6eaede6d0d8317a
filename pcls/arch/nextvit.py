"""Next-ViT (Li et al. 2022, "Next-ViT: Next Generation Vision Transformer for Efficient Deployment in
Realistic Industrial Scenarios"), weight-compatible with PaddleClas.

Each stage stacks Next Convolution Blocks (NCB: multi-head convolutional attention, a grouped 3x3 conv with
one group per head, then a BN-preceded 1x1-conv MLP) and ends with a Next Transformer Block (NTB): efficient
multi-head self-attention on 3/4 of the channels, whose keys/values come from the token sequence average-pooled
by sr_ratio^2, and an MHCA path on the rest, concatenated before the MLP. All norms are BatchNorm placed
before a linear layer, so `rep()` folds them into it for deployment (the paper's "merge BN"). No position
tables: any input size works (the 384 models are the 224 architecture fine-tuned at 384).
"""

from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import ConvBNAct, DropPath, attend, make_divisible, merge_heads, split_heads
from pcls.arch.layers.conv_mlp import ConvMlp
from pcls.arch.layers.residual import ProjectionShortcut
from pcls.arch.layers.weight_init import ones_, trunc_normal_, zeros_
from pcls.arch.registry import register

NORM_EPS = 1e-5
_CONV_NORM = ("conv", "norm")


def bn_affine(bn):
    """(scale, shift) numpy float64 vectors with bn(x) == scale * x + shift per channel in eval mode."""
    scale = bn.weight.numpy().astype("float64") / np.sqrt(bn._variance.numpy().astype("float64") + bn._epsilon)
    return scale, bn.bias.numpy().astype("float64") - bn._mean.numpy().astype("float64") * scale


def fold_input_affine(layer, scale, shift):
    """Rewrite Linear / 1x1 Conv2D `layer` so that layer'(x) == layer(scale * x + shift) (per input channel)."""
    weight = layer.weight.numpy().astype("float64")
    bias = layer.bias.numpy().astype("float64")
    if isinstance(layer, nn.Linear):  # weight [in, out]
        bias = bias + shift @ weight
        weight = weight * scale[:, None]
    else:  # 1x1 conv weight [out, in, 1, 1]
        bias = bias + weight[:, :, 0, 0] @ shift
        weight = weight * scale[None, :, None, None]
    layer.weight.set_value(weight.astype("float32"))
    layer.bias.set_value(bias.astype("float32"))


def patch_embed(in_channels, out_channels, stride=1):
    """Channel change by 1x1 conv-BN, after a 2x2 average pool (ceil mode: an odd last row/column is kept) when
    the block downsamples - a ResNet-D projection shortcut; an identity when neither applies (no parameters,
    like the reference)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return ProjectionShortcut(in_channels, out_channels, stride, avg_down=True, names=_CONV_NORM)


class MHCA(nn.Layer):
    """Multi-head convolutional attention: grouped 3x3 conv (a group per head) -> BN -> ReLU -> 1x1 projection."""

    def __init__(self, channels, head_dim):
        super().__init__()
        self.group_conv3x3 = nn.Conv2D(channels, channels, 3, padding=1, groups=channels // head_dim,
                                       bias_attr=False)
        self.norm = nn.BatchNorm2D(channels, epsilon=NORM_EPS)
        self.act = nn.ReLU()
        self.projection = nn.Conv2D(channels, channels, 1, bias_attr=False)

    def forward(self, x):
        return self.projection(self.act(self.norm(self.group_conv3x3(x))))


def _mlp(channels, mlp_ratio, drop):
    return ConvMlp(channels, make_divisible(channels * mlp_ratio, 32), act="relu", drop=drop, names=("conv1", "conv2"))


class NCB(nn.Layer):
    """Next Convolution Block: x + MHCA(x), then x + MLP(BN(x))."""

    def __init__(self, in_channels, out_channels, stride=1, drop_path=0.0, drop=0.0, head_dim=32, mlp_ratio=3):
        super().__init__()
        self.patch_embed = patch_embed(in_channels, out_channels, stride)
        self.mhca = MHCA(out_channels, head_dim)
        self.attention_path_dropout = DropPath(drop_path)
        self.norm = nn.BatchNorm2D(out_channels, epsilon=NORM_EPS)
        self.mlp = _mlp(out_channels, mlp_ratio, drop)
        self.mlp_path_dropout = DropPath(drop_path)

    def forward(self, x):
        x = self.patch_embed(x)
        x = x + self.attention_path_dropout(self.mhca(x))
        return x + self.mlp_path_dropout(self.mlp(self.norm(x)))

    def rep(self):
        if isinstance(self.norm, nn.BatchNorm2D):
            fold_input_affine(self.mlp.first, *bn_affine(self.norm))
            self.norm = nn.Identity()


class EMHSA(nn.Layer):
    """Efficient multi-head self-attention over [B, N, C] tokens: keys and values come from the sequence
    average-pooled in windows of sr_ratio^2 consecutive tokens and batch-normalised."""

    def __init__(self, dim, head_dim=32, qkv_bias=True, attn_drop=0.0, proj_drop=0.0, sr_ratio=1):
        super().__init__()
        self.num_heads = dim // head_dim
        self.scale = head_dim**-0.5
        bias = None if qkv_bias else False
        self.q = nn.Linear(dim, dim, bias_attr=bias)
        self.k = nn.Linear(dim, dim, bias_attr=bias)
        self.v = nn.Linear(dim, dim, bias_attr=bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(proj_drop)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.AvgPool1D(sr_ratio**2, sr_ratio**2)
            self.norm = nn.BatchNorm1D(dim, epsilon=NORM_EPS)

    def forward(self, x):
        (q,) = split_heads(self.q(x), 1, self.num_heads)
        source = x
        if self.sr_ratio > 1:
            source = self.norm(self.sr(x.transpose([0, 2, 1]))).transpose([0, 2, 1])
        (k,) = split_heads(self.k(source), 1, self.num_heads)
        (v,) = split_heads(self.v(source), 1, self.num_heads)
        x = merge_heads(attend(q, k, v, self.scale, attn_drop=self.attn_drop))
        return self.proj_drop(self.proj(x))

    def rep(self, pre_scale, pre_shift):
        """Fold the block's pre-norm (scale, shift) into q, k, v, and the pooled-source BN into k and v
        (average pooling commutes with a per-channel affine map)."""
        fold_input_affine(self.q, pre_scale, pre_shift)
        scale, shift = pre_scale, pre_shift
        if self.sr_ratio > 1 and isinstance(self.norm, nn.BatchNorm1D):
            sr_scale, sr_shift = bn_affine(self.norm)
            scale, shift = pre_scale * sr_scale, pre_shift * sr_scale + sr_shift
            self.norm = nn.Identity()
        fold_input_affine(self.k, scale, shift)
        fold_input_affine(self.v, scale, shift)


class NTB(nn.Layer):
    """Next Transformer Block: E-MHSA on mix_block_ratio of the output channels, MHCA on the rest (fed by
    a 1x1 projection of the attention output), concatenated, then x + MLP(BN(x))."""

    def __init__(self, in_channels, out_channels, drop_path=0.0, stride=1, sr_ratio=1, mlp_ratio=2, head_dim=32,
                 mix_block_ratio=0.75, attn_drop=0.0, drop=0.0):
        super().__init__()
        mhsa_channels = make_divisible(int(out_channels * mix_block_ratio), 32)
        mhca_channels = out_channels - mhsa_channels
        self.patch_embed = patch_embed(in_channels, mhsa_channels, stride)
        self.norm1 = nn.BatchNorm2D(mhsa_channels, epsilon=NORM_EPS)
        self.e_mhsa = EMHSA(mhsa_channels, head_dim, sr_ratio=sr_ratio, attn_drop=attn_drop, proj_drop=drop)
        self.mhsa_path_dropout = DropPath(drop_path * mix_block_ratio)
        self.projection = patch_embed(mhsa_channels, mhca_channels)
        self.mhca = MHCA(mhca_channels, head_dim)
        self.mhca_path_dropout = DropPath(drop_path * (1 - mix_block_ratio))
        self.norm2 = nn.BatchNorm2D(out_channels, epsilon=NORM_EPS)
        self.mlp = _mlp(out_channels, mlp_ratio, drop)
        self.mlp_path_dropout = DropPath(drop_path)

    def forward(self, x):
        x = self.patch_embed(x)
        height, width = x.shape[2], x.shape[3]
        tokens = self.norm1(x).flatten(2).transpose([0, 2, 1])
        out = self.mhsa_path_dropout(self.e_mhsa(tokens))
        x = x + out.transpose([0, 2, 1]).reshape([0, 0, height, width])
        out = self.projection(x)
        out = out + self.mhca_path_dropout(self.mhca(out))
        x = paddle.concat([x, out], axis=1)
        return x + self.mlp_path_dropout(self.mlp(self.norm2(x)))

    def rep(self):
        if isinstance(self.norm1, nn.BatchNorm2D):
            self.e_mhsa.rep(*bn_affine(self.norm1))
            fold_input_affine(self.mlp.first, *bn_affine(self.norm2))
            self.norm1, self.norm2 = nn.Identity(), nn.Identity()


class NextViT(Classifier):
    """depths: blocks per stage. Stage widths are fixed by the paper (96 / 192+256 / 384+512 / 768+1024);
    stage 3 repeats (4 NCB, 1 NTB) depths[2] // 5 times."""

    classifier_names = ("proj_head",)

    def __init__(self, depths, stem_chs=(64, 32, 64), drop_path_rate=0.1, attn_drop=0.0, drop=0.0, class_num=1000,
                 strides=(1, 2, 2, 2), sr_ratios=(8, 4, 2, 1), head_dim=32, mix_block_ratio=0.75, use_ssld=False):
        super().__init__()
        self.class_num = class_num
        self.use_ssld = use_ssld  # only picks the published *_ssld weights (see the registry)
        plans = [  # (block type, width) per block
            [("ncb", 96)] * depths[0],
            [("ncb", 192)] * (depths[1] - 1) + [("ntb", 256)],
            ([("ncb", 384)] * 4 + [("ntb", 512)]) * (depths[2] // 5),
            [("ncb", 768)] * (depths[3] - 1) + [("ntb", 1024)],
        ]
        chs = [3, *stem_chs, stem_chs[-1]]
        self.stem = nn.Sequential(*[
            ConvBNAct(chs[i], chs[i + 1], 3, stride=2 if i in (0, 3) else 1, names=_CONV_NORM, bn_epsilon=NORM_EPS)
            for i in range(4)
        ])
        rates = np.linspace(0, drop_path_rate, sum(len(p) for p in plans)).tolist()
        blocks, channels = [], stem_chs[-1]
        for stage, plan in enumerate(plans):
            for i, (kind, width) in enumerate(plan):
                stride = strides[stage] if i == 0 else 1
                rate = rates[len(blocks)]
                if kind == "ncb":
                    blocks.append(NCB(channels, width, stride, rate, drop, head_dim))
                else:
                    blocks.append(NTB(channels, width, rate, stride, sr_ratios[stage], head_dim=head_dim,
                                      mix_block_ratio=mix_block_ratio, attn_drop=attn_drop, drop=drop))
                channels = width
        self.features = nn.Sequential(*blocks)
        self.norm = nn.BatchNorm2D(channels, epsilon=NORM_EPS)
        self.avgpool = nn.AdaptiveAvgPool2D(1)
        self.proj_head = nn.Sequential(nn.Linear(channels, class_num))
        self._init_weights()

    def _init_weights(self):
        for layer in self.sublayers():
            if isinstance(layer, (nn.Linear, nn.Conv2D)):
                trunc_normal_(layer.weight)
                if layer.bias is not None:
                    zeros_(layer.bias)
            elif isinstance(layer, (nn.BatchNorm2D, nn.BatchNorm1D)):
                ones_(layer.weight)
                zeros_(layer.bias)

    def forward_features(self, x):
        return self.norm(self.features(self.stem(x)))

    def forward_head(self, x):
        return self.proj_head(paddle.flatten(self.avgpool(x), 1))

    def rep(self):
        """Deploy conversion (use in eval mode): fold every pre-norm BatchNorm into the linear layer after it."""
        for layer in self.sublayers():
            if isinstance(layer, (NCB, NTB)):
                layer.rep()
        return self


_DEPTHS = {"small": ((3, 4, 10, 3), 0.1), "base": ((3, 4, 20, 3), 0.2), "large": ((3, 4, 30, 3), 0.2)}


def _nextvit(size, class_num, kwargs):
    depths, rate = _DEPTHS[size]
    return NextViT(depths, class_num=class_num, **{"drop_path_rate": rate, **kwargs})


@register
def NextViT_small_224(class_num=1000, **kwargs):
    return _nextvit("small", class_num, kwargs)


@register
def NextViT_base_224(class_num=1000, **kwargs):
    return _nextvit("base", class_num, kwargs)


@register
def NextViT_large_224(class_num=1000, **kwargs):
    return _nextvit("large", class_num, kwargs)


@register
def NextViT_small_384(class_num=1000, **kwargs):
    return _nextvit("small", class_num, kwargs)


@register
def NextViT_base_384(class_num=1000, **kwargs):
    return _nextvit("base", class_num, kwargs)


@register
def NextViT_large_384(class_num=1000, **kwargs):
    return _nextvit("large", class_num, kwargs)
