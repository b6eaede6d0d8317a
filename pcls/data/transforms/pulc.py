"""Operators of PaddleClas's PULC and attribute configs: Padv2 (pad to a fixed size) and RandomCropImage
(crop back to one), and the two that
also make the label of a CustomLabelDataset sample (`label_key`): RandomRot90 (the image's rotation, for
image orientation) and BlurImage (blurred or not, for clarity assessment). In any other pipeline the
label-making ops only transform the image."""

from __future__ import annotations

import cv2
import numpy as np

from pcls.data.transforms.registry import Operator, pair, register_op
from pcls.errors import PclsError, short_repr


class LabellingOperator(Operator):
    """An operator that also decides the sample's label: `labelled(img, rng) -> (img, label)` with a label in
    0..num_labels-1; `label_key` is the name configs give that label (DataLoader.*.dataset.label_key)."""

    label_key = ""
    num_labels = 0

    def labelled(self, img, rng):  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, img, rng):
        return self.labelled(img, rng)[0]


def _width_height(size, op: str) -> tuple:
    """(width, height) of an op's `size`: an int (a square) or [w, h] of positive ints."""
    width, height = pair(size, f"{op} size")
    if min(width, height) < 1:
        raise PclsError(f"{op} size must be an int or [w, h] of positive ints, got {short_repr(size)}")
    return width, height


@register_op
class Padv2(Operator):
    """Pad to `size` [w, h] (each at least the image's) with `fill_value`; pad_mode 0: image at the top-left,
    1: centred, 2: at the bottom-right, -1: at `offsets` [x, y]."""

    def __init__(self, size, size_divisor=32, pad_mode=0, offsets=None, fill_value=(127.5, 127.5, 127.5)):
        self.width, self.height = _width_height(size, "Padv2")
        if pad_mode not in (-1, 0, 1, 2):
            raise PclsError(f"Padv2 pad_mode must be -1, 0, 1 or 2, got {pad_mode!r}")
        if pad_mode == -1 and (not offsets or len(offsets) != 2):
            raise PclsError("Padv2 pad_mode -1 needs offsets: [x, y]")
        self.pad_mode, self.offsets = pad_mode, offsets
        self.fill = fill_value if isinstance(fill_value, (list, tuple)) else [fill_value] * 3

    def __call__(self, img, rng=None):
        h, w = img.shape[:2]
        if h > self.height or w > self.width:
            raise PclsError(f"Padv2: the image ({w}x{h}) is larger than size [{self.width}, {self.height}]; "
                            f"resize it first")
        x, y = {-1: lambda: tuple(int(v) for v in self.offsets), 0: lambda: (0, 0),
                1: lambda: ((self.width - w) // 2, (self.height - h) // 2),
                2: lambda: (self.width - w, self.height - h)}[self.pad_mode]()
        canvas = np.empty((self.height, self.width) + img.shape[2:], dtype=img.dtype)
        canvas[...] = np.asarray(self.fill[: img.shape[2]] if img.ndim == 3 else self.fill[0], dtype=img.dtype)
        canvas[y:y + h, x:x + w] = img
        return canvas


@register_op
class RandomCropImage(Operator):
    """Crop a random `size` [w, h] window (no resize), e.g. back to the input size after Padv2."""

    def __init__(self, size):
        self.width, self.height = _width_height(size, "RandomCropImage")

    def __call__(self, img, rng):
        h, w = img.shape[:2]
        if h < self.height or w < self.width:
            raise PclsError(f"RandomCropImage: the image ({w}x{h}) is smaller than size [{self.width}, "
                            f"{self.height}]")
        top, left = int(rng.integers(h - self.height + 1)), int(rng.integers(w - self.width + 1))
        return img[top:top + self.height, left:left + self.width]


@register_op
class RandomRot90(LabellingOperator):
    """Rotate by k x 90 degrees counter-clockwise, k uniform in 0..3; the label is k (0°, 90°, 180°, 270°)."""

    label_key, num_labels = "random_rot90_orientation", 4

    def labelled(self, img, rng):
        k = int(rng.integers(4))
        return np.ascontiguousarray(np.rot90(img, k)), k


@register_op
class BlurImage(LabellingOperator):
    """With probability `ratio`, blur the image (motion or Gaussian blur, equally likely; kernel sizes odd in
    5..max): label 1, else label 0 (PULC clarity assessment's online labelling)."""

    label_key, num_labels = "blur_image", 2

    def __init__(self, ratio=0.5, motion_max_ksize=12, motion_max_angle=45, gaussian_max_ksize=12):
        if not 0 <= float(ratio) <= 1:
            raise PclsError(f"BlurImage ratio must be in [0, 1], got {ratio}")
        for name, value in (("motion_max_ksize", motion_max_ksize), ("gaussian_max_ksize", gaussian_max_ksize)):
            if int(value) < 6:
                raise PclsError(f"BlurImage {name} must be at least 6 (kernels are 5, 7, ... below it), got {value}")
        self.ratio = float(ratio)
        self.motion_sizes = np.arange(5, int(motion_max_ksize), 2)
        self.motion_angle = int(motion_max_angle)
        self.gaussian_sizes = np.arange(5, int(gaussian_max_ksize), 2)

    def _motion(self, img, rng):
        size = int(rng.choice(self.motion_sizes))
        angle = float(rng.integers(-self.motion_angle, self.motion_angle)) if self.motion_angle else 0.0
        rotation = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1)
        kernel = cv2.warpAffine(np.diag(np.ones(size)), rotation, (size, size)) / size
        blurred = cv2.filter2D(img, -1, kernel)
        return cv2.normalize(blurred, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)

    def _gaussian(self, img, rng):
        size = (int(rng.choice(self.gaussian_sizes)), int(rng.choice(self.gaussian_sizes)))
        return cv2.GaussianBlur(img, size, 0)

    def labelled(self, img, rng):
        if rng.random() >= self.ratio:
            return img, 0
        return (self._motion(img, rng) if rng.random() < 0.5 else self._gaussian(img, rng)), 1
