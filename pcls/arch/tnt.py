"""Transformer in Transformer (Han et al. 2021), weight-compatible with PaddleClas: each 16x16 patch
is a small sequence of pixel tokens with its own (inner) transformer, whose output is projected into
the patch token that the outer transformer sees.

Inputs of another size than `img_size` resample the patch position embedding to the actual grid
(bicubic, class token kept); pixel positions depend only on the patch size and need no change.
"""

from __future__ import annotations

import math

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.base import Classifier
from pcls.arch.layers import DropPath, Mlp, attend, merge_heads, split_heads
from pcls.arch.layers.pos_embed import AdaptsPositionTables, resample_abs_pos_embed
from pcls.arch.layers.weight_init import init_transformer_weights, trunc_normal_
from pcls.arch.registry import register


class SplitQKAttention(nn.Layer):
    """Multi-head self-attention with separate `qk` and `v` projections (TNT's published layout)."""

    def __init__(self, dim, num_heads, qkv_bias=False, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        bias = None if qkv_bias else False
        self.qk = nn.Linear(dim, dim * 2, bias_attr=bias)
        self.v = nn.Linear(dim, dim, bias_attr=bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        q, k = split_heads(self.qk(x), 2, self.num_heads)
        (v,) = split_heads(self.v(x), 1, self.num_heads)
        x = merge_heads(attend(q, k, v, self.scale, attn_drop=self.attn_drop))
        return self.proj_drop(self.proj(x))


class Block(nn.Layer):
    def __init__(self, dim, in_dim, num_pixel, num_heads, in_num_head, mlp_ratio, qkv_bias, drop, attn_drop,
                 drop_path):
        super().__init__()
        self.norm_in = nn.LayerNorm(in_dim)
        self.attn_in = SplitQKAttention(in_dim, in_num_head, qkv_bias, attn_drop, drop)
        self.norm_mlp_in = nn.LayerNorm(in_dim)
        self.mlp_in = Mlp(in_dim, in_dim * 4, drop=drop)
        self.norm1_proj = nn.LayerNorm(in_dim * num_pixel)
        self.proj = nn.Linear(in_dim * num_pixel, dim, bias_attr=False)
        self.norm2_proj = nn.LayerNorm(dim)
        self.norm_out = nn.LayerNorm(dim)
        self.attn_out = SplitQKAttention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, pixel_embed, patch_embed):
        pixel_embed = pixel_embed + self.drop_path(self.attn_in(self.norm_in(pixel_embed)))
        pixel_embed = pixel_embed + self.drop_path(self.mlp_in(self.norm_mlp_in(pixel_embed)))
        pixels = pixel_embed.reshape([-1, patch_embed.shape[1] - 1, self.proj.weight.shape[0]])
        inner = self.norm2_proj(self.proj(self.norm1_proj(pixels)))
        patch_embed = paddle.concat([patch_embed[:, :1], patch_embed[:, 1:] + inner], axis=1)
        patch_embed = patch_embed + self.drop_path(self.attn_out(self.norm_out(patch_embed)))
        return pixel_embed, patch_embed + self.drop_path(self.mlp(self.norm_mlp(patch_embed)))


class PixelEmbed(nn.Layer):
    """Cut the image into patches and embed each by a 7x7 stride-`stride` conv into pixel tokens."""

    def __init__(self, patch_size, in_chans, in_dim, stride):
        super().__init__()
        self.patch_size = patch_size
        self.new_patch_size = math.ceil(patch_size / stride)
        self.proj = nn.Conv2D(in_chans, in_dim, 7, stride=stride, padding=3)

    def forward(self, x, pixel_pos):
        """x [B, C, H, W] -> (pixel tokens [B*N, new_patch_size^2, in_dim], patch grid (h, w))."""
        p, channels = self.patch_size, x.shape[1]
        grid = (x.shape[2] // p, x.shape[3] // p)
        x = F.unfold(x, p, p).transpose([0, 2, 1]).reshape([-1, channels, p, p])
        x = self.proj(x).flatten(2).transpose([0, 2, 1])
        return x + pixel_pos, grid


class TNT(AdaptsPositionTables, Classifier):
    classifier_names = ("head",)

    def __init__(self, img_size=224, patch_size=16, in_chans=3, class_num=1000, embed_dim=768, in_dim=48, depth=12,
                 num_heads=12, in_num_head=4, mlp_ratio=4.0, qkv_bias=False, drop_rate=0.0, attn_drop_rate=0.0,
                 drop_path_rate=0.0, first_stride=4):
        super().__init__()
        self.class_num = class_num
        self.num_prefix_tokens = 1
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.pixel_embed = PixelEmbed(patch_size, in_chans, in_dim, first_stride)
        num_pixel = self.pixel_embed.new_patch_size**2
        num_patches = self.grid_size[0] * self.grid_size[1]
        self.norm1_proj = nn.LayerNorm(num_pixel * in_dim)
        self.proj = nn.Linear(num_pixel * in_dim, embed_dim)
        self.norm2_proj = nn.LayerNorm(embed_dim)
        self.cls_token = self.create_parameter([1, 1, embed_dim], default_initializer=trunc_normal_)
        self.patch_pos = self.create_parameter([1, num_patches + 1, embed_dim], default_initializer=trunc_normal_)
        self.pixel_pos = self.create_parameter([1, num_pixel, in_dim], default_initializer=trunc_normal_)
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.LayerList(
            [
                Block(embed_dim, in_dim, num_pixel, num_heads, in_num_head, mlp_ratio, qkv_bias, drop_rate,
                      attn_drop_rate, rate)
                for rate in rates
            ]
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, class_num)
        init_transformer_weights(self)

    def forward_features(self, x):
        """Image -> normed patch tokens [B, 1 + h*w, C] (class token first)."""
        pixel_embed, grid = self.pixel_embed(x, self.pixel_pos)
        pixels = pixel_embed.reshape([-1, grid[0] * grid[1], self.proj.weight.shape[0]])
        patch_embed = self.norm2_proj(self.proj(self.norm1_proj(pixels)))
        cls = self.cls_token.expand([paddle.shape(patch_embed)[0], -1, -1])
        patch_pos = resample_abs_pos_embed(self.patch_pos, grid, 1, self.grid_size)
        patch_embed = self.pos_drop(paddle.concat([cls, patch_embed], axis=1) + patch_pos)
        for block in self.blocks:
            pixel_embed, patch_embed = block(pixel_embed, patch_embed)
        return self.norm(patch_embed)

    def forward_head(self, x):
        return self.head(x[:, 0])


@register
def TNT_small(class_num=1000, **kwargs):
    arch = dict(embed_dim=384, in_dim=24, depth=12, num_heads=6, in_num_head=4, qkv_bias=False)
    return TNT(class_num=class_num, **{**arch, **kwargs})


@register
def TNT_base(class_num=1000, **kwargs):
    arch = dict(embed_dim=640, in_dim=40, depth=12, num_heads=10, in_num_head=4, qkv_bias=False)
    return TNT(class_num=class_num, **{**arch, **kwargs})
