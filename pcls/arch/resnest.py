"""ResNeSt (Zhang et al. 2020): ResNet-D whose 3x3 conv is a split-attention conv — `radix` parallel
grouped convs mixed by a softmax attention computed from their pooled sum."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.registry import register
from pcls.arch.resnet import ResNet, Layout
from pcls.errors import PclsError

LAYOUT = Layout(
    stem={3: ("stem.conv1", "stem.conv2", "stem.conv3")},
    block=lambda s, i, n: f"layer{s + 1}.layer{s + 1}_bottleneck_{i}",
    fc="out",
)
CONV_BN = ("_conv", "_batch_norm")


class SplitAttentionConv(nn.Layer):
    """3x3 conv producing `radix` splits of `channels`, re-weighted by attention over the splits
    (softmax across radix; a sigmoid gate when radix is 1)."""

    def __init__(self, channels, radix, cardinality, reduction=4, lr_mult=1.0):
        super().__init__()
        self.radix, self.cardinality = radix, cardinality
        inter_channels = max(channels * radix // reduction, 32)
        common = dict(names=CONV_BN, lr_mult=lr_mult)
        self.conv1 = ConvBNAct(channels, channels * radix, 3, groups=cardinality * radix, **common)
        self.conv2 = ConvBNAct(channels, inter_channels, 1, groups=cardinality, **common)
        self.conv3 = nn.Conv2D(inter_channels, channels * radix, 1, groups=cardinality)
        self.pool = nn.AdaptiveAvgPool2D(1)

    def forward(self, x):
        x = self.conv1(x)
        splits = paddle.split(x, self.radix, axis=1) if self.radix > 1 else [x]
        gap = self.pool(paddle.add_n(splits) if self.radix > 1 else x)
        atten = self.conv3(self.conv2(gap))
        if self.radix == 1:
            return x * F.sigmoid(atten)
        batch = atten.shape[0]
        # attention logits are laid out [cardinality, radix, c]; softmax runs over radix
        atten = atten.reshape([batch, self.cardinality, self.radix, -1]).transpose([0, 2, 1, 3])
        atten = F.softmax(atten, axis=1).reshape([batch, -1, 1, 1])
        return paddle.add_n([s * a for s, a in zip(splits, paddle.split(atten, self.radix, axis=1))])


class ResNeStBlock(nn.Layer):
    """1x1 -> split-attention 3x3 -> 1x1, + shortcut. A strided block downsamples with a 3x3 average
    pool ("avd") before the split-attention conv (avd_first) or after it; the projection shortcut
    average-pools, then applies a 1x1 conv and BN."""

    def __init__(self, in_channels, out_channels, width, stride, radix, cardinality, avd_first, lr_mult=1.0):
        super().__init__()
        common = dict(names=CONV_BN, lr_mult=lr_mult)
        self.avd_first = avd_first
        self.conv1 = ConvBNAct(in_channels, width, 1, **common)
        self.conv2 = SplitAttentionConv(width, radix, cardinality, lr_mult=lr_mult)
        self.conv3 = ConvBNAct(width, out_channels, 1, act=None, **common)
        self.avd = nn.AvgPool2D(3, stride, padding=1) if stride > 1 else None
        self.project = stride != 1 or in_channels != out_channels
        if self.project:
            self.short_pool = nn.AvgPool2D(stride, stride) if stride > 1 else None
            self.conv4 = nn.Conv2D(in_channels, out_channels, 1, bias_attr=False)
            self._batch_norm = nn.BatchNorm2D(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.conv1(x)
        if self.avd is not None and self.avd_first:
            y = self.avd(y)
        y = self.conv2(y)
        if self.avd is not None and not self.avd_first:
            y = self.avd(y)
        y = self.conv3(y)
        short = x
        if self.project:
            if self.short_pool is not None:
                short = self.short_pool(short)
            short = self._batch_norm(self.conv4(short))
        return self.relu(y + short)


def resnest(depths, stem_width, radix, cardinality=1, bottleneck_width=64, avd_first=False, **kwargs) -> ResNet:
    def make_block(stage, index, in_ch, out_ch, stride, lr_mult, data_format):
        if data_format != "NCHW":
            raise PclsError("ResNeSt supports only Arch.data_format NCHW")
        width = int(64 * 2**stage * bottleneck_width / 64) * cardinality
        return ResNeStBlock(in_ch, out_ch, width, stride, radix, cardinality, avd_first, lr_mult=lr_mult)

    return ResNet(depths, "bottleneck", make_block=make_block, layout=LAYOUT,
                  stem_channels=(stem_width, stem_width, stem_width * 2), **kwargs)


@register
def ResNeSt50_fast_1s1x64d(class_num=1000, **kwargs):
    return resnest([3, 4, 6, 3], 32, radix=1, avd_first=True, class_num=class_num, **kwargs)


@register
def ResNeSt50(class_num=1000, **kwargs):
    return resnest([3, 4, 6, 3], 32, radix=2, class_num=class_num, **kwargs)


@register
def ResNeSt101(class_num=1000, **kwargs):
    return resnest([3, 4, 23, 3], 64, radix=2, class_num=class_num, **kwargs)


@register
def ResNeSt200(class_num=1000, **kwargs):
    return resnest([3, 24, 36, 3], 64, radix=2, class_num=class_num, **kwargs)


@register
def ResNeSt269(class_num=1000, **kwargs):
    return resnest([3, 30, 48, 8], 64, radix=2, class_num=class_num, **kwargs)
