"""EfficientNet B0-B7 and B0_small (Tan & Le 2019) with PaddleClas's layer names and padding rules.

padding_type (the reference's option):
- "SAME" (B0-B7 default): TensorFlow-style padding computed once, at build time, from the feature-map
  sizes the variant's nominal resolution gives (`image_size`); a stride-2 conv on an even-sized map pads
  less at the top/left than at the bottom/right. Other input sizes keep those paddings, as in the reference.
- "DYNAMIC" (B0_small default): symmetric padding ((stride - 1) + (kernel - 1)) // 2.
- "VALID": none; an int: that padding everywhere.
"""

import math

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.inverted_residual import InvertedResidual, InvertedResidualNames
from pcls.arch.layers.residual import set_nested
from pcls.arch.layers.channels import make_divisible
from pcls.arch.layers.se import SqueezeExcite
from pcls.arch.registry import register
from pcls.errors import PclsError

# variant -> width multiplier, depth multiplier, nominal resolution, dropout before fc
_VARIANTS = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}
# per stage of B0: repeats, kernel, stride, expansion, input channels, output channels
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_SE_RATIO = 0.25
_BN_EPSILON = 1e-3
_BN_MOMENTUM = 0.99
_BLOCK_NAMES = InvertedResidualNames(expand="_ecn._conv", depthwise="_dcn._conv", se="_se", project="_pcn._conv")


def same_padding(size, kernel, stride):
    """[top, bottom, left, right] padding of PaddleClas's "SAME" for a square map of `size` pixels.

    The reference pads top + stride on both sides and crops the first output row and column when the
    two sides differ; padding [top, top + stride] gives the same outputs without the crop.
    """
    total = max(kernel - (stride if size % stride == 0 else size % stride), 0)
    top, bottom = total // 2, total - total // 2
    if top != bottom:
        bottom = top + stride
    return [top, bottom, top, bottom]


def conv_padding(padding_type, size, kernel, stride):
    if padding_type == "SAME":
        return same_padding(size, kernel, stride)
    if padding_type == "DYNAMIC":
        return ((stride - 1) + (kernel - 1)) // 2
    if padding_type == "VALID":
        return 0
    if isinstance(padding_type, int):
        return padding_type
    raise PclsError(f"EfficientNet padding_type must be 'SAME', 'DYNAMIC', 'VALID' or an int, not {padding_type!r}")


def conv_norm_factory(padding_type, size, bn_momentum=_BN_MOMENTUM, bn_epsilon=_BN_EPSILON):
    """Conv factory for the blocks of a stage whose input map is `size` pixels (the reference's keys nest the
    conv one level: '<name>._conv._conv.weight' and '<name>._bn')."""

    def build(in_channels, out_channels, kernel_size, stride=1, groups=1, act=None):
        layer = ConvBNAct(in_channels, out_channels, kernel_size, stride=stride, groups=groups, act=act,
                          padding=conv_padding(padding_type, size, kernel_size, stride), names=("_conv", "_bn"),
                          bn_epsilon=bn_epsilon)
        layer._bn._momentum = bn_momentum
        set_nested(layer, "_conv._conv", layer._conv)
        return layer

    return build


class _Features(nn.Layer):
    """The reference's `_ef`: the stem, then blocks registered as '_blocks.<i>.' (first of a stage) or
    'block.<i>.' (repeats)."""

    def __init__(self, stem, blocks):
        super().__init__()
        set_nested(self, "_conv_stem._conv", stem)
        self._block_list = []
        for name, block in blocks:
            self.add_sublayer(name, block)
            self._block_list.append(block)
        self.act = nn.Swish()

    def forward(self, x):
        x = self.act(self._conv_stem(x))
        for block in self._block_list:
            x = block(x)
        return x


class EfficientNetNet(Classifier):
    """variant: 'b0'..'b7', or a (width, depth, resolution, dropout) tuple (TinyNet). use_se=False drops every
    SE (B0_small). drop_connect_rate: stochastic depth, growing linearly with the block index. dropout_prob:
    before fc (None: the variant's). image_size: nominal resolution the "SAME" paddings are computed for (None:
    the variant's). fix_stem: keep the stem at 32 channels whatever the width; num_features: head width
    (None: 1280 scaled by the width). bn_momentum / bn_epsilon: every BatchNorm's (Paddle's momentum: the weight
    of the running statistics). depth_trunc: how a stage's scaled repeat count is rounded, "ceil" or "round"
    (Python's round, at least 1)."""

    classifier_names = ("_fc",)

    def __init__(self, variant="b0", padding_type="SAME", use_se=True, class_num=1000, drop_connect_rate=0.2,
                 dropout_prob=None, image_size=None, fix_stem=False, num_features=None, bn_momentum=_BN_MOMENTUM,
                 bn_epsilon=_BN_EPSILON, depth_trunc="ceil"):
        super().__init__()
        conv_padding(padding_type, 1, 1, 1)  # reject a bad padding_type before building anything
        if depth_trunc not in ("ceil", "round"):
            raise PclsError(f"EfficientNet depth_trunc must be 'ceil' or 'round', not {depth_trunc!r}")
        if isinstance(variant, str) and variant not in _VARIANTS:
            raise PclsError(f"unknown EfficientNet variant {variant!r} (known: {', '.join(_VARIANTS)})")
        self.class_num = class_num
        width, depth, resolution, dropout = _VARIANTS[variant] if isinstance(variant, str) else variant
        dropout = dropout if dropout_prob is None else dropout_prob
        size = image_size or resolution

        def filters(channels):
            return make_divisible(channels * width)

        stem_channels = 32 if fix_stem else filters(32)
        def norm_conv(map_size):
            return conv_norm_factory(padding_type, map_size, bn_momentum, bn_epsilon)

        def repeats_of(n):
            return math.ceil(depth * n) if depth_trunc == "ceil" else max(1, round(depth * n))

        stem = norm_conv(size)(3, stem_channels, 3, 2, 1, None)
        size = math.ceil(size / 2)
        stages = [(repeats_of(n), k, s, t, filters(cin), filters(cout)) for n, k, s, t, cin, cout in _STAGES]
        stages[0] = stages[0][:4] + (stem_channels,) + stages[0][5:]
        total = sum(stage[0] for stage in stages)
        blocks, index = [], 0
        for repeats, kernel, stride, expansion, cin, cout in stages:
            conv = norm_conv(size)
            for i in range(repeats):
                block_in = cin if i == 0 else cout
                squeezed = max(1, int(block_in * _SE_RATIO))

                def se(channels, squeezed=squeezed):
                    return SqueezeExcite(channels, reduced_channels=squeezed, names=("_conv1._conv", "_conv2._conv"),
                                         act="swish", gate="sigmoid")

                block = InvertedResidual(block_in, block_in * expansion, cout, kernel, stride if i == 0 else 1,
                                         act="swish", expand=expansion != 1, se=se if use_se else None,
                                         drop_path=drop_connect_rate * index / total, names=_BLOCK_NAMES, conv=conv)
                blocks.append((f"_blocks.{index}." if i == 0 else f"block.{index}.", block))
                index += 1
            size = math.ceil(size / stride)
        self._ef = _Features(stem, blocks)
        head_channels = num_features or filters(1280)
        self._conv = norm_conv(size)(stages[-1][5], head_channels, 1, 1, 1, "swish")
        self._pool = nn.AdaptiveAvgPool2D(1)
        self._drop = nn.Dropout(dropout) if dropout else None
        self._fc = nn.Linear(head_channels, class_num)

    def forward_features(self, x):
        return self._conv(self._ef(x))

    def forward_head(self, x):
        x = paddle.flatten(self._pool(x), 1)
        if self._drop is not None:
            x = self._drop(x)
        return self._fc(x)


# PaddleClas's `override_params` (its GlobalParams fields) -> EfficientNetNet arguments
_OVERRIDES = {"batch_norm_momentum": "bn_momentum", "batch_norm_epsilon": "bn_epsilon", "depth_trunc": "depth_trunc",
              "drop_connect_rate": "drop_connect_rate", "dropout_rate": "dropout_prob"}


def override_kwargs(override_params) -> dict:
    """EfficientNetNet arguments from PaddleClas's `Arch.override_params` map (None: none); numbers may be
    written as YAML strings ("1e-5")."""
    from pcls.config.expr import parse_number

    if override_params is None:
        return {}
    if not isinstance(override_params, dict):
        raise PclsError(f"Arch.override_params must be a map like {{batch_norm_epsilon: 1.0e-5}}, "
                        f"got {override_params!r}")
    unknown = sorted(set(override_params) - set(_OVERRIDES))
    if unknown:
        raise PclsError(f"Arch.override_params: {', '.join(unknown)} not supported; pcls reads "
                        f"{', '.join(_OVERRIDES)}")
    kwargs = {}
    for key, value in override_params.items():
        if key != "depth_trunc":
            number = parse_number(value)
            if number is None:
                raise PclsError(f"Arch.override_params.{key}: expected a number, got {value!r}")
            value = number
        kwargs[_OVERRIDES[key]] = value
    return kwargs


def _efficientnet(variant, class_num, padding_type="SAME", override_params=None, **kwargs):
    return EfficientNetNet(variant, padding_type=padding_type, class_num=class_num,
                           **{**kwargs, **override_kwargs(override_params)})


@register
def EfficientNetB0_small(class_num=1000, padding_type="DYNAMIC", use_se=False, **kwargs):
    return _efficientnet("b0", class_num, padding_type=padding_type, use_se=use_se, **kwargs)


@register
def EfficientNetB0(class_num=1000, **kwargs):
    return _efficientnet("b0", class_num, **kwargs)


@register
def EfficientNetB1(class_num=1000, **kwargs):
    return _efficientnet("b1", class_num, **kwargs)


@register
def EfficientNetB2(class_num=1000, **kwargs):
    return _efficientnet("b2", class_num, **kwargs)


@register
def EfficientNetB3(class_num=1000, **kwargs):
    return _efficientnet("b3", class_num, **kwargs)


@register
def EfficientNetB4(class_num=1000, **kwargs):
    return _efficientnet("b4", class_num, **kwargs)


@register
def EfficientNetB5(class_num=1000, **kwargs):
    return _efficientnet("b5", class_num, **kwargs)


@register
def EfficientNetB6(class_num=1000, **kwargs):
    return _efficientnet("b6", class_num, **kwargs)


@register
def EfficientNetB7(class_num=1000, **kwargs):
    return _efficientnet("b7", class_num, **kwargs)
