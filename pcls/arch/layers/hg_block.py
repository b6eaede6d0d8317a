"""The HG block and stage of PP-HGNet and PP-HGNetV2: a chain of convs whose outputs are all concatenated with
the block input (one-shot aggregation, as in VoVNet), fused back by an aggregation step, plus an identity
shortcut on all but a stage's first block. The two families differ only in the chain's convs and in the
aggregation layers, which they pass in (with the names their published state-dict keys use)."""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import paddle
import paddle.nn as nn


class HGBlock(nn.Layer):
    """x -> layers[0] -> layers[1] -> ...; concat([x, every layer output]) -> aggregation (+ x).

    layers: the chain (stored as `layers.i`).
    aggregation: (name, layer) pairs applied in order to the concatenation (e.g. 1x1 conv then attention).
    identity: add the block input (the block's in and out widths must then agree).
    """

    def __init__(self, layers: Sequence[nn.Layer], aggregation: Sequence[Tuple[str, nn.Layer]],
                 identity: bool = False):
        super().__init__()
        self.layers = nn.LayerList(layers)
        self._aggregation = [name for name, _ in aggregation]
        for name, layer in aggregation:
            setattr(self, name, layer)
        self.identity = identity

    def forward(self, x):
        outputs = [x]
        y = x
        for layer in self.layers:
            y = layer(y)
            outputs.append(y)
        y = paddle.concat(outputs, axis=1)
        for name in self._aggregation:
            y = getattr(self, name)(y)
        return y + x if self.identity else y


class HGStage(nn.Layer):
    """Optional `downsample` layer, then `blocks` built by block(index) (index 0 is the stage's first block)."""

    def __init__(self, block: Callable[[int], nn.Layer], num_blocks: int, downsample: Optional[nn.Layer] = None):
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.Sequential(*[block(i) for i in range(num_blocks)])

    def forward(self, x):
        if self.downsample is not None:
            x = self.downsample(x)
        return self.blocks(x)
