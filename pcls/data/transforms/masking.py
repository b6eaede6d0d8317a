"""Occlusion augmentations: RandomErasing, Cutout, GridMask, HideAndSeek (HWC or CHW, uint8 or float)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from pcls.data.decode import check_output_size
from pcls.data.transforms.registry import SpatialOperator, register_op
from pcls.errors import PclsError, short_repr


def _writable(img):
    return img if img.flags.writeable else img.copy()


@register_op
class RandomErasing(SpatialOperator):
    """With probability EPSILON, erase one rectangle of area ~ U(sl, sh) x image and aspect ~ U(r1, 1/r1)."""

    def __init__(self, EPSILON=0.5, sl=0.02, sh=0.4, r1=0.3, mean=(0.0, 0.0, 0.0), attempt=100,
                 use_log_aspect=False, mode="const"):
        if not 0 <= EPSILON <= 1:
            raise PclsError(f"RandomErasing EPSILON is a probability in [0, 1], got {EPSILON}")
        if not 0 < sl <= sh <= 1:
            raise PclsError(f"RandomErasing needs 0 < sl <= sh <= 1, got sl={sl}, sh={sh}")
        if not 0 < r1 <= 1:
            raise PclsError(f"RandomErasing r1 must be in (0, 1], got {r1}")
        if mode not in ("const", "pixel", "channel"):
            raise PclsError(f"RandomErasing mode must be const, pixel or channel, got {short_repr(mode)}")
        self.prob, self.sl, self.sh = float(EPSILON), float(sl), float(sh)
        self.aspect = (math.log(r1), math.log(1 / r1)) if use_log_aspect else (r1, 1 / r1)
        self.use_log_aspect = bool(use_log_aspect)
        self.mean = list(mean)
        self.attempt = int(attempt)
        self.mode = mode

    def box(self, img_h, img_w, rng):
        """(y0, x0, h, w) of the erased rectangle, or None when no attempt fits."""
        for _ in range(self.attempt):
            area = rng.uniform(self.sl, self.sh) * img_h * img_w
            aspect = rng.uniform(*self.aspect)
            if self.use_log_aspect:
                aspect = math.exp(aspect)
            h = int(round(math.sqrt(area * aspect)))
            w = int(round(math.sqrt(area / aspect)))
            if 0 < w < img_w and 0 < h < img_h:
                return int(rng.integers(0, img_h - h + 1)), int(rng.integers(0, img_w - w + 1)), h, w
        return None

    def __call__(self, img, rng):
        if rng.random() > self.prob:
            return img
        img_h, img_w = self.hw(img)
        found = self.box(img_h, img_w, rng)
        if found is None:
            return img
        y0, x0, h, w = found
        img = _writable(img)
        index = self.region(y0, y0 + h, x0, x0 + w)
        patch = img[index]
        if self.mode == "const":
            channels = patch.shape[0] if self.chw else (patch.shape[2] if patch.ndim == 3 else 1)
            values = (self.mean * channels)[:channels] if len(self.mean) == 1 else self.mean[:channels]
            img[index] = self.channel_values(values, patch.ndim)
        elif self.mode == "pixel":
            img[index] = rng.standard_normal(patch.shape).astype(np.float32)
        else:
            shape = [1] * patch.ndim
            shape[0 if self.chw else patch.ndim - 1] = patch.shape[0 if self.chw else -1]
            img[index] = rng.standard_normal(shape).astype(np.float32)
        return img


@register_op
class Cutout(SpatialOperator):
    """Zero n_holes squares of side `length` centred at uniformly drawn pixels (clipped at the borders)."""

    def __init__(self, n_holes=1, length=112):
        if n_holes < 0 or length < 0:
            raise PclsError(f"Cutout n_holes and length must be >= 0, got {n_holes}, {length}")
        self.n_holes, self.length = int(n_holes), int(length)

    def __call__(self, img, rng):
        h, w = self.hw(img)
        img = _writable(img)
        for _ in range(self.n_holes):
            cy, cx = int(rng.integers(h)), int(rng.integers(w))
            y0, y1 = max(cy - self.length // 2, 0), min(cy + self.length // 2, h)
            x0, x1 = max(cx - self.length // 2, 0), min(cx + self.length // 2, w)
            img[self.region(y0, y1, x0, x1)] = 0
        return img


@register_op
class GridMask(SpatialOperator):
    """GridMask (Chen et al., 2020): with probability prob, zero a grid of bands of width ceil(d * ratio)
    every d pixels (d ~ U[d1, d2)), rows and columns, at a random offset; rotate the grid by
    U[0, rotate) degrees; mode 1 keeps the bands instead."""

    def __init__(self, d1=96, d2=224, rotate=1, ratio=0.5, mode=0, prob=1.0):
        if not 0 < d1 < d2:
            raise PclsError(f"GridMask needs 0 < d1 < d2, got d1={d1}, d2={d2}")
        if mode not in (0, 1):
            raise PclsError(f"GridMask mode must be 0 or 1, got {mode}")
        self.d1, self.d2, self.rotate = int(d1), int(d2), max(int(rotate), 1)
        self.ratio, self.mode, self.prob = float(ratio), int(mode), float(prob)

    def mask(self, h, w, rng):
        """The uint8 {0,1} keep-mask of shape (h, w); 1 = keep."""
        side = math.ceil(math.sqrt(h * h + w * w))  # the grid must still cover the image after rotation
        check_output_size(side, side, (h, w), "GridMask")  # a thin image's diagonal squared is far larger
        d = int(rng.integers(self.d1, self.d2))
        band = math.ceil(d * self.ratio)
        keep = np.ones((side, side), np.uint8)
        start_y, start_x = int(rng.integers(d)), int(rng.integers(d))
        for i in range(-1, side // d + 1):
            y0 = min(max(d * i + start_y, 0), side)
            keep[y0 : min(max(d * i + start_y + band, 0), side), :] = 0
            x0 = min(max(d * i + start_x, 0), side)
            keep[:, x0 : min(max(d * i + start_x + band, 0), side)] = 0
        angle = int(rng.integers(self.rotate))
        if angle:
            rot = cv2.getRotationMatrix2D(((side - 1) / 2, (side - 1) / 2), angle, 1.0)
            keep = cv2.warpAffine(keep, rot, (side, side), flags=cv2.INTER_NEAREST, borderValue=0)
        top, left = (side - h) // 2, (side - w) // 2
        keep = keep[top : top + h, left : left + w]
        return 1 - keep if self.mode == 1 else keep

    def __call__(self, img, rng):
        if rng.random() > self.prob:
            return img
        h, w = self.hw(img)
        keep = self.mask(h, w, rng)
        keep = keep[None] if self.chw else (keep[:, :, None] if img.ndim == 3 else keep)
        return (img * keep).astype(img.dtype, copy=False)


@register_op
class HideAndSeek(SpatialOperator):
    """Hide-and-Seek (Singh & Lee, 2017): split the image into grid_size cells (grid_size drawn from
    grid_sizes; 0 = no hiding) and zero each cell with probability hide_prob."""

    def __init__(self, grid_sizes=(0, 16, 32, 44, 56), hide_prob=0.5):
        self.grid_sizes = [int(g) for g in grid_sizes]
        self.hide_prob = float(hide_prob)

    def __call__(self, img, rng):
        grid = self.grid_sizes[int(rng.integers(len(self.grid_sizes)))]
        if grid == 0:
            return img
        h, w = self.hw(img)
        img = _writable(img)
        for y in range(0, h, grid):
            for x in range(0, w, grid):
                if rng.random() <= self.hide_prob:
                    img[self.region(y, min(h, y + grid), x, min(w, x + grid))] = 0
        return img
