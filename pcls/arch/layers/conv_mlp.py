"""The transformer feed-forward block on a feature map: 1x1 conv -> act -> dropout -> 1x1 conv -> dropout
(NextViT's Mlp, UniFormer's convolutional CMlp). The two convs' attribute names are an argument so each
family keeps its published state-dict keys."""

import paddle.nn as nn

from pcls.arch.layers.activations import make_act


class ConvMlp(nn.Layer):
    def __init__(self, in_channels, hidden_channels, out_channels=None, act="gelu", drop=0.0, names=("fc1", "fc2")):
        super().__init__()
        self._names = names
        setattr(self, names[0], nn.Conv2D(in_channels, hidden_channels, 1))
        self.act = make_act(act)
        setattr(self, names[1], nn.Conv2D(hidden_channels, out_channels or in_channels, 1))
        self.drop = nn.Dropout(drop)

    @property
    def first(self):
        """The expanding conv (a pre-norm folds into it)."""
        return getattr(self, self._names[0])

    def forward(self, x):
        x = self.drop(self.act(self.first(x)))
        return self.drop(getattr(self, self._names[1])(x))
