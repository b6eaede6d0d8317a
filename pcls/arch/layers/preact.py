"""BatchNorm -> activation -> conv: the pre-activation unit DenseNet and DPN are built from.

The sub-layer names are a constructor argument (as in ConvBNAct) so each family keeps its published
state-dict keys ('_batch_norm' / '_conv' in PaddleClas).
"""

import paddle.nn as nn

from pcls.arch.layers.activations import make_act


class BNActConv(nn.Layer):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=1,
        stride=1,
        padding=None,
        groups: int = 1,
        act="relu",
        names=("_batch_norm", "_conv"),
        bn_epsilon: float = 1e-5,
    ):
        super().__init__()
        if padding is None:
            padding = (kernel_size - 1) // 2
        self._bn_name, self._conv_name = names
        setattr(self, self._bn_name, nn.BatchNorm2D(in_channels, epsilon=bn_epsilon))
        self.act = make_act(act)
        setattr(
            self,
            self._conv_name,
            nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups,
                      bias_attr=False),
        )

    def forward(self, x):
        x = self.act(getattr(self, self._bn_name)(x))
        return getattr(self, self._conv_name)(x)
