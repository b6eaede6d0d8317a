"""ESNet (Enhanced ShuffleNet, the PP-PicoDet backbone; Yu et al. 2021) with PaddleClas's layer names.

ShuffleNetV2's split/transform/concatenate/shuffle design with hardswish activations and SE. The stride-1 block
transforms one half of the channels with a 1x1 conv and a 3x3 depthwise conv whose outputs are concatenated
(a Ghost-style cheap expansion), squeeze-excited and projected back by a 1x1 conv. The stride-2 block runs two
branches over the whole input (depthwise -> 1x1; 1x1 -> depthwise -> SE -> 1x1) and fuses their concatenation
with a 3x3 depthwise and a 1x1 conv instead of a shuffle. Head: 1x1 conv to 1024 -> pool -> 1x1 conv (1280)
-> hardswish -> dropout -> fc.
"""

import paddle
import paddle.nn as nn

from pcls.arch.layers.channels import make_divisible
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.heads import LastConvClassifier
from pcls.arch.layers.se import SqueezeExcite
from pcls.arch.layers.shuffle import channel_shuffle
from pcls.arch.registry import register

_STAGE_WIDTHS = (116, 232, 464)  # stage outputs at scale 1, rounded by make_divisible after scaling
_REPEATS = (3, 7, 3)
_STEM, _LAST = 24, 1024


def _conv(cin, cout, kernel, stride=1, groups=1, act="hardswish"):
    return ConvBNAct(cin, cout, kernel, stride, groups=groups, act=act)


def _se(channels):
    return SqueezeExcite(channels, reduction=4, gate="hardsigmoid")


class ESBlock(nn.Layer):
    """Stride 1: keep one half; the other: 1x1 -> [it, depthwise(it)] -> SE -> 1x1; concatenate, shuffle."""

    def __init__(self, channels):
        super().__init__()
        half = channels // 2
        self.pw_1_1 = _conv(half, half, 1)
        self.dw_1 = _conv(half, half, 3, groups=half, act=None)
        self.se = _se(channels)
        self.pw_1_2 = _conv(channels, half, 1)

    def forward(self, x):
        kept, branch = paddle.split(x, 2, axis=1)
        branch = self.pw_1_1(branch)
        branch = paddle.concat([branch, self.dw_1(branch)], axis=1)
        branch = self.pw_1_2(self.se(branch))
        return channel_shuffle(paddle.concat([kept, branch], axis=1), 2)


class ESDownBlock(nn.Layer):
    """Stride 2: [depthwise/2 -> 1x1 | 1x1 -> depthwise/2 -> SE -> 1x1], concatenated, then depthwise -> 1x1."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        half = out_channels // 2
        self.dw_1 = _conv(in_channels, in_channels, 3, 2, groups=in_channels, act=None)
        self.pw_1 = _conv(in_channels, half, 1)
        self.pw_2_1 = _conv(in_channels, half, 1)
        self.dw_2 = _conv(half, half, 3, 2, groups=half, act=None)
        self.se = _se(half)
        self.pw_2_2 = _conv(half, half, 1)
        self.concat_dw = _conv(out_channels, out_channels, 3, groups=out_channels)
        self.concat_pw = _conv(out_channels, out_channels, 1)

    def forward(self, x):
        x1 = self.pw_1(self.dw_1(x))
        x2 = self.pw_2_2(self.se(self.dw_2(self.pw_2_1(x))))
        return self.concat_pw(self.concat_dw(paddle.concat([x1, x2], axis=1)))


class ESNet(LastConvClassifier):
    """scale: width multiplier of the three stages; class_expand / dropout_prob: the head."""

    def __init__(self, scale=1.0, class_num=1000, class_expand=1280, dropout_prob=0.2):
        super().__init__()
        self.class_num = class_num
        self.scale = scale
        self.conv1 = _conv(3, _STEM, 3, 2)
        self.max_pool = nn.MaxPool2D(3, stride=2, padding=1)
        blocks = []
        in_channels = _STEM
        for width, repeats in zip(_STAGE_WIDTHS, _REPEATS):
            out_channels = make_divisible(width * scale)
            blocks.append(ESDownBlock(in_channels, out_channels))
            blocks.extend(ESBlock(out_channels) for _ in range(repeats - 1))
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = _conv(in_channels, _LAST, 1)
        self._build_head(_LAST, class_num, class_expand, dropout_prob)

    def forward_features(self, x):
        return self.conv2(self.blocks(self.max_pool(self.conv1(x))))


def _esnet(scale, class_num, kwargs):
    kwargs.pop("use_ssld", None)  # only chooses the distilled zoo weights (see registry)
    return ESNet(scale, class_num=class_num, **kwargs)


@register
def ESNet_x0_25(class_num=1000, **kwargs):
    return _esnet(0.25, class_num, kwargs)


@register
def ESNet_x0_5(class_num=1000, **kwargs):
    return _esnet(0.5, class_num, kwargs)


@register
def ESNet_x0_75(class_num=1000, **kwargs):
    return _esnet(0.75, class_num, kwargs)


@register
def ESNet_x1_0(class_num=1000, **kwargs):
    return _esnet(1.0, class_num, kwargs)
