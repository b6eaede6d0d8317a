"""VGG 11/13/16/19 (Simonyan & Zisserman 2014) with PaddleClas's layer names: five blocks of bias-free
3x3 convs + ReLU, each closed by a 2x2 max-pool, then three Linear layers with dropout."""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.registry import register

# depth -> convs per block
_DEPTHS = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
_WIDTHS = (64, 128, 256, 512, 512)


class ConvBlock(nn.Layer):
    def __init__(self, cin, cout, n_convs):
        super().__init__()
        self._names = [f"conv{i + 1}" for i in range(n_convs)]
        for i, name in enumerate(self._names):
            setattr(self, name, nn.Conv2D(cin if i == 0 else cout, cout, 3, padding=1, bias_attr=False))
        self.relu = nn.ReLU()
        self.max_pool = nn.MaxPool2D(2, stride=2, padding=0)

    def forward(self, x):
        for name in self._names:
            x = self.relu(getattr(self, name)(x))
        return self.max_pool(x)


class VGGNet(Classifier):
    """stop_grad_layers: freeze the first N conv blocks (PaddleClas option)."""

    classifier_names = ("fc3",)

    def __init__(self, depth=16, class_num=1000, stop_grad_layers=0, dropout=0.5):
        super().__init__()
        self.class_num = class_num
        self._block_names = []
        cin = 3
        for i, (cout, n) in enumerate(zip(_WIDTHS, _DEPTHS[depth])):
            name = f"conv_block_{i + 1}"
            block = ConvBlock(cin, cout, n)
            if i < stop_grad_layers:
                for param in block.parameters():
                    param.stop_gradient = True
            setattr(self, name, block)
            self._block_names.append(name)
            cin = cout
        self.relu = nn.ReLU()
        self.drop = nn.Dropout(dropout, mode="downscale_in_infer")
        self.fc1 = nn.Linear(7 * 7 * 512, 4096)
        self.fc2 = nn.Linear(4096, 4096)
        self.fc3 = nn.Linear(4096, class_num)

    def forward_features(self, x):
        for name in self._block_names:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x):
        x = paddle.flatten(x, 1)
        x = self.drop(self.relu(self.fc1(x)))
        x = self.drop(self.relu(self.fc2(x)))
        return self.fc3(x)


@register
def VGG11(class_num=1000, **kwargs):
    return VGGNet(11, class_num=class_num, **kwargs)


@register
def VGG13(class_num=1000, **kwargs):
    return VGGNet(13, class_num=class_num, **kwargs)


@register
def VGG16(class_num=1000, **kwargs):
    return VGGNet(16, class_num=class_num, **kwargs)


@register
def VGG19(class_num=1000, **kwargs):
    return VGGNet(19, class_num=class_num, **kwargs)
