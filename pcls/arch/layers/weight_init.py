"""The initialisation transformer families share: truncated-normal (std 0.02) Linear weights and
learned tokens/tables, zero biases, LayerNorm at identity."""

import paddle.nn as nn

trunc_normal_ = nn.initializer.TruncatedNormal(std=0.02)
zeros_ = nn.initializer.Constant(0.0)
ones_ = nn.initializer.Constant(1.0)


def init_transformer_weights(model: nn.Layer) -> None:
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, nn.Linear):
            trunc_normal_(layer.weight)
            if layer.bias is not None:
                zeros_(layer.bias)
        elif isinstance(layer, nn.LayerNorm):
            ones_(layer.weight)
            zeros_(layer.bias)
