"""SqueezeNet 1.0 / 1.1 (Iandola et al. 2016) with PaddleClas's layer names.

The versions differ in the stem conv and in where the two inner max-pools sit; both pool with
3x3/2 windows in floor mode, and the dropout before the conv classifier is "downscale_in_infer".
"""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import ConvAct
from pcls.arch.registry import register

# (squeeze, expand) of the eight fire modules, shared by both versions; a fire outputs 2 * expand
_FIRES = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]
# version -> (stem out channels, stem kernel, stem stride, stem padding, fire indices followed by a pool)
_VERSIONS = {"1.0": (96, 7, 2, 0, (3, 7)), "1.1": (64, 3, 2, 1, (2, 4))}


class Fire(nn.Layer):
    """1x1 squeeze, then 1x1 and 3x3 expands concatenated."""

    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self._conv = ConvAct(cin, squeeze, 1)
        self._conv_path1 = ConvAct(squeeze, expand, 1)
        self._conv_path2 = ConvAct(squeeze, expand, 3, padding=1)

    def forward(self, x):
        x = self._conv(x)
        return paddle.concat([self._conv_path1(x), self._conv_path2(x)], axis=1)


class SqueezeNetModel(Classifier):
    classifier_names = ("_conv9",)

    def __init__(self, version="1.0", class_num=1000, dropout=0.5):
        super().__init__()
        self.class_num = class_num
        stem, kernel, stride, padding, self._pool_after = _VERSIONS[version]
        self._conv = nn.Conv2D(3, stem, kernel, stride=stride, padding=padding)
        self._pool = nn.MaxPool2D(3, stride=2, padding=0)
        self._fire_names = [f"_conv{i + 1}" for i in range(len(_FIRES))]
        channels = stem
        for name, (squeeze, expand) in zip(self._fire_names, _FIRES):
            setattr(self, name, Fire(channels, squeeze, expand))
            channels = 2 * expand
        self._drop = nn.Dropout(dropout, mode="downscale_in_infer")
        self._conv9 = nn.Conv2D(512, class_num, 1)
        self.relu = nn.ReLU()
        self._avg_pool = nn.AdaptiveAvgPool2D(1)

    def forward_features(self, x):
        x = self._pool(self.relu(self._conv(x)))
        for i, name in enumerate(self._fire_names, start=1):
            x = getattr(self, name)(x)
            if i in self._pool_after:
                x = self._pool(x)
        return x

    def forward_head(self, x):
        x = self.relu(self._conv9(self._drop(x)))
        return paddle.flatten(self._avg_pool(x), 1)


@register
def SqueezeNet1_0(class_num=1000, **kwargs):
    return SqueezeNetModel("1.0", class_num=class_num, **kwargs)


@register
def SqueezeNet1_1(class_num=1000, **kwargs):
    return SqueezeNetModel("1.1", class_num=class_num, **kwargs)
