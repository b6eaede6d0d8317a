"""Conv -> BatchNorm -> activation, the block nearly every convolutional family is built from.

PaddleClas families name the two sub-layers differently ('conv'/'bn', '_conv'/'_batch_norm',
'_conv'/'_bn'); the names are a constructor argument so every family keeps its published state-dict
keys while sharing this one implementation.
"""

import paddle.nn as nn
from paddle import ParamAttr

from pcls.arch.layers.activations import make_act


class ConvBNAct(nn.Layer):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        act="relu",
        padding=None,
        dilation: int = 1,
        names=("conv", "bn"),
        conv_bias: bool = False,
        lr_mult: float = 1.0,
        bn_epsilon: float = 1e-5,
        data_format: str = "NCHW",
    ):
        super().__init__()
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        self._conv_name, self._bn_name = names
        conv = nn.Conv2D(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            weight_attr=ParamAttr(learning_rate=lr_mult),
            bias_attr=ParamAttr(learning_rate=lr_mult) if conv_bias else False,
            data_format=data_format,
        )
        bn = nn.BatchNorm2D(
            out_channels,
            epsilon=bn_epsilon,
            weight_attr=ParamAttr(learning_rate=lr_mult),
            bias_attr=ParamAttr(learning_rate=lr_mult),
            data_format=data_format,
        )
        setattr(self, self._conv_name, conv)
        setattr(self, self._bn_name, bn)
        self.act = make_act(act)

    def forward(self, x):
        x = getattr(self, self._conv_name)(x)
        x = getattr(self, self._bn_name)(x)
        return self.act(x)
