"""Classifier heads shared by several families, built on the model itself so their keys stay top-level."""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers.activations import make_act


class LastConvClassifier(Classifier):
    """A backbone whose head is pool -> 1x1 conv (class_expand, no bias) -> act (hardswish) -> dropout -> fc
    (MobileNetV3, PP-LCNet; keys last_conv.weight, fc.*).

    use_last_conv=False feeds the pooled features straight to fc. The dropout scales at inference
    ('downscale_in_infer'), as the reference does and its pretrained weights expect.
    """

    def _build_head(self, in_channels, class_num, class_expand=1280, dropout_prob=0.2, use_last_conv=True,
                    act="hardswish"):
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.use_last_conv = use_last_conv
        if use_last_conv:
            self.last_conv = nn.Conv2D(in_channels, class_expand, 1, bias_attr=False)
            self.last_act = make_act(act)  # hardswish (MobileNetV3, PP-LCNet); relu in PP-HGNet, PP-LCNetV2
            self.dropout = nn.Dropout(dropout_prob, mode="downscale_in_infer") if dropout_prob else None
        self.fc = nn.Linear(class_expand if use_last_conv else in_channels, class_num)

    def forward_head(self, x):
        x = self.avg_pool(x)
        if self.use_last_conv:
            x = self.last_act(self.last_conv(x))
            if self.dropout is not None:
                x = self.dropout(x)
        return self.fc(paddle.flatten(x, 1))
