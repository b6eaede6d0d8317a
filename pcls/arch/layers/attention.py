"""Multi-head self-attention shared by the transformer families: the scaled dot-product core, the plain
qkv -> attend -> proj layer (ViT, DeiT, Twins), and Swin's window attention with a relative position bias."""

from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F


def split_heads(t, parts: int, num_heads: int):
    """[..., N, parts*C] -> `parts` tensors of [..., heads, N, C // heads]."""
    lead = t.ndim - 2
    # 0 in reshape copies the input dim, so batch-like dims stay dynamic for export
    t = t.reshape([0] * (lead + 1) + [parts, num_heads, -1])
    nd = t.ndim
    perm = [nd - 3] + list(range(lead)) + [nd - 2, lead, nd - 1]
    return t.transpose(perm).unbind(0)


def merge_heads(x):
    """[..., heads, N, d] -> [..., N, heads*d]."""
    nd = x.ndim
    perm = list(range(nd - 3)) + [nd - 2, nd - 3, nd - 1]
    return x.transpose(perm).reshape([0] * (nd - 2) + [-1])


def attend(q, k, v, scale: float, bias=None, attn_drop=None):
    """softmax(q k^T * scale + bias) v for [..., heads, N, d] tensors (bias broadcasts to the scores)."""
    scores = paddle.matmul(q, k, transpose_y=True) * scale
    if bias is not None:
        scores = scores + bias
    weights = F.softmax(scores, axis=-1)
    if attn_drop is not None:
        weights = attn_drop(weights)
    return paddle.matmul(weights, v)


class Attention(nn.Layer):
    """Multi-head self-attention over [..., N, C] tokens with one fused `qkv` projection."""

    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias_attr=None if qkv_bias else False)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x, bias=None):
        q, k, v = split_heads(self.qkv(x), 3, self.num_heads)
        x = merge_heads(attend(q, k, v, self.scale, bias, self.attn_drop))
        return self.proj_drop(self.proj(x))


def relative_position_index(window: int):
    """[w*w, w*w] index into a (2w-1)^2 bias table of every (query, key) offset within a window."""
    coords = paddle.stack(paddle.meshgrid(paddle.arange(window), paddle.arange(window))).flatten(1)
    offsets = (coords.unsqueeze(2) - coords.unsqueeze(1)).transpose([1, 2, 0]) + (window - 1)
    return (offsets[:, :, 0] * (2 * window - 1) + offsets[:, :, 1]).astype("int64")


class WindowAttention(Attention):
    """Attention inside w x w windows plus a learned bias per relative offset and head (Swin).

    Input: [B, windows, w*w, C]; `mask` ([windows, w*w, w*w], 0 or -100) blocks pairs that a cyclic
    shift made neighbours.
    """

    def __init__(self, dim, window_size, num_heads, qkv_bias=True, qk_scale=None, attn_drop=0.0, proj_drop=0.0):
        super().__init__(dim, num_heads, qkv_bias, qk_scale, attn_drop, proj_drop)
        self.window_size = window_size
        self.relative_position_bias_table = self.create_parameter(
            [(2 * window_size - 1) ** 2, num_heads], default_initializer=nn.initializer.TruncatedNormal(std=0.02)
        )
        self.register_buffer("relative_position_index", relative_position_index(window_size))

    def forward(self, x, mask=None):
        n = self.window_size**2
        bias = paddle.gather(self.relative_position_bias_table, self.relative_position_index.flatten())
        bias = bias.reshape([n, n, self.num_heads]).transpose([2, 0, 1])
        if mask is not None:
            bias = bias.unsqueeze(0) + mask.unsqueeze(1)
        return super().forward(x, bias)
