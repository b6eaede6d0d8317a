"""CSPDarkNet-53 (Wang et al. 2019, "CSPNet"; the YOLOv4 backbone) with PaddleClas's layer names.

DarkNet-53's stages made cross-stage-partial: after a stride-2 3x3 conv and a 1x1 expansion, the channels are
split in two halves; only the second goes through the stage's residual 1x1 -> 3x3 blocks (and a 1x1
transition), then both are concatenated and fused by a 1x1 transition conv. This halves the stage's compute
and keeps a gradient path that skips the blocks. Leaky-ReLU activations, a plain 3x3 stem, pool -> fc head.
"""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.drop import DropPath
from pcls.arch.registry import register

# per stage: (out channels, blocks, expansion ratio, block bottleneck ratio, block width ratio)
_CSPDARKNET53 = ((64, 1, 2.0, 0.5, 1.0), (128, 2, 1.0, 1.0, 0.5), (256, 8, 1.0, 1.0, 0.5),
                 (512, 8, 1.0, 1.0, 0.5), (1024, 4, 1.0, 1.0, 0.5))


def _conv(cin, cout, kernel, stride=1):
    return ConvBNAct(cin, cout, kernel, stride, act="leaky_relu")


class DarkBlock(nn.Layer):
    """x + 3x3 conv (to `channels`) of 1x1 conv (to `mid`) of x."""

    def __init__(self, channels, mid_channels, drop_path=0.0):
        super().__init__()
        self.conv1 = _conv(channels, mid_channels, 1)
        self.conv2 = _conv(mid_channels, channels, 3)
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        return x + self.drop_path(self.conv2(self.conv1(x)))


class CrossStage(nn.Layer):
    """3x3/2 down -> 1x1 expand -> split [kept | blocks -> 1x1]; concatenate -> 1x1 transition."""

    def __init__(self, in_channels, out_channels, depth, exp_ratio, bottle_ratio, block_ratio, drop_paths=None):
        super().__init__()
        exp_channels = int(out_channels * exp_ratio)
        block_channels = int(out_channels * block_ratio)
        self.conv_down = _conv(in_channels, out_channels, 3, 2)
        self.conv_exp = _conv(out_channels, exp_channels, 1)
        drop_paths = drop_paths or [0.0] * depth
        self.blocks = nn.Sequential(*[
            DarkBlock(block_channels, int(block_channels * bottle_ratio), drop_paths[i]) for i in range(depth)
        ])
        self.conv_transition_b = _conv(exp_channels // 2, exp_channels // 2, 1)
        self.conv_transition = _conv(exp_channels, out_channels, 1)

    def forward(self, x):
        x = self.conv_exp(self.conv_down(x))
        kept, part = paddle.split(x, 2, axis=1)
        part = self.conv_transition_b(self.blocks(part))
        return self.conv_transition(paddle.concat([kept, part], axis=1))


class CSPNet(Classifier):
    """stages: per stage (out, blocks, exp_ratio, bottle_ratio, block_ratio); drop_path_rate: stochastic
    depth, rising linearly over the blocks; drop_rate: dropout before fc."""

    classifier_names = ("fc",)

    def __init__(self, stages=_CSPDARKNET53, stem_channels=32, class_num=1000, drop_rate=0.0, drop_path_rate=0.0):
        super().__init__()
        self.class_num = class_num
        self.stem = nn.Sequential()
        self.stem.add_sublayer("conv1", _conv(3, stem_channels, 3))
        total = sum(stage[1] for stage in stages)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        layers, in_channels, start = [], stem_channels, 0
        for out_channels, depth, exp_ratio, bottle_ratio, block_ratio in stages:
            layers.append(CrossStage(in_channels, out_channels, depth, exp_ratio, bottle_ratio, block_ratio,
                                     rates[start:start + depth]))
            in_channels, start = out_channels, start + depth
        self.stages = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.dropout = nn.Dropout(drop_rate) if drop_rate else None
        self.fc = nn.Linear(in_channels, class_num)

    def forward_features(self, x):
        return self.stages(self.stem(x))

    def forward_head(self, x):
        x = self.pool(x).flatten(1)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc(x)


@register
def CSPDarkNet53(class_num=1000, **kwargs):
    kwargs.pop("use_ssld", None)  # only chooses the distilled zoo weights (see registry)
    return CSPNet(_CSPDARKNET53, class_num=class_num, **kwargs)
