"""Blocks the MobileViT families share (MobileViT, MobileViTV2, MobileViTV3).

- `unfold_patches` / `fold_patches`: a feature map as p_h x p_w patches for the transformer, in the two layouts
  the reference models use: "pixel-major" [B*P, N, C] token sequences (MobileViT, MobileViTV3 XXS/XS/S) and the
  [B, C, P, N] map of MobileViTV2-style blocks. Maps whose sides are not a multiple of the patch are resized
  bilinearly to the next multiple and back (the reference does so for the former; for the latter it has no
  answer, so there any input size works here while the reference needs multiples of 32).
- `MobileNetV2Block`: the inverted residual with the `block.exp_1x1 / conv_3x3 / red_1x1` keys (V2 and V3).
- `LinearSelfAttention`, `LinearAttnFFN` and `SeparableAttentionBlock`: MobileViTV2's separable self-attention
  (context scores from a single query channel, softmax over the patches, so cost is linear in their number),
  used by MobileViTV2 and the V2-based MobileViTV3 models (`x0_5`, `x0_75`, `x1_0`).
- `MobileViTStyleNet`, `build_stages`, `v2_stages`: the conv_1 / layer_1..5 / classifier body of MobileViTV2 and
  MobileViTV3 and MobileViTV2's width rule (which MobileViTV3's V2-based models follow too).
"""

from __future__ import annotations

import math

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.base import Classifier
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.inverted_residual import InvertedResidual, InvertedResidualNames
from pcls.arch.layers.channels import make_divisible

_CONV_NORM = ("conv", "norm")


def _resize_to_patch_multiple(x, patch_h, patch_w):
    height, width = x.shape[2], x.shape[3]
    new_h, new_w = math.ceil(height / patch_h) * patch_h, math.ceil(width / patch_w) * patch_w
    if (new_h, new_w) != (height, width):
        x = F.interpolate(x, size=[new_h, new_w], mode="bilinear", align_corners=False)
    return x, (height, width)


def unfold_patches(x, patch_h, patch_w):
    """[B, C, H, W] -> ([B*P, N, C] tokens, info): for each of the P pixel positions inside a patch, the
    sequence of the N patches (attention runs across patches, per pixel position)."""
    x, orig_size = _resize_to_patch_multiple(x, patch_h, patch_w)
    batch, channels, height, width = x.shape
    rows, cols = height // patch_h, width // patch_w
    x = x.reshape([batch, channels, rows, patch_h, cols, patch_w]).transpose([0, 3, 5, 2, 4, 1])
    tokens = x.reshape([-1, rows * cols, channels])  # -1, not batch * P: the batch is dynamic when exported
    return tokens, (batch, rows, cols, orig_size)


def fold_patches(tokens, info, patch_h, patch_w, resize_mode="bilinear"):
    """Inverse of `unfold_patches`; a map that was resized goes back to its size with `resize_mode`."""
    batch, rows, cols, orig_size = info
    channels = tokens.shape[-1]
    x = tokens.reshape([batch, patch_h, patch_w, rows, cols, channels]).transpose([0, 5, 3, 1, 4, 2])
    x = x.reshape([batch, channels, rows * patch_h, cols * patch_w])
    if (rows * patch_h, cols * patch_w) != tuple(orig_size):
        align = {"align_corners": False} if resize_mode == "bilinear" else {}
        x = F.interpolate(x, size=list(orig_size), mode=resize_mode, **align)
    return x


def unfold_patch_map(x, patch_h, patch_w):
    """[B, C, H, W] -> ([B, C, P, N] map, info): P pixel positions within a patch, N patches."""
    x, orig_size = _resize_to_patch_multiple(x, patch_h, patch_w)
    batch, channels, height, width = x.shape
    rows, cols = height // patch_h, width // patch_w
    x = x.reshape([batch, channels, rows, patch_h, cols, patch_w]).transpose([0, 1, 3, 5, 2, 4])
    return x.reshape([batch, channels, patch_h * patch_w, rows * cols]), (rows, cols, orig_size)


def fold_patch_map(x, info, patch_h, patch_w):
    """Inverse of `unfold_patch_map` (a resized map goes back to its size bilinearly)."""
    rows, cols, orig_size = info
    batch, channels = x.shape[0], x.shape[1]
    x = x.reshape([batch, channels, patch_h, patch_w, rows, cols]).transpose([0, 1, 4, 2, 5, 3])
    x = x.reshape([batch, channels, rows * patch_h, cols * patch_w])
    if (rows * patch_h, cols * patch_w) != tuple(orig_size):
        x = F.interpolate(x, size=list(orig_size), mode="bilinear", align_corners=False)
    return x


class MobileNetV2Block(nn.Layer):
    """Inverted residual (SiLU) under the `block` key: [exp_1x1] -> conv_3x3 (depthwise) -> red_1x1."""

    def __init__(self, in_channels, out_channels, stride=1, expand_ratio=2, dilation=1):
        super().__init__()
        hidden = make_divisible(int(round(in_channels * expand_ratio)), 8)

        def conv(cin, cout, kernel, stride=1, groups=1, act=None):
            return ConvBNAct(cin, cout, kernel, stride, groups, act, dilation=dilation if kernel > 1 else 1,
                             names=_CONV_NORM)

        self.block = InvertedResidual(in_channels, hidden, out_channels, 3, stride, act="silu",
                                      expand=expand_ratio != 1,
                                      names=InvertedResidualNames("exp_1x1", "conv_3x3", "se", "red_1x1"), conv=conv)

    def forward(self, x):
        return self.block(x)


class LinearSelfAttention(nn.Layer):
    """Separable self-attention over [B, C, P, N]: one query channel gives softmax context scores over the N
    patches; the score-weighted sum of the keys (a context vector per pixel position) gates relu(values)."""

    def __init__(self, dim, attn_drop=0.0):
        super().__init__()
        self.dim = dim
        self.qkv_proj = nn.Conv2D(dim, 1 + 2 * dim, 1)
        self.attn_dropout = nn.Dropout(attn_drop)
        self.out_proj = nn.Conv2D(dim, dim, 1)

    def forward(self, x):
        query, key, value = paddle.split(self.qkv_proj(x), [1, self.dim, self.dim], axis=1)
        scores = self.attn_dropout(F.softmax(query, axis=-1))
        context = paddle.sum(key * scores, axis=-1, keepdim=True)
        return self.out_proj(F.relu(value) * context)


def layer_norm_2d(channels):
    """LayerNorm over (C, H, W) of a map: GroupNorm with one group, as the reference uses."""
    return nn.GroupNorm(1, channels)


class LinearAttnFFN(nn.Layer):
    """Pre-norm block on [B, C, P, N]: x + attention(norm(x)), x + 1x1-conv FFN(norm(x)) (SiLU)."""

    def __init__(self, dim, ffn_dim, attn_drop=0.0, drop=0.0, ffn_drop=0.0):
        super().__init__()
        self.pre_norm_attn = nn.Sequential(layer_norm_2d(dim), LinearSelfAttention(dim, attn_drop), nn.Dropout(drop))
        self.pre_norm_ffn = nn.Sequential(layer_norm_2d(dim), nn.Conv2D(dim, ffn_dim, 1), nn.Silu(),
                                          nn.Dropout(ffn_drop), nn.Conv2D(ffn_dim, dim, 1), nn.Dropout(drop))

    def forward(self, x):
        x = x + self.pre_norm_attn(x)
        return x + self.pre_norm_ffn(x)


class SeparableAttentionBlock(nn.Layer):
    """The MobileViTV2 block: local depthwise 3x3 + 1x1 to attn_dim, separable-attention layers over 2x2 patches,
    fold, 1x1 projection back. fuse_local (MobileViTV3's V2-based models) projects the concatenation of the
    global and local features and adds the block input."""

    def __init__(self, in_channels, attn_dim, ffn_multiplier=2.0, n_blocks=2, patch_size=2, dilation=1, drop=0.0,
                 attn_drop=0.0, ffn_drop=0.0, fuse_local=False):
        super().__init__()
        self.patch = patch_size
        self.fuse_local = fuse_local
        self.local_rep = nn.Sequential(
            ConvBNAct(in_channels, in_channels, 3, groups=in_channels, act="silu", dilation=dilation,
                      names=_CONV_NORM),
            nn.Sequential(("conv", nn.Conv2D(in_channels, attn_dim, 1, bias_attr=False))),
        )
        ffn_dim = int(ffn_multiplier * attn_dim // 16 * 16)  # the reference keeps FFN widths multiples of 16
        self.global_rep = nn.Sequential(*[LinearAttnFFN(attn_dim, ffn_dim, attn_drop, drop, ffn_drop)
                                          for _ in range(n_blocks)], layer_norm_2d(attn_dim))
        proj_in = 2 * attn_dim if fuse_local else attn_dim
        self.conv_proj = ConvBNAct(proj_in, in_channels, 1, act=None, names=_CONV_NORM)

    def forward(self, x):
        local = self.local_rep(x)
        patches, info = unfold_patch_map(local, self.patch, self.patch)
        fm = fold_patch_map(self.global_rep(patches), info, self.patch, self.patch)
        if not self.fuse_local:
            return self.conv_proj(fm)
        return self.conv_proj(paddle.concat([fm, local], axis=1)) + x


def build_stages(owner, stem, stages, output_stride=None, make_attention_block=None):
    """Add `conv_1` and `layer_1`..`layer_5` to `owner` (the MobileViTV2/V3 body) and return the output width.

    stages: five dicts; MobileNetV2 stages have `out`, `blocks`, `stride`, `expand`; attention stages have
    `out`, `stride` (of the MobileNetV2 block that enters them), `expand` and whatever
    `make_attention_block(in_channels, stage, dilation)` reads. output_stride 8 or 16 dilates stages 4-5 or 5
    instead of striding (segmentation backbones)."""
    owner.conv_1 = ConvBNAct(3, stem, 3, stride=2, act="silu", names=("conv", "norm"))
    channels, dilation = stem, 1
    dilate_from = {8: 4, 16: 5}.get(output_stride, 6)
    for index, stage in enumerate(stages, start=1):
        blocks = []
        if "blocks" in stage:  # a MobileNetV2 stage
            for i in range(stage["blocks"]):
                blocks.append(MobileNetV2Block(channels, stage["out"], stage["stride"] if i == 0 else 1,
                                               stage["expand"]))
                channels = stage["out"]
        else:
            previous, stride = dilation, stage["stride"]
            if stride == 2 and index >= dilate_from:
                dilation, stride = dilation * 2, 1
            if stage["stride"] == 2:
                blocks.append(MobileNetV2Block(channels, stage["out"], stride, stage["expand"], dilation=previous))
                channels = stage["out"]
            blocks.append(make_attention_block(channels, stage, dilation))
        setattr(owner, f"layer_{index}", nn.Sequential(*blocks))
    return channels


class MobileViTStyleNet(Classifier):
    """The body both MobileViTV2 and MobileViTV3 share: conv_1, layer_1..layer_5, optional conv_1x1_exp and a
    `classifier` Sequential (global_pool, dropout, fc)."""

    classifier_names = ("classifier.fc",)

    def _build_head(self, channels, class_num, classifier_dropout):
        self.classifier = nn.Sequential()
        self.classifier.add_sublayer("global_pool", nn.Sequential(nn.AdaptiveAvgPool2D(1), nn.Flatten()))
        if 0.0 < classifier_dropout < 1.0:
            self.classifier.add_sublayer("dropout", nn.Dropout(classifier_dropout))
        self.classifier.add_sublayer("fc", nn.Linear(channels, class_num))

    def forward_features(self, x):
        x = self.conv_1(x)
        for i in range(1, 6):
            x = getattr(self, f"layer_{i}")(x)
        return self.conv_1x1_exp(x)

    def forward_head(self, x):
        return self.classifier(x)


def v2_stages(width_multiplier, expand=2, ffn_multiplier=2):
    """Stem width and the five stages of MobileViTV2 at a width multiplier (the reference's rounding)."""
    stem = make_divisible(max(16, min(64, 32 * width_multiplier)), 8, 16)

    def width(base, divisor=8):
        return make_divisible(base * width_multiplier, divisor)

    mv2 = [dict(out=width(64, 16), blocks=1, stride=1, expand=expand),
           dict(out=width(128), blocks=2, stride=2, expand=expand)]
    attention = [dict(out=width(out), attn_dim=width(attn), attn_blocks=n, ffn_multiplier=ffn_multiplier, stride=2,
                      expand=expand) for out, attn, n in ((256, 128, 2), (384, 192, 4), (512, 256, 3))]
    return stem, mv2 + attention


def separable_attention_factory(fuse_local, dropout=0.0, attn_dropout=0.0, ffn_dropout=0.0):
    def make(in_channels, stage, dilation):
        return SeparableAttentionBlock(in_channels, stage["attn_dim"], stage["ffn_multiplier"], stage["attn_blocks"],
                                       dilation=dilation, drop=dropout, attn_drop=attn_dropout, ffn_drop=ffn_dropout,
                                       fuse_local=fuse_local)

    return make
