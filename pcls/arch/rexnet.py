"""ReXNet (Han et al. 2020) with PaddleClas's layer names (flat nn.Sequential indices): inverted residuals
whose widths grow linearly block by block, SE with a BatchNorm inside, ReLU6 after the SE, and a shortcut
added to the first in_channels channels only."""

import math

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers.se import SqueezeExcite
from pcls.arch.registry import register

_DEPTHS = (1, 2, 2, 3, 3, 5)
_STRIDES = (1, 2, 2, 2, 1, 2)
_USE_SE = (False, False, True, True, True, True)


def _conv_bn(layers, in_channels, out_channels, kernel=1, stride=1, groups=1, act=None):
    """Append conv, BN [, act] as separate entries: the reference keys index them one by one."""
    layers.append(nn.Conv2D(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias_attr=False))
    layers.append(nn.BatchNorm2D(out_channels))
    if act is not None:
        layers.append(act)


class LinearBottleneck(nn.Layer):
    def __init__(self, in_channels, out_channels, expansion, stride, use_se, se_ratio=12):
        super().__init__()
        self.use_shortcut = stride == 1 and in_channels <= out_channels
        self.in_channels = in_channels
        layers = []
        mid = in_channels * expansion
        if expansion != 1:
            _conv_bn(layers, in_channels, mid, act=nn.Swish())
        _conv_bn(layers, mid, mid, 3, stride, groups=mid)
        if use_se:
            layers.append(SqueezeExcite(mid, reduced_channels=mid // se_ratio, names=("fc",), mid_norm=True))
        layers.append(nn.ReLU6())
        _conv_bn(layers, mid, out_channels)
        self.out = nn.Sequential(*layers)

    def forward(self, x):
        y = self.out(x)
        if not self.use_shortcut:
            return y
        if y.shape[1] == self.in_channels:
            return y + x
        head, tail = paddle.split(y, [self.in_channels, y.shape[1] - self.in_channels], axis=1)
        return paddle.concat([head + x, tail], axis=1)


class ReXNetNet(Classifier):
    """width_mult / depth_mult: the paper's multipliers; dropout_ratio: before the 1x1-conv classifier;
    bn_momentum: of every BatchNorm (Paddle's convention: weight of the running statistics)."""

    classifier_names = ("output",)

    def __init__(self, width_mult=1.0, depth_mult=1.0, class_num=1000, input_ch=16, final_ch=180, use_se=True,
                 se_ratio=12, dropout_ratio=0.2, bn_momentum=0.9):
        super().__init__()
        self.class_num = class_num
        depths = [math.ceil(d * depth_mult) for d in _DEPTHS]
        strides, ses, expansions = [], [], []
        for i, depth in enumerate(depths):
            strides += [_STRIDES[i]] + [1] * (depth - 1)
            ses += [_USE_SE[i] and use_se] * depth
            expansions += [1 if i == 0 else 6] * depth
        n_blocks = sum(depths)
        stem = 32 / width_mult if width_mult < 1.0 else 32
        planes = input_ch / width_mult if width_mult < 1.0 else input_ch
        # every block widens the running width by final_ch / n_blocks
        in_widths, out_widths = [], []
        for i in range(n_blocks):
            if i == 0:
                in_widths.append(int(round(stem * width_mult)))
            else:
                in_widths.append(int(round(planes * width_mult)))
                planes += final_ch / n_blocks
            out_widths.append(int(round(planes * width_mult)))

        features = []
        _conv_bn(features, 3, int(round(stem * width_mult)), 3, 2, act=nn.Swish())
        for cin, cout, t, s, se in zip(in_widths, out_widths, expansions, strides, ses):
            features.append(LinearBottleneck(cin, cout, t, s, se, se_ratio))
        pen_channels = int(1280 * width_mult)
        _conv_bn(features, out_widths[-1], pen_channels, act=nn.Swish())
        self.features = nn.Sequential(*features)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.output = nn.Sequential(nn.Dropout(dropout_ratio), nn.Conv2D(pen_channels, class_num, 1))
        for layer in self.sublayers():
            if isinstance(layer, nn.BatchNorm2D):
                layer._momentum = bn_momentum

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x):
        return paddle.flatten(self.output(self.pool(x)), 1)


@register
def ReXNet_1_0(class_num=1000, **kwargs):
    return ReXNetNet(1.0, class_num=class_num, **kwargs)


@register
def ReXNet_1_3(class_num=1000, **kwargs):
    return ReXNetNet(1.3, class_num=class_num, **kwargs)


@register
def ReXNet_1_5(class_num=1000, **kwargs):
    return ReXNetNet(1.5, class_num=class_num, **kwargs)


@register
def ReXNet_2_0(class_num=1000, **kwargs):
    return ReXNetNet(2.0, class_num=class_num, **kwargs)


@register
def ReXNet_3_0(class_num=1000, **kwargs):
    return ReXNetNet(3.0, class_num=class_num, **kwargs)
