"""MicroNet (Li et al. 2021, "MicroNet: Improving Image Recognition with Extremely Low FLOPs"),
weight-compatible with PaddleClas 2.x.

Two ideas keep accuracy at 4-21 MFLOPs: micro-factorized convolutions (a kxk depthwise conv split into kx1
and 1xk, and pointwise convs split into grouped 1x1 convs joined by channel shuffles, so connectivity stays
dense while the parameter count collapses) and Dynamic Shift-Max, an activation whose per-channel
coefficients come from a small SE-like branch and which takes the max over linear mixes of each channel with
a channel of the next group (`index`), adding cross-group connections for free.

The reference numbers every position of a block's layer sequence, parameter-free ones (shuffles, ReLU6,
identities) included, so blocks are built as position-exact sequences.
"""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import make_divisible
from pcls.arch.layers.shuffle import channel_shuffle
from pcls.arch.registry import register

# per block: stride, repeats, out channels, kernel, expansion (e1, e2), channels per group (g1, g2),
# 1x1 groups (hidden, g3, g4), dynamic-activation flags (y1, y2, y3), reduction multiplier
_M0 = (
    (2, 1, 8, 3, (2, 2), (0, 4), (8, 2, 2), (2, 0, 1), 1),
    (2, 1, 12, 3, (2, 2), (0, 8), (12, 4, 4), (2, 2, 1), 1),
    (2, 1, 16, 5, (2, 2), (0, 12), (16, 4, 4), (2, 2, 1), 1),
    (1, 1, 32, 5, (1, 4), (4, 4), (32, 4, 4), (2, 2, 1), 1),
    (2, 1, 64, 5, (1, 4), (8, 8), (64, 8, 8), (2, 2, 1), 1),
    (1, 1, 96, 3, (1, 4), (8, 8), (96, 8, 8), (2, 2, 1), 2),
    (1, 1, 384, 3, (1, 4), (12, 12), (0, 0, 0), (2, 2, 1), 2),
)
_M1 = (
    (2, 1, 8, 3, (2, 2), (0, 6), (8, 2, 2), (2, 0, 1), 1),
    (2, 1, 16, 3, (2, 2), (0, 8), (16, 4, 4), (2, 2, 1), 1),
    (2, 1, 16, 5, (2, 2), (0, 16), (16, 4, 4), (2, 2, 1), 1),
    (1, 1, 32, 5, (1, 6), (4, 4), (32, 4, 4), (2, 2, 1), 1),
    (2, 1, 64, 5, (1, 6), (8, 8), (64, 8, 8), (2, 2, 1), 1),
    (1, 1, 96, 3, (1, 6), (8, 8), (96, 8, 8), (2, 2, 1), 2),
    (1, 1, 576, 3, (1, 6), (12, 12), (0, 0, 0), (2, 2, 1), 2),
)
_M2 = (
    (2, 1, 12, 3, (2, 2), (0, 8), (12, 4, 4), (2, 0, 1), 1),
    (2, 1, 16, 3, (2, 2), (0, 12), (16, 4, 4), (2, 2, 1), 1),
    (1, 1, 24, 3, (2, 2), (0, 16), (24, 4, 4), (2, 2, 1), 1),
    (2, 1, 32, 5, (1, 6), (6, 6), (32, 4, 4), (2, 2, 1), 1),
    (1, 1, 32, 5, (1, 6), (8, 8), (32, 4, 4), (2, 2, 1), 2),
    (1, 1, 64, 5, (1, 6), (8, 8), (64, 8, 8), (2, 2, 1), 2),
    (2, 1, 96, 5, (1, 6), (8, 8), (96, 8, 8), (2, 2, 1), 2),
    (1, 1, 128, 3, (1, 6), (12, 12), (128, 8, 8), (2, 2, 1), 2),
    (1, 1, 768, 3, (1, 6), (16, 16), (0, 0, 0), (2, 2, 1), 2),
)
_M3 = (
    (2, 1, 16, 3, (2, 2), (0, 12), (16, 4, 4), (0, 2, 0), 1),
    (2, 1, 24, 3, (2, 2), (0, 16), (24, 4, 4), (0, 2, 0), 1),
    (1, 1, 24, 3, (2, 2), (0, 24), (24, 4, 4), (0, 2, 0), 1),
    (2, 1, 32, 5, (1, 6), (6, 6), (32, 4, 4), (0, 2, 0), 1),
    (1, 1, 32, 5, (1, 6), (8, 8), (32, 4, 4), (0, 2, 0), 2),
    (1, 1, 64, 5, (1, 6), (8, 8), (48, 8, 8), (0, 2, 0), 2),
    (1, 1, 80, 5, (1, 6), (8, 8), (80, 8, 8), (0, 2, 0), 2),
    (1, 1, 80, 5, (1, 6), (10, 10), (80, 8, 8), (0, 2, 0), 2),
    (2, 1, 120, 5, (1, 6), (10, 10), (120, 10, 10), (0, 2, 0), 2),
    (1, 1, 120, 5, (1, 6), (12, 12), (120, 10, 10), (0, 2, 0), 2),
    (1, 1, 144, 3, (1, 6), (12, 12), (144, 12, 12), (0, 2, 0), 2),
    (1, 1, 864, 3, (1, 6), (12, 12), (0, 0, 0), (0, 2, 0), 2),
)
# variant -> blocks, stem groups (g1, g2; the stem has g1 * g2 channels), classifier width, dropout,
# Dynamic Shift-Max initial coefficients (a of the two mixes, b of the two mixes)
_VARIANTS = {
    "M0": (_M0, (2, 2), 640, 0.05, (1.0, 1.0), (0.0, 0.0)),
    "M1": (_M1, (3, 2), 960, 0.05, (1.0, 1.0), (0.0, 0.0)),
    "M2": (_M2, (4, 2), 1024, 0.1, (1.0, 1.0), (0.0, 0.0)),
    "M3": (_M3, (4, 3), 1024, 0.1, (1.0, 0.5), (0.0, 0.5)),
}
_ACT_MAX = 2.0
_REDUCTION = 8
# the coefficients of the activation after a block's last 1x1 conv start as the identity (a = 1, b = 0)
_INIT_AB3 = (1.0, 0.0)


class ChannelShuffle(nn.Layer):
    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        return channel_shuffle(x, self.groups)


def _shuffle_if(condition, groups):
    return ChannelShuffle(groups) if condition else nn.Identity()


class SpatialSepConv(nn.Layer):
    """kx1 conv-BN then 1xk grouped conv-BN (keys conv.0-3); `stem` uses a dense first conv and shuffles after."""

    def __init__(self, in_channels, mid_channels, out_channels, kernel, stride, groups, shuffle=None):
        super().__init__()
        layers = [nn.Conv2D(in_channels, mid_channels, (kernel, 1), (stride, 1), (kernel // 2, 0), groups=groups,
                            bias_attr=False),
                  nn.BatchNorm2D(mid_channels),
                  nn.Conv2D(mid_channels, out_channels, (1, kernel), (1, stride), (0, kernel // 2), groups=mid_channels,
                            bias_attr=False),
                  nn.BatchNorm2D(out_channels)]
        if shuffle:
            layers.append(ChannelShuffle(shuffle))
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return self.conv(x)


def depth_spatial_sep_conv(channels, expansion, kernel, stride):
    """The micro-factorized depthwise conv: channels -> channels * e1 (kx1) -> channels * e1 * e2 (1xk)."""
    e1, e2 = expansion
    return SpatialSepConv(channels, channels * e1, channels * e1 * e2, kernel, stride, groups=channels)


class GroupConv(nn.Layer):
    """Grouped 1x1 conv + BN (keys conv.0, conv.1)."""

    def __init__(self, in_channels, out_channels, groups):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2D(in_channels, out_channels, 1, groups=groups, bias_attr=False),
                                  nn.BatchNorm2D(out_channels))

    def forward(self, x):
        return self.conv(x)


class DYShiftMax(nn.Layer):
    """Dynamic Shift-Max: out = max_k (a_k * x + b_k * x[shifted]) over k = 1..2 (k = 1 only with two_mixes
    False), with a, b per channel from pool -> Linear -> ReLU -> Linear -> hard-sigmoid, mapped to
    [-act_max, act_max] and offset by their initial values. The shift takes each channel's partner from the
    next of `groups` groups, one position further inside it."""

    def __init__(self, channels, reduction, init_a, init_b, groups, two_mixes, expansion=False):
        super().__init__()
        self.channels = channels
        self.parts = 4 if two_mixes else 2
        self.init_a, self.init_b = init_a, init_b
        squeeze = max(4, make_divisible(channels // reduction, 4))
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Sequential(nn.Linear(channels, squeeze), nn.ReLU(), nn.Linear(squeeze, channels * self.parts),
                                nn.Hardsigmoid())
        if groups != 1 and expansion:
            groups = channels // groups
        self.groups = groups

    def forward(self, x):
        batch = x.shape[0]
        coeffs = self.fc(self.avg_pool(x).reshape([batch, self.channels]))
        coeffs = (coeffs.reshape([batch, self.channels * self.parts, 1, 1]) - 0.5) * (2 * _ACT_MAX)
        _, _, height, width = x.shape
        grouped = x.reshape([batch, self.groups, self.channels // self.groups, height, width])
        shifted = paddle.roll(grouped, shifts=[-1, -1], axis=[1, 2]).reshape(x.shape)
        if self.parts == 2:
            a1, b1 = paddle.split(coeffs, 2, axis=1)
            return x * (a1 + self.init_a[0]) + shifted * (b1 + self.init_b[0])
        a1, b1, a2, b2 = paddle.split(coeffs, 4, axis=1)
        return paddle.maximum(x * (a1 + self.init_a[0]) + shifted * (b1 + self.init_b[0]),
                              x * (a2 + self.init_a[1]) + shifted * (b2 + self.init_b[1]))


class MicroBlock(nn.Layer):
    """One row of the variant table. Three layouts, as in the paper: depthwise-first (g1 == 0, the first
    blocks), pointwise-depthwise-pointwise (the middle), and a single grouped 1x1 conv (g4 == 0, the last)."""

    def __init__(self, in_channels, out_channels, kernel, stride, expansion, per_group, groups_1x1, dynamic,
                 reduction, init_a, init_b):
        super().__init__()
        self.identity = stride == 1 and in_channels == out_channels
        y1, y2, y3 = dynamic
        _, g3, g4 = groups_1x1
        hidden = in_channels * expansion[0] * expansion[1]
        ab3 = dict(init_a=(_INIT_AB3[0], 0.0), init_b=(_INIT_AB3[1], 0.0), two_mixes=False)

        def dynamic_act(flag, channels, groups, expand=False):
            """After a depthwise/expanding conv: Dynamic Shift-Max (flag 2: two mixes, 1: one) or ReLU6 (0)."""
            if flag == 0:
                return nn.ReLU6()
            return DYShiftMax(channels, reduction, init_a, init_b, groups, two_mixes=flag == 2, expansion=expand)

        def projection_act(channels, red, groups):
            """After a projecting 1x1 conv: a one-mix Dynamic Shift-Max that starts as the identity, if y3."""
            return DYShiftMax(channels, red, groups=groups, **ab3) if y3 > 0 else nn.Identity()

        if per_group[0] == 0:
            layers = [depth_spatial_sep_conv(in_channels, expansion, kernel, stride),
                      dynamic_act(y2, hidden, per_group[1]),
                      ChannelShuffle(per_group[1]),
                      _shuffle_if(y2 != 0, hidden // 2),
                      GroupConv(hidden, out_channels, g3),
                      projection_act(out_channels, reduction // 2, g4),
                      ChannelShuffle(g4),
                      _shuffle_if(out_channels % 2 == 0 and y3 != 0, out_channels // 2)]
        elif g4 == 0:
            layers = [GroupConv(in_channels, hidden, per_group[0]),
                      projection_act(hidden, reduction, per_group[1])]
        else:
            if y1 and y2:
                mid_shuffle = ChannelShuffle(hidden // 4)
            else:
                mid_shuffle = _shuffle_if(y1 or y2, hidden // 2)
            layers = [GroupConv(in_channels, hidden, per_group[0]),
                      dynamic_act(y1, hidden, per_group[1]),
                      ChannelShuffle(per_group[1]),
                      depth_spatial_sep_conv(hidden, (1, 1), kernel, stride),
                      nn.Identity(),  # an empty slot in the reference's numbering
                      dynamic_act(y2, hidden, per_group[1], expand=True),
                      mid_shuffle,
                      GroupConv(hidden, out_channels, g3),
                      projection_act(out_channels, reduction // 2 if out_channels < hidden else reduction, g4),
                      ChannelShuffle(g4),
                      _shuffle_if(y3 != 0, out_channels // 2)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        out = self.layers(x)
        return out + x if self.identity else out


class _Stem(nn.Layer):
    def __init__(self, groups):
        super().__init__()
        g1, g2 = groups
        self.stem = nn.Sequential(SpatialSepConv(3, g1, g1 * g2, 3, 2, groups=1, shuffle=g1), nn.ReLU6())

    def forward(self, x):
        return self.stem(x)


class SwishLinear(nn.Layer):
    """Linear -> BatchNorm1D -> hard-swish (keys linear.0, linear.1); the classifier ends with one too."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Sequential(nn.Linear(in_features, out_features), nn.BatchNorm1D(out_features),
                                    nn.Hardswish())

    def forward(self, x):
        return self.linear(x)


class MicroNet(Classifier):
    """variant: 'M0'..'M3'. dropout_prob: between the two classifier layers (None: the variant's)."""

    classifier_names = ("classifier.2",)

    def __init__(self, variant="M0", class_num=1000, dropout_prob=None):
        super().__init__()
        blocks, stem_groups, out_channels, dropout, init_a, init_b = _VARIANTS[variant]
        self.class_num = class_num
        channels = stem_groups[0] * stem_groups[1]
        layers = [_Stem(stem_groups)]
        for stride, repeats, cout, kernel, expansion, per_group, groups_1x1, dynamic, ratio in blocks:
            for i in range(repeats):
                layers.append(MicroBlock(channels, cout, kernel, stride if i == 0 else 1, expansion, per_group,
                                         groups_1x1, dynamic, _REDUCTION * ratio, init_a, init_b))
                channels = cout
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.Sequential(nn.ReLU6(), nn.AdaptiveAvgPool2D(1), nn.Hardswish())
        self.classifier = nn.Sequential(SwishLinear(channels, out_channels),
                                        nn.Dropout(dropout if dropout_prob is None else dropout_prob),
                                        SwishLinear(out_channels, class_num))

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x):
        return self.classifier(paddle.flatten(self.avgpool(x), 1))

    def reset_classifier(self, class_num: int) -> None:
        # the last layer carries a BatchNorm1D of class_num features too: rebuild it whole
        self.classifier[2] = SwishLinear(self.classifier[0].linear[0].weight.shape[1], class_num)
        self.class_num = class_num


def _micronet(variant, class_num, **kwargs):
    kwargs.pop("use_ssld", None)  # only chooses the zoo weights (registry)
    return MicroNet(variant, class_num=class_num, **kwargs)


@register
def MicroNet_M0(class_num=1000, **kwargs):
    return _micronet("M0", class_num, **kwargs)


@register
def MicroNet_M1(class_num=1000, **kwargs):
    return _micronet("M1", class_num, **kwargs)


@register
def MicroNet_M2(class_num=1000, **kwargs):
    return _micronet("M2", class_num, **kwargs)


@register
def MicroNet_M3(class_num=1000, **kwargs):
    return _micronet("M3", class_num, **kwargs)
