"""MobileViTV2 (Mehta & Rastegari 2022, "Separable Self-attention for Mobile Vision Transformers"),
weight-compatible with PaddleClas.

MobileViT with its multi-head attention replaced by *separable* self-attention: a single query channel gives
softmax context scores over the patches, and the score-weighted key (one context vector) gates the ReLU-ed
values - cost linear in the number of patches, and only 1x1 convs and element-wise ops, no token reshapes
inside the transformer (it works on a [B, C, P, N] map normalised by a one-group GroupNorm). The block has no
fusion with its input; widths scale with one `width_multiplier` (x0_5 ... x2_0). The blocks are shared with
MobileViTV3 (`pcls.arch.layers.mobilevit_blocks`).
"""

from __future__ import annotations

import paddle.nn as nn

from pcls.arch.layers.mobilevit_blocks import MobileViTStyleNet, build_stages, separable_attention_factory, v2_stages
from pcls.arch.registry import register


class MobileViTV2(MobileViTStyleNet):
    def __init__(self, width_multiplier=1.0, class_num=1000, output_stride=None, dropout=0.0, classifier_dropout=0.0,
                 use_ssld=False):
        super().__init__()
        self.class_num = class_num
        self.use_ssld = use_ssld  # only picks the published *_ssld weights (see the registry)
        stem, stages = v2_stages(width_multiplier)
        channels = build_stages(self, stem, stages, output_stride, separable_attention_factory(False, dropout))
        self.conv_1x1_exp = nn.Identity()
        self._build_head(channels, class_num, classifier_dropout)


@register
def MobileViTV2_x0_5(class_num=1000, **kwargs):
    return MobileViTV2(0.5, class_num=class_num, **kwargs)


@register
def MobileViTV2_x1_0(class_num=1000, **kwargs):
    return MobileViTV2(1.0, class_num=class_num, **kwargs)


@register
def MobileViTV2_x1_5(class_num=1000, **kwargs):
    return MobileViTV2(1.5, class_num=class_num, **kwargs)


@register
def MobileViTV2_x2_0(class_num=1000, **kwargs):
    return MobileViTV2(2.0, class_num=class_num, **kwargs)
