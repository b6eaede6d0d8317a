"""Shared helpers for the data tests: a scripted RNG for golden tests and tiny generated images."""

import cv2
import numpy as np
import pytest


class ScriptedRng:
    """Stands in for numpy's Generator: each method returns the next scripted value for it."""

    def __init__(self, integers=(), random=(), uniform=()):
        self._integers, self._random, self._uniform = list(integers), list(random), list(uniform)

    def integers(self, low, high=None):
        value = self._integers.pop(0)
        lo, hi = (0, low) if high is None else (low, high)
        assert lo <= value < hi, f"scripted integer {value} outside [{lo}, {hi})"
        return value

    def random(self):
        return self._random.pop(0)

    def uniform(self, low, high):
        value = self._uniform.pop(0)
        assert low <= value <= high
        return value


@pytest.fixture
def jpeg_bytes():
    """Encode an HWC uint8 image (given in BGR, OpenCV's order) as PNG bytes (lossless, so values are exact)."""

    def encode(img, ext=".png"):
        ok, buf = cv2.imencode(ext, img)
        assert ok
        return buf.tobytes()

    return encode


def write_images(root, names, size=(24, 20), seed=0):
    """Small random JPEGs at root/<name>; returns their paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths
