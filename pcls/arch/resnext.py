"""ResNeXt (grouped bottlenecks), ResNeXt_vd and the weakly-supervised (Instagram) ResNeXt101 WSL models:
data for the `ResNet` family class."""

from pcls.arch.layers.residual import BlockNames
from pcls.arch.registry import register
from pcls.arch.resnet import MODEL_ZOO, ResNet, DEPTHS, Layout

# The WSL checkpoints' layout: _conv_stem, _conv<stage>_<index>._conv0.., _short._conv, _conv/_bn, _out.
WSL = Layout(
    stem={1: ("_conv_stem",)},
    block=lambda s, i, n: f"_conv{s + 1}_{i}",
    block_names=BlockNames(convs=("_conv0", "_conv1", "_conv2"), short="_short._conv", conv_bn=("_conv", "_bn")),
    fc="_out",
)


def resnext(depth: int, cardinality: int, base_width: int, vd: bool = False, layout=MODEL_ZOO, **kwargs) -> ResNet:
    """ResNeXt-<depth> <cardinality>x<base_width>d: stage s has cardinality*base_width*2^s inner
    channels in `cardinality` groups and 256*2^s outputs."""
    if vd:
        kwargs = {"stem_channels": (32, 32, 64), "avg_down": True, **kwargs}
    widths = [cardinality * base_width * 2**s for s in range(4)]
    return ResNet(DEPTHS[depth], "bottleneck", widths=widths, groups=cardinality, layout=layout, **kwargs)


@register
def ResNeXt50_32x4d(class_num=1000, **kwargs):
    return resnext(50, 32, 4, class_num=class_num, **kwargs)


@register
def ResNeXt50_64x4d(class_num=1000, **kwargs):
    return resnext(50, 64, 4, class_num=class_num, **kwargs)


@register
def ResNeXt101_32x4d(class_num=1000, **kwargs):
    return resnext(101, 32, 4, class_num=class_num, **kwargs)


@register
def ResNeXt101_64x4d(class_num=1000, **kwargs):
    return resnext(101, 64, 4, class_num=class_num, **kwargs)


@register
def ResNeXt152_32x4d(class_num=1000, **kwargs):
    return resnext(152, 32, 4, class_num=class_num, **kwargs)


@register
def ResNeXt152_64x4d(class_num=1000, **kwargs):
    return resnext(152, 64, 4, class_num=class_num, **kwargs)


@register
def ResNeXt50_vd_32x4d(class_num=1000, **kwargs):
    return resnext(50, 32, 4, vd=True, class_num=class_num, **kwargs)


@register
def ResNeXt50_vd_64x4d(class_num=1000, **kwargs):
    return resnext(50, 64, 4, vd=True, class_num=class_num, **kwargs)


@register
def ResNeXt101_vd_32x4d(class_num=1000, **kwargs):
    return resnext(101, 32, 4, vd=True, class_num=class_num, **kwargs)


@register
def ResNeXt101_vd_64x4d(class_num=1000, **kwargs):
    return resnext(101, 64, 4, vd=True, class_num=class_num, **kwargs)


@register
def ResNeXt152_vd_32x4d(class_num=1000, **kwargs):
    return resnext(152, 32, 4, vd=True, class_num=class_num, **kwargs)


@register
def ResNeXt152_vd_64x4d(class_num=1000, **kwargs):
    return resnext(152, 64, 4, vd=True, class_num=class_num, **kwargs)


@register
def ResNeXt101_32x8d_wsl(class_num=1000, **kwargs):
    return resnext(101, 32, 8, layout=WSL, class_num=class_num, **kwargs)


@register
def ResNeXt101_32x16d_wsl(class_num=1000, **kwargs):
    return resnext(101, 32, 16, layout=WSL, class_num=class_num, **kwargs)


@register
def ResNeXt101_32x32d_wsl(class_num=1000, **kwargs):
    return resnext(101, 32, 32, layout=WSL, class_num=class_num, **kwargs)


@register
def ResNeXt101_32x48d_wsl(class_num=1000, **kwargs):
    return resnext(101, 32, 48, layout=WSL, class_num=class_num, **kwargs)
