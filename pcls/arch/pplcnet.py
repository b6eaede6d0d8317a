"""PP-LCNet (Cui et al. 2021) with PaddleClas's layer names: depthwise-separable blocks with hardswish, SE
(hard-sigmoid gate) in the last stage, and a 1x1 conv (class_expand) after pooling. Widths are `scale`
x the table rounded by make_divisible to multiples of 8, as the reference does."""

import paddle.nn as nn

from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.heads import LastConvClassifier
from pcls.arch.layers.inverted_residual import InvertedResidual, InvertedResidualNames, conv_bn_factory
from pcls.arch.layers.channels import make_divisible
from pcls.arch.layers.se import SqueezeExcite
from pcls.arch.registry import register
from pcls.errors import PclsError

# stage name -> blocks of (kernel, in channels, out channels, stride, SE); a stage's first stride comes
# from `stride_list`
_STAGES = {
    "blocks2": ((3, 16, 32, 1, False),),
    "blocks3": ((3, 32, 64, 2, False), (3, 64, 64, 1, False)),
    "blocks4": ((3, 64, 128, 2, False), (3, 128, 128, 1, False)),
    "blocks5": ((3, 128, 256, 2, False),) + ((5, 256, 256, 1, False),) * 5,
    "blocks6": ((5, 256, 512, 2, True), (5, 512, 512, 1, True)),
}
_NAMES = InvertedResidualNames(depthwise="dw_conv", se="se", project="pw_conv")


def _se_factory(lr_mult):
    def build(channels):
        return SqueezeExcite(channels, reduction=4, act="relu", gate="hardsigmoid", lr_mult=lr_mult)

    return build


class PPLCNetNet(LastConvClassifier):
    """stride_list: strides of the stem and of the first block of blocks3..blocks6 (blocks2 keeps its own).
    lr_mult_list: learning-rate multipliers of the stem and of blocks2..blocks6.
    class_expand / dropout_prob / use_last_conv: the head (LastConvClassifier)."""

    def __init__(self, scale=1.0, class_num=1000, dropout_prob=0.2, class_expand=1280,
                 stride_list=(2, 2, 2, 2, 2), lr_mult_list=(1.0,) * 6, use_last_conv=True):
        super().__init__()
        if len(stride_list) != 5:
            raise PclsError(f"PPLCNet stride_list needs 5 strides (stem + 4 stages), got {list(stride_list)}")
        if len(lr_mult_list) != 6:
            raise PclsError(f"PPLCNet lr_mult_list needs 6 values (stem + 5 stages), got {list(lr_mult_list)}")
        self.class_num = class_num
        self.conv1 = ConvBNAct(3, make_divisible(16 * scale), 3, stride=stride_list[0], act="hardswish",
                               lr_mult=lr_mult_list[0])
        first_strides = dict(zip(list(_STAGES)[1:], stride_list[1:]))
        self._stage_names = list(_STAGES)
        for name, table, lr_mult in zip(_STAGES, _STAGES.values(), lr_mult_list[1:]):
            blocks = []
            for i, (kernel, cin, cout, stride, use_se) in enumerate(table):
                if i == 0 and name in first_strides:
                    stride = first_strides[name]
                cin, cout = make_divisible(cin * scale), make_divisible(cout * scale)
                blocks.append(InvertedResidual(cin, cin, cout, kernel, stride, act="hardswish",
                                               project_act="hardswish", expand=False, shortcut=False,
                                               se=_se_factory(lr_mult) if use_se else None, names=_NAMES,
                                               conv=conv_bn_factory(lr_mult=lr_mult)))
            setattr(self, name, nn.Sequential(*blocks))
        width = make_divisible(_STAGES["blocks6"][-1][2] * scale)
        self._build_head(width, class_num, class_expand, dropout_prob, use_last_conv)

    def forward_features(self, x):
        x = self.conv1(x)
        for name in self._stage_names:
            x = getattr(self, name)(x)
        return x


def _pplcnet(scale, class_num, **kwargs):
    return PPLCNetNet(scale=scale, class_num=class_num, **kwargs)


@register
def PPLCNet_x0_25(class_num=1000, **kwargs):
    return _pplcnet(0.25, class_num, **kwargs)


@register
def PPLCNet_x0_35(class_num=1000, **kwargs):
    return _pplcnet(0.35, class_num, **kwargs)


@register
def PPLCNet_x0_5(class_num=1000, **kwargs):
    return _pplcnet(0.5, class_num, **kwargs)


@register
def PPLCNet_x0_75(class_num=1000, **kwargs):
    return _pplcnet(0.75, class_num, **kwargs)


@register
def PPLCNet_x1_0(class_num=1000, **kwargs):
    return _pplcnet(1.0, class_num, **kwargs)


@register
def PPLCNet_x1_5(class_num=1000, **kwargs):
    return _pplcnet(1.5, class_num, **kwargs)


@register
def PPLCNet_x2_0(class_num=1000, **kwargs):
    return _pplcnet(2.0, class_num, **kwargs)


@register
def PPLCNet_x2_5(class_num=1000, **kwargs):
    return _pplcnet(2.5, class_num, **kwargs)
