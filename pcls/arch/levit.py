"""LeViT (Graham et al. 2021), weight-compatible with PaddleClas: a conv stem, then attention and MLP
blocks whose projections are Linear+BatchNorm, with a learned bias per (|dy|, |dx|) token offset.

The offset biases are stored for the grid of the built `img_size` (14x14 at 224). An input of another
size (LeViT_384 is fed 384 images) runs the same code with the bias table bicubically resampled to the
actual grid; inputs must be square.
"""

from __future__ import annotations

import itertools

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import ConvBNAct, DropPath, attend, merge_heads, split_heads
from pcls.arch.layers.pos_embed import AdaptsPositionTables, resample_offset_biases
from pcls.arch.layers.weight_init import trunc_normal_
from pcls.arch.registry import register


def offset_index(key_side: int, stride: int = 1):
    """[queries, keys] index of the (|dy|, |dx|) offset between each query (the key grid strided by
    `stride`) and each key, into a key_side x key_side offset table."""
    queries = list(itertools.product(range(0, key_side, stride), repeat=2))
    keys = list(itertools.product(range(key_side), repeat=2))
    index = [[abs(qy - ky) * key_side + abs(qx - kx) for ky, kx in keys] for qy, qx in queries]
    return paddle.to_tensor(index, dtype="int64")


class LinearBN(nn.Layer):
    """Linear (no bias) then BatchNorm over the channels of [B, N, C] tokens."""

    def __init__(self, in_features, out_features, bn_weight_init=1.0):
        super().__init__()
        self.c = nn.Linear(in_features, out_features, bias_attr=False)
        self.bn = nn.BatchNorm1D(out_features, weight_attr=nn.initializer.Constant(bn_weight_init))

    def forward(self, x):
        x = self.c(x)
        return self.bn(x.flatten(0, 1)).reshape(x.shape)


class BNLinear(nn.Layer):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.bn = nn.BatchNorm1D(in_features)
        self.l = nn.Linear(in_features, out_features, weight_attr=nn.initializer.TruncatedNormal(std=0.02))

    def forward(self, x):
        return self.l(self.bn(x))


class OffsetBiasedAttention(nn.Layer):
    """Shared by LeViT's attention and subsampling attention: heads attend with a learned bias per
    token offset. `attention_biases` [heads, r*r] and the index buffer belong to the built grid side r."""

    def init_biases(self, num_heads, resolution, stride=1):
        self.resolution, self.stride = resolution, stride
        self.attention_biases = self.create_parameter(
            [num_heads, resolution * resolution], default_initializer=nn.initializer.Constant(0.0)
        )
        self.register_buffer("attention_bias_idxs", offset_index(resolution, stride))

    def offset_bias(self, side):
        """[heads, queries, keys] bias for a key grid of `side` x `side`."""
        if side == self.resolution:
            table, index = self.attention_biases, self.attention_bias_idxs
        else:
            table = resample_offset_biases(self.attention_biases, side)
            index = offset_index(side, self.stride)
        return paddle.gather(table, index.flatten(), axis=1).reshape([0, index.shape[0], index.shape[1]])


class OffsetAttention(OffsetBiasedAttention):
    def __init__(self, dim, key_dim, num_heads, attn_ratio, resolution):
        super().__init__()
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = int(attn_ratio * key_dim)
        self.scale = key_dim**-0.5
        self.qkv = LinearBN(dim, num_heads * (2 * key_dim + self.value_dim))
        self.proj = nn.Sequential(nn.Hardswish(), LinearBN(self.value_dim * num_heads, dim, bn_weight_init=0.0))
        self.init_biases(num_heads, resolution)

    def forward(self, x, side):
        qkv = self.qkv(x).reshape([0, 0, self.num_heads, -1]).transpose([0, 2, 1, 3])
        q, k, v = paddle.split(qkv, [self.key_dim, self.key_dim, self.value_dim], axis=-1)
        return self.proj(merge_heads(attend(q, k, v, self.scale, self.offset_bias(side)))), side


class Subsample(nn.Layer):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x, side):
        x = x.reshape([0, side, side, x.shape[-1]])[:, :: self.stride, :: self.stride]
        return x.reshape([0, -1, x.shape[-1]])


class SubsampleAttention(OffsetBiasedAttention):
    """Attention whose queries come from a strided grid: halves the grid and changes the width."""

    def __init__(self, in_dim, out_dim, key_dim, num_heads, attn_ratio, stride, resolution):
        super().__init__()
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = int(attn_ratio * key_dim)
        self.scale = key_dim**-0.5
        self.kv = LinearBN(in_dim, num_heads * (key_dim + self.value_dim))
        self.q = nn.Sequential(Subsample(stride), LinearBN(in_dim, num_heads * key_dim))
        self.proj = nn.Sequential(nn.Hardswish(), LinearBN(self.value_dim * num_heads, out_dim))
        self.init_biases(num_heads, resolution, stride)

    def forward(self, x, side):
        kv = self.kv(x).reshape([0, 0, self.num_heads, -1]).transpose([0, 2, 1, 3])
        k, v = paddle.split(kv, [self.key_dim, self.value_dim], axis=-1)
        (q,) = split_heads(self.q[1](self.q[0](x, side)), 1, self.num_heads)
        out = merge_heads(attend(q, k, v, self.scale, self.offset_bias(side)))
        return self.proj(out), (side - 1) // self.q[0].stride + 1


class Residual(nn.Layer):
    def __init__(self, m, drop_path):
        super().__init__()
        self.m = m
        self.drop_path = DropPath(drop_path)

    def forward(self, x, side):
        out = self.m(x, side)[0] if isinstance(self.m, OffsetBiasedAttention) else self.m(x)
        return x + self.drop_path(out), side


def _mlp(dim, ratio):
    hidden = int(dim * ratio)
    return nn.Sequential(LinearBN(dim, hidden), nn.Hardswish(), LinearBN(hidden, dim, bn_weight_init=0.0))


class LeViT(AdaptsPositionTables, Classifier):
    classifier_names = ("head",)

    def __init__(self, img_size=224, patch_size=16, class_num=1000, embed_dim=(128, 256, 384), key_dim=16,
                 depth=(4, 4, 4), num_heads=(4, 8, 12), attn_ratio=2, mlp_ratio=2, down_attn_ratio=4,
                 down_mlp_ratio=2, drop_path_rate=0.0):
        super().__init__()
        self.class_num = class_num
        width = embed_dim[0]
        stem = []
        for i, (c_in, c_out) in enumerate([(3, width // 8), (width // 8, width // 4), (width // 4, width // 2),
                                           (width // 2, width)]):
            if i:
                stem.append(nn.Hardswish())
            stem.append(ConvBNAct(c_in, c_out, 3, stride=2, padding=1, act=None, names=("c", "bn")))
        self.patch_embed = nn.Sequential(*stem)
        resolution = img_size // patch_size
        blocks = []
        for stage, (dim, count, heads) in enumerate(zip(embed_dim, depth, num_heads)):
            for _ in range(count):
                blocks.append(Residual(OffsetAttention(dim, key_dim, heads, attn_ratio, resolution), drop_path_rate))
                blocks.append(Residual(_mlp(dim, mlp_ratio), drop_path_rate))
            if stage < len(embed_dim) - 1:
                out_dim = embed_dim[stage + 1]
                blocks.append(SubsampleAttention(dim, out_dim, key_dim, dim // key_dim, down_attn_ratio, 2, resolution))
                resolution = (resolution - 1) // 2 + 1
                blocks.append(Residual(_mlp(out_dim, down_mlp_ratio), drop_path_rate))
        self.blocks = nn.LayerList(blocks)
        self.head = BNLinear(embed_dim[-1], class_num)
        for layer in self.sublayers():
            if isinstance(layer, LinearBN):
                trunc_normal_(layer.c.weight)

    def forward_features(self, x):
        """Image -> last-stage tokens [B, h*w, C]."""
        x = self.patch_embed(x)
        side = x.shape[2]
        x = x.flatten(2).transpose([0, 2, 1])
        for block in self.blocks:
            x, side = block(x, side)
        return x

    def forward_head(self, x):
        return self.head(x.mean(axis=1))


def _levit(class_num, kwargs, embed_dim, key_dim, num_heads, depth):
    arch = dict(embed_dim=embed_dim, key_dim=key_dim, num_heads=num_heads, depth=depth)
    return LeViT(class_num=class_num, **{**arch, **kwargs})


@register
def LeViT_128S(class_num=1000, **kwargs):
    return _levit(class_num, kwargs, (128, 256, 384), 16, (4, 6, 8), (2, 3, 4))


@register
def LeViT_128(class_num=1000, **kwargs):
    return _levit(class_num, kwargs, (128, 256, 384), 16, (4, 8, 12), (4, 4, 4))


@register
def LeViT_192(class_num=1000, **kwargs):
    return _levit(class_num, kwargs, (192, 288, 384), 32, (3, 5, 6), (4, 4, 4))


@register
def LeViT_256(class_num=1000, **kwargs):
    return _levit(class_num, kwargs, (256, 384, 512), 32, (4, 6, 8), (4, 4, 4))


@register
def LeViT_384(class_num=1000, **kwargs):
    return _levit(class_num, kwargs, (384, 512, 768), 32, (6, 9, 12), (4, 4, 4))
