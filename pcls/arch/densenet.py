"""DenseNet 121/161/169/201/264 (Huang et al. 2017) with PaddleClas's layer names.

Every conv is pre-activated (BN -> ReLU -> conv); a dense layer appends `growth_rate` channels to its
input, a transition halves the channels with a 1x1 conv and a 2x2 average pool.
"""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import BNActConv, ConvBNAct
from pcls.arch.registry import register

# depth -> (stem channels, growth rate, dense layers per block)
_SPECS = {
    121: (64, 32, (6, 12, 24, 16)),
    161: (96, 48, (6, 12, 36, 24)),
    169: (64, 32, (6, 12, 32, 32)),
    201: (64, 32, (6, 12, 48, 32)),
    264: (64, 32, (6, 12, 64, 48)),
}


class DenseLayer(nn.Layer):
    def __init__(self, cin, growth_rate, bn_size, dropout):
        super().__init__()
        self.bn_ac_func1 = BNActConv(cin, bn_size * growth_rate, 1)
        self.bn_ac_func2 = BNActConv(bn_size * growth_rate, growth_rate, 3)
        self.dropout_func = nn.Dropout(dropout, mode="downscale_in_infer") if dropout else None

    def forward(self, x):
        y = self.bn_ac_func2(self.bn_ac_func1(x))
        if self.dropout_func is not None:
            y = self.dropout_func(y)
        return paddle.concat([x, y], axis=1)


class DenseBlock(nn.Layer):
    def __init__(self, cin, n_layers, growth_rate, bn_size, dropout, prefix):
        super().__init__()
        self._layers_in_order = []
        for i in range(n_layers):
            layer = DenseLayer(cin + i * growth_rate, growth_rate, bn_size, dropout)
            self._layers_in_order.append(self.add_sublayer(f"{prefix}_{i + 1}", layer))

    def forward(self, x):
        for layer in self._layers_in_order:
            x = layer(x)
        return x


class Transition(nn.Layer):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv_ac_func = BNActConv(cin, cout, 1)
        self.pool2d_avg = nn.AvgPool2D(2, stride=2, padding=0)

    def forward(self, x):
        return self.pool2d_avg(self.conv_ac_func(x))


class DenseNet(Classifier):
    classifier_names = ("out",)

    def __init__(self, depth=121, class_num=1000, bn_size=4, dropout=0.0):
        super().__init__()
        self.class_num = class_num
        stem, growth, blocks = _SPECS[depth]
        self.conv1_func = ConvBNAct(3, stem, 7, stride=2, names=("_conv", "_batch_norm"))
        self.pool2d_max = nn.MaxPool2D(3, stride=2, padding=1)
        self._stages = []
        channels = stem
        for i, n_layers in enumerate(blocks):
            block = DenseBlock(channels, n_layers, growth, bn_size, dropout, prefix=f"conv{i + 2}")
            self._stages.append(self.add_sublayer(f"db_conv_{i + 2}", block))
            channels += n_layers * growth
            if i < len(blocks) - 1:
                self._stages.append(self.add_sublayer(f"tr_conv{i + 2}_blk", Transition(channels, channels // 2)))
                channels //= 2
        self.batch_norm = nn.BatchNorm2D(channels)
        self.relu = nn.ReLU()
        self.pool2d_avg = nn.AdaptiveAvgPool2D(1)
        self.out = nn.Linear(channels, class_num)

    def forward_features(self, x):
        x = self.pool2d_max(self.conv1_func(x))
        for stage in self._stages:
            x = stage(x)
        return self.relu(self.batch_norm(x))

    def forward_head(self, x):
        return self.out(self.pool2d_avg(x).flatten(1))


@register
def DenseNet121(class_num=1000, **kwargs):
    return DenseNet(121, class_num=class_num, **kwargs)


@register
def DenseNet161(class_num=1000, **kwargs):
    return DenseNet(161, class_num=class_num, **kwargs)


@register
def DenseNet169(class_num=1000, **kwargs):
    return DenseNet(169, class_num=class_num, **kwargs)


@register
def DenseNet201(class_num=1000, **kwargs):
    return DenseNet(201, class_num=class_num, **kwargs)


@register
def DenseNet264(class_num=1000, **kwargs):
    return DenseNet(264, class_num=class_num, **kwargs)
