"""HarDNet (Chao et al. 2019), harmonic densely connected networks, with PaddleClas's layer names: one flat
`base` list of stem convs, HarD blocks, 1x1 transitions and downsamplers, ending in the classifier head."""

import paddle
import paddle.nn as nn

from pcls.arch.base import Classifier
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.registry import register

# arch -> stem widths, growth multiplier, per block (growth rate, layers, transition width, downsample after)
_ARCHS = {
    39: dict(stem=(24, 48), grmul=1.6, blocks=((16, 4, 96, 1), (20, 16, 320, 1), (64, 8, 640, 1), (160, 4, 1024, 0))),
    68: dict(stem=(32, 64), grmul=1.7, blocks=((14, 8, 128, 1), (16, 16, 256, 0), (20, 16, 320, 1),
                                               (40, 16, 640, 1), (160, 4, 1024, 0))),
    85: dict(stem=(48, 96), grmul=1.7, blocks=((24, 8, 192, 1), (24, 16, 256, 0), (28, 16, 320, 1),
                                               (36, 16, 480, 0), (48, 16, 720, 1), (256, 4, 1280, 0))),
}


def _conv(cin, cout, kernel=3, stride=1):
    return ConvBNAct(cin, cout, kernel, stride, act="relu6", names=("conv", "norm"))


def _dwconv(channels, stride=1):
    return ConvBNAct(channels, channels, 3, stride, groups=channels, act=None, names=("dwconv", "norm"))


class CombConv(nn.Layer):
    """1x1 conv then a depthwise 3x3 (the depth-wise '_ds' variants' layer)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.layer1 = _conv(cin, cout, 1)
        self.layer2 = _dwconv(cout)

    def forward(self, x):
        return self.layer2(self.layer1(x))


def harmonic_links(layer: int, base_channels: int, growth: int, grmul: float):
    """(out channels, in channels, source layers) of layer `layer` (1-based; 0 is the block input): layer k
    reads every layer k - 2^i with 2^i dividing k and widens by grmul per extra link (rounded to even)."""
    if layer == 0:
        return base_channels, 0, []
    out_channels, links = growth, []
    for i in range(10):
        step = 2**i
        if layer % step == 0:
            links.append(layer - step)
            if i > 0:
                out_channels *= grmul
    out_channels = int(int(out_channels + 1) / 2) * 2
    in_channels = sum(harmonic_links(k, base_channels, growth, grmul)[0] for k in links)
    return out_channels, in_channels, links


class HarDBlock(nn.Layer):
    def __init__(self, in_channels, growth, grmul, n_layers, depthwise=False):
        super().__init__()
        self.links, layers, self.out_channels = [], [], 0
        for i in range(n_layers):
            cout, cin, links = harmonic_links(i + 1, in_channels, growth, grmul)
            self.links.append(links)
            layers.append(CombConv(cin, cout) if depthwise else _conv(cin, cout))
            if i % 2 == 0 or i == n_layers - 1:
                self.out_channels += cout
        self.layers = nn.LayerList(layers)

    def forward(self, x):
        outputs = [x]
        for layer, links in zip(self.layers, self.links):
            sources = [outputs[k] for k in links]
            outputs.append(layer(paddle.concat(sources, axis=1) if len(sources) > 1 else sources[0]))
        last = len(outputs) - 1
        # output: the odd layers and the last one (never the block input)
        return paddle.concat([t for i, t in enumerate(outputs) if i % 2 == 1 or i == last], axis=1)


class HarDNet(Classifier):
    def __init__(self, arch=68, depthwise=False, class_num=1000):
        super().__init__()
        self.class_num = class_num
        spec = _ARCHS[arch]
        first, second = spec["stem"]
        drop_rate = 0.05 if depthwise else (0.2 if arch == 85 else 0.1)
        base = [_conv(3, first, 3, 2), _conv(first, second, 1 if depthwise else 3)]
        base.append(_dwconv(second, 2) if depthwise else nn.MaxPool2D(3, 2, 1))
        channels = second
        for i, (growth, n_layers, width, downsample) in enumerate(spec["blocks"]):
            block = HarDBlock(channels, growth, spec["grmul"], n_layers, depthwise)
            base.append(block)
            if i == len(spec["blocks"]) - 1 and arch == 85:
                base.append(nn.Dropout(0.1))
            base.append(_conv(block.out_channels, width, 1))
            channels = width
            if downsample:
                base.append(_dwconv(channels, 2) if depthwise else nn.MaxPool2D(2, 2))
        base.append(nn.Sequential(nn.AdaptiveAvgPool2D(1), nn.Flatten(), nn.Dropout(drop_rate),
                                  nn.Linear(channels, class_num)))
        self.base = nn.LayerList(base)
        self.classifier_names = (f"base.{len(base) - 1}.3",)  # the Linear closing the last `base` entry

    def forward_features(self, x):
        for i in range(len(self.base) - 1):
            x = self.base[i](x)
        return x

    def forward_head(self, x):
        return self.base[-1](x)


@register
def HarDNet39_ds(class_num=1000, **kwargs):
    return HarDNet(39, depthwise=True, class_num=class_num, **kwargs)


@register
def HarDNet68(class_num=1000, **kwargs):
    return HarDNet(68, class_num=class_num, **kwargs)


@register
def HarDNet68_ds(class_num=1000, **kwargs):
    return HarDNet(68, depthwise=True, class_num=class_num, **kwargs)


@register
def HarDNet85(class_num=1000, **kwargs):
    return HarDNet(85, class_num=class_num, **kwargs)
