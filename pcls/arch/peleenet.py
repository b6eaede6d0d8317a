"""PeleeNet (Wang et al. 2018, "Pelee: A Real-Time Object Detection System on Mobile Devices") with
PaddleClas's layer names.

A DenseNet variant for mobile devices: a stem block that concatenates a 2x2 max pool with a strided conv path
(cheap early downsampling), two-way dense layers (a 3x3 path and a stacked two-3x3 path for a larger receptive
field, each adding half the growth rate), bottleneck widths that grow with depth, and transition layers that
keep the channel count (no compression). Post-activation conv-bn-relu throughout, pool -> fc head.
"""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.registry import register
from pcls.errors import PclsError

_NAMES = ("conv", "norm")


def _conv(cin, cout, kernel, stride=1):
    return ConvBNAct(cin, cout, kernel, stride, names=_NAMES)


class StemBlock(nn.Layer):
    """3x3/2 conv; then [2x2/2 max pool | 1x1 -> 3x3/2 conv] concatenated; 1x1 conv."""

    def __init__(self, in_channels, channels):
        super().__init__()
        self.stem1 = _conv(in_channels, channels, 3, 2)
        self.stem2a = _conv(channels, channels // 2, 1)
        self.stem2b = _conv(channels // 2, channels, 3, 2)
        self.stem3 = _conv(channels * 2, channels, 1)
        self.pool = nn.MaxPool2D(2, 2)

    def forward(self, x):
        x = self.stem1(x)
        x = paddle.concat([self.pool(x), self.stem2b(self.stem2a(x))], axis=1)
        return self.stem3(x)


class DenseLayer(nn.Layer):
    """concat([x, 1x1 -> 3x3 (growth/2), 1x1 -> 3x3 -> 3x3 (growth/2)])."""

    def __init__(self, in_channels, growth_rate, bottleneck_width):
        super().__init__()
        half = growth_rate // 2
        inter_channels = int(half * bottleneck_width / 4) * 4
        if inter_channels > in_channels / 2:  # never wider than half the input
            inter_channels = int(in_channels / 8) * 4
        self.branch1a = _conv(in_channels, inter_channels, 1)
        self.branch1b = _conv(inter_channels, half, 3)
        self.branch2a = _conv(in_channels, inter_channels, 1)
        self.branch2b = _conv(inter_channels, half, 3)
        self.branch2c = _conv(half, half, 3)

    def forward(self, x):
        b1 = self.branch1b(self.branch1a(x))
        b2 = self.branch2c(self.branch2b(self.branch2a(x)))
        return paddle.concat([x, b1, b2], axis=1)


class Transition(ConvBNAct):
    """1x1 conv-bn-relu keeping the width, then (except after the last block) a 2x2/2 average pool."""

    def __init__(self, channels, pool):
        super().__init__(channels, channels, 1, names=_NAMES)
        self.pool = nn.AvgPool2D(2, 2) if pool else None

    def forward(self, x):
        x = super().forward(x)
        return x if self.pool is None else self.pool(x)


class Pelee(Classifier):
    """growth_rate: channels each dense layer adds (one value or one per block); block_config: dense layers per
    block; bottleneck_width: 1x1 width in units of growth_rate / 2 (one value or one per block);
    num_init_features: stem width; drop_rate: dropout before the classifier."""

    classifier_names = ("classifier",)

    def __init__(self, growth_rate=32, block_config=(3, 4, 8, 6), num_init_features=32,
                 bottleneck_width=(1, 2, 4, 4), drop_rate=0.05, class_num=1000):
        super().__init__()
        self.class_num = class_num
        self.features = nn.Sequential(("stemblock", StemBlock(3, num_init_features)))
        blocks = len(block_config)
        growth_rates = _per_block(growth_rate, blocks, "growth_rate")
        widths = _per_block(bottleneck_width, blocks, "bottleneck_width")
        channels = num_init_features
        for i, (layers, growth, width) in enumerate(zip(block_config, growth_rates, widths), start=1):
            block = nn.Sequential(*[
                (f"denselayer{j + 1}", DenseLayer(channels + j * growth, growth, width)) for j in range(layers)
            ])
            self.features.add_sublayer(f"denseblock{i}", block)
            channels += layers * growth
            self.features.add_sublayer(f"transition{i}", Transition(channels, pool=i < blocks))
        self.dropout = nn.Dropout(drop_rate)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.classifier = nn.Linear(channels, class_num)

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x):
        return self.classifier(self.dropout(self.pool(x).flatten(1)))


def _per_block(value, blocks, name):
    values = list(value) if isinstance(value, (list, tuple)) else [value] * blocks
    if len(values) != blocks:
        raise PclsError(f"PeleeNet {name} needs one value or {blocks} (one per dense block), got {values}")
    return values


@register
def PeleeNet(class_num=1000, **kwargs):
    kwargs.pop("use_ssld", None)  # only chooses the distilled zoo weights (see registry)
    return Pelee(class_num=class_num, **kwargs)
