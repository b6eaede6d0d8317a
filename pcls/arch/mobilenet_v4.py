"""MobileNetV4 (Qin et al., "MobileNetV4: Universal Models for the Mobile Ecosystem", ECCV 2024),
weight-compatible with PaddleClas's `MobileNetV4_conv_small/medium/large` and `MobileNetV4_hybrid_medium/large`.

What is special: one searchable block, the Universal Inverted Bottleneck (UIB): optional depthwise conv
*before* the 1x1 expansion (`dw_start`), 1x1 expand, optional depthwise conv after it (`dw_mid`), 1x1
project. Its four instances are the classic inverted bottleneck (mid only), ConvNeXt-like (start only),
ExtraDW (both) and a plain FFN (neither). Early stages use fused inverted bottlenecks (a full kxk conv
expands) or plain convs; the hybrid models interleave Mobile MQA - multi-query attention (many query
heads, one shared key/value head) whose keys/values come from a stride-2 depthwise-downsampled map - and
put a learned per-channel layer scale on every residual branch. The head is pool -> 1x1 conv + BN + act
-> dropout -> fc.

Each model is a table of blocks (below), derived from the paper's architecture tables.
"""

from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.base import Classifier
from pcls.arch.layers import ConvBNAct, DropPath
from pcls.arch.registry import register


class LayerScale(nn.Layer):
    """A learned per-channel scale of a residual branch (NCHW)."""

    def __init__(self, dim, init_value=1e-5):
        super().__init__()
        self.gamma = self.create_parameter([dim], default_initializer=nn.initializer.Constant(init_value))

    def forward(self, x):
        return x * self.gamma.reshape([1, -1, 1, 1])


class Residual(nn.Layer):
    """Base of the residual blocks: adds the (layer-scaled, drop-pathed) branch when shapes allow."""

    def _init_residual(self, in_dim, out_dim, stride, drop_path, layer_scale):
        """layer_scale: the initial value of a per-channel branch scale, or None for none."""
        self.has_skip = stride == 1 and in_dim == out_dim
        self.layer_scale = LayerScale(out_dim, layer_scale) if layer_scale else None
        self.drop_path = DropPath(drop_path)

    def branch(self, x):
        raise NotImplementedError

    def forward(self, x):
        out = self.branch(x)
        if self.layer_scale is not None:
            out = self.layer_scale(out)
        return x + self.drop_path(out) if self.has_skip else out


class FusedIB(Residual):
    """kxk conv expands (with stride) -> 1x1 conv projects."""

    def __init__(self, in_dim, kernel, stride, out_dim, expand, act, drop_path=0.0):
        super().__init__()
        hidden = int(in_dim * expand)
        self.conv_exp = ConvBNAct(in_dim, hidden, kernel, stride, act=act)
        self.conv_pwl = ConvBNAct(hidden, out_dim, 1, act=None)
        self._init_residual(in_dim, out_dim, stride, drop_path, None)

    def branch(self, x):
        return self.conv_pwl(self.conv_exp(x))


class UIB(Residual):
    """Universal inverted bottleneck: [dw_start kxk] -> 1x1 expand -> [dw_mid kxk] -> 1x1 project. The stride
    sits on dw_mid when there is one, else on dw_start."""

    def __init__(self, in_dim, start_kernel, mid_kernel, stride, out_dim, expand, act, drop_path=0.0,
                 layer_scale=None):
        super().__init__()
        hidden = int(in_dim * expand)
        self.dw_start = None
        if start_kernel:
            self.dw_start = ConvBNAct(in_dim, in_dim, start_kernel, 1 if mid_kernel else stride, groups=in_dim,
                                      act=None)
        self.pw_exp = ConvBNAct(in_dim, hidden, 1, act=act)
        self.dw_mid = ConvBNAct(hidden, hidden, mid_kernel, stride, groups=hidden, act=act) if mid_kernel else None
        self.pw_proj = ConvBNAct(hidden, out_dim, 1, act=None)
        self._init_residual(in_dim, out_dim, stride, drop_path, layer_scale)

    def branch(self, x):
        if self.dw_start is not None:
            x = self.dw_start(x)
        x = self.pw_exp(x)
        if self.dw_mid is not None:
            x = self.dw_mid(x)
        return self.pw_proj(x)


class MobileMQA(Residual):
    """Pre-norm (BN) multi-query attention: `num_heads` query heads share one key and one value head of
    width `key_dim`; with kv_stride 2 keys and values come from a 3x3 depthwise stride-2 conv + BN of the map."""

    def __init__(self, dim, num_heads, key_dim, kv_stride, drop_path=0.0, layer_scale=None):
        super().__init__()
        self.num_heads, self.key_dim = num_heads, key_dim
        # as in PaddleClas (un-fused path): scores scaled by the whole query width, heads * key_dim
        self.scale = (num_heads * key_dim) ** -0.5
        self.norm = nn.BatchNorm2D(dim)
        self.query_proj = nn.Conv2D(dim, num_heads * key_dim, 1, bias_attr=False)
        self.key_down_proj = self.value_down_proj = None
        if kv_stride > 1:
            self.key_down_proj = ConvBNAct(dim, dim, 3, kv_stride, groups=dim, act=None)
            self.value_down_proj = ConvBNAct(dim, dim, 3, kv_stride, groups=dim, act=None)
        self.key_proj = nn.Conv2D(dim, key_dim, 1, bias_attr=False)
        self.value_proj = nn.Conv2D(dim, key_dim, 1, bias_attr=False)
        self.proj = nn.Conv2D(num_heads * key_dim, dim, 1, bias_attr=False)
        self._init_residual(dim, dim, 1, drop_path, layer_scale)

    def branch(self, x):
        x = self.norm(x)
        height, width = x.shape[2], x.shape[3]
        # queries [B, heads, H*W, d]; the single key/value head [B, 1, h*w, d] broadcasts over them
        q = self.query_proj(x).reshape([0, self.num_heads, self.key_dim, -1]).transpose([0, 1, 3, 2])
        k_in = x if self.key_down_proj is None else self.key_down_proj(x)
        v_in = x if self.value_down_proj is None else self.value_down_proj(x)
        keys_t = self.key_proj(k_in).flatten(2).unsqueeze(1)  # [B, 1, d, h*w]: keys already transposed
        v = self.value_proj(v_in).flatten(2).unsqueeze(1).transpose([0, 1, 3, 2])
        # q is scaled before the product, as in the reference: with the deep hybrid models' large
        # activations the attention is sensitive enough for the rounding order to show in the logits
        weights = F.softmax(paddle.matmul(q * self.scale, keys_t), axis=-1)
        out = paddle.matmul(weights, v)  # [B, heads, H*W, d]
        out = out.transpose([0, 1, 3, 2]).reshape([0, self.num_heads * self.key_dim, height, width])
        return self.proj(out)


class MobileNetV4(Classifier):
    classifier_names = ("classifier",)

    def __init__(self, blocks, stem_dim, act="relu", class_num=1000, class_expand=1280, drop_rate=0.0,
                 drop_path_rate=0.0, layer_scale_init_value=0.0, in_chans=3):
        super().__init__()
        self.class_num = class_num
        self.conv_stem = ConvBNAct(in_chans, stem_dim, 3, 2, act=act)
        layers, dim = [], stem_dim
        layer_scale = layer_scale_init_value or None
        for i, (kind, *args) in enumerate(blocks):
            drop_path = drop_path_rate * i / len(blocks)
            if kind == "cn":
                kernel, stride, out_dim = args
                layers.append(ConvBNAct(dim, out_dim, kernel, stride, act=act))
            elif kind == "fi":
                kernel, stride, out_dim, expand = args
                # the fused stem block never carries a layer scale (it has no residual)
                layers.append(FusedIB(dim, kernel, stride, out_dim, expand, act, drop_path))
            elif kind == "uib":
                start, mid, stride, out_dim, expand = args
                layers.append(UIB(dim, start, mid, stride, out_dim, expand, act, drop_path, layer_scale))
            else:
                num_heads, key_dim, kv_stride = args
                out_dim = dim
                layers.append(MobileMQA(dim, num_heads, key_dim, kv_stride, drop_path, layer_scale))
            dim = out_dim
        self.blocks = nn.Sequential(*layers)
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.conv_head = ConvBNAct(dim, class_expand, 1, act=act)
        self.dropout = nn.Dropout(drop_rate) if drop_rate else None
        self.classifier = nn.Linear(class_expand, class_num)

    def forward_features(self, x):
        return self.blocks(self.conv_stem(x))

    def forward_head(self, x):
        x = self.conv_head(self.avg_pool(x))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.classifier(paddle.flatten(x, 1))


# Blocks: ("cn", kernel, stride, out) conv-BN-act; ("fi", kernel, stride, out, expand) fused IB;
# ("uib", start_kernel, mid_kernel, stride, out, expand) with 0 = no such depthwise conv;
# ("mqa", heads, key_dim, kv_stride) Mobile MQA (keeps the width).
BLOCKS = {
    "MobileNetV4_conv_small": [
        ("cn", 3, 2, 32), ("cn", 1, 1, 32), ("cn", 3, 2, 96), ("cn", 1, 1, 64), ("uib", 5, 5, 2, 96, 3),
        ("uib", 0, 3, 1, 96, 2), ("uib", 0, 3, 1, 96, 2), ("uib", 0, 3, 1, 96, 2), ("uib", 0, 3, 1, 96, 2),
        ("uib", 3, 0, 1, 96, 4), ("uib", 3, 3, 2, 128, 6), ("uib", 5, 5, 1, 128, 4), ("uib", 0, 5, 1, 128, 4),
        ("uib", 0, 5, 1, 128, 3), ("uib", 0, 3, 1, 128, 4), ("uib", 0, 3, 1, 128, 4), ("cn", 1, 1, 960),
    ],
    "MobileNetV4_conv_medium": [
        ("fi", 3, 2, 48, 4), ("uib", 3, 5, 2, 80, 4), ("uib", 3, 3, 1, 80, 2), ("uib", 3, 5, 2, 160, 6),
        ("uib", 3, 3, 1, 160, 4), ("uib", 3, 3, 1, 160, 4), ("uib", 3, 5, 1, 160, 4), ("uib", 3, 3, 1, 160, 4),
        ("uib", 3, 0, 1, 160, 4), ("uib", 0, 0, 1, 160, 2), ("uib", 3, 0, 1, 160, 4), ("uib", 5, 5, 2, 256, 6),
        ("uib", 5, 5, 1, 256, 4), ("uib", 3, 5, 1, 256, 4), ("uib", 3, 5, 1, 256, 4), ("uib", 0, 0, 1, 256, 4),
        ("uib", 3, 0, 1, 256, 4), ("uib", 3, 5, 1, 256, 2), ("uib", 5, 5, 1, 256, 4), ("uib", 0, 0, 1, 256, 4),
        ("uib", 0, 0, 1, 256, 4), ("uib", 5, 0, 1, 256, 2), ("cn", 1, 1, 960),
    ],
    "MobileNetV4_conv_large": [
        ("fi", 3, 2, 48, 4), ("uib", 3, 5, 2, 96, 4), ("uib", 3, 3, 1, 96, 4), ("uib", 3, 5, 2, 192, 4),
        ("uib", 3, 3, 1, 192, 4), ("uib", 3, 3, 1, 192, 4), ("uib", 3, 3, 1, 192, 4), ("uib", 3, 5, 1, 192, 4),
        ("uib", 5, 3, 1, 192, 4), ("uib", 5, 3, 1, 192, 4), ("uib", 5, 3, 1, 192, 4), ("uib", 5, 3, 1, 192, 4),
        ("uib", 5, 3, 1, 192, 4), ("uib", 3, 0, 1, 192, 4), ("uib", 5, 5, 2, 512, 4), ("uib", 5, 5, 1, 512, 4),
        ("uib", 5, 5, 1, 512, 4), ("uib", 5, 5, 1, 512, 4), ("uib", 5, 0, 1, 512, 4), ("uib", 5, 3, 1, 512, 4),
        ("uib", 5, 0, 1, 512, 4), ("uib", 5, 0, 1, 512, 4), ("uib", 5, 3, 1, 512, 4), ("uib", 5, 5, 1, 512, 4),
        ("uib", 5, 0, 1, 512, 4), ("uib", 5, 0, 1, 512, 4), ("uib", 5, 0, 1, 512, 4), ("cn", 1, 1, 960),
    ],
    "MobileNetV4_hybrid_medium": [
        ("fi", 3, 2, 48, 4), ("uib", 3, 5, 2, 80, 4), ("uib", 3, 3, 1, 80, 2), ("uib", 3, 5, 2, 160, 6),
        ("uib", 0, 0, 1, 160, 2), ("uib", 3, 3, 1, 160, 4), ("uib", 3, 5, 1, 160, 4), ("mqa", 4, 64, 2),
        ("uib", 3, 3, 1, 160, 4), ("mqa", 4, 64, 2), ("uib", 3, 0, 1, 160, 4), ("mqa", 4, 64, 2),
        ("uib", 3, 3, 1, 160, 4), ("mqa", 4, 64, 2), ("uib", 3, 0, 1, 160, 4), ("uib", 5, 5, 2, 256, 6),
        ("uib", 5, 5, 1, 256, 4), ("uib", 3, 5, 1, 256, 4), ("uib", 3, 5, 1, 256, 4), ("uib", 0, 0, 1, 256, 2),
        ("uib", 3, 5, 1, 256, 2), ("uib", 0, 0, 1, 256, 2), ("uib", 0, 0, 1, 256, 4), ("mqa", 4, 64, 1),
        ("uib", 3, 0, 1, 256, 4), ("mqa", 4, 64, 1), ("uib", 5, 5, 1, 256, 4), ("mqa", 4, 64, 1),
        ("uib", 5, 0, 1, 256, 4), ("mqa", 4, 64, 1), ("uib", 5, 0, 1, 256, 4), ("cn", 1, 1, 960),
    ],
    "MobileNetV4_hybrid_large": [
        ("fi", 3, 2, 48, 4), ("uib", 3, 5, 2, 96, 4), ("uib", 3, 3, 1, 96, 4), ("uib", 3, 5, 2, 192, 4),
        ("uib", 3, 3, 1, 192, 4), ("uib", 3, 3, 1, 192, 4), ("uib", 3, 3, 1, 192, 4), ("uib", 3, 5, 1, 192, 4),
        ("uib", 5, 3, 1, 192, 4), ("uib", 5, 3, 1, 192, 4), ("mqa", 8, 48, 2), ("uib", 5, 3, 1, 192, 4),
        ("mqa", 8, 48, 2), ("uib", 5, 3, 1, 192, 4), ("mqa", 8, 48, 2), ("uib", 5, 3, 1, 192, 4), ("mqa", 8, 48, 2),
        ("uib", 3, 0, 1, 192, 4), ("uib", 5, 5, 2, 512, 4), ("uib", 5, 5, 1, 512, 4), ("uib", 5, 5, 1, 512, 4),
        ("uib", 5, 5, 1, 512, 4), ("uib", 5, 0, 1, 512, 4), ("uib", 5, 3, 1, 512, 4), ("uib", 5, 0, 1, 512, 4),
        ("uib", 5, 0, 1, 512, 4), ("uib", 5, 3, 1, 512, 4), ("uib", 5, 5, 1, 512, 4), ("mqa", 8, 64, 1),
        ("uib", 5, 0, 1, 512, 4), ("mqa", 8, 64, 1), ("uib", 5, 0, 1, 512, 4), ("mqa", 8, 64, 1),
        ("uib", 5, 0, 1, 512, 4), ("mqa", 8, 64, 1), ("uib", 5, 0, 1, 512, 4), ("cn", 1, 1, 960),
    ],
}

# name -> stem width, activation, initial layer scale of the residual branches (0: none)
VARIANTS = {
    "MobileNetV4_conv_small": (32, "relu", 0.0),
    "MobileNetV4_conv_medium": (32, "relu", 0.0),
    "MobileNetV4_conv_large": (24, "relu", 0.0),
    "MobileNetV4_hybrid_medium": (32, "relu", 1e-5),
    "MobileNetV4_hybrid_large": (24, "gelu", 1e-5),
}


def _mobilenet_v4(name, class_num, kwargs):
    stem_dim, act, layer_scale = VARIANTS[name]
    kwargs.pop("use_ssld", None)  # only chooses the zoo weights (registry)
    kwargs.pop("use_fused_attn", None)  # a kernel choice in PaddleClas; the maths is the same
    arch = dict(act=act, layer_scale_init_value=layer_scale)
    return MobileNetV4(BLOCKS[name], stem_dim, class_num=class_num, **{**arch, **kwargs})


@register
def MobileNetV4_conv_small(class_num=1000, **kwargs):
    return _mobilenet_v4("MobileNetV4_conv_small", class_num, kwargs)


@register
def MobileNetV4_conv_medium(class_num=1000, **kwargs):
    return _mobilenet_v4("MobileNetV4_conv_medium", class_num, kwargs)


@register
def MobileNetV4_conv_large(class_num=1000, **kwargs):
    return _mobilenet_v4("MobileNetV4_conv_large", class_num, kwargs)


@register
def MobileNetV4_hybrid_medium(class_num=1000, **kwargs):
    return _mobilenet_v4("MobileNetV4_hybrid_medium", class_num, kwargs)


@register
def MobileNetV4_hybrid_large(class_num=1000, **kwargs):
    return _mobilenet_v4("MobileNetV4_hybrid_large", class_num, kwargs)
