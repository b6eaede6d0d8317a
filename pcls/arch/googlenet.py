"""GoogLeNet / Inception-v1 (Szegedy et al. 2014) with PaddleClas's layer names and its two auxiliary
classifiers.

forward: in eval mode the main [N, class_num] logits (what PaddleClas's first output is); in train
mode a list [main, aux1, aux2] of three [N, class_num] logits — the aux heads tap inception 4a and 4d
— for GoogLeNetLoss (weights 1, 0.3, 0.3). PaddleClas's convs here are bias-free and have no
activation of their own: each inception module applies one ReLU to its concatenated output.
"""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import ConvAct
from pcls.arch.registry import register

# name -> (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection)
_MODULES = [
    ("_ince3a", (192, 64, 96, 128, 16, 32, 32)),
    ("_ince3b", (256, 128, 128, 192, 32, 96, 64)),
    ("_ince4a", (480, 192, 96, 208, 16, 48, 64)),
    ("_ince4b", (512, 160, 112, 224, 24, 64, 64)),
    ("_ince4c", (512, 128, 128, 256, 24, 64, 64)),
    ("_ince4d", (512, 112, 144, 288, 32, 64, 64)),
    ("_ince4e", (528, 256, 160, 320, 32, 128, 128)),
    ("_ince5a", (832, 256, 160, 320, 32, 128, 128)),
    ("_ince5b", (832, 384, 192, 384, 48, 128, 128)),
]
_POOL_AFTER = {"_ince3b", "_ince4e"}  # a 3x3/2 max-pool follows these modules
_AUX_TAPS = {"_ince4a": 0, "_ince4d": 1}  # module -> auxiliary head index


def _conv(cin, cout, kernel, stride=1):
    """Wrapped once more so the keys read '<name>._conv.weight' as published."""
    return ConvAct(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, act=None, bias=False)


class Inception(nn.Layer):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, proj):
        super().__init__()
        self._conv1 = _conv(cin, c1, 1)
        self._conv3r = _conv(cin, c3r, 1)
        self._conv3 = _conv(c3r, c3, 3)
        self._conv5r = _conv(cin, c5r, 1)
        self._conv5 = _conv(c5r, c5, 5)
        self._pool = nn.MaxPool2D(3, stride=1, padding=1)
        self._convprj = _conv(cin, proj, 1)

    def forward(self, x):
        branches = [
            self._conv1(x),
            self._conv3(self._conv3r(x)),
            self._conv5(self._conv5r(x)),
            self._convprj(self._pool(x)),
        ]
        return nn.functional.relu(paddle.concat(branches, axis=1))


class GoogLeNetModel(Classifier):
    classifier_names = ("_fc_out", "_out1", "_out2")

    def __init__(self, class_num=1000, dropout=0.4, aux_dropout=0.7):
        super().__init__()
        self.class_num = class_num
        self._conv = _conv(3, 64, 7, stride=2)
        self._pool = nn.MaxPool2D(3, stride=2)
        self._conv_1 = _conv(64, 64, 1)
        self._conv_2 = _conv(64, 192, 3)
        for name, spec in _MODULES:
            setattr(self, name, Inception(*spec))
        self._pool_5 = nn.AdaptiveAvgPool2D(1)
        self._drop = nn.Dropout(dropout, mode="downscale_in_infer")
        self._fc_out = nn.Linear(1024, class_num)
        # auxiliary heads: 5x5/3 average pool -> 1x1 conv to 128 -> Linear 1152 -> 1024 -> class_num
        for i, cin in ((1, 512), (2, 528)):
            setattr(self, f"_pool_o{i}", nn.AvgPool2D(5, stride=3))
            setattr(self, f"_conv_o{i}", _conv(cin, 128, 1))
            setattr(self, f"_fc_o{i}", nn.Linear(1152, 1024))
            setattr(self, f"_drop_o{i}", nn.Dropout(aux_dropout, mode="downscale_in_infer"))
            setattr(self, f"_out{i}", nn.Linear(1024, class_num))
        self._aux_inputs = [None, None]

    def forward_features(self, x):
        x = self._pool(self._conv(x))
        x = self._pool(self._conv_2(self._conv_1(x)))
        for name, _ in _MODULES:
            x = getattr(self, name)(x)
            if self.training and name in _AUX_TAPS:
                self._aux_inputs[_AUX_TAPS[name]] = x
            if name in _POOL_AFTER:
                x = self._pool(x)
        return x

    def forward_head(self, x):
        x = self._drop(self._pool_5(x)).flatten(1)
        return self._fc_out(x)

    def aux_head(self, index, x):
        """Logits of auxiliary head 1 or 2 from its tapped feature map."""
        x = getattr(self, f"_conv_o{index}")(getattr(self, f"_pool_o{index}")(x)).flatten(1)
        x = getattr(self, f"_fc_o{index}")(x)
        if index == 1:  # PaddleClas applies a ReLU after the first aux head's hidden layer only
            x = nn.functional.relu(x)
        return getattr(self, f"_out{index}")(getattr(self, f"_drop_o{index}")(x))

    def forward(self, x):
        logits = super().forward(x)
        taps, self._aux_inputs = self._aux_inputs, [None, None]
        if not self.training:
            return logits
        aux = [self.aux_head(i + 1, tap) for i, tap in enumerate(taps)]
        if isinstance(logits, dict):
            logits["aux"] = aux
            return logits
        return [logits, *aux]


@register
def GoogLeNet(class_num=1000, **kwargs):
    return GoogLeNetModel(class_num=class_num, **kwargs)
