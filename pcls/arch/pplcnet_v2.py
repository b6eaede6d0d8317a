"""PP-LCNetV2 (PaddleClas 2.4) with PaddleClas's layer names.

A CPU-friendly network of depthwise-separable blocks with ReLU. What is special:
- re-parameterisable depthwise convs in stages 3-4: during training a block sums parallel depthwise
  conv-bn branches of kernels 5, 3 and 1 (the 1x1 branch only at stride 1); `rep()` folds them into the single
  5x5 conv with bias (`dw_conv`, which the published checkpoints already carry) for deployment;
- stage 3 splits the pointwise conv in two (to half the width, then to the full width) and has SE (sigmoid gate);
- stage 4 adds identity shortcuts.
Head: pool -> 1x1 conv (expand) -> relu -> dropout -> fc.
"""

import paddle.nn as nn

from pcls.arch.layers.channels import make_divisible
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.heads import LastConvClassifier
from pcls.arch.layers.reparam import fuse_branches, load_fused
from pcls.arch.layers.se import SqueezeExcite
from pcls.arch.registry import register
from pcls.errors import PclsError

# stages: (in channels at scale 1, depthwise kernel, split pointwise, re-parameterisable, SE, shortcut);
# a stage's blocks output twice its input width
_STAGES = ((64, 3, False, False, False, False), (128, 3, False, False, False, False),
           (256, 5, True, True, True, False), (512, 5, False, True, False, True))
_VARIANTS = {"small": (0.75, (2, 2, 4, 2)), "base": (1.0, (2, 2, 6, 2)), "large": (1.25, (2, 2, 8, 2))}


class RepDepthwiseSeparable(nn.Layer):
    """Depthwise conv (re-parameterisable branches or one conv-bn-relu) -> [SE] -> pointwise conv(s) (+ x)."""

    def __init__(self, in_channels, out_channels, stride, dw_size=3, split_pw=False, use_rep=False, use_se=False,
                 use_shortcut=False):
        super().__init__()
        self.dw_size, self.stride = dw_size, stride
        self.use_rep = use_rep
        self.use_shortcut = use_shortcut and stride == 1 and in_channels == out_channels
        if use_rep:
            # branches of kernel dw_size, dw_size - 2, ..., 1; strided blocks have no 1x1 branch (as published)
            kernels = [k for k in range(dw_size, 0, -2) if not (k == 1 and stride != 1)]
            self.dw_conv_list = nn.LayerList([
                ConvBNAct(in_channels, in_channels, k, stride, groups=in_channels, act=None) for k in kernels
            ])
            # the deploy conv; filled by rep()
            self.dw_conv = nn.Conv2D(in_channels, in_channels, dw_size, stride, padding=(dw_size - 1) // 2,
                                     groups=in_channels)
            self.act = nn.ReLU()
            self.is_repped = False
        else:
            self.dw_conv = ConvBNAct(in_channels, in_channels, dw_size, stride, groups=in_channels)
        # a sigmoid gate (the reference names it hardsigmoid but computes a plain sigmoid)
        self.se = SqueezeExcite(in_channels, reduction=4, gate="sigmoid") if use_se else None
        if split_pw:
            self.pw_conv_1 = ConvBNAct(in_channels, out_channels // 2, 1)
            self.pw_conv_2 = ConvBNAct(out_channels // 2, out_channels, 1)
            self._pointwise = ("pw_conv_1", "pw_conv_2")
        else:
            self.pw_conv = ConvBNAct(in_channels, out_channels, 1)
            self._pointwise = ("pw_conv",)

    def _depthwise(self, x):
        if not self.use_rep:
            return self.dw_conv(x)
        if self.is_repped:
            return self.act(self.dw_conv(x))
        y = self.dw_conv_list[0](x)
        for branch in self.dw_conv_list[1:]:
            y = y + branch(x)
        return self.act(y)

    def forward(self, x):
        y = self._depthwise(x)
        if self.se is not None:
            y = self.se(y)
        for name in self._pointwise:
            y = getattr(self, name)(y)
        return x + y if self.use_shortcut else y

    def rep(self):
        """Fold the depthwise branches into `dw_conv` (use in eval mode); a no-op when already done."""
        if not self.use_rep or self.is_repped:
            return
        kernel, bias = fuse_branches([(b.conv, b.bn) for b in self.dw_conv_list], self.dw_size)
        load_fused(self.dw_conv, kernel, bias)
        self.is_repped = True
        del self.dw_conv_list  # the deployed graph needs only the fused conv
        self.dw_conv_list = None


class PPLCNetV2(LastConvClassifier):
    """scale: width multiplier; depths: blocks per stage; expand: width of the head's 1x1 conv (0/None: no
    last conv, the pooled features go straight to fc); dropout_prob: the head's dropout."""

    def __init__(self, scale, depths, class_num=1000, dropout_prob=0.2, expand=1280):
        super().__init__()
        if len(depths) != len(_STAGES):
            raise PclsError(f"PPLCNetV2 depths needs {len(_STAGES)} values, got {list(depths)}")
        self.class_num = class_num
        self.scale = scale
        self.stem = nn.Sequential(
            ConvBNAct(3, make_divisible(32 * scale), 3, stride=2),
            RepDepthwiseSeparable(make_divisible(32 * scale), make_divisible(64 * scale), stride=1, dw_size=3),
        )
        stages = []
        for (width, kernel, split_pw, use_rep, use_se, shortcut), depth in zip(_STAGES, depths):
            out_channels = make_divisible(width * 2 * scale)
            stages.append(nn.Sequential(*[
                RepDepthwiseSeparable(make_divisible(width * scale) if i == 0 else out_channels, out_channels,
                                      stride=2 if i == 0 else 1, dw_size=kernel, split_pw=split_pw,
                                      use_rep=use_rep, use_se=use_se, use_shortcut=shortcut)
                for i in range(depth)
            ]))
        self.stages = nn.Sequential(*stages)
        self._build_head(make_divisible(_STAGES[-1][0] * 2 * scale), class_num, expand, dropout_prob,
                         use_last_conv=bool(expand), act="relu")

    def forward_features(self, x):
        return self.stages(self.stem(x))

    def rep(self):
        """Deploy conversion: fold every re-parameterisable block's branches into one conv (use in eval mode)."""
        for layer in self.sublayers(include_self=False):
            if isinstance(layer, RepDepthwiseSeparable):
                layer.rep()
        return self


def _pplcnet_v2(variant, class_num, kwargs):
    scale, depths = _VARIANTS[variant]
    kwargs.pop("use_ssld", None)  # only chooses the distilled zoo weights (see registry)
    return PPLCNetV2(scale, depths, class_num=class_num, **kwargs)


@register
def PPLCNetV2_small(class_num=1000, **kwargs):
    return _pplcnet_v2("small", class_num, kwargs)


@register
def PPLCNetV2_base(class_num=1000, **kwargs):
    return _pplcnet_v2("base", class_num, kwargs)


@register
def PPLCNetV2_large(class_num=1000, **kwargs):
    return _pplcnet_v2("large", class_num, kwargs)
