"""The transformer feed-forward block: fc1 -> act -> dropout -> fc2 -> dropout."""

import paddle.nn as nn

from pcls.arch.layers.activations import make_act


class Mlp(nn.Layer):
    def __init__(self, in_features, hidden_features=None, out_features=None, act="gelu", drop=0.0):
        super().__init__()
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = make_act(act)
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))
