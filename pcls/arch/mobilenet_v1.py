"""MobileNetV1 (Howard et al. 2017) with PaddleClas's layer names: a 3x3 stem and thirteen depthwise-separable
blocks; `scale` truncates every width (int(c * scale)), as the reference does."""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers.inverted_residual import InvertedResidual, InvertedResidualNames, conv_bn_factory
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.registry import register

# (output channels, stride) of the thirteen depthwise-separable blocks
_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
           (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
_NAMES = InvertedResidualNames(depthwise="depthwise_conv", project="pointwise_conv")


class MobileNetV1Net(Classifier):
    def __init__(self, scale=1.0, class_num=1000):
        super().__init__()
        self.class_num = class_num
        width = int(32 * scale)
        self.conv = ConvBNAct(3, width, 3, stride=2, act="relu")
        blocks = []
        for out_channels, stride in _BLOCKS:
            out_channels = int(out_channels * scale)
            blocks.append(InvertedResidual(width, width, out_channels, 3, stride, act="relu", project_act="relu",
                                           expand=False, shortcut=False, names=_NAMES, conv=conv_bn_factory()))
            width = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Linear(width, class_num)

    def forward_features(self, x):
        return self.blocks(self.conv(x))

    def forward_head(self, x):
        return self.fc(paddle.flatten(self.avg_pool(x), 1))


def _mobilenet_v1(scale, class_num, **kwargs):
    return MobileNetV1Net(scale=scale, class_num=class_num, **kwargs)


@register
def MobileNetV1_x0_25(class_num=1000, **kwargs):
    return _mobilenet_v1(0.25, class_num, **kwargs)


@register
def MobileNetV1_x0_5(class_num=1000, **kwargs):
    return _mobilenet_v1(0.5, class_num, **kwargs)


@register
def MobileNetV1_x0_75(class_num=1000, **kwargs):
    return _mobilenet_v1(0.75, class_num, **kwargs)


@register
def MobileNetV1(class_num=1000, **kwargs):
    return _mobilenet_v1(1.0, class_num, **kwargs)
