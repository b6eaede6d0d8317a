"""DLA (Yu et al. 2018), deep layer aggregation, with PaddleClas's layer names: stages are recursive trees whose
roots merge their children (1x1 conv over the concatenation); '_c' and 'x' variants are bottleneck / grouped."""

import math

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.registry import register


def _conv_bn_relu(cin, cout, kernel, stride=1):
    """conv -> bn -> relu as a Sequential (keys .0 / .1), the reference's stem and conv levels."""
    return nn.Sequential(nn.Conv2D(cin, cout, kernel, stride, padding=kernel // 2, bias_attr=False),
                         nn.BatchNorm2D(cout), nn.ReLU())


class DlaBasic(nn.Layer):
    def __init__(self, cin, cout, stride=1, cardinality=1, base_width=64):
        super().__init__()
        self.conv1 = nn.Conv2D(cin, cout, 3, stride, padding=1, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(cout)
        self.conv2 = nn.Conv2D(cout, cout, 3, 1, padding=1, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(cout)
        self.relu = nn.ReLU()

    def forward(self, x, shortcut=None):
        shortcut = x if shortcut is None else shortcut
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + shortcut)


class DlaBottleneck(nn.Layer):
    expansion = 2

    def __init__(self, cin, cout, stride=1, cardinality=1, base_width=64):
        super().__init__()
        mid = int(math.floor(cout * (base_width / 64)) * cardinality) // self.expansion
        self.conv1 = nn.Conv2D(cin, mid, 1, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(mid)
        self.conv2 = nn.Conv2D(mid, mid, 3, stride, padding=1, groups=cardinality, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(mid)
        self.conv3 = nn.Conv2D(mid, cout, 1, bias_attr=False)
        self.bn3 = nn.BatchNorm2D(cout)
        self.relu = nn.ReLU()

    def forward(self, x, shortcut=None):
        shortcut = x if shortcut is None else shortcut
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + shortcut)


class DlaRoot(nn.Layer):
    def __init__(self, cin, cout, residual):
        super().__init__()
        self.conv = nn.Conv2D(cin, cout, 1, bias_attr=False)
        self.bn = nn.BatchNorm2D(cout)
        self.relu = nn.ReLU()
        self.residual = residual

    def forward(self, children):
        x = self.bn(self.conv(paddle.concat(children, axis=1)))
        if self.residual:
            x = x + children[0]
        return self.relu(x)


class DlaTree(nn.Layer):
    """levels == 1: two blocks merged by a root; deeper: two sub-trees, the second owning the root, which also
    receives the (downsampled) input when `level_root` and every left sub-tree's output."""

    def __init__(self, levels, block, cin, cout, stride=1, level_root=False, root_dim=0, root_residual=False,
                 **block_args):
        super().__init__()
        root_dim = root_dim or 2 * cout
        if level_root:
            root_dim += cin
        self.downsample = nn.MaxPool2D(stride, stride) if stride > 1 else None
        self.project = None
        self.level_root, self.levels = level_root, levels
        if levels == 1:
            self.tree1 = block(cin, cout, stride, **block_args)
            self.tree2 = block(cout, cout, 1, **block_args)
            if cin != cout:
                self.project = nn.Sequential(nn.Conv2D(cin, cout, 1, bias_attr=False), nn.BatchNorm2D(cout))
            self.root = DlaRoot(root_dim, cout, root_residual)
        else:
            self.tree1 = DlaTree(levels - 1, block, cin, cout, stride, root_residual=root_residual, **block_args)
            self.tree2 = DlaTree(levels - 1, block, cout, cout, root_dim=root_dim + cout,
                                 root_residual=root_residual, **block_args)
            self.root = None

    def forward(self, x, shortcut=None, children=None):
        children = [] if children is None else children
        bottom = self.downsample(x) if self.downsample is not None else x
        if self.level_root:
            children.append(bottom)
        if self.levels == 1:
            x1 = self.tree1(x, self.project(bottom) if self.project is not None else bottom)
            return self.root([self.tree2(x1), x1] + children)
        x1 = self.tree1(x)
        children.append(x1)
        return self.tree2(x1, children=children)


class DLA(Classifier):
    classifier_names = ("fc",)

    def __init__(self, levels, channels, block=DlaBottleneck, cardinality=1, base_width=64, root_residual=False,
                 class_num=1000):
        super().__init__()
        self.class_num = class_num
        self.base_layer = _conv_bn_relu(3, channels[0], 7)
        self.level0 = self._conv_level(channels[0], channels[0], levels[0], 1)
        self.level1 = self._conv_level(channels[0], channels[1], levels[1], 2)
        args = dict(cardinality=cardinality, base_width=base_width, root_residual=root_residual)
        self.level2 = DlaTree(levels[2], block, channels[1], channels[2], 2, level_root=False, **args)
        self.level3 = DlaTree(levels[3], block, channels[2], channels[3], 2, level_root=True, **args)
        self.level4 = DlaTree(levels[4], block, channels[3], channels[4], 2, level_root=True, **args)
        self.level5 = DlaTree(levels[5], block, channels[4], channels[5], 2, level_root=True, **args)
        self.global_pool = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Conv2D(channels[5], class_num, 1)

    @staticmethod
    def _conv_level(cin, cout, convs, stride):
        layers = []
        for i in range(convs):
            layers.extend(_conv_bn_relu(cin if i == 0 else cout, cout, 3, stride if i == 0 else 1).children())
        return nn.Sequential(*layers)

    def forward_features(self, x):
        x = self.level1(self.level0(self.base_layer(x)))
        for level in (self.level2, self.level3, self.level4, self.level5):
            x = level(x)
        return x

    def forward_head(self, x):
        return paddle.flatten(self.fc(self.global_pool(x)), 1)


_SMALL = (16, 32, 64, 64, 128, 256)
_WIDE = (16, 32, 128, 256, 512, 1024)


@register
def DLA34(class_num=1000, **kwargs):
    return DLA((1, 1, 1, 2, 2, 1), (16, 32, 64, 128, 256, 512), DlaBasic, class_num=class_num, **kwargs)


@register
def DLA46_c(class_num=1000, **kwargs):
    return DLA((1, 1, 1, 2, 2, 1), _SMALL, class_num=class_num, **kwargs)


@register
def DLA46x_c(class_num=1000, **kwargs):
    return DLA((1, 1, 1, 2, 2, 1), _SMALL, cardinality=32, base_width=4, class_num=class_num, **kwargs)


@register
def DLA60x_c(class_num=1000, **kwargs):
    return DLA((1, 1, 1, 2, 3, 1), _SMALL, cardinality=32, base_width=4, class_num=class_num, **kwargs)


@register
def DLA60(class_num=1000, **kwargs):
    return DLA((1, 1, 1, 2, 3, 1), _WIDE, class_num=class_num, **kwargs)


@register
def DLA60x(class_num=1000, **kwargs):
    return DLA((1, 1, 1, 2, 3, 1), _WIDE, cardinality=32, base_width=4, class_num=class_num, **kwargs)


@register
def DLA102(class_num=1000, **kwargs):
    return DLA((1, 1, 1, 3, 4, 1), _WIDE, root_residual=True, class_num=class_num, **kwargs)


@register
def DLA102x(class_num=1000, **kwargs):
    return DLA((1, 1, 1, 3, 4, 1), _WIDE, cardinality=32, base_width=4, root_residual=True, class_num=class_num,
               **kwargs)


@register
def DLA102x2(class_num=1000, **kwargs):
    return DLA((1, 1, 1, 3, 4, 1), _WIDE, cardinality=64, base_width=4, root_residual=True, class_num=class_num,
               **kwargs)


@register
def DLA169(class_num=1000, **kwargs):
    return DLA((1, 1, 2, 3, 5, 1), _WIDE, root_residual=True, class_num=class_num, **kwargs)
