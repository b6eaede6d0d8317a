"""DarkNet-53 (Redmon & Farhadi 2018, the YOLOv3 backbone) as a classifier, with PaddleClas's layer
names: stride-2 3x3 downsamples between stages of 1x1 -> 3x3 residual blocks."""

import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import ConvBNAct
from pcls.arch.registry import register

_STAGE_BLOCKS = (1, 2, 8, 8, 4)
_NAMES = ("_conv", "_bn")


def _cbr(cin, cout, kernel, stride=1):
    return ConvBNAct(cin, cout, kernel, stride=stride, act="relu", names=_NAMES)


class DarkBlock(nn.Layer):
    """x + (3x3 conv to `2*mid` of (1x1 conv to `mid` of x))."""

    def __init__(self, channels):
        super().__init__()
        self._conv1 = _cbr(channels, channels // 2, 1)
        self._conv2 = _cbr(channels // 2, channels, 3)

    def forward(self, x):
        return x + self._conv2(self._conv1(x))


class DarkNet(Classifier):
    classifier_names = ("_out",)

    def __init__(self, class_num=1000):
        super().__init__()
        self.class_num = class_num
        self._conv1 = _cbr(3, 32, 3)
        self._conv2 = _cbr(32, 64, 3, stride=2)
        self._order = []
        channels = 64
        for stage, n_blocks in enumerate(_STAGE_BLOCKS):
            if stage > 0:
                name = f"_downsample_{stage - 1}"
                setattr(self, name, _cbr(channels, channels * 2, 3, stride=2))
                self._order.append(name)
                channels *= 2
            for i in range(n_blocks):
                name = f"_basic_block_{stage}{i + 1}"
                setattr(self, name, DarkBlock(channels))
                self._order.append(name)
        self._pool = nn.AdaptiveAvgPool2D(1)
        self._out = nn.Linear(channels, class_num)

    def forward_features(self, x):
        x = self._conv2(self._conv1(x))
        for name in self._order:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x):
        return self._out(self._pool(x).flatten(1))


@register
def DarkNet53(class_num=1000, **kwargs):
    return DarkNet(class_num=class_num, **kwargs)
