"""Dual Path Networks 68/92/98/107/131 (Chen et al. 2017) with PaddleClas's layer names.

Each block's last 1x1 conv output is split in two: the first `width` channels are added to the
residual path, the last `inc` channels are appended to the densely connected path. The first block
of a stage projects the input into both paths with a 1x1 conv ('c1x1_w', stride 2 from stage 2 on).
"""

from dataclasses import dataclass

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import BNActConv, ConvBNAct
from pcls.arch.registry import register


@dataclass(frozen=True)
class DPNSpec:
    k_r: int  # bottleneck width numerator: R = k_r * width // r
    groups: int  # groups of the 3x3 conv
    blocks: tuple  # blocks per stage
    inc: tuple  # channels each block appends to the dense path, per stage
    widths: tuple = (256, 512, 1024, 2048)  # residual-path channels per stage
    r: int = 256
    stem: int = 64
    stem_kernel: int = 7


_SPECS = {
    68: DPNSpec(128, 32, (3, 4, 12, 3), (16, 32, 32, 64), widths=(64, 128, 256, 512), r=64, stem=10, stem_kernel=3),
    92: DPNSpec(96, 32, (3, 4, 20, 3), (16, 32, 24, 128)),
    98: DPNSpec(160, 40, (3, 6, 20, 3), (16, 32, 32, 128), stem=96),
    107: DPNSpec(200, 50, (4, 8, 20, 3), (20, 64, 64, 128), stem=128),
    131: DPNSpec(160, 40, (4, 8, 28, 3), (16, 32, 32, 128), stem=128),
}


class DualPathBlock(nn.Layer):
    """Input and output are [residual, dense] pairs (a single tensor for the very first block).

    project_stride: None for an ordinary block, else the stride of the projecting first block.
    """

    def __init__(self, cin, bottleneck, width, inc, groups, project_stride=None):
        super().__init__()
        self.width, self.inc = width, inc
        stride = project_stride or 1
        self.c1x1_w_func = (BNActConv(cin, width + 2 * inc, 1, stride=stride)
                            if project_stride else None)
        self.c1x1_a_func = BNActConv(cin, bottleneck, 1)
        self.c3x3_b_func = BNActConv(bottleneck, bottleneck, 3, stride=stride, groups=groups)
        self.c1x1_c_func = BNActConv(bottleneck, width + inc, 1)

    def forward(self, x):
        data = paddle.concat(x, axis=1) if isinstance(x, (list, tuple)) else x
        if self.c1x1_w_func is not None:
            residual, dense = paddle.split(self.c1x1_w_func(data), [self.width, 2 * self.inc], axis=1)
        else:
            residual, dense = x
        y = self.c1x1_c_func(self.c3x3_b_func(self.c1x1_a_func(data)))
        y_residual, y_dense = paddle.split(y, [self.width, self.inc], axis=1)
        return [residual + y_residual, paddle.concat([dense, y_dense], axis=1)]


class DPN(Classifier):
    classifier_names = ("out",)

    def __init__(self, depth=68, class_num=1000):
        super().__init__()
        self.class_num = class_num
        spec = _SPECS[depth]
        self.conv1_x_1_func = ConvBNAct(3, spec.stem, spec.stem_kernel, stride=2, names=("_conv", "_batch_norm"))
        self.pool2d_max = nn.MaxPool2D(3, stride=2, padding=1)
        self._blocks = []
        channels = spec.stem
        index = 1
        for stage, (n_blocks, width, inc) in enumerate(zip(spec.blocks, spec.widths, spec.inc)):
            bottleneck = spec.k_r * width // spec.r
            for i in range(n_blocks):
                project_stride = (1 if stage == 0 else 2) if i == 0 else None
                block = DualPathBlock(channels, bottleneck, width, inc, spec.groups, project_stride)
                self._blocks.append(self.add_sublayer(f"dpn{index}", block))
                index += 1
                channels = width + (3 + i) * inc
        self.conv5_x_x_bn = nn.BatchNorm2D(channels)
        self.relu = nn.ReLU()
        self.pool2d_avg = nn.AdaptiveAvgPool2D(1)
        self.out = nn.Linear(channels, class_num)

    def forward_features(self, x):
        x = self.pool2d_max(self.conv1_x_1_func(x))
        for block in self._blocks:
            x = block(x)
        return self.relu(self.conv5_x_x_bn(paddle.concat(x, axis=1)))

    def forward_head(self, x):
        return self.out(self.pool2d_avg(x).flatten(1))


@register
def DPN68(class_num=1000, **kwargs):
    return DPN(68, class_num=class_num, **kwargs)


@register
def DPN92(class_num=1000, **kwargs):
    return DPN(92, class_num=class_num, **kwargs)


@register
def DPN98(class_num=1000, **kwargs):
    return DPN(98, class_num=class_num, **kwargs)


@register
def DPN107(class_num=1000, **kwargs):
    return DPN(107, class_num=class_num, **kwargs)


@register
def DPN131(class_num=1000, **kwargs):
    return DPN(131, class_num=class_num, **kwargs)
