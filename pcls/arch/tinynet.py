"""TinyNet (Han et al. 2020, "Model Rubik's Cube: Twisting Resolution, Depth and Width for TinyNets"),
weight-compatible with PaddleClas 2.x.

EfficientNet-B0 shrunk along the paper's "tiny formula": instead of scaling resolution, depth and width up
together, the resolution is chosen first and depth/width follow from it, which gives better small models than
EfficientNet's compound scaling in reverse. The network is EfficientNet's (`pcls.arch.efficientnet`) with the
stem fixed at 32 and the head at 1280 channels, and PaddleClas's "DYNAMIC" (symmetric) padding.
"""

from pcls.arch.efficientnet import EfficientNetNet, override_kwargs
from pcls.arch.registry import register

# variant -> width multiplier, depth multiplier, resolution, dropout before fc
_VARIANTS = {
    "A": (1.00, 1.200, 192, 0.2),
    "B": (0.75, 1.100, 188, 0.2),
    "C": (0.54, 0.850, 184, 0.2),
    "D": (0.54, 0.695, 152, 0.2),
    "E": (0.51, 0.600, 106, 0.2),
}
_HEAD_CHANNELS = 1280


def _tinynet(variant, class_num, padding_type="DYNAMIC", override_params=None, **kwargs):
    """override_params: PaddleClas's map of EfficientNet settings (BN momentum/epsilon, depth_trunc, ...)."""
    kwargs.pop("use_ssld", None)  # only chooses the zoo weights (registry)
    return EfficientNetNet(_VARIANTS[variant], padding_type=padding_type, class_num=class_num, fix_stem=True,
                           num_features=_HEAD_CHANNELS, **{**kwargs, **override_kwargs(override_params)})


@register
def TinyNet_A(class_num=1000, **kwargs):
    return _tinynet("A", class_num, **kwargs)


@register
def TinyNet_B(class_num=1000, **kwargs):
    return _tinynet("B", class_num, **kwargs)


@register
def TinyNet_C(class_num=1000, **kwargs):
    return _tinynet("C", class_num, **kwargs)


@register
def TinyNet_D(class_num=1000, **kwargs):
    return _tinynet("D", class_num, **kwargs)


@register
def TinyNet_E(class_num=1000, **kwargs):
    return _tinynet("E", class_num, **kwargs)
