"""Squeeze-and-excitation: global pool -> reduce -> act -> expand -> gate -> rescale the channels.

Families differ only in data, so one block covers them: 1x1 convs or Linear layers (`kind`), how the
reduced width is computed (`reduction`, `divisor`, or an explicit `reduced_channels`), the two
activations, and the sub-layer names that their published state-dict keys dictate.
"""

from __future__ import annotations

from typing import Optional

import paddle
import paddle.nn as nn
from paddle import ParamAttr

from pcls.arch.layers.activations import make_act
from pcls.arch.layers.channels import make_divisible
from pcls.arch.layers.residual import set_nested


class SqueezeExcite(nn.Layer):
    """Channel attention of Hu et al. 2018.

    channels: input (= output) channels.
    reduction: reduced width = channels / reduction, rounded by `make_divisible(., divisor)` when
        `divisor` > 1, else truncated (int); `reduced_channels` overrides the rule.
    kind: "conv" (1x1 Conv2D with bias on the pooled map) or "linear" (Linear on the flattened pool).
    names: attribute names of the reducing and expanding layers, e.g. ("conv1", "conv2"),
        ("squeeze", "excitation"), ("down", "up"); a dotted name ("_conv1._conv") nests the layer one
        level down. A single name ("fc",) packs reduce, [norm], act, expand into one nn.Sequential of
        that name (keys fc.0, fc.1, ...).
    act / gate: activation after the reduction and the gate after the expansion; a name known to
        `make_act` or an nn.Layer (e.g. layers.activations.HardSigmoid(slope=0.2, offset=0.5)).
    mid_norm: BatchNorm after the reduction (ReXNet).
    """

    def __init__(
        self,
        channels: int,
        reduction: float = 4,
        reduced_channels: Optional[int] = None,
        divisor: int = 1,
        kind: str = "conv",
        names=("conv1", "conv2"),
        act="relu",
        gate="sigmoid",
        mid_norm: bool = False,
        lr_mult: float = 1.0,
        data_format: str = "NCHW",
    ):
        super().__init__()
        if reduced_channels is None:
            scaled = channels / reduction
            reduced_channels = make_divisible(scaled, divisor) if divisor > 1 else max(1, int(scaled))
        if kind not in ("conv", "linear"):
            raise ValueError(f"SqueezeExcite kind must be 'conv' or 'linear', not {kind!r}")
        self.kind = kind
        self.data_format = data_format
        self._packed = len(names) == 1
        self.pool = nn.AdaptiveAvgPool2D(1, data_format=data_format)

        def attr():
            return ParamAttr(learning_rate=lr_mult)

        if kind == "conv":
            reduce = nn.Conv2D(channels, reduced_channels, 1, weight_attr=attr(), bias_attr=attr(), data_format=data_format)
            expand = nn.Conv2D(reduced_channels, channels, 1, weight_attr=attr(), bias_attr=attr(), data_format=data_format)
        else:
            reduce = nn.Linear(channels, reduced_channels, weight_attr=attr(), bias_attr=attr())
            expand = nn.Linear(reduced_channels, channels, weight_attr=attr(), bias_attr=attr())
        norm = nn.BatchNorm2D(reduced_channels, data_format=data_format) if mid_norm else None
        if self._packed:
            self._reduce_name = names[0]
            middle = [norm] if norm is not None else []
            setattr(self, names[0], nn.Sequential(reduce, *middle, make_act(act), expand))
        else:
            self._reduce_name, self._expand_name = (name.split(".")[0] for name in names)
            set_nested(self, names[0], reduce)
            set_nested(self, names[1], expand)
            self.mid_norm = norm
            self.act = make_act(act)
        self.gate = make_act(gate)

    def forward(self, x):
        scale = self.pool(x)
        if self.kind == "linear":
            scale = paddle.flatten(scale, start_axis=1)
        scale = getattr(self, self._reduce_name)(scale)
        if not self._packed:
            if self.mid_norm is not None:
                scale = self.mid_norm(scale)
            scale = getattr(self, self._expand_name)(self.act(scale))
        scale = self.gate(scale)
        if self.kind == "linear":
            scale = scale.unsqueeze([1, 2]) if self.data_format == "NHWC" else scale.unsqueeze([2, 3])
        return x * scale
