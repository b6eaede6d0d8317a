"""VAN, the Visual Attention Network (Guo et al., "Visual Attention Network", CVMJ 2023), weight-compatible
with PaddleClas's `VAN_B0`..`VAN_B3`.

What is special: attention without attention scores. Large Kernel Attention (LKA) decomposes a 21x21
convolution into a 5x5 depthwise conv, a 7x7 depthwise conv with dilation 3 and a 1x1 conv; its output
multiplies the input element-wise (`u * attn`), giving long-range, channel-adaptive gating at linear
cost. The blocks are convolutional (BatchNorm, 1x1-conv MLP with a 3x3 depthwise conv inside), with
per-channel layer scales on both branches; each stage ends with a LayerNorm over the tokens, as in PVT.
Any input size works.
"""

from __future__ import annotations

import numpy as np
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import DropPath, make_act
from pcls.arch.layers.conv_tokens import image_to_tokens, tokens_to_image
from pcls.arch.layers.weight_init import init_transformer_weights
from pcls.arch.registry import register


def depthwise(dim, kernel, dilation=1):
    return nn.Conv2D(dim, dim, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation, groups=dim)


class LargeKernelAttention(nn.Layer):
    """x * conv1x1(dwconv7x7_dilated3(dwconv5x5(x))): a 21x21 receptive field as a gate."""

    def __init__(self, dim):
        super().__init__()
        self.conv0 = depthwise(dim, 5)
        self.conv_spatial = depthwise(dim, 7, dilation=3)
        self.conv1 = nn.Conv2D(dim, dim, 1)

    def forward(self, x):
        return x * self.conv1(self.conv_spatial(self.conv0(x)))


class SpatialAttention(nn.Layer):
    """1x1 conv -> GELU -> LKA -> 1x1 conv, plus its own shortcut."""

    def __init__(self, dim):
        super().__init__()
        self.proj_1 = nn.Conv2D(dim, dim, 1)
        self.activation = make_act("gelu")
        self.spatial_gating_unit = LargeKernelAttention(dim)
        self.proj_2 = nn.Conv2D(dim, dim, 1)

    def forward(self, x):
        return x + self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x))))


class ConvMlp(nn.Layer):
    """1x1 conv -> 3x3 depthwise conv -> GELU -> 1x1 conv on the feature map."""

    def __init__(self, dim, hidden, drop):
        super().__init__()
        self.fc1 = nn.Conv2D(dim, hidden, 1)
        self.dwconv = nn.Sequential()
        self.dwconv.add_sublayer("dwconv", depthwise(hidden, 3))
        self.act = make_act("gelu")
        self.fc2 = nn.Conv2D(hidden, dim, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.dwconv(self.fc1(x))))))


class VANBlock(nn.Layer):
    def __init__(self, dim, mlp_ratio, drop, drop_path, layer_scale_init=1e-2):
        super().__init__()
        scale = nn.initializer.Constant(layer_scale_init)
        self.layer_scale_1 = self.create_parameter([dim, 1, 1], default_initializer=scale)
        self.layer_scale_2 = self.create_parameter([dim, 1, 1], default_initializer=scale)
        self.norm1 = nn.BatchNorm2D(dim)
        self.attn = SpatialAttention(dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.BatchNorm2D(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x):
        x = x + self.drop_path(self.layer_scale_1 * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2 * self.mlp(self.norm2(x)))


class ConvBNEmbed(nn.Layer):
    """Overlapping patch embedding: strided conv (`proj`) + BatchNorm (`norm`)."""

    def __init__(self, in_dim, dim, kernel, stride):
        super().__init__()
        self.proj = nn.Conv2D(in_dim, dim, kernel, stride, padding=kernel // 2)
        self.norm = nn.BatchNorm2D(dim)

    def forward(self, x):
        return self.norm(self.proj(x))


class VAN(Classifier):
    """Stage i: `patch_embed{i}`, `block{i}`, `norm{i}` (PaddleClas's flat names)."""

    classifier_names = ("head",)

    def __init__(self, img_size=224, in_chans=3, class_num=1000, embed_dims=(64, 128, 256, 512),
                 mlp_ratios=(8, 8, 4, 4), drop_rate=0.0, drop_path_rate=0.1, depths=(3, 4, 6, 3)):
        super().__init__()
        self.class_num = class_num
        self.img_size = img_size  # informational: nothing in VAN depends on the input size
        self.num_stages = len(depths)
        rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        dims = [in_chans] + list(embed_dims)
        for i, depth in enumerate(depths):
            first = sum(depths[:i])
            kernel, stride = (7, 4) if i == 0 else (3, 2)
            setattr(self, f"patch_embed{i + 1}", ConvBNEmbed(dims[i], dims[i + 1], kernel, stride))
            setattr(self, f"block{i + 1}", nn.LayerList([
                VANBlock(dims[i + 1], mlp_ratios[i], drop_rate, rates[first + j]) for j in range(depth)
            ]))
            setattr(self, f"norm{i + 1}", nn.LayerNorm(dims[i + 1], epsilon=1e-6))
        self.num_features = embed_dims[-1]
        self.head = nn.Linear(self.num_features, class_num)
        init_transformer_weights(self)

    def forward_features(self, x):
        """Image -> normed last-stage tokens [B, h*w, C]."""
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"patch_embed{i}")(x)
            for block in getattr(self, f"block{i}"):
                x = block(x)
            height, width = x.shape[2], x.shape[3]
            x = getattr(self, f"norm{i}")(image_to_tokens(x))
            if i < self.num_stages:
                x = tokens_to_image(x, height, width)
        return x

    def forward_head(self, x):
        return self.head(x.mean(axis=1))


_WIDE = dict(embed_dims=(64, 128, 320, 512))
# name -> architecture, as PaddleClas builds them
VARIANTS = {
    "VAN_B0": dict(embed_dims=(32, 64, 160, 256), depths=(3, 3, 5, 2)),
    "VAN_B1": dict(_WIDE, depths=(2, 2, 4, 2)),
    "VAN_B2": dict(_WIDE, depths=(3, 3, 12, 3)),
    "VAN_B3": dict(_WIDE, depths=(3, 5, 27, 3)),
}


def _van(name, class_num, kwargs):
    kwargs.pop("use_ssld", None)  # only chooses the zoo weights (registry)
    return VAN(class_num=class_num, **{**VARIANTS[name], **kwargs})


@register
def VAN_B0(class_num=1000, **kwargs):
    return _van("VAN_B0", class_num, kwargs)


@register
def VAN_B1(class_num=1000, **kwargs):
    return _van("VAN_B1", class_num, kwargs)


@register
def VAN_B2(class_num=1000, **kwargs):
    return _van("VAN_B2", class_num, kwargs)


@register
def VAN_B3(class_num=1000, **kwargs):
    return _van("VAN_B3", class_num, kwargs)
