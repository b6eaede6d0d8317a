"""EfficientNetV2 (Tan & Le 2021, "EfficientNetV2: Smaller Models and Faster Training"), weight-compatible
with PaddleClas 2.x (the S model).

What is new over EfficientNet: the early stages use Fused-MBConv (the 1x1 expansion and the depthwise 3x3
replaced by one regular 3x3 conv, which runs faster on accelerators at high resolution), expansion ratios
are smaller, SE appears only in the later MBConv stages, and the network was found by training-aware
architecture search. PaddleClas pads the TensorFlow "SAME" way, computed once from the nominal 384-pixel
feature-map sizes (`pcls.arch.efficientnet.same_padding`): a stride-2 conv pads only bottom/right.
"""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.efficientnet import same_padding
from pcls.arch.layers import DropPath, SqueezeExcite
from pcls.arch.layers.residual import set_nested
from pcls.arch.registry import register

# per stage of the S model: fused?, repeats, kernel, first stride, expansion, input, output, SE ratio
_S_STAGES = (
    (True, 2, 3, 1, 1, 24, 24, None),
    (True, 4, 3, 2, 4, 24, 48, None),
    (True, 4, 3, 2, 4, 48, 64, None),
    (False, 6, 3, 2, 4, 64, 128, 0.25),
    (False, 9, 3, 1, 6, 128, 160, 0.25),
    (False, 15, 3, 2, 6, 160, 256, 0.25),
)
# nominal input side of the stem and of each stage, the "SAME" paddings are computed from
_NOMINAL_SIZES = (384, 192, 192, 96, 48, 24, 24)
_FEATURES = 1280
_BN_EPSILON = 1e-3
_BN_MOMENTUM = 0.9


def _norm(channels):
    return nn.BatchNorm2D(channels, momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON)


def _conv(owner, name, in_channels, out_channels, kernel, stride, size, groups=1):
    """owner.<name>._conv: a bias-free conv with the "SAME" padding of a `size`-pixel input."""
    conv = nn.Conv2D(in_channels, out_channels, kernel, stride=stride, padding=same_padding(size, kernel, stride),
                     groups=groups, bias_attr=False)
    set_nested(owner, f"{name}._conv", conv)


class _Block(nn.Layer):
    """The residual both block types share: added when the block keeps stride 1 and width."""

    def _init_residual(self, in_channels, out_channels, stride, drop_path):
        self.use_residual = stride == 1 and in_channels == out_channels
        self.drop_path = DropPath(drop_path)
        self.act = nn.Silu()

    def _finish(self, inputs, x):
        return inputs + self.drop_path(x) if self.use_residual else x


class MBConv(_Block):
    """1x1 expand-BN-SiLU -> depthwise kxk-BN-SiLU -> [SE] -> 1x1 project-BN."""

    def __init__(self, in_channels, out_channels, kernel, stride, expansion, se_ratio, size, drop_path):
        super().__init__()
        mid = in_channels * expansion
        self.expand = expansion != 1
        if self.expand:
            _conv(self, "_expand_conv", in_channels, mid, 1, 1, size)
            self._norm0 = _norm(mid)
        _conv(self, "_depthwise_conv", mid, mid, kernel, stride, size, groups=mid)
        self._norm1 = _norm(mid)
        self._se = None
        if se_ratio:
            self._se = SqueezeExcite(mid, reduced_channels=max(1, int(in_channels * se_ratio)), act="silu",
                                     names=("_se_reduce._conv", "_se_expand._conv"))
        _conv(self, "_project_conv", mid, out_channels, 1, 1, size)
        self._norm2 = _norm(out_channels)
        self._init_residual(in_channels, out_channels, stride, drop_path)

    def forward(self, inputs):
        x = self.act(self._norm0(self._expand_conv(inputs))) if self.expand else inputs
        x = self.act(self._norm1(self._depthwise_conv(x)))
        if self._se is not None:
            x = self._se(x)
        return self._finish(inputs, self._norm2(self._project_conv(x)))


class FusedMBConv(_Block):
    """kxk expand-BN-SiLU -> 1x1 project-BN; without expansion a single kxk conv-BN-SiLU."""

    def __init__(self, in_channels, out_channels, kernel, stride, expansion, size, drop_path):
        super().__init__()
        mid = in_channels * expansion
        self.expand = expansion != 1
        if self.expand:
            _conv(self, "_expand_conv", in_channels, mid, kernel, stride, size)
            self._norm0 = _norm(mid)
            _conv(self, "_project_conv", mid, out_channels, 1, 1, size)
        else:
            _conv(self, "_project_conv", mid, out_channels, kernel, stride, size)
        self._norm1 = _norm(out_channels)
        self._init_residual(in_channels, out_channels, stride, drop_path)

    def forward(self, inputs):
        x = self.act(self._norm0(self._expand_conv(inputs))) if self.expand else inputs
        x = self._norm1(self._project_conv(x))
        if not self.expand:
            x = self.act(x)
        return self._finish(inputs, x)


class _ConvNormAct(nn.Layer):
    """The stem ('_conv_stem._conv', '_norm') and the head conv ('_conv_head', '_norm'), each then SiLU."""

    def __init__(self, conv_name, conv, channels):
        super().__init__()
        self._conv_name = conv_name.split(".")[0]
        set_nested(self, conv_name, conv)
        self._norm = _norm(channels)
        self._act = nn.Silu()

    def forward(self, x):
        return self._act(self._norm(getattr(self, self._conv_name)(x)))


class EfficientNetV2(Classifier):
    """drop_path_rate: stochastic depth of the last block (1 - the reference's survival_prob), growing
    linearly with the block index; dropout_prob: before the classifier."""

    classifier_names = ("_fc",)

    def __init__(self, stages=_S_STAGES, class_num=1000, drop_path_rate=0.2, dropout_prob=0.2):
        super().__init__()
        self.class_num = class_num
        stem_channels = stages[0][5]
        self._stem = _ConvNormAct("_conv_stem._conv",
                                  nn.Conv2D(3, stem_channels, 3, 2, same_padding(_NOMINAL_SIZES[0], 3, 2),
                                            bias_attr=False), stem_channels)
        total = sum(stage[1] for stage in stages)
        blocks = []
        for (fused, repeats, kernel, stride, expansion, cin, cout, se_ratio), size in zip(stages, _NOMINAL_SIZES[1:]):
            for i in range(repeats):
                args = (cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expansion)
                rate = drop_path_rate * len(blocks) / total
                blocks.append(FusedMBConv(*args, size, rate) if fused else MBConv(*args, se_ratio, size, rate))
        self._blocks = nn.LayerList(blocks)
        self._head = _ConvNormAct("_conv_head", nn.Conv2D(stages[-1][6], _FEATURES, 1, bias_attr=False), _FEATURES)
        self._pool = nn.AdaptiveAvgPool2D(1)
        self._dropout = nn.Dropout(dropout_prob) if dropout_prob else None
        self._fc = nn.Linear(_FEATURES, class_num)

    def forward_features(self, x):
        x = self._stem(x)
        for block in self._blocks:
            x = block(x)
        return self._head(x)

    def forward_head(self, x):
        x = paddle.flatten(self._pool(x), 1)
        if self._dropout is not None:
            x = self._dropout(x)
        return self._fc(x)


@register
def EfficientNetV2_S(class_num=1000, **kwargs):
    kwargs.pop("use_ssld", None)  # only chooses the zoo weights (registry)
    return EfficientNetV2(_S_STAGES, class_num=class_num, **kwargs)
