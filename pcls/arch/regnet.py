"""RegNetX (Radosavovic et al. 2020): ResNeXt-style bottlenecks whose per-stage widths and depths come
from a quantised linear rule (w_a, w_0, w_m, depth) with a fixed group width."""

import numpy as np

from pcls.arch.registry import register
from pcls.arch.resnet import ResNet, Layout

LAYOUT = Layout(stem={1: ("conv",)}, block=lambda s, i, n: f"s{s + 1}_b{i + 1}", fc="out")
STEM_WIDTH = 32


def regnet_stages(w_a: float, w_0: int, w_m: float, depth: int, group_width: int, q: int = 8):
    """(widths, depths, groups) per stage: block widths w_0 + i*w_a snapped to w_0 * w_m^k and to a
    multiple of q, consecutive equal widths forming a stage, then each width rounded to a multiple of
    its group width."""
    continuous = np.arange(depth) * w_a + w_0
    exponents = np.round(np.log(continuous / w_0) / np.log(w_m))
    block_widths = (np.round(w_0 * np.power(w_m, exponents) / q) * q).astype(int).tolist()
    widths, depths = [], []
    for w in block_widths:
        if widths and widths[-1] == w:
            depths[-1] += 1
        else:
            widths.append(w)
            depths.append(1)
    group_widths = [min(group_width, w) for w in widths]
    widths = [int(round(w / g) * g) for w, g in zip(widths, group_widths)]
    groups = [w // g for w, g in zip(widths, group_widths)]
    return widths, depths, groups


def regnetx(w_a, w_0, w_m, depth, group_width, **kwargs) -> ResNet:
    widths, depths, groups = regnet_stages(w_a, w_0, w_m, depth, group_width)
    return ResNet(depths, "bottleneck", channels=widths, widths=widths, groups=groups, stem_channels=(STEM_WIDTH,),
                  stem_kernel=3, max_pool=False, first_stage_stride=2, layout=LAYOUT, **kwargs)


# name -> (w_a, w_0, w_m, depth, group width), the published RegNetX design points
_REGNETX = {
    "RegNetX_200MF": (36.44, 24, 2.49, 13, 8),
    "RegNetX_400MF": (24.48, 24, 2.54, 22, 16),
    "RegNetX_600MF": (36.97, 48, 2.24, 16, 24),
    "RegNetX_800MF": (35.73, 56, 2.28, 16, 16),
    "RegNetX_1600MF": (34.01, 80, 2.25, 18, 24),
    "RegNetX_3200MF": (26.31, 88, 2.25, 25, 48),
    "RegNetX_4GF": (38.65, 96, 2.43, 23, 40),
    "RegNetX_6400MF": (60.83, 184, 2.07, 17, 56),
    "RegNetX_8GF": (49.56, 80, 2.88, 23, 120),
    "RegNetX_12GF": (73.36, 168, 2.37, 19, 112),
    "RegNetX_16GF": (55.59, 216, 2.1, 22, 128),
    "RegNetX_32GF": (69.86, 320, 2.0, 23, 168),
}


@register
def RegNetX_200MF(class_num=1000, **kwargs):
    return regnetx(*_REGNETX["RegNetX_200MF"], class_num=class_num, **kwargs)


@register
def RegNetX_400MF(class_num=1000, **kwargs):
    return regnetx(*_REGNETX["RegNetX_400MF"], class_num=class_num, **kwargs)


@register
def RegNetX_600MF(class_num=1000, **kwargs):
    return regnetx(*_REGNETX["RegNetX_600MF"], class_num=class_num, **kwargs)


@register
def RegNetX_800MF(class_num=1000, **kwargs):
    return regnetx(*_REGNETX["RegNetX_800MF"], class_num=class_num, **kwargs)


@register
def RegNetX_1600MF(class_num=1000, **kwargs):
    return regnetx(*_REGNETX["RegNetX_1600MF"], class_num=class_num, **kwargs)


@register
def RegNetX_3200MF(class_num=1000, **kwargs):
    return regnetx(*_REGNETX["RegNetX_3200MF"], class_num=class_num, **kwargs)


@register
def RegNetX_4GF(class_num=1000, **kwargs):
    return regnetx(*_REGNETX["RegNetX_4GF"], class_num=class_num, **kwargs)


@register
def RegNetX_6400MF(class_num=1000, **kwargs):
    return regnetx(*_REGNETX["RegNetX_6400MF"], class_num=class_num, **kwargs)


@register
def RegNetX_8GF(class_num=1000, **kwargs):
    return regnetx(*_REGNETX["RegNetX_8GF"], class_num=class_num, **kwargs)


@register
def RegNetX_12GF(class_num=1000, **kwargs):
    return regnetx(*_REGNETX["RegNetX_12GF"], class_num=class_num, **kwargs)


@register
def RegNetX_16GF(class_num=1000, **kwargs):
    return regnetx(*_REGNETX["RegNetX_16GF"], class_num=class_num, **kwargs)


@register
def RegNetX_32GF(class_num=1000, **kwargs):
    return regnetx(*_REGNETX["RegNetX_32GF"], class_num=class_num, **kwargs)
