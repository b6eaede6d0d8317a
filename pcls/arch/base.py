"""The surface every pcls backbone has, so training, distillation, export and feature extraction never
special-case a family: forward_features / forward_head / get_classifier / reset_classifier /
return_patterns."""

from __future__ import annotations

import re
from typing import Optional, Sequence

import paddle.nn as nn


class Classifier(nn.Layer):
    """Base of every backbone.

    Subclasses implement `forward_features(x)` (everything up to the classifier input) and
    `forward_head(x)` (pooling/flatten if any, then the classifier), and set `classifier_names`: the
    attribute names of the final classifier sub-layer(s), whose weights are dropped when `class_num`
    changes.
    """

    classifier_names: Sequence[str] = ("fc",)

    def __init__(self):
        super().__init__()
        self._return_patterns: list = []
        self._hooks: list = []
        self._captured: dict = {}

    def forward_features(self, x):
        raise NotImplementedError

    def forward_head(self, x):
        raise NotImplementedError

    def forward(self, x):
        logits = self.forward_head(self.forward_features(x))
        if not self._return_patterns:
            return logits
        captured, self._captured = self._captured, {}
        return {"logits": logits, **captured}

    # -- classifier -------------------------------------------------------------------------------
    def classifier_prefixes(self) -> list:
        """State-dict key prefixes ('fc.', 'head.') that belong to the classifier."""
        return [f"{name}." for name in self.classifier_names]

    def _owner_of(self, dotted: str):
        """(parent layer, attribute) for a possibly nested classifier name such as '_exit_flow._out'."""
        *path, attr = dotted.split(".")
        owner = self
        for part in path:
            owner = getattr(owner, part)
        return owner, attr

    def get_classifier(self):
        layers = [getattr(*self._owner_of(name)) for name in self.classifier_names]
        return layers[0] if len(layers) == 1 else layers

    def reset_classifier(self, class_num: int) -> None:
        """Replace every classifier Linear/Conv with a freshly initialised one with `class_num` outputs."""
        for name in self.classifier_names:
            owner, attr = self._owner_of(name)
            setattr(owner, attr, _resized(getattr(owner, attr), class_num))
        self.class_num = class_num

    # -- feature maps -----------------------------------------------------------------------------
    def set_return_patterns(self, patterns: Optional[Sequence[str]]) -> None:
        """Also return the outputs of the named sub-layers (e.g. ['blocks.3', 'stages.2']).

        With patterns set, forward returns {'logits': ..., pattern: tensor, ...}.
        """
        for hook in self._hooks:
            hook.remove()
        self._hooks, self._captured = [], {}
        # PaddleClas configs write list items as blocks[2]; sub-layer names use blocks.2
        self._return_patterns = [re.sub(r"\[(\d+)\]", r".\1", p) for p in patterns or []]
        named = dict(self.named_sublayers())
        for pattern in self._return_patterns:
            if pattern not in named:
                from pcls.errors import PclsError, did_you_mean

                raise PclsError(f"return pattern '{pattern}' is not a sub-layer{did_you_mean(pattern, named)}")
            self._hooks.append(named[pattern].register_forward_post_hook(self._capture(pattern)))

    def _capture(self, pattern):
        def hook(layer, inputs, output):
            self._captured[pattern] = output

        return hook


def _resized(layer, class_num: int):
    """`layer` with its final Linear/Conv2D replaced by a fresh one with `class_num` outputs. Composite heads
    (Sequential, BN + Linear, ...) keep their other parts."""
    if isinstance(layer, nn.Linear):
        return nn.Linear(layer.weight.shape[0], class_num)
    if isinstance(layer, nn.Conv2D):
        return nn.Conv2D(layer._in_channels, class_num, layer._kernel_size, layer._stride, layer._padding)
    for name, child in reversed(list(layer.named_children())):
        if isinstance(child, (nn.Linear, nn.Conv2D)) or list(child.named_children()):
            layer._sub_layers[name] = _resized(child, class_num)  # Sequential and plain layers alike
            return layer
    raise TypeError(f"cannot resize classifier layer of type {type(layer).__name__}")
