"""MobileNeXt (Zhou et al. 2020, "Rethinking Bottleneck Structure for Efficient Mobile Network Design") with
PaddleClas's layer names (nn.Sequential indices, as the published weights have them).

The sandglass block flips MobileNetV2's inverted residual: the residual connects the wide ends, the block
reduces in the middle. A depthwise 3x3 (+ReLU6) on the wide input, a linear 1x1 reduction, a 1x1 expansion
(+ReLU6) and a linear depthwise 3x3 that carries the stride, so spatial filtering happens on wide tensors.
Blocks that change the width drop the first depthwise conv, and the last one too when they do not stride
(except in the first stage and in single-block stride-1 stages, which keep both). The reduced width is
input / t, but at least output / 6 rounded up to a multiple of 16.
"""

import math

import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers.channels import make_divisible
from pcls.arch.registry import register

# stages: (reduction ratio t, output channels, blocks, stride of the first block)
_STAGES = ((2, 96, 1, 2), (6, 144, 1, 1), (6, 192, 3, 2), (6, 288, 3, 2), (6, 384, 4, 1), (6, 576, 4, 2),
           (6, 960, 3, 1), (6, 1280, 1, 1))
_STEM = 32


def _conv_bn(cin, cout, kernel, stride=1, groups=1, act=False):
    """[conv, bn(, relu6)] as flat Sequential items, so the block's keys index them (conv.0, conv.1, ...)."""
    layers = [nn.Conv2D(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias_attr=False),
              nn.BatchNorm2D(cout)]
    return layers + [nn.ReLU6()] if act else layers


class SandGlass(nn.Layer):
    """[dw 3x3, relu6] -> 1x1 reduce (linear) -> 1x1 expand, relu6 -> [dw 3x3 / stride (linear)] (+ x)."""

    def __init__(self, in_channels, out_channels, stride, ratio, keep_first_dw=False):
        super().__init__()
        hidden = in_channels // ratio
        if hidden < out_channels / 6.0:
            hidden = make_divisible(math.ceil(out_channels / 6.0), 16)
        first_dw = ratio == 2 or keep_first_dw or in_channels == out_channels
        layers = _conv_bn(in_channels, in_channels, 3, groups=in_channels, act=True) if first_dw else []
        layers += _conv_bn(in_channels, hidden, 1)
        layers += _conv_bn(hidden, out_channels, 1, act=True)
        if first_dw or stride > 1:
            layers += _conv_bn(out_channels, out_channels, 3, stride, groups=out_channels)
        self.conv = nn.Sequential(*layers)
        self.identity = stride == 1 and in_channels == out_channels

    def forward(self, x):
        out = self.conv(x)
        return out + x if self.identity else out


class MobileNeXt(Classifier):
    """width_mult: width multiplier (the last stage stays at 1280 below 1.0); dropout_prob: dropout before the
    classifier (classifier = Sequential(Dropout, Linear), as published)."""

    classifier_names = ("classifier",)

    def __init__(self, class_num=1000, width_mult=1.0, dropout_prob=0.2):
        super().__init__()
        self.class_num = class_num
        divisor = 4 if width_mult == 0.1 else 8
        in_channels = make_divisible(_STEM * width_mult, divisor)
        layers = [nn.Sequential(*_conv_bn(3, in_channels, 3, 2, act=True))]
        for ratio, width, blocks, stride in _STAGES:
            out_channels = make_divisible(width * width_mult, divisor)
            if width == _STAGES[-1][1] and width_mult < 1:
                out_channels = width
            single = blocks == 1 and stride == 1
            for i in range(blocks):
                layers.append(SandGlass(in_channels, out_channels, stride if i == 0 else 1, ratio, single))
                in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout_prob), nn.Linear(in_channels, class_num))

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x):
        return self.classifier(self.pool(x).flatten(1))


@register
def MobileNeXt_x1_0(class_num=1000, **kwargs):
    kwargs.pop("use_ssld", None)  # only chooses the distilled zoo weights (see registry)
    return MobileNeXt(class_num=class_num, **kwargs)
