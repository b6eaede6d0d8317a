"""Structural re-parameterisation helpers (RepVGG, PP-LCNetV2): fold an eval-mode BatchNorm into the conv
before it, and sum parallel conv-bn branches of different kernel sizes into one conv for deployment."""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import paddle
import paddle.nn as nn


def fold_bn(kernel, bn):
    """(kernel, bias) of conv `kernel` followed by eval-mode BatchNorm `bn`, as numpy float64."""
    std = np.sqrt(bn._variance.numpy().astype("float64") + bn._epsilon)
    scale = bn.weight.numpy().astype("float64") / std
    bias = bn.bias.numpy().astype("float64") - bn._mean.numpy().astype("float64") * scale
    return kernel * scale.reshape(-1, 1, 1, 1), bias


def fuse_branches(branches: Sequence[Tuple[nn.Conv2D, nn.Layer]], kernel_size: int):
    """One (kernel, bias) equal to the sum of the (conv, bn) branches, all with the same stride and centred
    "same" padding; smaller kernels are zero-padded to `kernel_size`. float32 numpy arrays."""
    kernel, bias = 0.0, 0.0
    for conv, bn in branches:
        k, b = fold_bn(conv.weight.numpy().astype("float64"), bn)
        pad = (kernel_size - k.shape[-1]) // 2
        kernel = kernel + np.pad(k, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        bias = bias + b
    return kernel.astype("float32"), bias.astype("float32")


def load_fused(conv: nn.Conv2D, kernel, bias) -> None:
    """Write a fused (kernel, bias) into `conv` (which must have a bias)."""
    conv.weight.set_value(paddle.to_tensor(kernel))
    conv.bias.set_value(paddle.to_tensor(bias))
