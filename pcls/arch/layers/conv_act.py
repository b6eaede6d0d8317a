"""Conv (with bias, no BatchNorm) -> optional activation: the unit of the pre-BatchNorm families
(AlexNet, SqueezeNet, GoogLeNet). The conv sits under a configurable name ('_conv' in PaddleClas)."""

import paddle.nn as nn

from pcls.arch.layers.activations import make_act


class ConvAct(nn.Layer):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, act="relu", bias=True,
                 name="_conv"):
        super().__init__()
        self._conv_name = name
        setattr(self, name, nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                      bias_attr=None if bias else False))
        self.act = make_act(act)

    def forward(self, x):
        return self.act(getattr(self, self._conv_name)(x))
