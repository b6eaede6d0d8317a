"""ResNet and the networks built on its skeleton: stem -> four stages of residual blocks -> pool -> fc.

`ResNet` is the one family class; ResNet, ResNet_vc/vd here and ResNeXt, SE-ResNeXt, Res2Net, ResNeSt,
RegNetX in their own modules are data for it (depths, widths, groups, stem, shortcut kind, SE, key layout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import paddle
import paddle.nn as nn
from paddle import ParamAttr
from paddle.nn.initializer import Uniform

from pcls.arch.base import Classifier
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.residual import BlockNames, ResidualBlock, add_at_path
from pcls.arch.layers.se import SqueezeExcite
from pcls.arch.registry import register
from pcls.errors import PclsError


@dataclass(frozen=True)
class Layout:
    """Where each layer lives in the state dict (dotted paths from the model).

    stem: paths of the stem convs, keyed by their count; block(stage, index, flat_index) -> path;
    block_names: names inside a block; fc: the classifier attribute.
    """

    stem: dict = field(default_factory=dict)
    block: Callable[[int, int, int], str] = lambda s, i, n: f"bb_{s}_{i}"
    block_names: BlockNames = BlockNames(conv_bn=("_conv", "_batch_norm"))
    fc: str = "out"


# PaddleClas 2.x "legendary" ResNet / ResNet_vd: stem.N, blocks.N, conv/bn, fc.
LEGENDARY = Layout(
    stem={1: ("stem.0",), 3: ("stem.0", "stem.1", "stem.2")},
    block=lambda s, i, n: f"blocks.{n}",
    block_names=BlockNames(conv_bn=("conv", "bn")),
    fc="fc",
)
# The older model-zoo layout (ResNet_vc, ResNeXt, SE-ResNeXt, ...): bb_<stage>_<index>, _conv/_batch_norm, out.
MODEL_ZOO = Layout(stem={1: ("conv",), 3: ("conv1_1", "conv1_2", "conv1_3")})

STAGE_CHANNELS = (64, 128, 256, 512)  # basic-block widths; a bottleneck outputs 4x these


def validate_lr_mult_list(lr_mult_list, count: int = 5) -> list:
    """The per-part learning-rate multipliers (stem + 4 stages), checked; None gives all 1.0."""
    if lr_mult_list is None:
        return [1.0] * count
    if not isinstance(lr_mult_list, (list, tuple)) or len(lr_mult_list) != count:
        raise PclsError(
            f"Arch.lr_mult_list must be a list of {count} numbers (stem + 4 stages), got {lr_mult_list!r}"
        )
    try:
        return [float(v) for v in lr_mult_list]
    except (TypeError, ValueError):
        raise PclsError(f"Arch.lr_mult_list must hold numbers, got {lr_mult_list!r}") from None


def _check_data_format(data_format: str) -> str:
    if data_format not in ("NCHW", "NHWC"):
        raise PclsError(f"Arch.data_format must be 'NCHW' or 'NHWC', got {data_format!r}")
    return data_format


def uniform_linear(in_features: int, out_features: int) -> nn.Linear:
    """The classifier PaddleClas uses: Uniform(+-1/sqrt(fan_in)) weights."""
    stdv = 1.0 / math.sqrt(in_features)
    return nn.Linear(in_features, out_features, weight_attr=ParamAttr(initializer=Uniform(-stdv, stdv)))


class ResNet(Classifier):
    """The ResNet skeleton with every variant as an argument.

    depths: blocks per stage. block: "basic" | "bottleneck" (or pass `make_block`).
    channels: output channels per stage (default 64/128/256/512, x4 for bottlenecks).
    widths: inner width of the bottleneck per stage (default channels / 4); groups: per stage or one int.
    stem_channels: one entry = a single k x k conv (k = stem_kernel, 7 by default); three = the
        "vc/vd" deep stem of three 3x3 convs. max_pool: 3x3/2 max pool after the stem.
    first_stage_stride: 1 after a max-pool stem; 2 where the stem has no pool (RegNet).
    avg_down: ResNet-D shortcut (2x2 average pool, then 1x1 conv). se_reduction: add SE blocks.
    make_block(stage, index, in_ch, out_ch, stride, lr_mult, data_format) -> Layer replaces the
        residual block (Res2Net, ResNeSt).
    Options PaddleClas configs pass: class_num, lr_mult_list (stem + 4 stages, applied to conv and BN
    parameters), stem_act, data_format ("NHWC" still takes NCHW input and transposes internally, as
    PaddleClas does; feature maps from return_patterns are then channels-last), stride_list (stem
    conv, max pool, stages 2-4), return_patterns, return_stages (True or stage indices: the last block
    of those stages), use_ssld (accepted and recorded; in PaddleClas 2.x it only picks the *_ssld
    pretrained file, the architecture is unchanged).
    """

    def __init__(
        self,
        depths: Sequence[int],
        block: str = "bottleneck",
        *,
        channels: Optional[Sequence[int]] = None,
        widths: Optional[Sequence[int]] = None,
        groups=1,
        stem_channels: Sequence[int] = (64,),
        stem_kernel: Optional[int] = None,
        max_pool: bool = True,
        avg_down: bool = False,
        se_reduction: Optional[int] = None,
        make_block: Optional[Callable] = None,
        layout: Layout = LEGENDARY,
        class_num: int = 1000,
        lr_mult_list=None,
        stem_act="relu",
        data_format: str = "NCHW",
        stride_list: Optional[Sequence[int]] = None,
        first_stage_stride: int = 1,
        input_image_channel: int = 3,
        return_patterns=None,
        return_stages=None,
        use_ssld: bool = False,
    ):
        super().__init__()
        # use_ssld only chose the published weights file in PaddleClas 2.x; the architecture is the same.
        self.use_ssld = use_ssld
        self.class_num = class_num
        self.data_format = _check_data_format(data_format)
        lr_mults = validate_lr_mult_list(lr_mult_list)
        stride_list = list(stride_list) if stride_list is not None else [2, 2, 2, 2, 2]
        if len(stride_list) != 5:
            raise PclsError(f"Arch.stride_list must have 5 entries (stem, pool, stages 2-4), got {stride_list!r}")
        expansion = 4 if block == "bottleneck" else 1
        channels = list(channels or [c * expansion for c in STAGE_CHANNELS])
        widths = list(widths or [c // expansion for c in channels])
        groups = list(groups) if isinstance(groups, (list, tuple)) else [groups] * len(depths)
        self.classifier_names = (layout.fc,)
        conv_bn = layout.block_names.conv_bn

        # stem
        kernel = stem_kernel or (7 if len(stem_channels) == 1 else 3)
        self._stem = []
        in_ch = input_image_channel
        for i, (path, out_ch) in enumerate(zip(layout.stem[len(stem_channels)], stem_channels)):
            conv = ConvBNAct(in_ch, out_ch, kernel, stride=stride_list[0] if i == 0 else 1, act=stem_act,
                             names=conv_bn, lr_mult=lr_mults[0], data_format=data_format)
            add_at_path(self, path, conv)
            self._stem.append(conv)
            in_ch = out_ch
        self.max_pool = (nn.MaxPool2D(3, stride_list[1], padding=1, data_format=data_format)
                         if max_pool else nn.Identity())

        # stages
        def se_factory(c):
            return SqueezeExcite(c, se_reduction, kind="linear", names=("squeeze", "excitation"),
                                 lr_mult=lr_mult, data_format=data_format)

        self._blocks, self.stage_paths = [], []
        flat = 0
        for stage, depth in enumerate(depths):
            lr_mult = lr_mults[stage + 1]
            stage_stride = first_stage_stride if stage == 0 else stride_list[stage + 1]
            for index in range(depth):
                stride = stage_stride if index == 0 else 1
                if make_block is not None:
                    layer = make_block(stage, index, in_ch, channels[stage], stride, lr_mult, data_format)
                else:
                    layer = ResidualBlock(
                        block, in_ch, channels[stage], stride, width=widths[stage], groups=groups[stage],
                        project=index == 0, avg_down=avg_down, se=se_factory if se_reduction else None,
                        names=layout.block_names, lr_mult=lr_mult, data_format=data_format,
                    )
                path = layout.block(stage, index, flat)
                add_at_path(self, path, layer)
                self._blocks.append(layer)
                in_ch = channels[stage]
                flat += 1
            self.stage_paths.append(path)

        self.num_features = in_ch
        self.avg_pool = nn.AdaptiveAvgPool2D(1, data_format=data_format)
        self.flatten = nn.Flatten()
        setattr(self, layout.fc, uniform_linear(in_ch, class_num))

        if return_stages is not None:
            stages = range(len(self.stage_paths)) if return_stages is True else return_stages
            try:
                extra = [self.stage_paths[i] for i in stages]
            except (IndexError, TypeError):
                raise PclsError(
                    f"Arch.return_stages must be True or stage indices 0-3, got {return_stages!r}"
                ) from None
            return_patterns = list(return_patterns or []) + extra
        if return_patterns:
            self.set_return_patterns(return_patterns)

    def forward_features(self, x):
        if self.data_format == "NHWC":
            x = paddle.transpose(x, [0, 2, 3, 1])
        for layer in self._stem:
            x = layer(x)
        x = self.max_pool(x)
        for layer in self._blocks:
            x = layer(x)
        return x

    def forward_head(self, x):
        x = self.flatten(self.avg_pool(x))
        return getattr(self, self.classifier_names[0])(x)


# -- ResNet / ResNet_vd (PaddleClas legendary models) and ResNet50_vc -------------------------------
DEPTHS = {
    18: [2, 2, 2, 2],
    34: [3, 4, 6, 3],
    50: [3, 4, 6, 3],
    101: [3, 4, 23, 3],
    152: [3, 8, 36, 3],
    200: [3, 12, 48, 3],
}


def resnet(depth: int, vd: bool = False, **kwargs) -> ResNet:
    """ResNet-<depth>; vd adds the deep 3x3 stem and the average-pool shortcut (Bag of Tricks "D")."""
    block = "basic" if depth < 50 else "bottleneck"
    if vd:
        kwargs = {"stem_channels": (32, 32, 64), "avg_down": True, **kwargs}
    return ResNet(DEPTHS[depth], block, **kwargs)


@register
def ResNet18(class_num=1000, **kwargs):
    return resnet(18, class_num=class_num, **kwargs)


@register
def ResNet34(class_num=1000, **kwargs):
    return resnet(34, class_num=class_num, **kwargs)


@register
def ResNet50(class_num=1000, **kwargs):
    return resnet(50, class_num=class_num, **kwargs)


@register
def ResNet101(class_num=1000, **kwargs):
    return resnet(101, class_num=class_num, **kwargs)


@register
def ResNet152(class_num=1000, **kwargs):
    return resnet(152, class_num=class_num, **kwargs)


@register
def ResNet18_vd(class_num=1000, **kwargs):
    return resnet(18, vd=True, class_num=class_num, **kwargs)


@register
def ResNet34_vd(class_num=1000, **kwargs):
    return resnet(34, vd=True, class_num=class_num, **kwargs)


@register
def ResNet50_vd(class_num=1000, **kwargs):
    return resnet(50, vd=True, class_num=class_num, **kwargs)


@register
def ResNet101_vd(class_num=1000, **kwargs):
    return resnet(101, vd=True, class_num=class_num, **kwargs)


@register
def ResNet152_vd(class_num=1000, **kwargs):
    return resnet(152, vd=True, class_num=class_num, **kwargs)


@register
def ResNet200_vd(class_num=1000, **kwargs):
    return resnet(200, vd=True, class_num=class_num, **kwargs)


@register
def ResNet50_vc(class_num=1000, **kwargs):
    """ResNet-C: the deep 3x3 stem, plain strided 1x1 shortcuts; model-zoo key layout."""
    return ResNet(DEPTHS[50], "bottleneck", stem_channels=(32, 32, 64), layout=MODEL_ZOO, class_num=class_num,
                  **kwargs)
