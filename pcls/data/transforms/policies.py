"""Photometric and policy augmentations on PIL images: AutoAugment (ImageNet policy), RandAugment, ColorJitter."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from pcls.data.transforms.registry import Operator, register_op
from pcls.errors import PclsError, short_repr

GREY = (128, 128, 128)


def random_sign(rng):
    return -1.0 if rng.integers(0, 2) == 0 else 1.0


def _affine(img, coeffs):
    return img.transform(img.size, Image.Transform.AFFINE, coeffs, Image.Resampling.BICUBIC, fillcolor=GREY)


def rotate_with_grey(img, degrees):
    """Rotate counter-clockwise; the uncovered corners are grey 128 (a composite over an RGBA rotation)."""
    rotated = img.convert("RGBA").rotate(degrees)
    return Image.composite(rotated, Image.new("RGBA", rotated.size, GREY + (128,)), rotated).convert(img.mode)


def posterize(img, bits):
    """Keep the top `bits` bits of each channel; 0 bits is a black image (as Pillow did before it refused 0)."""
    bits = int(bits)
    if bits >= 8:
        return img
    if bits <= 0:
        return Image.new(img.mode, img.size)
    return ImageOps.posterize(img, bits)


# name -> f(img, magnitude, rng). Shear, translate and the enhance ops flip the magnitude's sign at random.
_IMAGE_OPS = {
    "shearX": lambda img, m, rng: _affine(img, (1, m * random_sign(rng), 0, 0, 1, 0)),
    "shearY": lambda img, m, rng: _affine(img, (1, 0, 0, m * random_sign(rng), 1, 0)),
    "translateX": lambda img, m, rng: _affine(img, (1, 0, m * img.size[0] * random_sign(rng), 0, 1, 0)),
    "translateY": lambda img, m, rng: _affine(img, (1, 0, 0, 0, 1, m * img.size[1] * random_sign(rng))),
    "rotate": lambda img, m, rng: rotate_with_grey(img, m),  # unsigned (counter-clockwise), as published
    "color": lambda img, m, rng: ImageEnhance.Color(img).enhance(1 + m * random_sign(rng)),
    "posterize": lambda img, m, rng: posterize(img, m),
    "solarize": lambda img, m, rng: ImageOps.solarize(img, m),
    "contrast": lambda img, m, rng: ImageEnhance.Contrast(img).enhance(1 + m * random_sign(rng)),
    "sharpness": lambda img, m, rng: ImageEnhance.Sharpness(img).enhance(1 + m * random_sign(rng)),
    "brightness": lambda img, m, rng: ImageEnhance.Brightness(img).enhance(1 + m * random_sign(rng)),
    "autocontrast": lambda img, m, rng: ImageOps.autocontrast(img),
    "equalize": lambda img, m, rng: ImageOps.equalize(img),
    "invert": lambda img, m, rng: ImageOps.invert(img),
}

# AutoAugment's magnitude bins 0..9 for each op (Cubuk et al., 2019).
_AA_RANGES = {
    "shearX": np.linspace(0, 0.3, 10),
    "shearY": np.linspace(0, 0.3, 10),
    "translateX": np.linspace(0, 150 / 331, 10),
    "translateY": np.linspace(0, 150 / 331, 10),
    "rotate": np.linspace(0, 30, 10),
    "color": np.linspace(0.0, 0.9, 10),
    "posterize": np.round(np.linspace(8, 4, 10), 0).astype(int),
    "solarize": np.linspace(256, 0, 10),
    "contrast": np.linspace(0.0, 0.9, 10),
    "sharpness": np.linspace(0.0, 0.9, 10),
    "brightness": np.linspace(0.0, 0.9, 10),
    "autocontrast": [0] * 10,
    "equalize": [0] * 10,
    "invert": [0] * 10,
}

# The ImageNet policy: 25 sub-policies of two (probability, op, magnitude bin) steps.
IMAGENET_POLICY = (
    ((0.4, "posterize", 8), (0.6, "rotate", 9)),
    ((0.6, "solarize", 5), (0.6, "autocontrast", 5)),
    ((0.8, "equalize", 8), (0.6, "equalize", 3)),
    ((0.6, "posterize", 7), (0.6, "posterize", 6)),
    ((0.4, "equalize", 7), (0.2, "solarize", 4)),
    ((0.4, "equalize", 4), (0.8, "rotate", 8)),
    ((0.6, "solarize", 3), (0.6, "equalize", 7)),
    ((0.8, "posterize", 5), (1.0, "equalize", 2)),
    ((0.2, "rotate", 3), (0.6, "solarize", 8)),
    ((0.6, "equalize", 8), (0.4, "posterize", 6)),
    ((0.8, "rotate", 8), (0.4, "color", 0)),
    ((0.4, "rotate", 9), (0.6, "equalize", 2)),
    ((0.0, "equalize", 7), (0.8, "equalize", 8)),
    ((0.6, "invert", 4), (1.0, "equalize", 8)),
    ((0.6, "color", 4), (1.0, "contrast", 8)),
    ((0.8, "rotate", 8), (1.0, "color", 2)),
    ((0.8, "color", 8), (0.8, "solarize", 7)),
    ((0.4, "sharpness", 7), (0.6, "invert", 8)),
    ((0.6, "shearX", 5), (1.0, "equalize", 9)),
    ((0.4, "color", 0), (0.6, "equalize", 3)),
    ((0.4, "equalize", 7), (0.2, "solarize", 4)),
    ((0.6, "solarize", 5), (0.6, "autocontrast", 5)),
    ((0.6, "invert", 4), (1.0, "equalize", 8)),
    ((0.6, "color", 4), (1.0, "contrast", 8)),
    ((0.8, "equalize", 8), (0.6, "equalize", 3)),
)


def to_pil(img):
    if img.ndim != 3 or img.dtype != np.uint8:
        raise PclsError("policy and colour augmentations (AutoAugment, RandAugment, TimmAutoAugment, ColorJitter) work "
                        "on uint8 HWC images: put them before NormalizeImage")
    return Image.fromarray(np.ascontiguousarray(img))


@register_op
class AutoAugment(Operator):
    """AutoAugment with the ImageNet policy: one random sub-policy per image."""

    def __init__(self, policy="imagenet"):
        if str(policy).lower() != "imagenet":
            raise PclsError(f"AutoAugment supports the 'imagenet' policy only, got {short_repr(policy)}")

    def __call__(self, img, rng):
        pil = to_pil(img)
        for prob, name, level in IMAGENET_POLICY[int(rng.integers(len(IMAGENET_POLICY)))]:
            if rng.random() < prob:
                pil = _IMAGE_OPS[name](pil, _AA_RANGES[name][level], rng)
        return np.asarray(pil)


@register_op
class RandAugment(Operator):
    """RandAugment: num_layers ops drawn uniformly, all at one magnitude (out of max 10)."""

    def __init__(self, num_layers=2, magnitude=5, fillcolor=GREY):
        self.num_layers = int(num_layers)
        self.set_magnitude(magnitude)

    def set_magnitude(self, magnitude):
        """Every op at `magnitude` (of 10); progressive training changes it between epochs."""
        if not 0 <= magnitude <= 10:
            raise PclsError(f"RandAugment magnitude must be in [0, 10], got {magnitude}")
        level = float(magnitude) / 10
        self.levels = {
            "shearX": 0.3 * level,
            "shearY": 0.3 * level,
            "translateX": 150.0 / 331 * level,
            "translateY": 150.0 / 331 * level,
            "rotate": 30 * level,
            "color": 0.9 * level,
            "posterize": int(4.0 * level),
            "solarize": 256.0 * level,
            "contrast": 0.9 * level,
            "sharpness": 0.9 * level,
            "brightness": 0.9 * level,
            "autocontrast": 0,
            "equalize": 0,
            "invert": 0,
        }
        self.names = list(self.levels)

    def __call__(self, img, rng):
        pil = to_pil(img)
        for _ in range(self.num_layers):
            name = self.names[int(rng.integers(len(self.names)))]
            pil = _IMAGE_OPS[name](pil, self.levels[name], rng)
        return np.asarray(pil)


def _jitter_range(value, name, centre=1.0, bound=None):
    if isinstance(value, (int, float)):
        if value < 0:
            raise PclsError(f"ColorJitter {name} must be >= 0, got {value}")
        lo, hi = centre - value, centre + value
        if centre == 1.0:
            lo = max(0.0, lo)
    else:
        lo, hi = (float(v) for v in value)
    if bound is not None and (lo < -bound or hi > bound):
        raise PclsError(f"ColorJitter {name} must lie within [-{bound}, {bound}], got {value}")
    return None if lo == hi == centre else (lo, hi)


@register_op
class ColorJitter(Operator):
    """Random brightness/contrast/saturation factors ~ U(1-x, 1+x) and hue shift ~ U(-h, h), in random order."""

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.ranges = {
            "brightness": _jitter_range(brightness, "brightness"),
            "contrast": _jitter_range(contrast, "contrast"),
            "saturation": _jitter_range(saturation, "saturation"),
            "hue": _jitter_range(hue, "hue", centre=0.0, bound=0.5),
        }

    def __call__(self, img, rng):
        pil = to_pil(img)
        for k in rng.permutation(4):
            name = ("brightness", "contrast", "saturation", "hue")[k]
            bounds = self.ranges[name]
            if bounds is None:
                continue
            factor = rng.uniform(*bounds)
            if name == "brightness":
                pil = ImageEnhance.Brightness(pil).enhance(factor)
            elif name == "contrast":
                pil = ImageEnhance.Contrast(pil).enhance(factor)
            elif name == "saturation":
                pil = ImageEnhance.Color(pil).enhance(factor)
            else:
                h, s, v = pil.convert("HSV").split()
                shifted = (np.asarray(h, dtype=np.int16) + int(round(factor * 255))) % 256
                pil = Image.merge("HSV", (Image.fromarray(shifted.astype(np.uint8)), s, v)).convert("RGB")
        return np.asarray(pil)
