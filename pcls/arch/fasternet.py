"""FasterNet (Chen et al. 2023, "Run, Don't Walk: Chasing Higher FLOPS for Faster Neural Networks"),
weight-compatible with PaddleClas 2.x.

The spatial mixer is a partial convolution (PConv): a 3x3 conv over only the first 1/n_div of the channels,
the rest passed through untouched, so memory access and FLOPs drop together. Each block is PConv followed by
a 1x1-BN-act-1x1 MLP (ratio 2) with a residual; stages are joined by 2x2 stride-2 conv + BN merges, and the
head pools first and then widens to 1280 channels with a 1x1 conv before the classifier.
"""

import numpy as np
import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import DropPath, make_act
from pcls.arch.registry import register

# variant -> stem width, blocks per stage, activation, default drop-path rate
_VARIANTS = {
    "T0": (40, (1, 2, 8, 2), "gelu", 0.0),
    "T1": (64, (1, 2, 8, 2), "gelu", 0.02),
    "T2": (96, (1, 2, 8, 2), "relu", 0.05),
    "S": (128, (1, 2, 13, 2), "relu", 0.1),
    "M": (144, (3, 4, 18, 3), "relu", 0.2),
    "L": (192, (3, 4, 18, 3), "relu", 0.3),
}
_HEAD_CHANNELS = 1280


class PartialConv(nn.Layer):
    """3x3 conv over the first dim // n_div channels; the others are concatenated back unchanged."""

    def __init__(self, dim, n_div=4):
        super().__init__()
        self.conv_channels = dim // n_div
        self.partial_conv3 = nn.Conv2D(self.conv_channels, self.conv_channels, 3, padding=1, bias_attr=False)

    def forward(self, x):
        head, rest = paddle.split(x, [self.conv_channels, x.shape[1] - self.conv_channels], axis=1)
        return paddle.concat([self.partial_conv3(head), rest], axis=1)


class FasterNetBlock(nn.Layer):
    def __init__(self, dim, act, mlp_ratio=2.0, n_div=4, drop_path=0.0, layer_scale_init_value=0.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.spatial_mixing = PartialConv(dim, n_div)
        self.mlp = nn.Sequential(nn.Conv2D(dim, hidden, 1, bias_attr=False), nn.BatchNorm2D(hidden), make_act(act),
                                 nn.Conv2D(hidden, dim, 1, bias_attr=False))
        self.layer_scale = None
        if layer_scale_init_value > 0:
            self.layer_scale = self.create_parameter(
                [dim], default_initializer=nn.initializer.Constant(layer_scale_init_value))
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        y = self.mlp(self.spatial_mixing(x))
        if self.layer_scale is not None:
            y = self.layer_scale.reshape([-1, 1, 1]) * y
        return x + self.drop_path(y)


class _Stage(nn.Layer):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.blocks(x)


class _ConvNorm(nn.Layer):
    """Non-overlapping k x k, stride-k conv (no bias) + BN: the stem ('proj') and the merges ('reduction')."""

    def __init__(self, in_channels, out_channels, patch, conv_name, bn_momentum=0.9):
        super().__init__()
        self._conv_name = conv_name
        setattr(self, conv_name, nn.Conv2D(in_channels, out_channels, patch, stride=patch, bias_attr=False))
        self.norm = nn.BatchNorm2D(out_channels, momentum=bn_momentum)

    def forward(self, x):
        return self.norm(getattr(self, self._conv_name)(x))


class FasterNet(Classifier):
    """variant: 'T0'..'T2', 'S', 'M', 'L'. drop_path_rate (None: the variant's) grows linearly over the
    blocks; n_div: 1/n_div of the channels go through the partial conv."""

    classifier_names = ("head",)

    def __init__(self, variant="T0", class_num=1000, in_chans=3, mlp_ratio=2.0, n_div=4, drop_path_rate=None,
                 layer_scale_init_value=0.0, feature_dim=_HEAD_CHANNELS):
        super().__init__()
        width, depths, act, default_rate = _VARIANTS[variant]
        self.class_num = class_num
        rate = default_rate if drop_path_rate is None else drop_path_rate
        rates = np.linspace(0, rate, sum(depths)).tolist()
        # the reference's stem BN tracks its statistics with momentum 0.1 (Paddle's convention: weight of the old value)
        self.patch_embed = _ConvNorm(in_chans, width, 4, "proj", bn_momentum=0.1)
        # the reference lists blocks and merges in one sequence: stage i at 2i, the merge after it at 2i + 1
        layers, start = [], 0
        for i, depth in enumerate(depths):
            dim = width * 2**i
            layers.append(_Stage([FasterNetBlock(dim, act, mlp_ratio, n_div, rates[start + j], layer_scale_init_value)
                                  for j in range(depth)]))
            start += depth
            if i < len(depths) - 1:
                layers.append(_ConvNorm(dim, dim * 2, 2, "reduction"))
        self.stages = nn.Sequential(*layers)
        self.num_features = width * 2 ** (len(depths) - 1)
        self.avgpool_pre_head = nn.Sequential(nn.AdaptiveAvgPool2D(1),
                                              nn.Conv2D(self.num_features, feature_dim, 1, bias_attr=False),
                                              make_act(act))
        self.head = nn.Linear(feature_dim, class_num)

    def forward_features(self, x):
        return self.stages(self.patch_embed(x))

    def forward_head(self, x):
        return self.head(paddle.flatten(self.avgpool_pre_head(x), 1))


def _fasternet(variant, class_num, **kwargs):
    kwargs.pop("use_ssld", None)  # only chooses the zoo weights (registry)
    return FasterNet(variant, class_num=class_num, **kwargs)


@register
def FasterNet_T0(class_num=1000, **kwargs):
    return _fasternet("T0", class_num, **kwargs)


@register
def FasterNet_T1(class_num=1000, **kwargs):
    return _fasternet("T1", class_num, **kwargs)


@register
def FasterNet_T2(class_num=1000, **kwargs):
    return _fasternet("T2", class_num, **kwargs)


@register
def FasterNet_S(class_num=1000, **kwargs):
    return _fasternet("S", class_num, **kwargs)


@register
def FasterNet_M(class_num=1000, **kwargs):
    return _fasternet("M", class_num, **kwargs)


@register
def FasterNet_L(class_num=1000, **kwargs):
    return _fasternet("L", class_num, **kwargs)
