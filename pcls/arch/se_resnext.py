"""Squeeze-and-excitation ResNets: SE_ResNet_vd, SE_ResNeXt(_vd) and SENet154_vd — data for the `ResNet`
family class with an SE block (reduction 16) on every residual branch."""

from pcls.arch.registry import register
from pcls.arch.resnet import MODEL_ZOO, ResNet, DEPTHS
from pcls.arch.resnext import resnext

SE_REDUCTION = 16
# The SE-ResNeXt_vd models widen the deep stem to 64/64/128.
WIDE_DEEP_STEM = dict(stem_channels=(64, 64, 128), avg_down=True)


def se_resnet_vd(depth: int, **kwargs) -> ResNet:
    block = "basic" if depth < 50 else "bottleneck"
    return ResNet(DEPTHS[depth], block, stem_channels=(32, 32, 64), avg_down=True, se_reduction=SE_REDUCTION,
                  layout=MODEL_ZOO, **kwargs)


@register
def SE_ResNet18_vd(class_num=1000, **kwargs):
    return se_resnet_vd(18, class_num=class_num, **kwargs)


@register
def SE_ResNet34_vd(class_num=1000, **kwargs):
    return se_resnet_vd(34, class_num=class_num, **kwargs)


@register
def SE_ResNet50_vd(class_num=1000, **kwargs):
    return se_resnet_vd(50, class_num=class_num, **kwargs)


@register
def SE_ResNeXt50_32x4d(class_num=1000, **kwargs):
    return resnext(50, 32, 4, se_reduction=SE_REDUCTION, class_num=class_num, **kwargs)


@register
def SE_ResNeXt101_32x4d(class_num=1000, **kwargs):
    return resnext(101, 32, 4, se_reduction=SE_REDUCTION, class_num=class_num, **kwargs)


@register
def SE_ResNeXt50_vd_32x4d(class_num=1000, **kwargs):
    return resnext(50, 32, 4, se_reduction=SE_REDUCTION, class_num=class_num, **WIDE_DEEP_STEM, **kwargs)


@register
def SENet154_vd(class_num=1000, **kwargs):
    return resnext(152, 64, 4, se_reduction=SE_REDUCTION, class_num=class_num, **WIDE_DEEP_STEM, **kwargs)
