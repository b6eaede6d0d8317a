"""MobileNetV2 (Sandler et al. 2018) with PaddleClas's layer names: seven stages of inverted residuals with
ReLU6. Widths are truncated (int(c * scale)), the last conv stays 1280 unless scale > 1, and the first
block of every stage has no shortcut — all as the reference does."""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.inverted_residual import InvertedResidual, InvertedResidualNames, conv_bn_factory
from pcls.arch.registry import register

# (expansion t, output channels c, repeats n, first stride s) per stage, named conv2 .. conv8
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
_NAMES = InvertedResidualNames(expand="_expand_conv", depthwise="_bottleneck_conv", project="_linear_conv")
_CONV_BN = conv_bn_factory(names=("_conv", "_batch_norm"))


class InvertedResidualStage(nn.Layer):
    """`_first_block` then `convK_2`, `convK_3`, ... (the reference's attribute names)."""

    def __init__(self, name, in_channels, expansion, out_channels, repeats, stride):
        super().__init__()
        self._block_names = []
        for i in range(repeats):
            block_name = "_first_block" if i == 0 else f"{name}_{i + 1}"
            cin = in_channels if i == 0 else out_channels
            block = InvertedResidual(cin, int(round(cin * expansion)), out_channels, 3, stride if i == 0 else 1,
                                     act="relu6", expand=True, shortcut=i > 0, names=_NAMES, conv=_CONV_BN)
            setattr(self, block_name, block)
            self._block_names.append(block_name)

    def forward(self, x):
        for name in self._block_names:
            x = getattr(self, name)(x)
        return x


class MobileNetV2Net(Classifier):
    classifier_names = ("out",)

    def __init__(self, scale=1.0, class_num=1000):
        super().__init__()
        self.class_num = class_num
        width = int(32 * scale)
        self.conv1 = ConvBNAct(3, width, 3, stride=2, act="relu6", names=("_conv", "_batch_norm"))
        self._stage_names = []
        for i, (t, c, n, s) in enumerate(_STAGES):
            name = f"conv{i + 2}"
            setattr(self, name, InvertedResidualStage(name, width, t, int(c * scale), n, s))
            self._stage_names.append(name)
            width = int(c * scale)
        last = int(1280 * scale) if scale > 1.0 else 1280
        self.conv9 = ConvBNAct(width, last, 1, act="relu6", names=("_conv", "_batch_norm"))
        self.pool2d_avg = nn.AdaptiveAvgPool2D(1)
        self.out = nn.Linear(last, class_num)

    def forward_features(self, x):
        x = self.conv1(x)
        for name in self._stage_names:
            x = getattr(self, name)(x)
        return self.conv9(x)

    def forward_head(self, x):
        return self.out(paddle.flatten(self.pool2d_avg(x), 1))


def _mobilenet_v2(scale, class_num, **kwargs):
    return MobileNetV2Net(scale=scale, class_num=class_num, **kwargs)


@register
def MobileNetV2_x0_25(class_num=1000, **kwargs):
    return _mobilenet_v2(0.25, class_num, **kwargs)


@register
def MobileNetV2_x0_5(class_num=1000, **kwargs):
    return _mobilenet_v2(0.5, class_num, **kwargs)


@register
def MobileNetV2_x0_75(class_num=1000, **kwargs):
    return _mobilenet_v2(0.75, class_num, **kwargs)


@register
def MobileNetV2(class_num=1000, **kwargs):
    return _mobilenet_v2(1.0, class_num, **kwargs)


@register
def MobileNetV2_x1_5(class_num=1000, **kwargs):
    return _mobilenet_v2(1.5, class_num, **kwargs)


@register
def MobileNetV2_x2_0(class_num=1000, **kwargs):
    return _mobilenet_v2(2.0, class_num, **kwargs)
