"""Bilinear resizing as two small matrix products, numerically Paddle's `F.interpolate(mode="bilinear",
align_corners=False)` (half-pixel centres, edge-clamped).

Why not F.interpolate itself: Paddle 3.3's oneDNN inference cannot run the exported bilinear_interp op
("ConvertPirAttribute2RuntimeAttribute not support ArrayAttribute<DoubleAttribute>"), so a model that resizes
inside its forward would export but not load on CPU. Matmuls export everywhere; the matrices depend only on
the (static) sizes and are built once per size pair.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import paddle


@lru_cache(maxsize=64)
def _weights(in_size: int, out_size: int) -> np.ndarray:
    """[out_size, in_size] interpolation matrix along one axis."""
    matrix = np.zeros((out_size, in_size), dtype="float32")
    # Paddle's kernel uses ratio 0 for a one-pixel output: it takes the first source pixel
    ratio = np.float32(in_size) / np.float32(out_size) if out_size > 1 else np.float32(0.0)
    for dst in range(out_size):
        src = max(ratio * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0.0))
        low = int(np.floor(src))
        high = min(low + 1, in_size - 1)
        frac = np.float32(src - low)
        matrix[dst, low] += np.float32(1.0) - frac
        matrix[dst, high] += frac
    return matrix


def bilinear_resize(x, size):
    """[B, C, H, W] -> [B, C, size[0], size[1]]."""
    height, width = x.shape[2], x.shape[3]
    if (height, width) == tuple(size):
        return x
    rows = paddle.to_tensor(_weights(height, size[0]), dtype=x.dtype)
    cols = paddle.to_tensor(_weights(width, size[1]).T, dtype=x.dtype)
    return paddle.matmul(paddle.matmul(rows, x), cols)
