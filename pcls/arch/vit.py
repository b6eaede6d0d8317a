"""Vision Transformer (Dosovitskiy et al. 2020) and DeiT (Touvron et al. 2020), weight-compatible with
PaddleClas. DeiT is a ViT; its distilled variants add a distillation token and head, and return the
mean of the class-token and distillation-token heads."""

from __future__ import annotations

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import Attention, DropPath, Mlp, PatchEmbed
from pcls.arch.layers.pos_embed import AdaptsPositionTables, resample_abs_pos_embed
from pcls.arch.layers.weight_init import init_transformer_weights, trunc_normal_
from pcls.arch.registry import register


class Block(nn.Layer):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim, num_heads, mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, drop_path, epsilon):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, epsilon=epsilon)
        self.attn = Attention(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, epsilon=epsilon)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class VisionTransformer(AdaptsPositionTables, Classifier):
    classifier_names = ("head",)

    def __init__(
        self,
        img_size=224,
        patch_size=16,
        in_chans=3,
        class_num=1000,
        embed_dim=768,
        depth=12,
        num_heads=12,
        mlp_ratio=4.0,
        qkv_bias=False,
        qk_scale=None,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.0,
        epsilon=1e-5,
        distilled=False,
    ):
        super().__init__()
        self.class_num = class_num
        self.embed_dim = embed_dim
        self.distilled = distilled
        self.num_prefix_tokens = 2 if distilled else 1
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.grid_size = self.patch_embed.grid_size
        self.pos_embed = self.create_parameter(
            [1, self.num_prefix_tokens + self.patch_embed.num_patches, embed_dim], default_initializer=trunc_normal_
        )
        self.cls_token = self.create_parameter([1, 1, embed_dim], default_initializer=trunc_normal_)
        if distilled:
            self.dist_token = self.create_parameter([1, 1, embed_dim], default_initializer=trunc_normal_)
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.LayerList(
            [
                Block(embed_dim, num_heads, mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate, rate, epsilon)
                for rate in rates
            ]
        )
        self.norm = nn.LayerNorm(embed_dim, epsilon=epsilon)
        self.head = nn.Linear(embed_dim, class_num)
        if distilled:
            self.head_dist = nn.Linear(embed_dim, class_num)
            self.classifier_names = ("head", "head_dist")
        init_transformer_weights(self)

    def forward_features(self, x):
        """Image -> normed token sequence [B, prefix + h*w, C]."""
        x, grid = self.patch_embed(x)
        batch = paddle.shape(x)[0]
        tokens = [self.cls_token.expand([batch, -1, -1])]
        if self.distilled:
            tokens.append(self.dist_token.expand([batch, -1, -1]))
        x = paddle.concat(tokens + [x], axis=1)
        # inputs of another size than img_size: the patch-grid part of the table is resampled
        pos_embed = resample_abs_pos_embed(self.pos_embed, grid, self.num_prefix_tokens, self.grid_size)
        x = self.pos_drop(x + pos_embed)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward_head(self, x):
        logits = self.head(x[:, 0])
        if self.distilled:
            logits = (logits + self.head_dist(x[:, 1])) / 2
        return logits


def _vit(class_num, kwargs, **arch):
    return VisionTransformer(class_num=class_num, **{**arch, **kwargs})


_BASE = dict(embed_dim=768, depth=12, num_heads=12, qkv_bias=True, epsilon=1e-6)
_LARGE = dict(embed_dim=1024, depth=24, num_heads=16, qkv_bias=True, epsilon=1e-6)
_DEIT_TINY = dict(embed_dim=192, depth=12, num_heads=3, qkv_bias=True, epsilon=1e-6)
_DEIT_SMALL = dict(embed_dim=384, depth=12, num_heads=6, qkv_bias=True, epsilon=1e-6)


@register
def ViT_small_patch16_224(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, embed_dim=768, depth=8, num_heads=8, mlp_ratio=3, qk_scale=768**-0.5)


@register
def ViT_base_patch16_224(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, patch_size=16, **_BASE)


@register
def ViT_base_patch16_384(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, img_size=384, patch_size=16, **_BASE)


@register
def ViT_base_patch32_384(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, img_size=384, patch_size=32, **_BASE)


@register
def ViT_large_patch16_224(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, patch_size=16, **_LARGE)


@register
def ViT_large_patch16_384(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, img_size=384, patch_size=16, **_LARGE)


@register
def ViT_large_patch32_384(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, img_size=384, patch_size=32, **_LARGE)


@register
def DeiT_tiny_patch16_224(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, **_DEIT_TINY)


@register
def DeiT_small_patch16_224(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, **_DEIT_SMALL)


@register
def DeiT_base_patch16_224(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, **_BASE)


@register
def DeiT_base_patch16_384(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, img_size=384, **_BASE)


@register
def DeiT_tiny_distilled_patch16_224(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, distilled=True, **_DEIT_TINY)


@register
def DeiT_small_distilled_patch16_224(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, distilled=True, **_DEIT_SMALL)


@register
def DeiT_base_distilled_patch16_224(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, distilled=True, **_BASE)


@register
def DeiT_base_distilled_patch16_384(class_num=1000, **kwargs):
    return _vit(class_num, kwargs, img_size=384, distilled=True, **_BASE)
