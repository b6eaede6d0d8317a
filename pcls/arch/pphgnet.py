"""PP-HGNet (PaddleClas 2.4, "High-performance GPU Net") with PaddleClas's layer names.

A GPU-friendly VoVNet-style network: a three-conv stem and a max pool, then four stages of HG blocks, each a
chain of plain 3x3 conv-bn-relu layers whose outputs are concatenated with the block input, fused by a 1x1
conv and re-weighted by effective squeeze-excitation (ESE: one 1x1 conv with bias and a sigmoid gate, no
reduction). Stages 2-4 start with a depthwise 3x3 stride-2 conv-bn. Head: pool -> 1x1 conv (class_expand)
-> relu -> dropout -> fc.
"""

import paddle.nn as nn
from paddle import ParamAttr

from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.heads import LastConvClassifier
from pcls.arch.layers.hg_block import HGBlock, HGStage
from pcls.arch.registry import register
from pcls.errors import PclsError

# per variant: stem widths, convs per block, stages as (in, mid, out, blocks, downsample), head dropout
_VARIANTS = {
    "tiny": ((48, 48, 96), 5, ((96, 96, 224, 1, False), (224, 128, 448, 1, True),
                               (448, 160, 512, 2, True), (512, 192, 768, 1, True)), 0.0),
    "small": ((64, 64, 128), 6, ((128, 128, 256, 1, False), (256, 160, 512, 1, True),
                                 (512, 192, 768, 2, True), (768, 224, 1024, 1, True)), 0.0),
    "base": ((96, 96, 160), 7, ((160, 192, 320, 1, False), (320, 224, 640, 2, True),
                                (640, 256, 960, 3, True), (960, 288, 1280, 2, True)), 0.2),
}


class ESE(nn.Layer):
    """Effective squeeze-excitation: x * sigmoid(conv1x1(avgpool(x))), the conv keeping the width."""

    def __init__(self, channels, lr_mult=1.0):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.conv = nn.Conv2D(channels, channels, 1, weight_attr=ParamAttr(learning_rate=lr_mult),
                              bias_attr=ParamAttr(learning_rate=lr_mult))
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return x * self.sigmoid(self.conv(self.pool(x)))


def _hg_block(in_channels, mid_channels, out_channels, layer_num, identity, lr_mult):
    layers = [ConvBNAct(in_channels if i == 0 else mid_channels, mid_channels, 3, lr_mult=lr_mult)
              for i in range(layer_num)]
    total = in_channels + layer_num * mid_channels
    aggregation = [("aggregation_conv", ConvBNAct(total, out_channels, 1, lr_mult=lr_mult)),
                   ("att", ESE(out_channels, lr_mult))]
    return HGBlock(layers, aggregation, identity=identity)


class PPHGNet(LastConvClassifier):
    """stem_channels: widths of the three stem convs; stage_config: (in, mid, out, blocks, downsample) per stage;
    layer_num: 3x3 convs per HG block; lr_mult_list: learning-rate multipliers of the stem and the four stages;
    use_last_conv / class_expand / dropout_prob: the head."""

    def __init__(self, stem_channels, stage_config, layer_num, use_last_conv=True, class_expand=2048,
                 dropout_prob=0.0, class_num=1000, lr_mult_list=(1.0,) * 5):
        super().__init__()
        if len(lr_mult_list) != 5:
            raise PclsError(f"PPHGNet lr_mult_list needs 5 values (stem + 4 stages), got {list(lr_mult_list)}")
        self.class_num = class_num
        widths = (3,) + tuple(stem_channels)
        self.stem = nn.Sequential(*[
            ConvBNAct(cin, cout, 3, stride=2 if i == 0 else 1, lr_mult=lr_mult_list[0])
            for i, (cin, cout) in enumerate(zip(widths, widths[1:]))
        ])
        self.pool = nn.MaxPool2D(3, stride=2, padding=1)
        stages = []
        for (cin, mid, cout, blocks, downsample), lr_mult in zip(stage_config, lr_mult_list[1:]):
            down = ConvBNAct(cin, cin, 3, stride=2, groups=cin, act=None, lr_mult=lr_mult) if downsample else None
            stages.append(HGStage(
                lambda i, cin=cin, mid=mid, cout=cout, lr_mult=lr_mult:
                _hg_block(cin if i == 0 else cout, mid, cout, layer_num, i > 0, lr_mult),
                blocks, down))
        self.stages = nn.Sequential(*stages)
        self._build_head(stage_config[-1][2], class_num, class_expand, dropout_prob, use_last_conv, act="relu")

    def forward_features(self, x):
        return self.stages(self.pool(self.stem(x)))


def _pphgnet(variant, class_num, kwargs):
    stem, layer_num, stages, dropout = _VARIANTS[variant]
    kwargs.pop("use_ssld", None)  # only chooses the distilled zoo weights (see registry)
    kwargs.setdefault("dropout_prob", dropout)
    return PPHGNet(stem, stages, layer_num, class_num=class_num, **kwargs)


@register
def PPHGNet_tiny(class_num=1000, **kwargs):
    return _pphgnet("tiny", class_num, kwargs)


@register
def PPHGNet_small(class_num=1000, **kwargs):
    return _pphgnet("small", class_num, kwargs)


@register
def PPHGNet_base(class_num=1000, **kwargs):
    return _pphgnet("base", class_num, kwargs)
