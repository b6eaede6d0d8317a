"""The mobile block: [1x1 expand] -> depthwise kxk -> [squeeze-excite] -> 1x1 project, with an identity
shortcut (and drop-path) when shapes allow. Covers MobileNetV2/V3 inverted residuals, EfficientNet's MBConv,
MixNet units and, without expansion, the depthwise-separable blocks of MobileNetV1 and PP-LCNet.

Families differ only in data: sub-layer names (their published state-dict keys), activations, and a
`conv` factory that builds each conv-norm (so a family can nest names, pad asymmetrically or mix kernels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import paddle.nn as nn

from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.drop import DropPath
from pcls.arch.layers.residual import set_nested

# conv(in_channels, out_channels, kernel_size, stride, groups, act) -> conv-norm-act layer
ConvFactory = Callable[..., nn.Layer]


def conv_bn_factory(names=("conv", "bn"), bn_epsilon: float = 1e-5, lr_mult: float = 1.0) -> ConvFactory:
    """The default `conv` factory: one ConvBNAct with the given sub-layer names."""

    def build(in_channels, out_channels, kernel_size, stride=1, groups=1, act=None):
        return ConvBNAct(in_channels, out_channels, kernel_size, stride=stride, groups=groups, act=act, names=names,
                         bn_epsilon=bn_epsilon, lr_mult=lr_mult)

    return build


@dataclass(frozen=True)
class InvertedResidualNames:
    """Attribute names of the four stages of the block (MobileNetV3's by default); a dotted name
    ('_ecn._conv') nests the layer one level down as EfficientNet's keys do."""

    expand: str = "expand_conv"
    depthwise: str = "bottleneck_conv"
    se: str = "mid_se"
    project: str = "linear_conv"


class InvertedResidual(nn.Layer):
    """in -> [expand 1x1, act] -> depthwise kxk (stride), act -> [se] -> project 1x1, project_act (+ in).

    expand: build the expansion conv; None means "when mid_channels != in_channels" (MBConv's rule);
        MobileNetV2/V3 always have one, depthwise-separable blocks never.
    se: optional factory `se(mid_channels) -> Layer`.
    shortcut: add the input; None means "when stride == 1 and in_channels == out_channels".
    drop_path: stochastic-depth rate on the branch (only with a shortcut).
    expand_kernel / project_kernel: passed to the `conv` factory (MixNet gives lists to split channels).
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        kernel_size=3,
        stride: int = 1,
        act="relu",
        project_act=None,
        expand: Optional[bool] = None,
        se: Optional[Callable[[int], nn.Layer]] = None,
        shortcut: Optional[bool] = None,
        drop_path: float = 0.0,
        names: InvertedResidualNames = InvertedResidualNames(),
        conv: ConvFactory = conv_bn_factory(),
        expand_kernel=1,
        project_kernel=1,
    ):
        super().__init__()
        if expand is None:
            expand = mid_channels != in_channels
        if not expand and mid_channels != in_channels:
            raise ValueError(f"a block without expansion needs mid_channels == in_channels, "
                             f"got {mid_channels} and {in_channels}")
        self._stages = []
        if expand:
            self._add(names.expand, conv(in_channels, mid_channels, expand_kernel, 1, 1, act))
        self._add(names.depthwise, conv(mid_channels, mid_channels, kernel_size, stride, mid_channels, act))
        if se is not None:
            self._add(names.se, se(mid_channels))
        self._add(names.project, conv(mid_channels, out_channels, project_kernel, 1, 1, project_act))
        self.use_shortcut = (stride == 1 and in_channels == out_channels) if shortcut is None else shortcut
        self.drop_path = DropPath(drop_path) if self.use_shortcut and drop_path > 0 else None

    def _add(self, name, layer):
        set_nested(self, name, layer)
        self._stages.append(name.split(".")[0])

    def forward(self, x):
        y = x
        for name in self._stages:
            y = getattr(self, name)(y)
        if not self.use_shortcut:
            return y
        if self.drop_path is not None:
            y = self.drop_path(y)
        return x + y
