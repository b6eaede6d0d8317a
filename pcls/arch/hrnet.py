"""HRNet-W{18,30,32,40,44,48,64}-C (Wang et al. 2019), the classification HRNets, with PaddleClas's layer
names.

Parallel branches at 1/4, 1/8, 1/16, 1/32 resolution (widths w, 2w, 4w, 8w) exchange information in
every module's fuse layer: a lower-resolution input is brought up with a 1x1 conv-BN and a NEAREST
upsample, a higher-resolution one comes down through stride-2 3x3 conv-BNs (ReLU between them, not
after the last); the sum is ReLU'd. The classification head turns each branch into 128/256/512/1024
channels with a bottleneck, merges them top-down with stride-2 convs, then 1x1 conv to 2048 and pools.
"""

import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.base import Classifier
from pcls.arch.layers import ConvBNAct, SqueezeExcite
from pcls.arch.layers.residual import BlockNames, ResidualBlock
from pcls.arch.registry import register

_BLOCK_NAMES = BlockNames(convs=("conv1", "conv2", "conv3"), short="conv_down", se="se")
_HEAD_WIDTHS = (32, 64, 128, 256)  # bottleneck widths of the head, per branch (outputs x4)
_STAGE_MODULES = (1, 4, 3)  # HighResolutionModules in stages 2, 3, 4


def _cba(cin, cout, kernel, stride=1, act="relu"):
    return ConvBNAct(cin, cout, kernel, stride=stride, act=act)


class FuseLayers(nn.Layer):
    def __init__(self, channels):
        super().__init__()
        self.channels = list(channels)
        self.residual_func_list = nn.LayerList()
        n = len(channels)
        for i in range(n):
            for j in range(n):
                if j > i:
                    self.residual_func_list.append(_cba(channels[j], channels[i], 1, act=None))
                elif j < i:
                    for k in range(i - j):
                        last = k == i - j - 1
                        self.residual_func_list.append(
                            _cba(channels[j], channels[i] if last else channels[j], 3, stride=2,
                                 act=None if last else "relu"))
        self.relu = nn.ReLU()

    def forward(self, xs):
        convs = iter(self.residual_func_list)
        out = []
        for i in range(len(self.channels)):
            y = xs[i]
            for j, xj in enumerate(xs):
                if j > i:
                    y = y + F.interpolate(next(convs)(xj), scale_factor=2 ** (j - i), mode="nearest")
                elif j < i:
                    for _ in range(i - j):
                        xj = next(convs)(xj)
                    y = y + xj
            out.append(self.relu(y))
        return out


class HighResolutionModule(nn.Layer):
    """Four basic residual blocks on every branch, then the fuse layer."""

    def __init__(self, channels, se=None):
        super().__init__()
        self.basic_block_list = nn.LayerList(
            nn.Sequential(*[ResidualBlock("basic", c, c, se=se, names=_BLOCK_NAMES) for _ in range(4)])
            for c in channels)
        self.fuse_func = FuseLayers(channels)

    def forward(self, xs):
        return self.fuse_func([blocks(x) for blocks, x in zip(self.basic_block_list, xs)])


class Stage(nn.Layer):
    def __init__(self, n_modules, channels, se=None):
        super().__init__()
        self.stage_func_list = nn.LayerList(HighResolutionModule(channels, se) for _ in range(n_modules))

    def forward(self, xs):
        for module in self.stage_func_list:
            xs = module(xs)
        return xs


class LastClsOut(nn.Layer):
    def __init__(self, channels, se=None):
        super().__init__()
        self.func_list = nn.LayerList(
            ResidualBlock("bottleneck", c, 4 * w, width=w, project=True, se=se, names=_BLOCK_NAMES)
            for c, w in zip(channels, _HEAD_WIDTHS))

    def forward(self, xs):
        return [block(x) for block, x in zip(self.func_list, xs)]


def _hrnet_se(channels):
    return SqueezeExcite(channels, reduction=16, kind="linear", names=("fc_squeeze", "fc_excitation"))


class HRNet(Classifier):
    """has_se: squeeze-excitation (Linear, reduction 16) in every residual block, PaddleClas's
    `has_se` option for the SE_HRNet models; none of the published HRNet_*_C models uses it."""

    classifier_names = ("fc",)

    def __init__(self, width=18, class_num=1000, has_se=False):
        super().__init__()
        self.class_num = class_num
        se = _hrnet_se if has_se else None
        w = width
        self.conv_layer1_1 = _cba(3, 64, 3, stride=2)
        self.conv_layer1_2 = _cba(64, 64, 3, stride=2)
        self.layer1 = nn.Sequential(*[
            ResidualBlock("bottleneck", 64 if i == 0 else 256, 256, width=64, project=i == 0, se=se,
                          names=_BLOCK_NAMES) for i in range(4)])
        self.conv_tr1_1 = _cba(256, w, 3)
        self.conv_tr1_2 = _cba(256, 2 * w, 3, stride=2)
        self.st2 = Stage(_STAGE_MODULES[0], [w, 2 * w], se)
        self.conv_tr2 = _cba(2 * w, 4 * w, 3, stride=2)
        self.st3 = Stage(_STAGE_MODULES[1], [w, 2 * w, 4 * w], se)
        self.conv_tr3 = _cba(4 * w, 8 * w, 3, stride=2)
        self.st4 = Stage(_STAGE_MODULES[2], [w, 2 * w, 4 * w, 8 * w], se)
        self.last_cls = LastClsOut([w, 2 * w, 4 * w, 8 * w], se)
        head = [4 * h for h in _HEAD_WIDTHS]
        self.cls_head_conv_list = nn.LayerList(_cba(head[i], head[i + 1], 3, stride=2) for i in range(3))
        self.conv_last = _cba(head[-1], 2048, 1)
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Linear(2048, class_num)

    def forward_features(self, x):
        x = self.layer1(self.conv_layer1_2(self.conv_layer1_1(x)))
        xs = self.st2([self.conv_tr1_1(x), self.conv_tr1_2(x)])
        xs = self.st3(xs + [self.conv_tr2(xs[-1])])
        xs = self.st4(xs + [self.conv_tr3(xs[-1])])
        xs = self.last_cls(xs)
        y = xs[0]
        for conv, x_next in zip(self.cls_head_conv_list, xs[1:]):
            y = x_next + conv(y)
        return self.conv_last(y)

    def forward_head(self, x):
        return self.fc(self.avg_pool(x).flatten(1))


@register
def HRNet_W18_C(class_num=1000, **kwargs):
    return HRNet(18, class_num=class_num, **kwargs)


@register
def HRNet_W30_C(class_num=1000, **kwargs):
    return HRNet(30, class_num=class_num, **kwargs)


@register
def HRNet_W32_C(class_num=1000, **kwargs):
    return HRNet(32, class_num=class_num, **kwargs)


@register
def HRNet_W40_C(class_num=1000, **kwargs):
    return HRNet(40, class_num=class_num, **kwargs)


@register
def HRNet_W44_C(class_num=1000, **kwargs):
    return HRNet(44, class_num=class_num, **kwargs)


@register
def HRNet_W48_C(class_num=1000, **kwargs):
    return HRNet(48, class_num=class_num, **kwargs)


@register
def HRNet_W64_C(class_num=1000, **kwargs):
    return HRNet(64, class_num=class_num, **kwargs)
