"""The learnable affine block (scale * x + bias, one scalar each) that PP-HGNetV2 and PP-LCNetV3 put after
their activations ("lab" in their state-dict keys)."""

import paddle.nn as nn
from paddle import ParamAttr


class LearnableAffineBlock(nn.Layer):
    """y = scale * x + bias with scalar `scale` (init 1) and `bias` (init 0). The reference trains both at
    1/100 of the layer's learning rate (`lab_lr`)."""

    def __init__(self, scale_value: float = 1.0, bias_value: float = 0.0, lr_mult: float = 1.0,
                 lab_lr: float = 0.01):
        super().__init__()
        attr = ParamAttr(learning_rate=lr_mult * lab_lr)
        self.scale = self.create_parameter([1], attr=attr, default_initializer=nn.initializer.Constant(scale_value))
        self.bias = self.create_parameter([1], attr=ParamAttr(learning_rate=lr_mult * lab_lr),
                                          default_initializer=nn.initializer.Constant(bias_value))

    def forward(self, x):
        return self.scale * x + self.bias
