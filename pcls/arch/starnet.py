"""StarNet (Ma et al. 2024, "Rewrite the Stars"), weight-compatible with PaddleClas 2.x.

The paper's point is the "star operation": multiplying two linear branches element-wise (here
ReLU6(W1 x) * W2 x) maps the input into an implicitly very high-dimensional feature space, the way a
polynomial kernel does, so a tiny plain network of such blocks competes with far larger ones. Each block is
depthwise 7x7 conv-BN, the two 1x1 branches and their star product, a 1x1 conv-BN back to the width, a
second depthwise 7x7 conv, and a residual; stages start with a 3x3 stride-2 conv-BN.
"""

import numpy as np
import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import DropPath
from pcls.arch.registry import register
from pcls.errors import PclsError

# variant -> base width, blocks per stage (after each stage's downsampling conv), MLP ratio
_VARIANTS = {
    "S1": (24, (2, 2, 8, 3), 4),
    "S2": (32, (1, 2, 6, 2), 4),
    "S3": (32, (2, 2, 8, 4), 4),
    "S4": (32, (3, 3, 12, 5), 4),
}
_STEM_CHANNELS = 32


class ConvBN(nn.Layer):
    """conv (with bias) [+ BN]: keys 'conv.*' and, with_bn, 'bn.*'."""

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, groups=1, with_bn=True):
        super().__init__()
        self.conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups)
        self.bn = nn.BatchNorm2D(out_channels) if with_bn else None

    def forward(self, x):
        x = self.conv(x)
        return self.bn(x) if self.bn is not None else x


class StarBlock(nn.Layer):
    def __init__(self, dim, mlp_ratio=3, drop_path=0.0):
        super().__init__()
        hidden = mlp_ratio * dim
        self.dwconv = ConvBN(dim, dim, 7, groups=dim)
        self.f1 = ConvBN(dim, hidden, with_bn=False)
        self.f2 = ConvBN(dim, hidden, with_bn=False)
        self.g = ConvBN(hidden, dim)
        self.dwconv2 = ConvBN(dim, dim, 7, groups=dim, with_bn=False)
        self.act = nn.ReLU6()
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        y = self.dwconv(x)
        y = self.act(self.f1(y)) * self.f2(y)  # the star operation
        return x + self.drop_path(self.dwconv2(self.g(y)))


class StarNet(Classifier):
    """variant: 'S1'..'S4'. drop_path_rate grows linearly over the blocks."""

    classifier_names = ("head",)

    def __init__(self, variant="S1", class_num=1000, drop_path_rate=0.0):
        super().__init__()
        width, depths, mlp_ratio = _VARIANTS[variant]
        self.class_num = class_num
        self.stem = nn.Sequential(ConvBN(3, _STEM_CHANNELS, 3, stride=2), nn.ReLU6())
        rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        stages, in_channels, start = [], _STEM_CHANNELS, 0
        for i, depth in enumerate(depths):
            dim = width * 2**i
            blocks = [StarBlock(dim, mlp_ratio, rates[start + j]) for j in range(depth)]
            stages.append(nn.Sequential(ConvBN(in_channels, dim, 3, stride=2), *blocks))
            in_channels, start = dim, start + depth
        self.stages = nn.LayerList(stages)
        self.norm = nn.BatchNorm2D(in_channels)
        self.avgpool = nn.AdaptiveAvgPool2D(1)
        self.head = nn.Linear(in_channels, class_num)

    def forward_features(self, x):
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.norm(x)

    def forward_head(self, x):
        return self.head(paddle.flatten(self.avgpool(x), 1))


def _starnet(variant, class_num, drop_rate=0.0, **kwargs):
    """drop_rate: PaddleClas's StarNet configs set 0 and its constructor ignores it (the head has no dropout)."""
    kwargs.pop("use_ssld", None)  # only chooses the zoo weights (registry)
    if drop_rate:
        raise PclsError(f"StarNet has no head dropout: Arch.drop_rate must be 0, got {drop_rate!r}")
    return StarNet(variant, class_num=class_num, **kwargs)


@register
def StarNet_S1(class_num=1000, **kwargs):
    return _starnet("S1", class_num, **kwargs)


@register
def StarNet_S2(class_num=1000, **kwargs):
    return _starnet("S2", class_num, **kwargs)


@register
def StarNet_S3(class_num=1000, **kwargs):
    return _starnet("S3", class_num, **kwargs)


@register
def StarNet_S4(class_num=1000, **kwargs):
    return _starnet("S4", class_num, **kwargs)
