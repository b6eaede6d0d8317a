"""ShuffleNetV2 (Ma et al. 2018) with PaddleClas's layer names: blocks split the channels in two halves, transform
one, concatenate [untouched, transformed] and shuffle with 2 groups; downsampling blocks transform both halves."""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.shuffle import channel_shuffle
from pcls.arch.registry import register

_NAMES = ("_conv", "_batch_norm")
# stage output widths (conv1, stage 2, 3, 4, last conv) per scale, as published
_WIDTHS = {
    0.25: (24, 24, 48, 96, 512),
    0.33: (24, 32, 64, 128, 512),
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}
_REPEATS = (4, 8, 4)


def _conv(cin, cout, kernel, stride=1, groups=1, act=None):
    return ConvBNAct(cin, cout, kernel, stride, groups=groups, act=act, names=_NAMES)


class ShuffleBlock(nn.Layer):
    """Stride 1: keep the first half, transform the second (pw -> dw -> pw)."""

    def __init__(self, channels, act):
        super().__init__()
        half = channels // 2
        self._conv_pw = _conv(half, half, 1, act=act)
        self._conv_dw = _conv(half, half, 3, groups=half)
        self._conv_linear = _conv(half, half, 1, act=act)

    def forward(self, x):
        kept, branch = paddle.split(x, 2, axis=1)
        branch = self._conv_linear(self._conv_dw(self._conv_pw(branch)))
        return channel_shuffle(paddle.concat([kept, branch], axis=1), 2)


class ShuffleDownBlock(nn.Layer):
    """Stride 2: both branches see the whole input; branch 1 is dw -> pw, branch 2 pw -> dw -> pw."""

    def __init__(self, in_channels, out_channels, act):
        super().__init__()
        half = out_channels // 2
        self._conv_dw_1 = _conv(in_channels, in_channels, 3, 2, groups=in_channels)
        self._conv_linear_1 = _conv(in_channels, half, 1, act=act)
        self._conv_pw_2 = _conv(in_channels, half, 1, act=act)
        self._conv_dw_2 = _conv(half, half, 3, 2, groups=half)
        self._conv_linear_2 = _conv(half, half, 1, act=act)

    def forward(self, x):
        x1 = self._conv_linear_1(self._conv_dw_1(x))
        x2 = self._conv_linear_2(self._conv_dw_2(self._conv_pw_2(x)))
        return channel_shuffle(paddle.concat([x1, x2], axis=1), 2)


class ShuffleNetV2(Classifier):
    classifier_names = ("_fc",)

    def __init__(self, scale=1.0, act="relu", class_num=1000):
        super().__init__()
        self.class_num = class_num
        widths = _WIDTHS[scale]
        self._conv1 = _conv(3, widths[0], 3, 2, act=act)
        self._max_pool = nn.MaxPool2D(3, 2, 1)
        self._block_names = []
        in_channels = widths[0]
        for stage, (repeats, out_channels) in enumerate(zip(_REPEATS, widths[1:4]), start=2):
            for i in range(repeats):
                block = ShuffleDownBlock(in_channels, out_channels, act) if i == 0 else ShuffleBlock(out_channels, act)
                name = f"{stage}_{i + 1}"  # not an identifier, hence add_sublayer
                self.add_sublayer(name, block)
                self._block_names.append(name)
                in_channels = out_channels
        self._last_conv = _conv(in_channels, widths[4], 1, act=act)
        self._pool2d_avg = nn.AdaptiveAvgPool2D(1)
        self._fc = nn.Linear(widths[4], class_num)

    def forward_features(self, x):
        x = self._max_pool(self._conv1(x))
        for name in self._block_names:
            x = self._sub_layers[name](x)
        return self._last_conv(x)

    def forward_head(self, x):
        return self._fc(paddle.flatten(self._pool2d_avg(x), 1))


@register
def ShuffleNetV2_x0_25(class_num=1000, **kwargs):
    return ShuffleNetV2(0.25, class_num=class_num, **kwargs)


@register
def ShuffleNetV2_x0_33(class_num=1000, **kwargs):
    return ShuffleNetV2(0.33, class_num=class_num, **kwargs)


@register
def ShuffleNetV2_x0_5(class_num=1000, **kwargs):
    return ShuffleNetV2(0.5, class_num=class_num, **kwargs)


@register
def ShuffleNetV2_x1_0(class_num=1000, **kwargs):
    return ShuffleNetV2(1.0, class_num=class_num, **kwargs)


@register
def ShuffleNetV2_x1_5(class_num=1000, **kwargs):
    return ShuffleNetV2(1.5, class_num=class_num, **kwargs)


@register
def ShuffleNetV2_x2_0(class_num=1000, **kwargs):
    return ShuffleNetV2(2.0, class_num=class_num, **kwargs)


@register
def ShuffleNetV2_swish(class_num=1000, **kwargs):
    return ShuffleNetV2(1.0, act="swish", class_num=class_num, **kwargs)
