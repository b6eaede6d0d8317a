"""MobileNetV3 large/small (Howard et al. 2019) with PaddleClas's layer names. Widths are `scale` x the
table, rounded by make_divisible to multiples of 8; SE gates are hard-sigmoid(0.2x + 0.5); the head is
pool -> 1x1 conv (class_expand) -> hardswish -> dropout -> fc, as the reference does."""

import paddle.nn as nn

from pcls.arch.layers.activations import HardSigmoid
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.heads import LastConvClassifier
from pcls.arch.layers.inverted_residual import InvertedResidual
from pcls.arch.layers.channels import make_divisible
from pcls.arch.layers.se import SqueezeExcite
from pcls.arch.registry import register

# kernel, expanded channels, output channels, SE, activation, stride
_CONFIGS = {
    "large": (
        (3, 16, 16, False, "relu", 1),
        (3, 64, 24, False, "relu", 2),
        (3, 72, 24, False, "relu", 1),
        (5, 72, 40, True, "relu", 2),
        (5, 120, 40, True, "relu", 1),
        (5, 120, 40, True, "relu", 1),
        (3, 240, 80, False, "hardswish", 2),
        (3, 200, 80, False, "hardswish", 1),
        (3, 184, 80, False, "hardswish", 1),
        (3, 184, 80, False, "hardswish", 1),
        (3, 480, 112, True, "hardswish", 1),
        (3, 672, 112, True, "hardswish", 1),
        (5, 672, 160, True, "hardswish", 2),
        (5, 960, 160, True, "hardswish", 1),
        (5, 960, 160, True, "hardswish", 1),
    ),
    "small": (
        (3, 16, 16, True, "relu", 2),
        (3, 72, 24, False, "relu", 2),
        (3, 88, 24, False, "relu", 1),
        (5, 96, 40, True, "hardswish", 2),
        (5, 240, 40, True, "hardswish", 1),
        (5, 240, 40, True, "hardswish", 1),
        (5, 120, 48, True, "hardswish", 1),
        (5, 144, 48, True, "hardswish", 1),
        (5, 288, 96, True, "hardswish", 2),
        (5, 576, 96, True, "hardswish", 1),
        (5, 576, 96, True, "hardswish", 1),
    ),
}
_STEM_CHANNELS = 16
_LAST_SECOND_CONV = {"large": 960, "small": 576}


def hard_sigmoid_se(channels):
    """MobileNetV3's SE: channels // 4, ReLU, hard-sigmoid gate with slope 0.2."""
    return SqueezeExcite(channels, reduction=4, act="relu", gate=HardSigmoid(slope=0.2, offset=0.5))


class MobileNetV3Net(LastConvClassifier):
    """config: 'large' or 'small'. class_squeeze: width of the last conv before pooling (None: 960 large,
    576 small, times scale). class_expand / dropout_prob / use_last_conv: the head (LastConvClassifier)."""

    def __init__(self, config="large", scale=1.0, class_num=1000, dropout_prob=0.2, class_expand=1280,
                 class_squeeze=None, use_last_conv=True):
        super().__init__()
        self.class_num = class_num
        table = _CONFIGS[config]
        width = make_divisible(_STEM_CHANNELS * scale)
        self.conv = ConvBNAct(3, width, 3, stride=2, act="hardswish")
        blocks = []
        for kernel, expanded, out_channels, use_se, act, stride in table:
            out_channels = make_divisible(scale * out_channels)
            blocks.append(InvertedResidual(width, make_divisible(scale * expanded), out_channels, kernel, stride,
                                           act=act, expand=True, se=hard_sigmoid_se if use_se else None))
            width = out_channels
        self.blocks = nn.Sequential(*blocks)
        squeeze = make_divisible(scale * (class_squeeze or _LAST_SECOND_CONV[config]))
        self.last_second_conv = ConvBNAct(width, squeeze, 1, act="hardswish")
        self._build_head(squeeze, class_num, class_expand, dropout_prob, use_last_conv)

    def forward_features(self, x):
        return self.last_second_conv(self.blocks(self.conv(x)))


def _mobilenet_v3(config, scale, class_num, **kwargs):
    return MobileNetV3Net(config=config, scale=scale, class_num=class_num, **kwargs)


@register
def MobileNetV3_small_x0_35(class_num=1000, **kwargs):
    return _mobilenet_v3("small", 0.35, class_num, **kwargs)


@register
def MobileNetV3_small_x0_5(class_num=1000, **kwargs):
    return _mobilenet_v3("small", 0.5, class_num, **kwargs)


@register
def MobileNetV3_small_x0_75(class_num=1000, **kwargs):
    return _mobilenet_v3("small", 0.75, class_num, **kwargs)


@register
def MobileNetV3_small_x1_0(class_num=1000, **kwargs):
    return _mobilenet_v3("small", 1.0, class_num, **kwargs)


@register
def MobileNetV3_small_x1_25(class_num=1000, **kwargs):
    return _mobilenet_v3("small", 1.25, class_num, **kwargs)


@register
def MobileNetV3_large_x0_35(class_num=1000, **kwargs):
    return _mobilenet_v3("large", 0.35, class_num, **kwargs)


@register
def MobileNetV3_large_x0_5(class_num=1000, **kwargs):
    return _mobilenet_v3("large", 0.5, class_num, **kwargs)


@register
def MobileNetV3_large_x0_75(class_num=1000, **kwargs):
    return _mobilenet_v3("large", 0.75, class_num, **kwargs)


@register
def MobileNetV3_large_x1_0(class_num=1000, **kwargs):
    return _mobilenet_v3("large", 1.0, class_num, **kwargs)


@register
def MobileNetV3_large_x1_25(class_num=1000, **kwargs):
    return _mobilenet_v3("large", 1.25, class_num, **kwargs)
