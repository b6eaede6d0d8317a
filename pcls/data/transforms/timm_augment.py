"""timm-style augmentation policies that PaddleClas 2.6 configs name, on uint8 HWC images via Pillow.

- `TimmAutoAugment`: timm's policy strings. "rand-m9-mstd0.5-inc1" is RandAugment (Cubuk et al., 2019) with
  sections m (magnitude, of 10; default 10), n (ops per image, default 2), mstd (Gaussian magnitude noise;
  above 100: uniform in [0, m]), mmax (upper clip of the magnitude, default 10), inc (1: the ops whose
  severity grows with the magnitude), w (0: timm's op weights, drawn without replacement). Each chosen op
  applies with probability 0.5. "original", "originalr", "v0" and "v0r" (optionally "-mstdX") are the
  AutoAugment ImageNet policies (Cubuk et al., 2018; v0: the TPU EfficientNet policy). AugMix is refused.
- `RandAugmentV2` (PaddleClas's EfficientNetV2 variant) and `RandAugmentV3` (its MobileViTV2 variant):
  PaddleClas's RandAugment with other op ranges, listed on each class.

All randomness comes from the sample's numpy Generator, so a run is reproducible from its seed.
"""

from __future__ import annotations

import math
import re

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from pcls.data.transforms.basic import PIL_INTERPOLATIONS
from pcls.data.transforms.policies import GREY, posterize, random_sign, rotate_with_grey, to_pil
from pcls.data.transforms.registry import Operator, register_op
from pcls.errors import PclsError, short_repr

LEVEL_DENOM = 10.0  # a magnitude m means the fraction m / 10 of each op's range
IMAGENET_MEAN = (0.485, 0.456, 0.406)
_RESAMPLE = {name: getattr(Image.Resampling, name.upper()) for name in PIL_INTERPOLATIONS}
_RANDOM_RESAMPLE = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)  # timm's choice for "random"


def _resample(name):
    """A Pillow resampling filter from its name; None for "random" (drawn per op from bilinear/bicubic)."""
    if name is None or str(name).lower() == "random":
        return None
    try:
        return _RESAMPLE[str(name).lower()]
    except KeyError:
        raise PclsError(f"interpolation {short_repr(name)} is not one of {', '.join(_RESAMPLE)}, random") from None


def _fill(values) -> tuple:
    if isinstance(values, (int, float)):
        values = [values] * 3
    if not isinstance(values, (list, tuple)) or len(values) != 3:
        raise PclsError(f"fillcolor must be one value or three (R, G, B), got {short_repr(values)}")
    return tuple(int(v) for v in values)


# --- the image operations: f(img, value, fill, resample) --------------------------------------------------

def _affine(coeffs):
    def apply(img, value, fill, resample):
        return img.transform(img.size, Image.Transform.AFFINE, coeffs(img, value), resample, fillcolor=fill)
    return apply


_shear_x = _affine(lambda img, v: (1, v, 0, 0, 1, 0))
_shear_y = _affine(lambda img, v: (1, 0, 0, v, 1, 0))
_translate_x_rel = _affine(lambda img, v: (1, 0, v * img.size[0], 0, 1, 0))  # v: a fraction of the width
_translate_y_rel = _affine(lambda img, v: (1, 0, 0, 0, 1, v * img.size[1]))


def _rotate(img, degrees, fill, resample):
    return img.rotate(degrees, resample=resample, fillcolor=fill)


def _enhance(kind):
    return lambda img, factor, fill, resample: kind(img).enhance(factor)


def _posterize(img, bits, fill, resample):
    return posterize(img, bits)


def _solarize(img, threshold, fill, resample):
    return ImageOps.solarize(img, threshold)


def solarize_add(img, add, threshold=128):
    """Add `add` to the pixels below `threshold` (clipped at 255); the others keep their value."""
    lut = [min(255, i + int(add)) if i < threshold else i for i in range(256)]
    return img.point(lut * len(img.getbands()))


def _plain(fn):
    return lambda img, value, fill, resample: fn(img)


def _signed(scale):
    return lambda level, rng: scale * level * random_sign(rng)


def _increasing_enhance(level, rng):
    # 1.0 leaves the image alone; the factor moves away from it towards 0.1 or 1.9 as the magnitude grows
    return max(0.1, 1.0 + 0.9 * level * random_sign(rng))


def _int_level(scale, offset=0, cap=None):
    def level_to_arg(level, rng):
        value = int(level * scale) + offset
        return value if cap is None else min(cap, value)
    return level_to_arg


# name -> (image operation, level in [0, 1] -> its argument); None: the op takes no argument
TIMM_OPS = {
    "AutoContrast": (_plain(ImageOps.autocontrast), None),
    "Equalize": (_plain(ImageOps.equalize), None),
    "Invert": (_plain(ImageOps.invert), None),
    "Rotate": (_rotate, _signed(30.0)),
    "Posterize": (_posterize, _int_level(4)),  # keeps 0..4 bits: stronger at low magnitude
    "PosterizeIncreasing": (_posterize, lambda level, rng: 4 - int(level * 4)),
    "PosterizeOriginal": (_posterize, _int_level(4, offset=4)),  # keeps 4..8 bits (the AutoAugment paper)
    "Solarize": (_solarize, _int_level(256, cap=256)),
    "SolarizeIncreasing": (_solarize, lambda level, rng: 256 - min(256, int(level * 256))),
    "SolarizeAdd": (lambda img, add, fill, resample: solarize_add(img, add), _int_level(110, cap=128)),
    "Color": (_enhance(ImageEnhance.Color), lambda level, rng: 1.8 * level + 0.1),
    "ColorIncreasing": (_enhance(ImageEnhance.Color), _increasing_enhance),
    "Contrast": (_enhance(ImageEnhance.Contrast), lambda level, rng: 1.8 * level + 0.1),
    "ContrastIncreasing": (_enhance(ImageEnhance.Contrast), _increasing_enhance),
    "Brightness": (_enhance(ImageEnhance.Brightness), lambda level, rng: 1.8 * level + 0.1),
    "BrightnessIncreasing": (_enhance(ImageEnhance.Brightness), _increasing_enhance),
    "Sharpness": (_enhance(ImageEnhance.Sharpness), lambda level, rng: 1.8 * level + 0.1),
    "SharpnessIncreasing": (_enhance(ImageEnhance.Sharpness), _increasing_enhance),
    "ShearX": (_shear_x, _signed(0.3)),
    "ShearY": (_shear_y, _signed(0.3)),
    "TranslateXRel": (_translate_x_rel, _signed(0.45)),
    "TranslateYRel": (_translate_y_rel, _signed(0.45)),
}

RAND_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
            "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
# the same list with the ops whose severity grows with the magnitude ("inc1"), position for position
RAND_INCREASING_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
                       "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
                       "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
# "w0": timm's op weights, by position in the lists above (normalised when used)
RAND_WEIGHTS_0 = (0.025, 0.005, 0.0, 0.3, 0.0, 0.005, 0.005, 0.025, 0.005, 0.005, 0.025, 0.2, 0.2, 0.1, 0.1)

# AutoAugment sub-policies: two (op, probability, magnitude) steps each
_ORIGINAL = (
    (("PosterizeOriginal", 0.4, 8), ("Rotate", 0.6, 9)), (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)), (("PosterizeOriginal", 0.6, 7), ("PosterizeOriginal", 0.6, 6)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)), (("Equalize", 0.4, 4), ("Rotate", 0.8, 8)),
    (("Solarize", 0.6, 3), ("Equalize", 0.6, 7)), (("PosterizeOriginal", 0.8, 5), ("Equalize", 1.0, 2)),
    (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)), (("Equalize", 0.6, 8), ("PosterizeOriginal", 0.4, 6)),
    (("Rotate", 0.8, 8), ("Color", 0.4, 0)), (("Rotate", 0.4, 9), ("Equalize", 0.6, 2)),
    (("Equalize", 0.0, 7), ("Equalize", 0.8, 8)), (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)), (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
    (("Color", 0.8, 8), ("Solarize", 0.8, 7)), (("Sharpness", 0.4, 7), ("Invert", 0.6, 8)),
    (("ShearX", 0.6, 5), ("Equalize", 1.0, 9)), (("Color", 0.4, 0), ("Equalize", 0.6, 3)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)), (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Invert", 0.6, 4), ("Equalize", 1.0, 8)), (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
)
_V0 = (
    (("Equalize", 0.8, 1), ("ShearY", 0.8, 4)), (("Color", 0.4, 9), ("Equalize", 0.6, 3)),
    (("Color", 0.4, 1), ("Rotate", 0.6, 8)), (("Solarize", 0.8, 3), ("Equalize", 0.4, 7)),
    (("Solarize", 0.4, 2), ("Solarize", 0.6, 2)), (("Color", 0.2, 0), ("Equalize", 0.8, 8)),
    (("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)), (("ShearX", 0.2, 9), ("Rotate", 0.6, 8)),
    (("Color", 0.6, 1), ("Equalize", 1.0, 2)), (("Invert", 0.4, 9), ("Rotate", 0.6, 0)),
    (("Equalize", 1.0, 9), ("ShearY", 0.6, 3)), (("Color", 0.4, 7), ("Equalize", 0.6, 0)),
    (("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)), (("Solarize", 0.6, 8), ("Color", 0.6, 9)),
    (("Solarize", 0.2, 4), ("Rotate", 0.8, 9)), (("Rotate", 1.0, 7), ("TranslateYRel", 0.8, 9)),
    (("ShearX", 0.0, 0), ("Solarize", 0.8, 4)), (("ShearY", 0.8, 0), ("Color", 0.6, 4)),
    (("Color", 1.0, 0), ("Rotate", 0.6, 2)), (("Equalize", 0.8, 4), ("Equalize", 0.0, 8)),
    (("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)), (("ShearY", 0.4, 7), ("SolarizeAdd", 0.6, 7)),
    (("Posterize", 0.8, 2), ("Solarize", 0.6, 10)), (("Solarize", 0.6, 8), ("Equalize", 0.6, 1)),
    (("Color", 0.8, 6), ("Rotate", 0.4, 5)),
)


def _research_posterize(policy):
    """The "r" variants: the posterize of the Google research code (bits removed grow with the magnitude)."""
    renamed = {"Posterize": "PosterizeIncreasing", "PosterizeOriginal": "PosterizeIncreasing"}
    return tuple(tuple((renamed.get(name, name), p, m) for name, p, m in sub) for sub in policy)


AUTO_AUGMENT_POLICIES = {"original": _ORIGINAL, "originalr": _research_posterize(_ORIGINAL), "v0": _V0,
                         "v0r": _research_posterize(_V0)}


class _Magnitude:
    """How a policy turns an op's magnitude into its level: optional noise, then a clip to [0, mmax]."""

    def __init__(self, std=0.0, mmax=None):
        self.std, self.mmax = float(std), mmax

    def level(self, magnitude, rng) -> float:
        if self.std == math.inf:
            magnitude = rng.uniform(0, magnitude)
        elif self.std > 0:
            magnitude = rng.normal(magnitude, self.std)
        return max(0.0, min(magnitude, self.mmax or LEVEL_DENOM)) / LEVEL_DENOM


def _apply(name, prob, magnitude, img, rng, noise, fill, resample):
    """One timm op: skipped with probability 1 - prob, else applied at its (noisy) magnitude."""
    if prob < 1.0 and rng.random() > prob:
        return img
    op, level_to_arg = TIMM_OPS[name]
    value = level_to_arg(noise.level(magnitude, rng), rng) if level_to_arg is not None else None
    if resample is None:
        resample = _RANDOM_RESAMPLE[int(rng.integers(len(_RANDOM_RESAMPLE)))]
    return op(img, value, fill, resample)


def _sections(config_str: str, parts, allowed) -> dict:
    """{"m": "9", "mstd": "0.5", ...} from the dash-separated sections after the policy name."""
    found = {}
    for part in parts:
        match = re.fullmatch(r"([a-z]+)(\d.*)", part)
        if match is None or match.group(1) not in allowed:
            raise PclsError(f"config_str {short_repr(config_str)}: unknown section {short_repr(part)}; "
                            f"sections are {', '.join(k + '<number>' for k in allowed)}")
        found[match.group(1)] = match.group(2)
    return found


def _number(text: str, config_str: str, kind=float):
    try:
        return kind(text)
    except ValueError:
        raise PclsError(f"config_str {short_repr(config_str)}: {short_repr(text)} is not a number") from None


@register_op
class TimmAutoAugment(Operator):
    """timm's RandAugment or AutoAugment from `config_str` (see the module docstring); with probability `prob`.

    `mean` gives the fill colour of the geometric ops (255 x mean), `interpolation` their resampling ("random":
    bilinear or bicubic per op). `img_size` is accepted as PaddleClas's: it sets only the constant of timm's
    absolute translations, which none of these policies use. `config_str: null` applies nothing.
    """

    def __init__(self, config_str="rand-m9-mstd0.5-inc1", interpolation="bicubic", img_size=224, mean=IMAGENET_MEAN,
                 prob=1.0):
        sizes = img_size if isinstance(img_size, (list, tuple)) else [img_size]
        if not sizes or any(isinstance(s, bool) or not isinstance(s, (int, float)) or s <= 0 for s in sizes):
            raise PclsError(f"img_size must be a positive size or [w, h], got {short_repr(img_size)}")
        if not 0 <= prob <= 1:
            raise PclsError(f"prob is a probability in [0, 1], got {prob}")
        self.prob = float(prob)
        self.resample = _resample(interpolation)
        if not isinstance(mean, (list, tuple)) or len(mean) != 3:
            raise PclsError(f"mean must be three values (R, G, B) in [0, 1], got {short_repr(mean)}")
        self.fill = tuple(min(255, round(255 * float(v))) for v in mean)
        self.policy = None  # config_str null: no augmentation (FasterNet's config)
        self.num_layers, self.weights = 0, None
        if config_str is None:
            return
        if not isinstance(config_str, str) or not config_str:
            raise PclsError(f"config_str must be a string such as 'rand-m9-mstd0.5-inc1', got {short_repr(config_str)}")
        name, *parts = config_str.split("-")
        if name == "rand":
            self._rand(config_str, parts)
        elif name in AUTO_AUGMENT_POLICIES:
            found = _sections(config_str, parts, ("mstd",))
            self.noise = _Magnitude(_number(found.get("mstd", "0"), config_str))
            self.policy = AUTO_AUGMENT_POLICIES[name]
        elif name == "augmix":
            raise PclsError(f"config_str {short_repr(config_str)}: AugMix is not implemented in pcls; use a 'rand-...' "
                            "RandAugment or an AutoAugment policy (original, originalr, v0, v0r)")
        else:
            raise PclsError(f"config_str {short_repr(config_str)} must start with 'rand' (RandAugment) or an "
                            f"AutoAugment policy: {', '.join(AUTO_AUGMENT_POLICIES)}")

    def _rand(self, config_str, parts):
        found = _sections(config_str, parts, ("m", "n", "mstd", "mmax", "inc", "w"))
        self.magnitude = _number(found.get("m", "10"), config_str, int)
        self.num_layers = _number(found.get("n", "2"), config_str, int)
        std = _number(found.get("mstd", "0"), config_str)
        mmax = _number(found["mmax"], config_str, int) if "mmax" in found else None
        self.noise = _Magnitude(math.inf if std > 100 else std, mmax)  # timm: mstd above 100 = uniform
        increasing = bool(_number(found.get("inc", "0"), config_str, int))
        self.ops = RAND_INCREASING_OPS if increasing else RAND_OPS
        if "w" in found:
            if found["w"] != "0":
                raise PclsError(f"config_str {short_repr(config_str)}: only the weight set w0 exists")
            weights = np.asarray(RAND_WEIGHTS_0)
            self.weights = weights / weights.sum()
            if self.num_layers > int(np.count_nonzero(weights)):
                raise PclsError(f"config_str {short_repr(config_str)}: w0 draws distinct ops, at most "
                                f"{np.count_nonzero(weights)}")
        if self.num_layers < 0:
            raise PclsError(f"config_str {short_repr(config_str)}: n must be >= 0")
        self.policy = "rand"

    def __call__(self, img, rng):
        if self.policy is None or (self.prob < 1.0 and rng.random() >= self.prob):
            return img
        pil = to_pil(img)
        if self.policy == "rand":
            # timm: with replacement, unless weighted (then distinct ops)
            chosen = rng.choice(len(self.ops), size=self.num_layers, replace=self.weights is None, p=self.weights)
            for index in chosen:
                pil = _apply(self.ops[index], 0.5, self.magnitude, pil, rng, self.noise, self.fill, self.resample)
        else:
            for name, prob, magnitude in self.policy[int(rng.integers(len(self.policy)))]:
                pil = _apply(name, prob, magnitude, pil, rng, self.noise, self.fill, self.resample)
        return np.asarray(pil)


# --- PaddleClas's RandAugment variants -----------------------------------------------------------------

def cutout(img, pad, fill, rng):
    """Grey out a square of side up to 2*pad around a centre drawn over the whole image (clipped at the edges)."""
    arr = np.array(img)
    h, w = arr.shape[:2]
    cy, cx = int(rng.integers(0, h + 1)), int(rng.integers(0, w + 1))
    arr[max(0, cy - pad) : min(h, cy + pad), max(0, cx - pad) : min(w, cx + pad)] = fill
    return Image.fromarray(arr)


class _PaddleRandAugment(Operator):
    """`num_layers` ops drawn uniformly (with replacement) from `self.ops`, each always applied."""

    ops: dict = {}

    def __init__(self, num_layers, magnitude):
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 0:
            raise PclsError(f"num_layers must be an integer >= 0, got {short_repr(num_layers)}")
        self.num_layers = num_layers
        self.set_magnitude(magnitude)
        self.names = list(self.ops)

    def set_magnitude(self, magnitude):
        """Every op at `magnitude` (of 10); progressive training changes it between epochs."""
        if isinstance(magnitude, bool) or not isinstance(magnitude, (int, float)) or not 0 <= magnitude <= 10:
            raise PclsError(f"magnitude must be in [0, 10], got {short_repr(magnitude)}")
        self.level = float(magnitude) / LEVEL_DENOM

    def __call__(self, img, rng):
        pil = to_pil(img)
        for _ in range(self.num_layers):
            pil = self.ops[self.names[int(rng.integers(len(self.names)))]](self, pil, rng)
        return np.asarray(pil)


def _v2_affine(coeffs):
    return lambda self, img, rng: img.transform(img.size, Image.Transform.AFFINE, coeffs(self, img, rng),
                                                Image.Resampling.NEAREST, fillcolor=self.fill)


def _factor_op(kind, factor):
    return lambda self, img, rng: kind(img).enhance(factor(self, rng))


@register_op
class RandAugmentV2(_PaddleRandAugment):
    """PaddleClas's RandAugment for EfficientNetV2: RandAugment's 14 ops plus SolarizeAdd (up to 110) and Cutout
    (half side up to 40 px), affine ops with nearest resampling, translations in pixels (up to 100), signed
    rotations, and colour factors 0.1 + 1.8 x level (not 1 +/- 0.9 x level)."""

    ops = {
        "shearX": _v2_affine(lambda s, img, rng: (1, 0.3 * s.level * random_sign(rng), 0, 0, 1, 0)),
        "shearY": _v2_affine(lambda s, img, rng: (1, 0, 0, 0.3 * s.level * random_sign(rng), 1, 0)),
        "translateX": _v2_affine(lambda s, img, rng: (1, 0, 100.0 * s.level * random_sign(rng), 0, 1, 0)),
        "translateY": _v2_affine(lambda s, img, rng: (1, 0, 0, 0, 1, 100.0 * s.level * random_sign(rng))),
        "rotate": lambda s, img, rng: rotate_with_grey(img, 30 * s.level * random_sign(rng)),
        "color": _factor_op(ImageEnhance.Color, lambda s, rng: 1.8 * s.level + 0.1),
        "posterize": lambda s, img, rng: posterize(img, int(4.0 * s.level)),
        "solarize": lambda s, img, rng: ImageOps.solarize(img, int(256.0 * s.level)),
        "solarize_add": lambda s, img, rng: solarize_add(img, int(110.0 * s.level)),
        "contrast": _factor_op(ImageEnhance.Contrast, lambda s, rng: 1.8 * s.level + 0.1),
        "sharpness": _factor_op(ImageEnhance.Sharpness, lambda s, rng: 1.8 * s.level + 0.1),
        "brightness": _factor_op(ImageEnhance.Brightness, lambda s, rng: 1.8 * s.level + 0.1),
        "autocontrast": lambda s, img, rng: ImageOps.autocontrast(img),
        "equalize": lambda s, img, rng: ImageOps.equalize(img),
        "invert": lambda s, img, rng: ImageOps.invert(img),
        "cutout": lambda s, img, rng: cutout(img, int(40 * s.level), s.fill[0], rng),
    }

    def __init__(self, num_layers=2, magnitude=5, progress_magnitude=None, fillcolor=GREY):
        if progress_magnitude is not None:
            raise PclsError("progress_magnitude is read by PaddleClas's progressive training "
                            "(Global.train_mode), which pcls does not do; remove it")
        super().__init__(num_layers, magnitude)
        self.fill = _fill(fillcolor)


@register_op
class RandAugmentV3(_PaddleRandAugment):
    """PaddleClas's RandAugment for MobileViTV2: RandAugment's 14 ops with `interpolation` for the affine ops,
    fill `fillcolor` (black by default), signed rotations, posterize keeping 8 - int(4 x level) bits and
    solarize at 255 x (1 - level)."""

    ops = {
        "shearX": lambda s, img, rng: s.affine(img, (1, 0.3 * s.level * random_sign(rng), 0, 0, 1, 0)),
        "shearY": lambda s, img, rng: s.affine(img, (1, 0, 0, 0.3 * s.level * random_sign(rng), 1, 0)),
        "translateX": lambda s, img, rng: s.affine(
            img, (1, 0, 150.0 / 331.0 * s.level * img.size[0] * random_sign(rng), 0, 1, 0)),
        "translateY": lambda s, img, rng: s.affine(
            img, (1, 0, 0, 0, 1, 150.0 / 331.0 * s.level * img.size[1] * random_sign(rng))),
        "rotate": lambda s, img, rng: img.rotate(30 * s.level * random_sign(rng), s.resample, fillcolor=s.fill),
        "color": _factor_op(ImageEnhance.Color, lambda s, rng: 1 + 0.9 * s.level * random_sign(rng)),
        "posterize": lambda s, img, rng: posterize(img, 8 - int(4.0 * s.level)),
        "solarize": lambda s, img, rng: ImageOps.solarize(img, 255.0 * (1 - s.level)),
        "contrast": _factor_op(ImageEnhance.Contrast, lambda s, rng: 1 + 0.9 * s.level * random_sign(rng)),
        "sharpness": _factor_op(ImageEnhance.Sharpness, lambda s, rng: 1 + 0.9 * s.level * random_sign(rng)),
        "brightness": _factor_op(ImageEnhance.Brightness, lambda s, rng: 1 + 0.9 * s.level * random_sign(rng)),
        "autocontrast": lambda s, img, rng: ImageOps.autocontrast(img),
        "equalize": lambda s, img, rng: ImageOps.equalize(img),
        "invert": lambda s, img, rng: ImageOps.invert(img),
    }

    def __init__(self, num_layers=2, magnitude=3, fillcolor=(0, 0, 0), interpolation="bicubic"):
        super().__init__(num_layers, magnitude)
        self.fill = _fill(fillcolor)
        self.resample = _resample(interpolation)
        if self.resample is None:
            raise PclsError("interpolation must name one filter (e.g. bicubic), not random")

    def affine(self, img, coeffs):
        return img.transform(img.size, Image.Transform.AFFINE, coeffs, self.resample, fillcolor=self.fill)
