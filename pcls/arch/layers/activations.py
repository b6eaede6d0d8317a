"""Activations by the names PaddleClas configs and model definitions use."""

import paddle.nn as nn
import paddle.nn.functional as F


class HardSigmoid(nn.Layer):
    """clip(slope * x + offset, 0, 1). nn.Hardsigmoid fixes slope at 1/6; MobileNetV3's SE gates use 0.2."""

    def __init__(self, slope: float = 0.1666667, offset: float = 0.5):
        super().__init__()
        self.slope, self.offset = slope, offset

    def forward(self, x):
        return F.hardsigmoid(x, slope=self.slope, offset=self.offset)


_ACTS = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
    "hard_swish": nn.Hardswish,
    "swish": nn.Swish,
    "silu": nn.Silu,
    "sigmoid": nn.Sigmoid,
    "hardsigmoid": nn.Hardsigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "prelu": nn.PReLU,
    "elu": nn.ELU,
}


def make_act(name):
    """An activation layer from its name; None/'' gives an Identity. Layer instances pass through."""
    if name is None or name == "" or name == "identity":
        return nn.Identity()
    if isinstance(name, nn.Layer):
        return name
    try:
        return _ACTS[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown activation '{name}' (known: {', '.join(sorted(_ACTS))})") from None
