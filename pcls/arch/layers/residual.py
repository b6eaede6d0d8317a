"""Residual blocks of the ResNet lineage (basic, bottleneck with groups, optional SE) and their
projection shortcut, including the ResNet-D ("vd") variant that strides with an average pool.

Sub-layer names are data (`BlockNames`) so that ResNet, ResNeXt, SE-ResNeXt, the WSL ResNeXts and
RegNetX keep their published state-dict keys while sharing these blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import paddle.nn as nn

from pcls.arch.layers.conv import ConvBNAct


@dataclass(frozen=True)
class BlockNames:
    """Attribute names inside a block.

    convs: the conv-bn layers in order; short: the projection shortcut; a dotted short name
    ('_short._conv') nests the projection one level down as some published checkpoints do.
    se: the squeeze-excitation layer; conv_bn: the conv / batch-norm names inside each conv-bn.
    """

    convs: tuple = ("conv0", "conv1", "conv2")
    short: str = "short"
    se: str = "scale"
    conv_bn: tuple = ("conv", "bn")


class ProjectionShortcut(ConvBNAct):
    """1x1 conv + BN matching the residual branch's width and stride.

    avg_down (ResNet-D, the "vd" models): a 2x2 average pool does the striding and the conv keeps
    stride 1, so the shortcut sees every input pixel instead of one in four.
    """

    def __init__(self, in_channels, out_channels, stride=1, avg_down=False, names=("conv", "bn"), lr_mult=1.0,
                 data_format="NCHW"):
        # a stride may be (h, w), e.g. [2, 1] in PaddleClas's text-line configs: the pool window follows it
        pooled = avg_down and max(stride if isinstance(stride, (list, tuple)) else [stride]) > 1
        super().__init__(in_channels, out_channels, 1, stride=1 if pooled else stride, act=None, names=names,
                         lr_mult=lr_mult, data_format=data_format)
        self.pool = (nn.AvgPool2D(stride, stride, padding=0, ceil_mode=True, data_format=data_format)
                     if pooled else None)

    def forward(self, x):
        if self.pool is not None:
            x = self.pool(x)
        return super().forward(x)


class _Holder(nn.Layer):
    """One named child and nothing else: reproduces an extra nesting level in published keys."""

    def __init__(self, name, layer):
        super().__init__()
        self._child_name = name
        setattr(self, name, layer)

    def forward(self, *args, **kwargs):
        return getattr(self, self._child_name)(*args, **kwargs)


def set_nested(owner: nn.Layer, dotted_name: str, layer: nn.Layer) -> None:
    """owner.<a>.<b>... = layer, (re)placing pass-through holders for the intermediate names; calling
    owner.<a> calls the layer."""
    head, *rest = dotted_name.split(".")
    for name in reversed(rest):
        layer = _Holder(name, layer)
    setattr(owner, head, layer)


def add_at_path(owner: nn.Layer, path: str, layer: nn.Layer) -> None:
    """owner.<a>.<b> = layer, creating nn.Sequential containers for missing intermediate names (a
    one-child Sequential passes its input through, so a nested shortcut still works as a layer)."""
    *parents, leaf = path.split(".")
    for name in parents:
        child = owner._sub_layers.get(name)
        if child is None:
            child = nn.Sequential()
            owner.add_sublayer(name, child)
        owner = child
    owner.add_sublayer(leaf, layer)


class ResidualBlock(nn.Layer):
    """Basic (two 3x3) or bottleneck (1x1 -> grouped 3x3 -> 1x1) residual block, then ReLU(branch + shortcut).

    width: channels of the inner convs (bottleneck) — ignored by the basic block (width = out).
    project: give the block a projection shortcut (PaddleClas does so for the first block of every
        stage, even when shapes already match).
    se: optional factory `se(channels) -> Layer` applied to the branch before the addition.
    The stride sits on the 3x3 conv (ResNet "B" and later).
    """

    def __init__(
        self,
        kind: str,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        width: Optional[int] = None,
        groups: int = 1,
        project: bool = False,
        avg_down: bool = False,
        se: Optional[Callable[[int], nn.Layer]] = None,
        names: BlockNames = BlockNames(),
        act="relu",
        lr_mult: float = 1.0,
        data_format: str = "NCHW",
    ):
        super().__init__()
        common = dict(names=names.conv_bn, lr_mult=lr_mult, data_format=data_format)
        if kind == "basic":
            plan = [(in_channels, out_channels, 3, stride, 1, act), (out_channels, out_channels, 3, 1, 1, None)]
        elif kind == "bottleneck":
            width = width or out_channels // 4
            plan = [
                (in_channels, width, 1, 1, 1, act),
                (width, width, 3, stride, groups, act),
                (width, out_channels, 1, 1, 1, None),
            ]
        else:
            raise ValueError(f"unknown residual block kind {kind!r}")
        self._conv_names = names.convs[: len(plan)]
        for name, (cin, cout, k, s, g, a) in zip(self._conv_names, plan):
            setattr(self, name, ConvBNAct(cin, cout, k, stride=s, groups=g, act=a, **common))
        self._se_name = names.se if se is not None else None
        if se is not None:
            setattr(self, names.se, se(out_channels))
        self._short_name = names.short.split(".")[0] if project else None
        if project:
            add_at_path(self, names.short, ProjectionShortcut(in_channels, out_channels, stride, avg_down, **common))
        self.relu = nn.ReLU()

    def forward(self, x):
        y = x
        for name in self._conv_names:
            y = getattr(self, name)(y)
        if self._se_name:
            y = getattr(self, self._se_name)(y)
        short = getattr(self, self._short_name)(x) if self._short_name else x
        return self.relu(y + short)
