"""A tiny BatchNorm-free backbone for engine tests (registered as TinyNet). Subprocess tests load this
file through PCLS_PLUGINS; in-process tests import it."""

import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.base import Classifier
from pcls.arch.registry import register


class _TinyNet(Classifier):
    classifier_names = ("fc",)

    def __init__(self, class_num=1000, dropout=0.0):
        super().__init__()
        self.stem = nn.Conv2D(3, 8, 3, stride=2, padding=1)
        self.stage1 = nn.Conv2D(8, 16, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(16, class_num)

    def forward_features(self, x):
        return F.relu(self.stage1(F.relu(self.stem(x))))

    def forward_head(self, x):
        return self.fc(self.drop(self.pool(x).flatten(1)))


@register
def TinyNet(class_num=1000, **kwargs):
    return _TinyNet(class_num, **kwargs)
