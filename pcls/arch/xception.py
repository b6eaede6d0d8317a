"""Xception 41/65/71 (Chollet 2017) and the DeepLab-v3+ variants Xception41_deeplab / 65_deeplab, with
PaddleClas's layer names.

The two lineages differ in ways that change numbers, so each has its own blocks:
- Xception: a "separable" conv is pointwise-then-depthwise (PaddleClas's order), each conv-BN without
  activation; entry/exit blocks downsample with a 3x3 max-pool and a bias-free 1x1 conv shortcut.
- Xception_deeplab: separable = depthwise-then-pointwise with BN (epsilon 1e-3) after each, strides on
  the last separable conv of a block, a conv-BN shortcut, and a dilated (rate 2) last block whose
  separable convs carry their own ReLUs; dropout 0.5 before the pool.
"""

import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.base import Classifier
from pcls.arch.layers import ConvBNAct
from pcls.arch.registry import register

_XC_NAMES = ("_conv", "_batch_norm")


# ---- Xception -------------------------------------------------------------------------------------
class PointDepthConv(nn.Layer):
    """1x1 conv-BN to `cout`, then 3x3 depthwise conv-BN; no activations."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self._pointwise_conv = ConvBNAct(cin, cout, 1, act=None, names=_XC_NAMES)
        self._depthwise_conv = ConvBNAct(cout, cout, 3, stride=stride, groups=cout, act=None, names=_XC_NAMES)

    def forward(self, x):
        return self._depthwise_conv(self._pointwise_conv(x))


class DownBlock(nn.Layer):
    """max-pool(sep(relu(sep([relu] x)))) + 1x1 conv shortcut: Xception's entry and exit blocks.

    conv_names: attribute names of the two separable convs ('_conv1'/'_conv2' in the entry flow,
    '_conv_1'/'_conv_2' in the exit flow); relu_first: ReLU the input of the first one.
    """

    def __init__(self, cin, mid, cout, stride, relu_first, conv_names=("_conv1", "_conv2")):
        super().__init__()
        self.relu_first = relu_first
        self._names = conv_names
        self._short = nn.Conv2D(cin, cout, 1, stride=stride, bias_attr=False)
        setattr(self, conv_names[0], PointDepthConv(cin, mid))
        setattr(self, conv_names[1], PointDepthConv(mid, cout))
        self._pool = nn.MaxPool2D(3, stride=stride, padding=1)

    def forward(self, x):
        y = F.relu(x) if self.relu_first else x
        y = getattr(self, self._names[0])(y)
        y = self._pool(getattr(self, self._names[1])(F.relu(y)))
        return self._short(x) + y


class MiddleBlock(nn.Layer):
    def __init__(self, channels=728):
        super().__init__()
        self._names = ("_conv_0", "_conv_1", "_conv_2")
        for name in self._names:
            setattr(self, name, PointDepthConv(channels, channels))

    def forward(self, x):
        y = x
        for name in self._names:
            y = getattr(self, name)(F.relu(y))
        return x + y


class _Flow(nn.Layer):
    """Blocks run in order under the names '_conv_0', '_conv_1', ... (PaddleClas's flow layout)."""

    def __init__(self, blocks, stem=None):
        super().__init__()
        if stem is not None:
            self._conv1, self._conv2 = stem
        self._has_stem = stem is not None
        self._count = len(blocks)
        for i, block in enumerate(blocks):
            setattr(self, f"_conv_{i}", block)

    def forward(self, x):
        if self._has_stem:
            x = self._conv2(self._conv1(x))
        for i in range(self._count):
            x = getattr(self, f"_conv_{i}")(x)
        return x


class ExitFlow(nn.Layer):
    def __init__(self, class_num):
        super().__init__()
        self._conv_0 = DownBlock(728, 728, 1024, 2, True, conv_names=("_conv_1", "_conv_2"))
        self._conv_1 = PointDepthConv(1024, 1536)
        self._conv_2 = PointDepthConv(1536, 2048)
        self._pool = nn.AdaptiveAvgPool2D(1)
        self._out = nn.Linear(2048, class_num)

    def forward(self, x):
        return F.relu(self._conv_2(F.relu(self._conv_1(self._conv_0(x)))))


# entry-flow blocks: (out channels, stride); the first block does not ReLU its input
_ENTRY = {
    3: ((128, 2), (256, 2), (728, 2)),
    5: ((128, 2), (256, 1), (256, 2), (728, 1), (728, 2)),
}


class XceptionModel(Classifier):
    classifier_names = ("_exit_flow._out",)

    def __init__(self, entry_blocks=3, middle_blocks=8, class_num=1000):
        super().__init__()
        self.class_num = class_num
        stem = (ConvBNAct(3, 32, 3, stride=2, names=_XC_NAMES), ConvBNAct(32, 64, 3, names=_XC_NAMES))
        blocks, cin = [], 64
        for i, (cout, stride) in enumerate(_ENTRY[entry_blocks]):
            blocks.append(DownBlock(cin, cout, cout, stride, relu_first=i > 0))
            cin = cout
        self._entry_flow = _Flow(blocks, stem=stem)
        self._middle_flow = _Flow([MiddleBlock() for _ in range(middle_blocks)])
        self._exit_flow = ExitFlow(class_num)

    def forward_features(self, x):
        return self._exit_flow(self._middle_flow(self._entry_flow(x)))

    def forward_head(self, x):
        return self._exit_flow._out(self._exit_flow._pool(x).flatten(1))


@register
def Xception41(class_num=1000, **kwargs):
    return XceptionModel(3, 8, class_num=class_num, **kwargs)


@register
def Xception65(class_num=1000, **kwargs):
    return XceptionModel(3, 16, class_num=class_num, **kwargs)


@register
def Xception71(class_num=1000, **kwargs):
    return XceptionModel(5, 16, class_num=class_num, **kwargs)


# ---- Xception_deeplab -----------------------------------------------------------------------------
_DL_EPS = 1e-3


class DepthPointConv(nn.Layer):
    """3x3 depthwise conv -> BN -> [act] -> 1x1 conv -> BN -> [act] (DeepLab's separable conv)."""

    def __init__(self, cin, cout, stride=1, dilation=1, act=None):
        super().__init__()
        self._conv1 = nn.Conv2D(cin, cin, 3, stride=stride, padding=dilation, dilation=dilation, groups=cin,
                                bias_attr=False)
        self._bn1 = nn.BatchNorm2D(cin, epsilon=_DL_EPS)
        self._conv2 = nn.Conv2D(cin, cout, 1, bias_attr=False)
        self._bn2 = nn.BatchNorm2D(cout, epsilon=_DL_EPS)
        self.act = nn.ReLU() if act == "relu" else nn.Identity()

    def forward(self, x):
        x = self.act(self._bn1(self._conv1(x)))
        return self.act(self._bn2(self._conv2(x)))


class DeeplabBlock(nn.Layer):
    """Three separable convs (the last one strided) plus a shortcut.

    shortcut: "conv" (1x1 conv-BN), "identity", or None (no residual). act_inside: ReLUs inside the
    separable convs instead of before each of them.
    """

    def __init__(self, cin, couts, stride=1, dilation=1, shortcut="conv", act_inside=False):
        super().__init__()
        self.act_inside = act_inside
        self.shortcut = shortcut
        strides = (1, 1, stride)
        chans = (cin,) + tuple(couts)
        for i in range(3):
            setattr(self, f"_conv{i + 1}", DepthPointConv(chans[i], chans[i + 1], strides[i], dilation,
                                                          act="relu" if act_inside else None))
        if shortcut == "conv":
            self._short = ConvBNAct(cin, couts[-1], 1, stride=stride, act=None, names=("_conv", "_bn"),
                                    bn_epsilon=_DL_EPS)

    def forward(self, x):
        y = x
        for i in range(1, 4):
            if not self.act_inside:
                y = F.relu(y)
            y = getattr(self, f"_conv{i}")(y)
        if self.shortcut == "conv":
            return y + self._short(x)
        if self.shortcut == "identity":
            return y + x
        return y


class XceptionDeeplabModel(Classifier):
    """Output stride 32: the three entry blocks and the first exit block stride 2, the last block is
    dilated instead."""

    classifier_names = ("_fc",)

    def __init__(self, depth=65, class_num=1000, dropout=0.5):
        super().__init__()
        self.class_num = class_num
        prefix = f"xception_{depth}"
        middle_blocks = {41: 8, 65: 16}[depth]
        self._conv1 = ConvBNAct(3, 32, 3, stride=2, names=("_conv", "_bn"), bn_epsilon=_DL_EPS)
        self._conv2 = ConvBNAct(32, 64, 3, names=("_conv", "_bn"), bn_epsilon=_DL_EPS)
        self._flow = []
        cin = 64
        for i, cout in enumerate((128, 256, 728)):
            block = DeeplabBlock(cin, (cout,) * 3, stride=2)
            self._flow.append(self.add_sublayer(f"{prefix}/entry_flow/block{i + 1}", block))
            cin = cout
        for i in range(middle_blocks):
            block = DeeplabBlock(728, (728,) * 3, shortcut="identity")
            self._flow.append(self.add_sublayer(f"{prefix}/middle_flow/block{i + 1}", block))
        self._exit_flow_1 = DeeplabBlock(728, (728, 1024, 1024), stride=2)
        self._exit_flow_2 = DeeplabBlock(1024, (1536, 1536, 2048), dilation=2, shortcut=None, act_inside=True)
        self._drop = nn.Dropout(dropout, mode="downscale_in_infer")
        self._pool = nn.AdaptiveAvgPool2D(1)
        self._fc = nn.Linear(2048, class_num)

    def forward_features(self, x):
        x = self._conv2(self._conv1(x))
        for block in self._flow:
            x = block(x)
        return self._exit_flow_2(self._exit_flow_1(x))

    def forward_head(self, x):
        return self._fc(self._pool(self._drop(x)).flatten(1))


@register
def Xception41_deeplab(class_num=1000, **kwargs):
    return XceptionDeeplabModel(41, class_num=class_num, **kwargs)


@register
def Xception65_deeplab(class_num=1000, **kwargs):
    return XceptionDeeplabModel(65, class_num=class_num, **kwargs)
