"""MobileViT (Mehta & Rastegari 2022, "MobileViT: Light-weight, General-purpose, and Mobile-friendly Vision
Transformer"), weight-compatible with PaddleClas.

MobileNetV2 blocks, and in the last three stages a MobileViT block: a local 3x3 conv and a 1x1 to the
transformer width, then transformers over 2x2 patches - for each of the 4 pixel positions of a patch, attention
runs across all patches, so every pixel sees the whole map at the cost of a quarter of the tokens - folded back,
projected and fused with the block input by a 3x3 conv. All activations are SiLU. No position tables: any input
size works (maps whose sides are odd are resized to the patch grid and back).
"""

from __future__ import annotations

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import Attention, ConvBNAct, Mlp
from pcls.arch.layers.mobilevit_blocks import fold_patches, unfold_patches
from pcls.arch.layers.weight_init import init_transformer_weights
from pcls.arch.registry import register

_CONV_NORM = ("conv", "norm")


def _conv(in_channels, out_channels, kernel_size=3, stride=1, groups=1):
    return ConvBNAct(in_channels, out_channels, kernel_size, stride, groups, act="silu", names=_CONV_NORM)


class MV2Block(nn.Layer):
    """MobileNetV2 inverted residual with SiLU, as `conv.0` (expand), `conv.1` (depthwise), `conv.2`/`conv.3`
    (linear projection conv and its BatchNorm)."""

    def __init__(self, in_channels, out_channels, stride=1, expansion=4):
        super().__init__()
        hidden = int(round(in_channels * expansion))
        layers = [_conv(in_channels, hidden, 1)] if expansion != 1 else []
        layers += [_conv(hidden, hidden, 3, stride, groups=hidden), nn.Conv2D(hidden, out_channels, 1, bias_attr=False),
                   nn.BatchNorm2D(out_channels)]
        self.conv = nn.Sequential(*layers)
        self.use_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x):
        return x + self.conv(x) if self.use_shortcut else self.conv(x)


class EncoderLayer(nn.Layer):
    """Pre-norm transformer layer: x + attn(LN(x)), x + MLP(LN(x)) (SiLU, hidden = mlp_ratio x dim)."""

    def __init__(self, dim, num_heads=4, mlp_ratio=2.0, drop=0.1, attn_drop=0.0):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=True, attn_drop=attn_drop, proj_drop=drop)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act="silu", drop=drop)

    def forward(self, x):
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class Transformer(nn.Layer):
    def __init__(self, dim, depth, num_heads=4, mlp_ratio=2.0, drop=0.1, attn_drop=0.0):
        super().__init__()
        self.layers = nn.LayerList([EncoderLayer(dim, num_heads, mlp_ratio, drop, attn_drop) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, epsilon=1e-6)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class MobileViTBlock(nn.Layer):
    """local 3x3 conv -> 1x1 to hidden_dim -> transformer over 2x2 patches -> fold -> 1x1 back -> concat with the
    block input -> 3x3 fusion conv."""

    def __init__(self, dim, hidden_dim, depth, num_heads=4, mlp_ratio=2.0, drop=0.1, attn_drop=0.0, patch_size=2):
        super().__init__()
        self.patch = patch_size
        self.conv1 = _conv(dim, dim, 3)
        self.conv2 = nn.Conv2D(dim, hidden_dim, 1, bias_attr=False)
        self.transformer = Transformer(hidden_dim, depth, num_heads, mlp_ratio, drop, attn_drop)
        self.conv3 = _conv(hidden_dim, dim, 1)
        self.conv4 = _conv(2 * dim, dim, 3)

    def forward(self, x):
        tokens, info = unfold_patches(self.conv2(self.conv1(x)), self.patch, self.patch)
        # the reference resizes a non-multiple map back with nearest-neighbour sampling
        y = fold_patches(self.transformer(tokens), info, self.patch, self.patch, resize_mode="nearest")
        return self.conv4(paddle.concat([x, self.conv3(y)], axis=1))


class MobileViT(Classifier):
    """dims: stem, the five MobileNetV2 blocks' outputs (blocks 2 and 5 downsample), the widths of the stages
    with MobileViT blocks 1-3 (each entered by a stride-2 MobileNetV2 block) and the last 1x1 conv;
    hidden_dims: the transformer widths; depths: transformer layers per MobileViT block."""

    classifier_names = ("linear",)

    def __init__(self, dims, hidden_dims, mv2_expansion=4, depths=(2, 4, 3), class_num=1000, dropout=0.1,
                 drop_rate=0.1, attn_drop_rate=0.0, in_channels=3, use_ssld=False):
        super().__init__()
        self.class_num = class_num
        self.use_ssld = use_ssld  # only picks the published *_ssld weights (see the registry)
        self.conv3x3 = _conv(in_channels, dims[0], 3, stride=2)
        strides = (1, 2, 1, 1, 2, 2, 2)
        for i, stride in enumerate(strides, start=1):
            setattr(self, f"mv2_block_{i}", MV2Block(dims[i - 1], dims[i], stride, mv2_expansion))
        for i, (hidden, depth) in enumerate(zip(hidden_dims, depths), start=1):
            setattr(self, f"mvit_block_{i}", MobileViTBlock(dims[4 + i], hidden, depth, drop=drop_rate,
                                                            attn_drop=attn_drop_rate))
        self.conv1x1 = _conv(dims[7], dims[8], 1)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(dims[8], class_num)
        # order of the body: mv2 1-5, mvit 1, mv2 6, mvit 2, mv2 7, mvit 3
        self._body = ["mv2_block_1", "mv2_block_2", "mv2_block_3", "mv2_block_4", "mv2_block_5", "mvit_block_1",
                      "mv2_block_6", "mvit_block_2", "mv2_block_7", "mvit_block_3"]
        init_transformer_weights(self)

    def forward_features(self, x):
        x = self.conv3x3(x)
        for name in self._body:
            x = getattr(self, name)(x)
        return self.conv1x1(x)

    def forward_head(self, x):
        return self.linear(self.dropout(paddle.flatten(self.pool(x), 1)))


_VARIANTS = {
    "XXS": dict(dims=(16, 16, 24, 24, 24, 48, 64, 80, 320), hidden_dims=(64, 80, 96), mv2_expansion=2),
    "XS": dict(dims=(16, 32, 48, 48, 48, 64, 80, 96, 384), hidden_dims=(96, 120, 144)),
    "S": dict(dims=(16, 32, 64, 64, 64, 96, 128, 160, 640), hidden_dims=(144, 192, 240)),
}


def _mobilevit(variant, class_num, kwargs):
    return MobileViT(class_num=class_num, **{**_VARIANTS[variant], **kwargs})


@register
def MobileViT_XXS(class_num=1000, **kwargs):
    return _mobilevit("XXS", class_num, kwargs)


@register
def MobileViT_XS(class_num=1000, **kwargs):
    return _mobilevit("XS", class_num, kwargs)


@register
def MobileViT_S(class_num=1000, **kwargs):
    return _mobilevit("S", class_num, kwargs)
