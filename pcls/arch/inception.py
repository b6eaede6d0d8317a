"""Inception-v3 (Szegedy et al. 2015) and Inception-v4 (Szegedy et al. 2016) with PaddleClas's layer
names. (GoogLeNet, Inception-v1, lives in googlenet.py.)

Every module of both networks is one `InceptionBlock` described as data: a list of stages applied
in turn; a stage is a list of parallel branches whose outputs are concatenated; a branch is a chain of
pools and conv-BN-ReLUs, optionally ending in a `Fork` of convs applied to the same tensor (their
outputs concatenated in place). Pooling details that change numbers: v3's 3x3 average pools count the
zero padding (exclusive=False), v4's do not; every stride-2 pool is 3x3 in floor mode without padding.
"""

from typing import NamedTuple

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers import ConvBNAct
from pcls.arch.registry import register


class Conv(NamedTuple):
    name: str
    out: int
    kernel: object = 1  # int or (kh, kw)
    stride: int = 1
    padding: object = 0


class Pool(NamedTuple):
    kind: str  # "max" or "avg"
    kernel: int = 3
    stride: int = 1
    padding: int = 0
    exclusive: bool = True


class Fork(tuple):
    """Convs applied side by side to the branch's current tensor; outputs concatenated."""


MAX_S2 = Pool("max", 3, 2, 0)
V3_AVG = Pool("avg", 3, 1, 1, exclusive=False)
V4_AVG = Pool("avg", 3, 1, 1, exclusive=True)


def _k17(name, out):  # 1x7 conv
    return Conv(name, out, (1, 7), 1, (0, 3))


def _k71(name, out):  # 7x1 conv
    return Conv(name, out, (7, 1), 1, (3, 0))


class InceptionBlock(nn.Layer):
    """stages: [[branch, ...], ...]; branch: tuple of Conv / Pool steps, optionally ending in a Fork."""

    def __init__(self, cin, stages, conv_names=("conv", "bn"), bn_epsilon=1e-5):
        super().__init__()
        self._stages = stages
        self._pools = {}
        for stage in stages:
            width = 0
            for branch in stage:
                channels = cin
                for step in branch:
                    if isinstance(step, Fork):
                        for conv in step:
                            self._add_conv(conv, channels, conv_names, bn_epsilon)
                        channels = sum(conv.out for conv in step)
                    elif isinstance(step, Conv):
                        self._add_conv(step, channels, conv_names, bn_epsilon)
                        channels = step.out
                    elif step not in self._pools:
                        self._pools[step] = self.add_sublayer(f"pool{len(self._pools)}", _make_pool(step))
                width += channels
            cin = width
        self.out_channels = cin

    def _add_conv(self, conv, cin, names, eps):
        layer = ConvBNAct(cin, conv.out, conv.kernel, stride=conv.stride, padding=conv.padding, names=names,
                          bn_epsilon=eps)
        setattr(self, conv.name, layer)

    def _run(self, step, x):
        if isinstance(step, Fork):
            return paddle.concat([getattr(self, conv.name)(x) for conv in step], axis=1)
        if isinstance(step, Conv):
            return getattr(self, step.name)(x)
        return self._pools[step](x)

    def forward(self, x):
        for stage in self._stages:
            outputs = []
            for branch in stage:
                y = x
                for step in branch:
                    y = self._run(step, y)
                outputs.append(y)
            x = outputs[0] if len(outputs) == 1 else paddle.concat(outputs, axis=1)
        return x


def _make_pool(pool):
    if pool.kind == "max":
        return nn.MaxPool2D(pool.kernel, stride=pool.stride, padding=pool.padding)
    return nn.AvgPool2D(pool.kernel, stride=pool.stride, padding=pool.padding, exclusive=pool.exclusive)


# ---- Inception-v3 ---------------------------------------------------------------------------------
def _v3_stem():
    return [
        [(Conv("conv_1a_3x3", 32, 3, 2), Conv("conv_2a_3x3", 32, 3), Conv("conv_2b_3x3", 64, 3, 1, 1), MAX_S2,
          Conv("conv_3b_1x1", 80), Conv("conv_4a_3x3", 192, 3), MAX_S2)],
    ]


def _v3_a(pool_features):
    return [[
        (Conv("branch1x1", 64),),
        (Conv("branch5x5_1", 48), Conv("branch5x5_2", 64, 5, 1, 2)),
        (Conv("branch3x3dbl_1", 64), Conv("branch3x3dbl_2", 96, 3, 1, 1), Conv("branch3x3dbl_3", 96, 3, 1, 1)),
        (V3_AVG, Conv("branch_pool_conv", pool_features)),
    ]]


def _v3_b():
    return [[
        (Conv("branch3x3", 384, 3, 2),),
        (Conv("branch3x3dbl_1", 64), Conv("branch3x3dbl_2", 96, 3, 1, 1), Conv("branch3x3dbl_3", 96, 3, 2)),
        (MAX_S2,),
    ]]


def _v3_c(c7):
    return [[
        (Conv("branch1x1", 192),),
        (Conv("branch7x7_1", c7), _k17("branch7x7_2", c7), _k71("branch7x7_3", 192)),
        (Conv("branch7x7dbl_1", c7), _k71("branch7x7dbl_2", c7), _k17("branch7x7dbl_3", c7),
         _k71("branch7x7dbl_4", c7), _k17("branch7x7dbl_5", 192)),
        (V3_AVG, Conv("branch_pool_conv", 192)),
    ]]


def _v3_d():
    return [[
        (Conv("branch3x3_1", 192), Conv("branch3x3_2", 320, 3, 2)),
        (Conv("branch7x7x3_1", 192), _k17("branch7x7x3_2", 192), _k71("branch7x7x3_3", 192),
         Conv("branch7x7x3_4", 192, 3, 2)),
        (MAX_S2,),
    ]]


def _v3_e():
    return [[
        (Conv("branch1x1", 320),),
        (Conv("branch3x3_1", 384),
         Fork((Conv("branch3x3_2a", 384, (1, 3), 1, (0, 1)), Conv("branch3x3_2b", 384, (3, 1), 1, (1, 0))))),
        (Conv("branch3x3dbl_1", 448), Conv("branch3x3dbl_2", 384, 3, 1, 1),
         Fork((Conv("branch3x3dbl_3a", 384, (1, 3), 1, (0, 1)), Conv("branch3x3dbl_3b", 384, (3, 1), 1, (1, 0))))),
        (V3_AVG, Conv("branch_pool_conv", 192)),
    ]]


def _v3_blocks():
    stages = ([_v3_a(f) for f in (32, 64, 64)] + [_v3_b()] + [_v3_c(c) for c in (128, 160, 160, 192)]
              + [_v3_d()] + [_v3_e(), _v3_e()])
    return [(str(i), block) for i, block in enumerate(stages)]


# ---- Inception-v4 ---------------------------------------------------------------------------------
def _v4_stem():
    return [
        [(Conv("_conv_1", 32, 3, 2), Conv("_conv_2", 32, 3), Conv("_conv_3", 64, 3, 1, 1))],
        [(MAX_S2,), (Conv("_conv2", 96, 3, 2),)],
        [(Conv("_conv1_1", 64), Conv("_conv1_2", 96, 3)),
         (Conv("_conv2_1", 64), _k71("_conv2_2", 64), _k17("_conv2_3", 64), Conv("_conv2_4", 96, 3))],
        [(Conv("_conv3", 192, 3, 2),), (MAX_S2,)],
    ]


def _v4_a():
    return [[
        (V4_AVG, Conv("_conv1", 96)),
        (Conv("_conv2", 96),),
        (Conv("_conv3_1", 64), Conv("_conv3_2", 96, 3, 1, 1)),
        (Conv("_conv4_1", 64), Conv("_conv4_2", 96, 3, 1, 1), Conv("_conv4_3", 96, 3, 1, 1)),
    ]]


def _v4_reduction_a():
    return [[
        (MAX_S2,),
        (Conv("_conv2", 384, 3, 2),),
        (Conv("_conv3_1", 192), Conv("_conv3_2", 224, 3, 1, 1), Conv("_conv3_3", 256, 3, 2)),
    ]]


def _v4_b():
    return [[
        (V4_AVG, Conv("_conv1", 128)),
        (Conv("_conv2", 384),),
        (Conv("_conv3_1", 192), _k17("_conv3_2", 224), _k71("_conv3_3", 256)),
        (Conv("_conv4_1", 192), _k17("_conv4_2", 192), _k71("_conv4_3", 224), _k17("_conv4_4", 224),
         _k71("_conv4_5", 256)),
    ]]


def _v4_reduction_b():
    return [[
        (MAX_S2,),
        (Conv("_conv2_1", 192), Conv("_conv2_2", 192, 3, 2)),
        (Conv("_conv3_1", 256), _k17("_conv3_2", 256), _k71("_conv3_3", 320), Conv("_conv3_4", 320, 3, 2)),
    ]]


def _v4_c():
    return [[
        (V4_AVG, Conv("_conv1", 256)),
        (Conv("_conv2", 256),),
        (Conv("_conv3_0", 384), Fork((Conv("_conv3_1", 256, (1, 3), 1, (0, 1)),
                                      Conv("_conv3_2", 256, (3, 1), 1, (1, 0))))),
        (Conv("_conv4_0", 384), Conv("_conv4_00", 448, (1, 3), 1, (0, 1)), Conv("_conv4_000", 512, (3, 1), 1, (1, 0)),
         Fork((Conv("_conv4_1", 256, (1, 3), 1, (0, 1)), Conv("_conv4_2", 256, (3, 1), 1, (1, 0))))),
    ]]


def _v4_blocks():
    return ([(f"_inceptionA_{i}", _v4_a()) for i in range(1, 5)] + [("_reductionA", _v4_reduction_a())]
            + [(f"_inceptionB_{i}", _v4_b()) for i in range(1, 8)] + [("_reductionB", _v4_reduction_b())]
            + [(f"_inceptionC_{i}", _v4_c()) for i in range(1, 4)])


class InceptionNet(Classifier):
    """A stem block, a chain of blocks, global average pool, dropout ("downscale_in_infer") and a Linear.

    blocks: [(name, stages)]; with `block_list` set they go into an nn.LayerList of that name
    (v3's 'inception_block_list.N' keys) and their own names are unused.
    """

    def __init__(self, stem, blocks, class_num=1000, dropout=0.2, conv_names=("conv", "bn"),
                 stem_name="inception_stem", block_list=None, classifier="fc"):
        super().__init__()
        self.class_num = class_num
        self.classifier_names = (classifier,)
        stem_block = InceptionBlock(3, stem, conv_names)
        setattr(self, stem_name, stem_block)
        self._blocks = [stem_block]
        container = None
        if block_list:
            container = nn.LayerList()
            setattr(self, block_list, container)
        channels = stem_block.out_channels
        for name, stages in blocks:
            block = InceptionBlock(channels, stages, conv_names)
            if container is not None:
                container.append(block)
            else:
                self.add_sublayer(name, block)
            self._blocks.append(block)
            channels = block.out_channels
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.dropout = nn.Dropout(dropout, mode="downscale_in_infer")
        setattr(self, classifier, nn.Linear(channels, class_num))

    def forward_features(self, x):
        for block in self._blocks:
            x = block(x)
        return x

    def forward_head(self, x):
        return getattr(self, self.classifier_names[0])(self.dropout(self.avg_pool(x).flatten(1)))


@register
def InceptionV3(class_num=1000, **kwargs):
    return InceptionNet(_v3_stem(), _v3_blocks(), class_num=class_num, block_list="inception_block_list",
                        **kwargs)


@register
def InceptionV4(class_num=1000, **kwargs):
    return InceptionNet(_v4_stem(), _v4_blocks(), class_num=class_num, conv_names=("_conv", "_batch_norm"),
                        stem_name="_inception_stem", classifier="out", **kwargs)
