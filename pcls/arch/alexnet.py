"""AlexNet (Krizhevsky et al. 2012) with PaddleClas's layer names and head.

Numbers that matter: both dropouts use "downscale_in_infer" (PaddleClas scales activations by
0.5 at inference instead of upscaling in training).
"""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import ConvAct
from pcls.arch.registry import register


class _ConvPool(ConvAct):
    """conv -> ReLU -> 3x3/2 max-pool."""

    def __init__(self, cin, cout, kernel, stride, padding):
        super().__init__(cin, cout, kernel, stride=stride, padding=padding)
        self.pool = nn.MaxPool2D(3, stride=2, padding=0)

    def forward(self, x):
        return self.pool(super().forward(x))


class AlexNetModel(Classifier):
    classifier_names = ("_fc8",)

    def __init__(self, class_num=1000, dropout=0.5):
        super().__init__()
        self.class_num = class_num
        self._conv1 = _ConvPool(3, 64, 11, 4, 2)
        self._conv2 = _ConvPool(64, 192, 5, 1, 2)
        self._conv3 = nn.Conv2D(192, 384, 3, padding=1)
        self._conv4 = nn.Conv2D(384, 256, 3, padding=1)
        self._conv5 = _ConvPool(256, 256, 3, 1, 1)
        self.relu = nn.ReLU()
        self._drop1 = nn.Dropout(dropout, mode="downscale_in_infer")
        self._fc6 = nn.Linear(256 * 6 * 6, 4096)
        self._drop2 = nn.Dropout(dropout, mode="downscale_in_infer")
        self._fc7 = nn.Linear(4096, 4096)
        self._fc8 = nn.Linear(4096, class_num)

    def forward_features(self, x):
        x = self._conv2(self._conv1(x))
        x = self.relu(self._conv4(self.relu(self._conv3(x))))
        return self._conv5(x)

    def forward_head(self, x):
        x = self._drop1(paddle.flatten(x, 1))
        x = self._drop2(self.relu(self._fc6(x)))
        return self._fc8(self.relu(self._fc7(x)))


@register
def AlexNet(class_num=1000, **kwargs):
    return AlexNetModel(class_num=class_num, **kwargs)
