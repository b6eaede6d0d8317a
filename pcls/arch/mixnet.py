"""MixNet S/M/L (Tan & Le 2019) with PaddleClas's layer names: inverted residuals whose depthwise convs mix
several kernel sizes (and whose 1x1 convs may be split into groups) over channel splits. MixNet-L is
MixNet-M at width 1.3, widths rounded by make_divisible as the reference does."""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers.activations import make_act
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.inverted_residual import InvertedResidual, InvertedResidualNames
from pcls.arch.layers.channels import make_divisible
from pcls.arch.layers.se import SqueezeExcite
from pcls.arch.registry import register

# Per stage, per unit: output channels, kernel counts of (expand, depthwise, project) convs, expansion
# factor, SE factor (0 = no SE). A depthwise count k mixes kernels 3, 5, ..., 2k+1.
_UNITS = {
    "s": dict(
        stem=16,
        channels=((24, 24), (40, 40, 40, 40), (80, 80, 80), (120, 120, 120, 200, 200, 200)),
        exp_kernels=((2, 2), (1, 2, 2, 2), (1, 1, 1), (2, 2, 2, 1, 1, 1)),
        dw_kernels=((1, 1), (3, 2, 2, 2), (3, 2, 2), (3, 4, 4, 5, 4, 4)),
        project_kernels=((2, 2), (1, 2, 2, 2), (2, 2, 2), (2, 2, 2, 1, 2, 2)),
        exp_factors=((6, 3), (6, 6, 6, 6), (6, 6, 6), (6, 3, 3, 6, 6, 6)),
        se_factors=((0, 0), (2, 2, 2, 2), (4, 4, 4), (2, 2, 2, 2, 2, 2)),
    ),
    "m": dict(
        stem=24,
        channels=((32, 32), (40, 40, 40, 40), (80, 80, 80, 80), (120, 120, 120, 120, 200, 200, 200, 200)),
        exp_kernels=((2, 2), (1, 2, 2, 2), (1, 2, 2, 2), (1, 2, 2, 2, 1, 1, 1, 1)),
        dw_kernels=((3, 1), (4, 2, 2, 2), (3, 4, 4, 4), (1, 4, 4, 4, 4, 4, 4, 4)),
        project_kernels=((2, 2), (1, 2, 2, 2), (1, 2, 2, 2), (1, 2, 2, 2, 1, 2, 2, 2)),
        exp_factors=((6, 3), (6, 6, 6, 6), (6, 6, 6, 6), (6, 3, 3, 3, 6, 6, 6, 6)),
        se_factors=((0, 0), (2, 2, 2, 2), (4, 4, 4, 4), (2, 2, 2, 2, 2, 2, 2, 2)),
    ),
}
_FINAL_CHANNELS = 1536
_UNIT_NAMES = InvertedResidualNames(expand="exp_conv", depthwise="conv1", se="se", project="conv2")


def split_channels(channels, parts):
    """Equal splits, the remainder going to the first one."""
    sizes = [channels // parts] * parts
    sizes[0] += channels - sum(sizes)
    return sizes


class MixConv(nn.Layer):
    """Splits the channels into len(kernel_sizes) groups, convolves each with its own kernel size (children
    '0', '1', ...) and concatenates. groups == out_channels makes every part depthwise."""

    def __init__(self, in_channels, out_channels, kernel_sizes, stride=1, groups=1):
        super().__init__()
        self.in_splits = split_channels(in_channels, len(kernel_sizes))
        out_splits = split_channels(out_channels, len(kernel_sizes))
        self._parts = []
        for i, (cin, cout, k) in enumerate(zip(self.in_splits, out_splits, kernel_sizes)):
            conv = nn.Conv2D(cin, cout, k, stride=stride, padding=k // 2,
                             groups=cout if groups == out_channels else groups, bias_attr=False)
            self.add_sublayer(str(i), conv)
            self._parts.append(conv)

    def forward(self, x):
        pieces = paddle.split(x, self.in_splits, axis=1)
        return paddle.concat([conv(piece) for conv, piece in zip(self._parts, pieces)], axis=1)


class MixConvBNAct(nn.Layer):
    def __init__(self, in_channels, out_channels, kernel_sizes, stride=1, groups=1, act=None):
        super().__init__()
        self.conv = MixConv(in_channels, out_channels, kernel_sizes, stride, groups)
        self.bn = nn.BatchNorm2D(out_channels)
        self.act = make_act(act)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


def mix_conv_bn(in_channels, out_channels, kernel_size, stride=1, groups=1, act=None):
    """Conv factory for InvertedResidual: a list of several kernel sizes gives a MixConv."""
    if isinstance(kernel_size, (list, tuple)):
        if len(kernel_size) > 1:
            return MixConvBNAct(in_channels, out_channels, kernel_size, stride, groups, act)
        kernel_size = kernel_size[0]
    return ConvBNAct(in_channels, out_channels, kernel_size, stride=stride, groups=groups, act=act)


class MixUnit(InvertedResidual):
    """One MixNet unit: counts of kernels for the expand / depthwise / project convs."""

    def __init__(self, in_channels, out_channels, stride, exp_count, dw_count, project_count, exp_factor,
                 se_factor, act):
        mid = in_channels * exp_factor
        se = None
        if se_factor > 0:
            def se(channels):
                return SqueezeExcite(channels, reduced_channels=channels // (exp_factor * se_factor), act=act)
        super().__init__(in_channels, mid, out_channels, [3 + 2 * i for i in range(dw_count)], stride, act=act,
                         expand=exp_factor > 1, se=se, names=_UNIT_NAMES, conv=mix_conv_bn,
                         expand_kernel=[1] * exp_count, project_kernel=[1] * project_count)


class InitBlock(nn.Layer):
    def __init__(self, out_channels):
        super().__init__()
        self.conv1 = ConvBNAct(3, out_channels, 3, stride=2)
        self.conv2 = MixUnit(out_channels, out_channels, 1, 1, 1, 1, 1, 0, "relu")

    def forward(self, x):
        return self.conv2(self.conv1(x))


class MixNetNet(Classifier):
    classifier_names = ("output",)

    def __init__(self, version="s", width_scale=1.0, class_num=1000):
        super().__init__()
        self.class_num = class_num
        spec = _UNITS[version]
        channels, stem = spec["channels"], spec["stem"]
        if width_scale != 1.0:
            channels = tuple(tuple(make_divisible(c * width_scale) for c in stage) for stage in channels)
            stem = make_divisible(stem * width_scale)
        self.features = nn.Sequential()
        self.features.add_sublayer("init_block", InitBlock(stem))
        width = stem
        for i, stage_channels in enumerate(channels):
            stage = nn.Sequential()
            for j, out_channels in enumerate(stage_channels):
                # stages 1-3 stride at their first unit, the last stage halfway through
                stride = 2 if (j == 0 and i != 3) or (j == len(stage_channels) // 2 and i == 3) else 1
                unit = MixUnit(width, out_channels, stride, spec["exp_kernels"][i][j], spec["dw_kernels"][i][j],
                               spec["project_kernels"][i][j], spec["exp_factors"][i][j], spec["se_factors"][i][j],
                               "relu" if i == 0 else "swish")
                stage.add_sublayer(f"unit{j + 1}", unit)
                width = out_channels
            self.features.add_sublayer(f"stage{i + 1}", stage)
        self.features.add_sublayer("final_block", ConvBNAct(width, _FINAL_CHANNELS, 1))
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.output = nn.Linear(_FINAL_CHANNELS, class_num)

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x):
        return self.output(paddle.flatten(self.pool(x), 1))


@register
def MixNet_S(class_num=1000, **kwargs):
    return MixNetNet("s", 1.0, class_num=class_num, **kwargs)


@register
def MixNet_M(class_num=1000, **kwargs):
    return MixNetNet("m", 1.0, class_num=class_num, **kwargs)


@register
def MixNet_L(class_num=1000, **kwargs):
    return MixNetNet("m", 1.3, class_num=class_num, **kwargs)
