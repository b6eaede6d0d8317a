"""GhostNet (Han et al. 2020) with PaddleClas's layer names: ghost modules make half their channels with a 1x1 conv
and the other half with a cheap depthwise conv on those; widths scale by make_divisible(c * scale, 4)."""

import math

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers.channels import make_divisible
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.se import SqueezeExcite
from pcls.arch.registry import register

_NAMES = ("_conv", "_batch_norm")
# (kernel, hidden width, output width, SE, stride) per ghost bottleneck
_CFGS = (
    (3, 16, 16, 0, 1), (3, 48, 24, 0, 2), (3, 72, 24, 0, 1), (5, 72, 40, 1, 2), (5, 120, 40, 1, 1),
    (3, 240, 80, 0, 2), (3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1), (3, 480, 112, 1, 1),
    (3, 672, 112, 1, 1), (5, 672, 160, 1, 2), (5, 960, 160, 0, 1), (5, 960, 160, 1, 1), (5, 960, 160, 0, 1),
    (5, 960, 160, 1, 1),
)


def _conv(cin, cout, kernel, stride=1, groups=1, act=None):
    return ConvBNAct(cin, cout, kernel, stride, groups=groups, act=act, names=_NAMES)


class GhostModule(nn.Layer):
    def __init__(self, in_channels, out_channels, relu=True, ratio=2, dw_size=3):
        super().__init__()
        primary = int(math.ceil(out_channels / ratio))
        act = "relu" if relu else None
        self.primary_conv = _conv(in_channels, primary, 1, act=act)
        self.cheap_operation = _conv(primary, primary * (ratio - 1), dw_size, groups=primary, act=act)

    def forward(self, x):
        x = self.primary_conv(x)
        return paddle.concat([x, self.cheap_operation(x)], axis=1)


class GhostBottleneck(nn.Layer):
    def __init__(self, in_channels, hidden, out_channels, kernel, stride, use_se):
        super().__init__()
        self.stride, self.use_se = stride, use_se
        self.ghost_module_1 = GhostModule(in_channels, hidden, relu=True)
        if stride == 2:
            self.depthwise_conv = _conv(hidden, hidden, kernel, stride, groups=hidden)
        if use_se:
            # reference: Linear squeeze/excitation with a clip(0, 1) gate
            self.se_block = SqueezeExcite(hidden, reduction=4, kind="linear", names=("squeeze", "excitation"),
                                          gate=nn.Hardtanh(0.0, 1.0))
        self.ghost_module_2 = GhostModule(hidden, out_channels, relu=False)
        self.has_projection = stride != 1 or in_channels != out_channels
        if self.has_projection:
            self.shortcut_depthwise = _conv(in_channels, in_channels, kernel, stride, groups=in_channels)
            self.shortcut_conv = _conv(in_channels, out_channels, 1)

    def forward(self, inputs):
        x = self.ghost_module_1(inputs)
        if self.stride == 2:
            x = self.depthwise_conv(x)
        if self.use_se:
            x = self.se_block(x)
        x = self.ghost_module_2(x)
        shortcut = self.shortcut_conv(self.shortcut_depthwise(inputs)) if self.has_projection else inputs
        return x + shortcut


class GhostNet(Classifier):
    classifier_names = ("fc_1",)

    def __init__(self, scale=1.0, dropout_prob=0.2, class_num=1000):
        super().__init__()
        self.class_num = class_num
        width = make_divisible(16 * scale, 4)
        self.conv1 = _conv(3, width, 3, 2, act="relu")
        self._block_names = []
        for i, (kernel, hidden, out, se, stride) in enumerate(_CFGS):
            out = make_divisible(out * scale, 4)
            name = f"_ghostbottleneck_{i}"
            setattr(self, name, GhostBottleneck(width, make_divisible(hidden * scale, 4), out, kernel, stride, se == 1))
            self._block_names.append(name)
            width = out
        last = make_divisible(_CFGS[-1][1] * scale, 4)
        self.conv_last = _conv(width, last, 1, act="relu")
        self.pool2d_gap = nn.AdaptiveAvgPool2D(1)
        self.fc_0 = _conv(last, 1280, 1, act="relu")
        self.dropout = nn.Dropout(dropout_prob)
        self.fc_1 = nn.Linear(1280, class_num)

    def forward_features(self, x):
        x = self.conv1(x)
        for name in self._block_names:
            x = getattr(self, name)(x)
        return self.conv_last(x)

    def forward_head(self, x):
        x = self.dropout(self.fc_0(self.pool2d_gap(x)))
        return self.fc_1(paddle.flatten(x, 1))


@register
def GhostNet_x0_5(class_num=1000, **kwargs):
    return GhostNet(0.5, class_num=class_num, **kwargs)


@register
def GhostNet_x1_0(class_num=1000, **kwargs):
    return GhostNet(1.0, class_num=class_num, **kwargs)


@register
def GhostNet_x1_3(class_num=1000, **kwargs):
    return GhostNet(1.3, class_num=class_num, **kwargs)
