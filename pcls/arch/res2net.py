"""Res2Net (Gao et al. 2019): the bottleneck's 3x3 conv becomes a hierarchy of `scales` narrower 3x3
convs, each also fed the previous one's output, for multi-scale receptive fields. Res2Net_vd adds the
deep stem and the average-pool shortcut."""

import paddle
import paddle.nn as nn

from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.residual import ProjectionShortcut
from pcls.arch.registry import register
from pcls.arch.resnet import ResNet, DEPTHS, Layout

LAYOUT = Layout(stem={1: ("conv1",), 3: ("conv1_1", "conv1_2", "conv1_3")})
CONV_BN = ("_conv", "_batch_norm")


class Res2NetBlock(nn.Layer):
    """1x1 conv -> split into `scales` groups -> hierarchical 3x3 convs -> concat -> 1x1 conv, + shortcut.

    In a strided (stage-opening) block the groups are convolved independently and the last group is
    average-pooled instead of convolved, as the published models do.
    """

    def __init__(self, in_channels, out_channels, width, scales, stride, project, avg_down, scale_names,
                 lr_mult=1.0, data_format="NCHW"):
        super().__init__()
        common = dict(names=CONV_BN, lr_mult=lr_mult, data_format=data_format)
        self.stride, self.scales = stride, scales
        self.channel_axis = 1 if data_format == "NCHW" else 3
        self.conv0 = ConvBNAct(in_channels, width * scales, 1, **common)
        self._scale_convs = []
        for name in scale_names:
            conv = ConvBNAct(width, width, 3, stride=stride, **common)
            setattr(self, name, conv)
            self._scale_convs.append(conv)
        self.pool = nn.AvgPool2D(3, stride, padding=1, data_format=data_format)
        self.conv2 = ConvBNAct(width * scales, out_channels, 1, act=None, **common)
        self.short = ProjectionShortcut(in_channels, out_channels, stride, avg_down, **common) if project else None
        self.relu = nn.ReLU()

    def forward(self, x):
        pieces = paddle.split(self.conv0(x), self.scales, axis=self.channel_axis)
        outs = []
        for i, conv in enumerate(self._scale_convs):
            outs.append(conv(pieces[i] if i == 0 or self.stride == 2 else pieces[i] + outs[-1]))
        outs.append(pieces[-1] if self.stride == 1 else self.pool(pieces[-1]))
        y = self.conv2(paddle.concat(outs, axis=self.channel_axis))
        short = x if self.short is None else self.short(x)
        return self.relu(y + short)


def _block_tag(depth: int, stage: int, index: int) -> str:
    """The published per-block name: res<stage+2><letter>, or res4a/res4b<i> in the long third stage."""
    if depth >= 101 and stage == 2:
        return "res4a" if index == 0 else f"res4b{index}"
    return f"res{stage + 2}{chr(97 + index)}"


def res2net(depth: int, width: int, scales: int, vd: bool = False, **kwargs) -> ResNet:
    def make_block(stage, index, in_ch, out_ch, stride, lr_mult, data_format):
        tag = _block_tag(depth, stage, index)
        return Res2NetBlock(
            in_ch, out_ch, width * 2**stage, scales, stride, project=index == 0, avg_down=vd,
            scale_names=[f"{tag}_branch2b_{k + 1}" for k in range(scales - 1)], lr_mult=lr_mult,
            data_format=data_format,
        )

    stem = dict(stem_channels=(32, 32, 64)) if vd else {}
    return ResNet(DEPTHS[depth], "bottleneck", make_block=make_block, layout=LAYOUT, **stem, **kwargs)


@register
def Res2Net50_26w_4s(class_num=1000, **kwargs):
    return res2net(50, 26, 4, class_num=class_num, **kwargs)


@register
def Res2Net50_14w_8s(class_num=1000, **kwargs):
    return res2net(50, 14, 8, class_num=class_num, **kwargs)


@register
def Res2Net50_vd_26w_4s(class_num=1000, **kwargs):
    return res2net(50, 26, 4, vd=True, class_num=class_num, **kwargs)


@register
def Res2Net101_vd_26w_4s(class_num=1000, **kwargs):
    return res2net(101, 26, 4, vd=True, class_num=class_num, **kwargs)


@register
def Res2Net200_vd_26w_4s(class_num=1000, **kwargs):
    return res2net(200, 26, 4, vd=True, class_num=class_num, **kwargs)
