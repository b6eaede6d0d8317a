"""RepVGG (Ding et al. 2021) in its train-time form: every block sums a 3x3 conv-bn, a 1x1 conv-bn and (when
shapes allow) an identity BatchNorm; `rep()` folds the three branches into one 3x3 conv with bias for deployment."""

import numpy as np
import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.reparam import fold_bn as _fold_bn
from pcls.arch.layers.se import SqueezeExcite
from pcls.arch.registry import register


class RepVGGBlock(nn.Layer):
    def __init__(self, in_channels, out_channels, stride=1, groups=1, use_se=False):
        super().__init__()
        self.in_channels, self.out_channels, self.stride, self.groups = in_channels, out_channels, stride, groups
        if use_se:
            # reference: a 1/16 SE on the summed branches, before the ReLU
            self.se = SqueezeExcite(out_channels, reduction=16, kind="conv", names=("down", "up"))
        else:
            self.se = nn.Identity()
        self.rbr_identity = nn.BatchNorm2D(in_channels) if in_channels == out_channels and stride == 1 else None
        self.rbr_dense = ConvBNAct(in_channels, out_channels, 3, stride, groups=groups, act=None)
        self.rbr_1x1 = ConvBNAct(in_channels, out_channels, 1, stride, groups=groups, act=None)
        self.rbr_reparam = None
        self.nonlinearity = nn.ReLU()

    def forward(self, x):
        if self.rbr_reparam is not None:
            return self.nonlinearity(self.se(self.rbr_reparam(x)))
        out = self.rbr_dense(x) + self.rbr_1x1(x)
        if self.rbr_identity is not None:
            out = out + self.rbr_identity(x)
        return self.nonlinearity(self.se(out))

    def fused_kernel_bias(self):
        """The single 3x3 kernel and bias equivalent (in eval mode) to the three branches."""
        kernel, bias = _fold_bn(self.rbr_dense.conv.weight.numpy().astype("float64"), self.rbr_dense.bn)
        k1, b1 = _fold_bn(self.rbr_1x1.conv.weight.numpy().astype("float64"), self.rbr_1x1.bn)
        kernel[:, :, 1:2, 1:2] += k1
        bias += b1
        if self.rbr_identity is not None:
            per_group = self.in_channels // self.groups
            eye = np.zeros((self.in_channels, per_group, 3, 3))
            for c in range(self.in_channels):
                eye[c, c % per_group, 1, 1] = 1.0
            ki, bi = _fold_bn(eye, self.rbr_identity)
            kernel += ki
            bias += bi
        return kernel.astype("float32"), bias.astype("float32")

    def rep(self):
        if self.rbr_reparam is not None:
            return
        kernel, bias = self.fused_kernel_bias()
        conv = nn.Conv2D(self.in_channels, self.out_channels, 3, self.stride, padding=1, groups=self.groups)
        conv.weight.set_value(paddle.to_tensor(kernel))
        conv.bias.set_value(paddle.to_tensor(bias))
        self.rbr_reparam = conv
        for name in ("rbr_dense", "rbr_1x1", "rbr_identity"):
            delattr(self, name)
            setattr(self, name, None)


class RepVGG(Classifier):
    """num_blocks: blocks in stages 1-4; width: multipliers (a, a, a, b) of 64/128/256/512; grouped_layers:
    indices (counting blocks from 1 after stage0) whose convs use `groups` groups."""

    classifier_names = ("linear",)

    def __init__(self, num_blocks, width, groups=1, grouped_layers=(), use_se=False, class_num=1000):
        super().__init__()
        self.class_num = class_num
        in_channels = min(64, int(64 * width[0]))
        self.stage0 = RepVGGBlock(3, in_channels, stride=2, use_se=use_se)
        layer_index = 1
        for stage, (base, blocks, multiplier) in enumerate(zip((64, 128, 256, 512), num_blocks, width), start=1):
            out_channels = int(base * multiplier)
            layers = []
            for i in range(blocks):
                g = groups if layer_index in grouped_layers else 1
                layers.append(RepVGGBlock(in_channels, out_channels, 2 if i == 0 else 1, g, use_se))
                in_channels = out_channels
                layer_index += 1
            setattr(self, f"stage{stage}", nn.Sequential(*layers))
        self.gap = nn.AdaptiveAvgPool2D(1)
        self.linear = nn.Linear(in_channels, class_num)

    def forward_features(self, x):
        x = self.stage0(x)
        for stage in (self.stage1, self.stage2, self.stage3, self.stage4):
            x = stage(x)
        return x

    def forward_head(self, x):
        return self.linear(paddle.flatten(self.gap(x), 1))

    def rep(self):
        """Deploy conversion: fold every block's branches into one 3x3 conv (use in eval mode)."""
        for layer in self.sublayers(include_self=False):
            if isinstance(layer, RepVGGBlock):
                layer.rep()
        return self


_A_BLOCKS = (2, 4, 14, 1)
_B_BLOCKS = (4, 6, 16, 1)
_ODD_LAYERS = tuple(range(2, 27, 2))


def _repvgg(class_num, kwargs, blocks, width, groups=1, use_se=False):
    grouped = _ODD_LAYERS if groups > 1 else ()
    return RepVGG(blocks, width, groups, grouped, use_se, class_num=class_num, **kwargs)


@register
def RepVGG_A0(class_num=1000, **kwargs):
    return _repvgg(class_num, kwargs, _A_BLOCKS, (0.75, 0.75, 0.75, 2.5))


@register
def RepVGG_A1(class_num=1000, **kwargs):
    return _repvgg(class_num, kwargs, _A_BLOCKS, (1, 1, 1, 2.5))


@register
def RepVGG_A2(class_num=1000, **kwargs):
    return _repvgg(class_num, kwargs, _A_BLOCKS, (1.5, 1.5, 1.5, 2.75))


@register
def RepVGG_B0(class_num=1000, **kwargs):
    return _repvgg(class_num, kwargs, _B_BLOCKS, (1, 1, 1, 2.5))


@register
def RepVGG_B1(class_num=1000, **kwargs):
    return _repvgg(class_num, kwargs, _B_BLOCKS, (2, 2, 2, 4))


@register
def RepVGG_B1g2(class_num=1000, **kwargs):
    return _repvgg(class_num, kwargs, _B_BLOCKS, (2, 2, 2, 4), groups=2)


@register
def RepVGG_B1g4(class_num=1000, **kwargs):
    return _repvgg(class_num, kwargs, _B_BLOCKS, (2, 2, 2, 4), groups=4)


@register
def RepVGG_B2(class_num=1000, **kwargs):
    return _repvgg(class_num, kwargs, _B_BLOCKS, (2.5, 2.5, 2.5, 5))


@register
def RepVGG_B2g4(class_num=1000, **kwargs):
    return _repvgg(class_num, kwargs, _B_BLOCKS, (2.5, 2.5, 2.5, 5), groups=4)


@register
def RepVGG_B3(class_num=1000, **kwargs):
    return _repvgg(class_num, kwargs, _B_BLOCKS, (3, 3, 3, 5))


@register
def RepVGG_B3g4(class_num=1000, **kwargs):
    return _repvgg(class_num, kwargs, _B_BLOCKS, (3, 3, 3, 5), groups=4)


@register
def RepVGG_D2se(class_num=1000, **kwargs):
    return _repvgg(class_num, kwargs, (8, 14, 24, 1), (2.5, 2.5, 2.5, 5), use_se=True)
