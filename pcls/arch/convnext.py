"""ConvNeXt (Liu et al. 2022, "A ConvNet for the 2020s"), weight-compatible with PaddleClas 2.x.

A ResNet modernised step by step towards a Swin Transformer while staying purely convolutional: a 4x4
stride-4 "patchify" stem, a 7x7 depthwise conv per block followed by an inverted-bottleneck MLP on the
channel vector (LayerNorm, Linear x4, GELU, Linear) with a learned per-channel layer scale (`gamma`),
separate LayerNorm + 2x2 stride-2 conv downsampling between stages, and a LayerNorm before the classifier.
The same weights serve 224 and 384 inputs (the 384 variants differ only in their published weights).
"""

import numpy as np
import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import DropPath
from pcls.arch.layers.norm2d import LayerNorm2D
from pcls.arch.layers.weight_init import init_transformer_weights
from pcls.arch.registry import register

# variant -> blocks per stage, channels per stage
_VARIANTS = {
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
}
_EPSILON = 1e-6


class ConvNeXtBlock(nn.Layer):
    """dwconv 7x7 -> (channels-last) LayerNorm -> Linear 4C -> GELU -> Linear C -> x gamma, plus the input."""

    def __init__(self, dim, drop_path=0.0, layer_scale_init_value=1e-6):
        super().__init__()
        self.dwconv = nn.Conv2D(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, epsilon=_EPSILON)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = None
        if layer_scale_init_value > 0:
            self.gamma = self.create_parameter(
                [dim], default_initializer=nn.initializer.Constant(layer_scale_init_value))
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        y = paddle.transpose(self.dwconv(x), [0, 2, 3, 1])
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        if self.gamma is not None:
            y = self.gamma * y
        return x + self.drop_path(paddle.transpose(y, [0, 3, 1, 2]))


class ConvNeXt(Classifier):
    """variant: 'tiny', 'small', 'base', 'large'. drop_path_rate grows linearly over the blocks;
    head_init_scale multiplies the initial classifier weights (as the reference's option)."""

    classifier_names = ("head",)

    def __init__(self, variant="tiny", class_num=1000, in_chans=3, drop_path_rate=0.0,
                 layer_scale_init_value=1e-6, head_init_scale=1.0):
        super().__init__()
        depths, dims = _VARIANTS[variant]
        self.class_num = class_num
        stem = nn.Sequential(nn.Conv2D(in_chans, dims[0], 4, stride=4), LayerNorm2D(dims[0], epsilon=_EPSILON))
        downsamples = [nn.Sequential(LayerNorm2D(cin, epsilon=_EPSILON), nn.Conv2D(cin, cout, 2, stride=2))
                       for cin, cout in zip(dims, dims[1:])]
        self.downsample_layers = nn.LayerList([stem, *downsamples])
        rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        stages, start = [], 0
        for depth, dim in zip(depths, dims):
            stages.append(nn.Sequential(*[ConvNeXtBlock(dim, rates[start + j], layer_scale_init_value)
                                          for j in range(depth)]))
            start += depth
        self.stages = nn.LayerList(stages)
        self.norm = nn.LayerNorm(dims[-1], epsilon=_EPSILON)
        self.head = nn.Linear(dims[-1], class_num)
        init_transformer_weights(self)
        if head_init_scale != 1.0:
            self.head.weight.set_value(self.head.weight * head_init_scale)
            self.head.bias.set_value(self.head.bias * head_init_scale)

    def forward_features(self, x):
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
        return x

    def forward_head(self, x):
        return self.head(self.norm(x.mean([-2, -1])))


def _convnext(variant, class_num, **kwargs):
    kwargs.pop("use_ssld", None)  # only chooses the zoo weights (registry)
    return ConvNeXt(variant, class_num=class_num, **kwargs)


@register
def ConvNeXt_tiny(class_num=1000, **kwargs):
    return _convnext("tiny", class_num, **kwargs)


@register
def ConvNeXt_small(class_num=1000, **kwargs):
    return _convnext("small", class_num, **kwargs)


@register
def ConvNeXt_base_224(class_num=1000, **kwargs):
    return _convnext("base", class_num, **kwargs)


@register
def ConvNeXt_base_384(class_num=1000, **kwargs):
    return _convnext("base", class_num, **kwargs)


@register
def ConvNeXt_large_224(class_num=1000, **kwargs):
    return _convnext("large", class_num, **kwargs)


@register
def ConvNeXt_large_384(class_num=1000, **kwargs):
    return _convnext("large", class_num, **kwargs)
