"""RedNet (Li et al. 2021): a ResNet whose bottleneck 3x3 convs (and one stem conv) are involutions — kernels
generated per pixel from the input and shared across the channels of each 16-channel group."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.base import Classifier
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.conv_act import ConvAct
from pcls.arch.registry import register

_DEPTHS = {26: (1, 2, 4, 1), 38: (2, 3, 5, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class Involution(nn.Layer):
    """out[c, p] = sum_k W[g(c), k, p] * x[c, p + k]: the kernel W (K*K per group and output pixel) comes from a
    1x1 reduce (ratio 4, BN, ReLU) -> 1x1 expand applied to the input, average-pooled to the output grid."""

    def __init__(self, channels, kernel_size, stride, group_channels=16, reduction=4):
        super().__init__()
        self.channels, self.kernel_size, self.stride = channels, kernel_size, stride
        self.group_channels = group_channels
        self.groups = channels // group_channels
        self.conv1 = ConvBNAct(channels, channels // reduction, 1, act="relu")
        self.conv2 = ConvAct(channels // reduction, kernel_size**2 * self.groups, 1, act=None, name="conv")
        self.avgpool = nn.AvgPool2D(stride, stride) if stride > 1 else None

    def forward(self, x):
        pooled = self.avgpool(x) if self.avgpool is not None else x
        weight = self.conv2(self.conv1(pooled))
        n, _, h, w = weight.shape
        k2 = self.kernel_size**2
        weight = weight.reshape([n, self.groups, 1, k2, h, w])
        patches = F.unfold(x, self.kernel_size, strides=self.stride, paddings=(self.kernel_size - 1) // 2)
        patches = patches.reshape([n, self.groups, self.group_channels, k2, h, w])
        return (weight * patches).sum(axis=3).reshape([n, self.channels, h, w])


class InvolutionBottleneck(nn.Layer):
    expansion = 4

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2D(cin, planes, 1, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(planes)
        self.conv2 = Involution(planes, 7, stride)
        self.bn2 = nn.BatchNorm2D(planes)
        self.conv3 = nn.Conv2D(planes, out, 1, bias_attr=False)
        self.bn3 = nn.BatchNorm2D(out)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != out:
            self.downsample = nn.Sequential(nn.Conv2D(cin, out, 1, stride, bias_attr=False), nn.BatchNorm2D(out))

    def forward(self, x):
        shortcut = self.downsample(x) if self.downsample is not None else x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + shortcut)


class RedNet(Classifier):
    classifier_names = ("fc",)

    def __init__(self, depth=50, class_num=1000):
        super().__init__()
        self.class_num = class_num
        stem = 64
        self.stem = nn.Sequential(
            ConvBNAct(3, stem // 2, 3, 2, act="relu"),
            Involution(stem // 2, 3, 1),
            nn.BatchNorm2D(stem // 2),
            nn.ReLU(),
            ConvBNAct(stem // 2, stem, 3, 1, act="relu"),
        )
        self.maxpool = nn.MaxPool2D(3, 2, 1)
        cin = stem
        for i, blocks in enumerate(_DEPTHS[depth]):
            planes = 64 * 2**i
            layers = []
            for j in range(blocks):
                layers.append(InvolutionBottleneck(cin, planes, 2 if i > 0 and j == 0 else 1))
                cin = planes * InvolutionBottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Linear(cin, class_num)

    def forward_features(self, x):
        x = self.maxpool(self.stem(x))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x):
        return self.fc(paddle.flatten(self.avgpool(x), 1))


@register
def RedNet26(class_num=1000, **kwargs):
    return RedNet(26, class_num=class_num, **kwargs)


@register
def RedNet38(class_num=1000, **kwargs):
    return RedNet(38, class_num=class_num, **kwargs)


@register
def RedNet50(class_num=1000, **kwargs):
    return RedNet(50, class_num=class_num, **kwargs)


@register
def RedNet101(class_num=1000, **kwargs):
    return RedNet(101, class_num=class_num, **kwargs)


@register
def RedNet152(class_num=1000, **kwargs):
    return RedNet(152, class_num=class_num, **kwargs)
