"""PP-HGNetV2 (PaddleClas 2.5) with PaddleClas's layer names.

PP-HGNet's successor: a stem with two parallel paths (a 2x2 stride-1 max pool beside two 2x2 convs, "SAME"
padded, concatenated), four stages of HG blocks whose aggregation is a 1x1 squeeze to half the width and a 1x1
excitation back (no attention module), and "light" blocks in stages 3-4 (1x1 conv, then a 5x5 depthwise conv)
instead of dense 3x3 convs. The small variants B0-B3 put a learnable affine block (scalar scale and bias,
`lab`) after every activation, including the head's.
"""

import paddle
import paddle.nn as nn

from pcls.arch.layers.affine import LearnableAffineBlock
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.heads import LastConvClassifier
from pcls.arch.layers.hg_block import HGBlock, HGStage
from pcls.arch.registry import register
from pcls.errors import PclsError

# per variant: stem (mid, out) widths, learnable affine blocks, and the stages as
# (in, mid, out, blocks, downsample, light block, kernel, convs per block)
_VARIANTS = {
    "B0": ((16, 16), True, ((16, 16, 64, 1, False, False, 3, 3), (64, 32, 256, 1, True, False, 3, 3),
                            (256, 64, 512, 2, True, True, 5, 3), (512, 128, 1024, 1, True, True, 5, 3))),
    "B1": ((24, 32), True, ((32, 32, 64, 1, False, False, 3, 3), (64, 48, 256, 1, True, False, 3, 3),
                            (256, 96, 512, 2, True, True, 5, 3), (512, 192, 1024, 1, True, True, 5, 3))),
    "B2": ((24, 32), True, ((32, 32, 96, 1, False, False, 3, 4), (96, 64, 384, 1, True, False, 3, 4),
                            (384, 128, 768, 3, True, True, 5, 4), (768, 256, 1536, 1, True, True, 5, 4))),
    "B3": ((24, 32), True, ((32, 32, 128, 1, False, False, 3, 5), (128, 64, 512, 1, True, False, 3, 5),
                            (512, 128, 1024, 3, True, True, 5, 5), (1024, 256, 2048, 1, True, True, 5, 5))),
    "B4": ((32, 48), False, ((48, 48, 128, 1, False, False, 3, 6), (128, 96, 512, 1, True, False, 3, 6),
                             (512, 192, 1024, 3, True, True, 5, 6), (1024, 384, 2048, 1, True, True, 5, 6))),
    "B5": ((32, 64), False, ((64, 64, 128, 1, False, False, 3, 6), (128, 128, 512, 2, True, False, 3, 6),
                             (512, 256, 1024, 5, True, True, 5, 6), (1024, 512, 2048, 2, True, True, 5, 6))),
    "B6": ((48, 96), False, ((96, 96, 192, 2, False, False, 3, 6), (192, 192, 512, 3, True, False, 3, 6),
                             (512, 384, 1024, 6, True, True, 5, 6), (1024, 768, 2048, 3, True, True, 5, 6))),
}


class ConvBNLab(ConvBNAct):
    """conv-bn-relu, followed by a learnable affine block (`lab`) when use_lab is set and there is an activation."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1, act="relu", use_lab=False,
                 lr_mult=1.0, padding=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, groups=groups, act=act, padding=padding,
                         lr_mult=lr_mult)
        self.lab = LearnableAffineBlock(lr_mult=lr_mult) if use_lab and act else None

    def forward(self, x):
        x = super().forward(x)
        return x if self.lab is None else self.lab(x)


class LightConvBNAct(nn.Layer):
    """1x1 conv-bn (linear), then a kxk depthwise conv-bn-relu."""

    def __init__(self, in_channels, out_channels, kernel_size, use_lab=False, lr_mult=1.0):
        super().__init__()
        self.conv1 = ConvBNLab(in_channels, out_channels, 1, act=None, lr_mult=lr_mult)
        self.conv2 = ConvBNLab(out_channels, out_channels, kernel_size, groups=out_channels, use_lab=use_lab,
                               lr_mult=lr_mult)

    def forward(self, x):
        return self.conv2(self.conv1(x))


class StemBlock(nn.Layer):
    """3x3/2 conv; then [2x2 max pool | 2x2 conv -> 2x2 conv] concatenated; 3x3/2 conv; 1x1 conv."""

    def __init__(self, in_channels, mid_channels, out_channels, use_lab=False, lr_mult=1.0):
        super().__init__()

        def conv(cin, cout, kernel, stride=1, padding=None):
            return ConvBNLab(cin, cout, kernel, stride, use_lab=use_lab, lr_mult=lr_mult, padding=padding)

        self.stem1 = conv(in_channels, mid_channels, 3, 2)
        # 2x2 kernels keep the size with "SAME" padding: nothing before, one row/column after
        self.stem2a = conv(mid_channels, mid_channels // 2, 2, padding="SAME")
        self.stem2b = conv(mid_channels // 2, mid_channels, 2, padding="SAME")
        self.stem3 = conv(mid_channels * 2, mid_channels, 3, 2)
        self.stem4 = conv(mid_channels, out_channels, 1)
        self.pool = nn.MaxPool2D(2, stride=1, padding="SAME", ceil_mode=True)

    def forward(self, x):
        x = self.stem1(x)
        branch = self.stem2b(self.stem2a(x))
        x = paddle.concat([self.pool(x), branch], axis=1)
        return self.stem4(self.stem3(x))


def _hg_block(in_channels, mid_channels, out_channels, layer_num, kernel, light, identity, use_lab, lr_mult):
    def layer(cin):
        if light:
            return LightConvBNAct(cin, mid_channels, kernel, use_lab, lr_mult)
        return ConvBNLab(cin, mid_channels, kernel, use_lab=use_lab, lr_mult=lr_mult)

    layers = [layer(in_channels if i == 0 else mid_channels) for i in range(layer_num)]
    total = in_channels + layer_num * mid_channels
    aggregation = [
        ("aggregation_squeeze_conv", ConvBNLab(total, out_channels // 2, 1, use_lab=use_lab, lr_mult=lr_mult)),
        ("aggregation_excitation_conv", ConvBNLab(out_channels // 2, out_channels, 1, use_lab=use_lab,
                                                  lr_mult=lr_mult)),
    ]
    return HGBlock(layers, aggregation, identity=identity)


class PPHGNetV2(LastConvClassifier):
    """stem_channels: (mid, out) widths of the stem; stage_config: per stage (in, mid, out, blocks, downsample,
    light, kernel, layer_num); use_lab: learnable affine blocks after activations; lr_mult_list: learning-rate
    multipliers of the stem and the four stages; use_last_conv / class_expand / dropout_prob: the head."""

    def __init__(self, stem_channels, stage_config, use_lab=False, use_last_conv=True, class_expand=2048,
                 dropout_prob=0.0, class_num=1000, lr_mult_list=(1.0,) * 5):
        super().__init__()
        if len(lr_mult_list) != 5:
            raise PclsError(f"PPHGNetV2 lr_mult_list needs 5 values (stem + 4 stages), got {list(lr_mult_list)}")
        self.class_num = class_num
        self.stem = StemBlock(3, *stem_channels, use_lab=use_lab, lr_mult=lr_mult_list[0])
        stages = []
        for (cin, mid, cout, blocks, down, light, kernel, layer_num), lr_mult in zip(stage_config, lr_mult_list[1:]):
            downsample = ConvBNLab(cin, cin, 3, 2, groups=cin, act=None, lr_mult=lr_mult) if down else None
            stages.append(HGStage(
                lambda i, cin=cin, mid=mid, cout=cout, layer_num=layer_num, kernel=kernel, light=light,
                lr_mult=lr_mult: _hg_block(cin if i == 0 else cout, mid, cout, layer_num, kernel, light, i > 0,
                                           use_lab, lr_mult),
                blocks, downsample))
        self.stages = nn.Sequential(*stages)
        self._build_head(stage_config[-1][2], class_num, class_expand, dropout_prob, use_last_conv, act="relu")
        self.lab = LearnableAffineBlock() if use_lab and use_last_conv else None

    def forward_features(self, x):
        return self.stages(self.stem(x))

    def forward_head(self, x):
        if self.lab is None:
            return super().forward_head(x)
        # the head's activation is followed by its own affine block, before the dropout
        x = self.lab(self.last_act(self.last_conv(self.avg_pool(x))))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc(x.flatten(1))


def _pphgnet_v2(variant, class_num, kwargs):
    stem, use_lab, stages = _VARIANTS[variant]
    kwargs.pop("use_ssld", None)  # only chooses the distilled zoo weights (see registry)
    kwargs.setdefault("use_lab", use_lab)
    return PPHGNetV2(stem, stages, class_num=class_num, **kwargs)


@register
def PPHGNetV2_B0(class_num=1000, **kwargs):
    return _pphgnet_v2("B0", class_num, kwargs)


@register
def PPHGNetV2_B1(class_num=1000, **kwargs):
    return _pphgnet_v2("B1", class_num, kwargs)


@register
def PPHGNetV2_B2(class_num=1000, **kwargs):
    return _pphgnet_v2("B2", class_num, kwargs)


@register
def PPHGNetV2_B3(class_num=1000, **kwargs):
    return _pphgnet_v2("B3", class_num, kwargs)


@register
def PPHGNetV2_B4(class_num=1000, **kwargs):
    return _pphgnet_v2("B4", class_num, kwargs)


@register
def PPHGNetV2_B5(class_num=1000, **kwargs):
    return _pphgnet_v2("B5", class_num, kwargs)


@register
def PPHGNetV2_B6(class_num=1000, **kwargs):
    return _pphgnet_v2("B6", class_num, kwargs)
