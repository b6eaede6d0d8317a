"""Swin Transformer V2 (Liu et al., "Swin Transformer V2: Scaling Up Capacity and Resolution", CVPR 2022),
weight-compatible with PaddleClas's `SwinTransformerV2_*` models.

What changes from Swin V1 (`pcls.arch.swin`):
- res-post-norm: each residual branch is LayerNorm-ed *after* attention / MLP (`x + norm(attn(x))`);
- scaled cosine attention: cos(q, k) times a learned per-head temperature (`logit_scale`, clipped at
  log 100) instead of a dot product;
- continuous position bias: a small MLP (`cpb_mlp`, 2 -> 512 -> heads) maps log-spaced relative
  coordinates (`relative_coords_table`) to the bias, squashed to (0, 16) by 16 * sigmoid. The table is
  derived from the window size alone, so weights transfer to another window with nothing to resample:
  `adapt_state_dict` just takes the new model's own coordinate table and index;
- patch merging reduces 4C -> 2C *then* normalises.

A stage whose map is no larger than the window uses one window covering the map and no shift (the
window is clamped when the model is built, as the reference's keys show). Inputs of another size are
padded bottom/right to a window multiple at every stage, as in `pcls.arch.swin`.
"""

from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.layers import DropPath, Mlp, PatchEmbed, attend, merge_heads, split_heads
from pcls.arch.layers.attention import relative_position_index
from pcls.arch.layers.weight_init import init_transformer_weights
from pcls.arch.registry import register
from pcls.arch.swin import PatchMerging, WindowedTransformer, shifted_window_mask, window_partition, window_reverse

# the largest attention temperature: logit_scale is clipped at log(1 / 0.01)
_MAX_LOGIT_SCALE = math.log(100.0)


def log_spaced_coords(window: int, pretrained_window: int = 0) -> np.ndarray:
    """[1, 2w-1, 2w-1, 2] relative (dy, dx) offsets, normalised so the pre-training window's offsets span
    [-8, 8], then log-spaced: sign(t) * log2(1 + |t|) / log2(8) (paper, eq. 4)."""
    span = (pretrained_window if pretrained_window > 0 else window) - 1
    offsets = np.arange(-(window - 1), window, dtype="float64") / max(span, 1) * 8
    grid = np.stack(np.meshgrid(offsets, offsets, indexing="ij"), axis=-1)[None]
    return (np.sign(grid) * np.log2(np.abs(grid) + 1.0) / np.log2(8)).astype("float32")


class WindowAttentionV2(nn.Layer):
    """Scaled cosine attention inside w x w windows with a continuous (MLP-generated) position bias.

    Input [B, windows, w*w, C]; `mask` [windows, w*w, w*w] (0 or -100) as in Swin V1.
    """

    def __init__(self, dim, window_size, num_heads, qkv_bias=True, attn_drop=0.0, proj_drop=0.0,
                 pretrained_window_size=0):
        super().__init__()
        self.window_size, self.num_heads = window_size, num_heads
        self.logit_scale = self.create_parameter(
            [num_heads, 1, 1], default_initializer=nn.initializer.Constant(math.log(10.0)))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, 512), nn.ReLU(), nn.Linear(512, num_heads, bias_attr=False))
        self.register_buffer("relative_coords_table",
                             paddle.to_tensor(log_spaced_coords(window_size, pretrained_window_size)))
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        # q and v carry a bias, k does not (its bias would cancel in the softmax)
        self.qkv = nn.Linear(dim, dim * 3, bias_attr=False)
        zeros = nn.initializer.Constant(0.0)
        self.q_bias = self.create_parameter([dim], default_initializer=zeros) if qkv_bias else None
        self.v_bias = self.create_parameter([dim], default_initializer=zeros) if qkv_bias else None
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def position_bias(self):
        """[heads, w*w, w*w] bias in (0, 16)."""
        n = self.window_size**2
        table = self.cpb_mlp(self.relative_coords_table).reshape([-1, self.num_heads])
        bias = paddle.gather(table, self.relative_position_index.flatten()).reshape([n, n, self.num_heads])
        return 16 * F.sigmoid(bias.transpose([2, 0, 1]))

    def forward(self, x, mask=None):
        bias = None
        if self.q_bias is not None:
            bias = paddle.concat([self.q_bias, paddle.zeros_like(self.q_bias), self.v_bias])
        q, k, v = split_heads(F.linear(x, self.qkv.weight, bias), 3, self.num_heads)
        temperature = paddle.clip(self.logit_scale, max=_MAX_LOGIT_SCALE).exp()
        position = self.position_bias()
        if mask is not None:
            position = position.unsqueeze(0) + mask.unsqueeze(1)
        out = attend(F.normalize(q, axis=-1), F.normalize(k, axis=-1), v, temperature, position, self.attn_drop)
        return self.proj_drop(self.proj(merge_heads(out)))


class SwinV2Block(nn.Layer):
    def __init__(self, dim, resolution, num_heads, window_size, shift_size, mlp_ratio, qkv_bias, drop, attn_drop,
                 drop_path, pretrained_window_size):
        super().__init__()
        if min(resolution) <= window_size:
            # one window covers the whole map: nothing to shift
            window_size, shift_size = min(resolution), 0
        self.window_size, self.shift_size = window_size, shift_size
        # kept only so PaddleClas checkpoints load key for key; the forward derives the shift mask from the
        # actual (padded) map size, see `shifted_window_mask`
        self.register_buffer("attn_mask", paddle.zeros([1, resolution[0], resolution[1], 1]))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttentionV2(dim, window_size, num_heads, qkv_bias, attn_drop, drop, pretrained_window_size)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def windowed_attention(self, x, height, width):
        """[B, H*W, C] -> [B, H*W, C]: (shifted) window attention, padding to a window multiple if needed."""
        window, shift = self.window_size, self.shift_size
        channels = x.shape[-1]
        x = x.reshape([-1, height, width, channels])
        pad_h, pad_w = -height % window, -width % window
        if pad_h or pad_w:
            x = F.pad(x, [0, pad_w, 0, pad_h], data_format="NHWC")  # NHWC pad order: left, right, top, bottom
        padded_h, padded_w = height + pad_h, width + pad_w
        mask = None
        if shift:
            x = paddle.roll(x, shifts=(-shift, -shift), axis=(1, 2))
            mask = paddle.to_tensor(shifted_window_mask(padded_h, padded_w, window, shift))
        x = window_reverse(self.attn(window_partition(x, window), mask), window, padded_h, padded_w)
        if shift:
            x = paddle.roll(x, shifts=(shift, shift), axis=(1, 2))
        return x[:, :height, :width, :].reshape([-1, height * width, channels])

    def forward(self, x, height, width):
        # res-post-norm: the branch output is normalised before it joins the residual stream
        x = x + self.drop_path(self.norm1(self.windowed_attention(x, height, width)))
        return x + self.drop_path(self.norm2(self.mlp(x)))


class SwinV2Stage(nn.Layer):
    """`depth` blocks alternating plain and shifted windows, then an optional merge."""

    def __init__(self, dim, resolution, depth, num_heads, window_size, mlp_ratio, qkv_bias, drop, attn_drop,
                 drop_path_rates, downsample, pretrained_window_size):
        super().__init__()
        self.blocks = nn.LayerList([
            SwinV2Block(dim, resolution, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2, mlp_ratio,
                        qkv_bias, drop, attn_drop, drop_path_rates[i], pretrained_window_size)
            for i in range(depth)
        ])
        self.downsample = PatchMerging(dim, post_norm=True) if downsample else None

    def forward(self, x, height, width):
        for block in self.blocks:
            x = block(x, height, width)
        if self.downsample is not None:
            x, (height, width) = self.downsample(x, height, width)
        return x, (height, width)


class SwinTransformerV2(WindowedTransformer):
    def __init__(self, img_size=256, patch_size=4, in_chans=3, class_num=1000, embed_dim=96, depths=(2, 2, 6, 2),
                 num_heads=(3, 6, 12, 24), window_size=8, mlp_ratio=4.0, qkv_bias=True, drop_rate=0.0,
                 attn_drop_rate=0.0, drop_path_rate=0.1, pretrained_window_sizes=(0, 0, 0, 0)):
        super().__init__()
        self.class_num = class_num
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim, norm=True)
        self.pos_drop = nn.Dropout(drop_rate)
        rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        grid = self.patch_embed.grid_size
        self.layers = nn.LayerList()
        for i, depth in enumerate(depths):
            first = sum(depths[:i])
            resolution = (grid[0] // 2**i, grid[1] // 2**i)
            self.layers.append(SwinV2Stage(
                embed_dim * 2**i, resolution, depth, num_heads[i], window_size, mlp_ratio, qkv_bias, drop_rate,
                attn_drop_rate, rates[first:first + depth], i < len(depths) - 1, pretrained_window_sizes[i]))
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, class_num)
        init_transformer_weights(self)



_SIZES = {
    "tiny": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "small": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "base": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    "large": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}
# the models fine-tuned from ImageNet-22k pre-training at window 12 (192 px) keep that window's coordinate scale
_FROM_22K = dict(pretrained_window_sizes=(12, 12, 12, 6))

# name -> (size, window, image size, drop-path rate, extra options), as PaddleClas builds them
VARIANTS = {
    "SwinTransformerV2_tiny_patch4_window8_256": ("tiny", 8, 256, 0.2, {}),
    "SwinTransformerV2_tiny_patch4_window16_256": ("tiny", 16, 256, 0.2, {}),
    "SwinTransformerV2_small_patch4_window8_256": ("small", 8, 256, 0.3, {}),
    "SwinTransformerV2_small_patch4_window16_256": ("small", 16, 256, 0.3, {}),
    "SwinTransformerV2_base_patch4_window8_256": ("base", 8, 256, 0.5, {}),
    "SwinTransformerV2_base_patch4_window16_256": ("base", 16, 256, 0.5, {}),
    "SwinTransformerV2_base_patch4_window24_384": ("base", 24, 384, 0.2, _FROM_22K),
    "SwinTransformerV2_large_patch4_window16_256": ("large", 16, 256, 0.2, _FROM_22K),
    "SwinTransformerV2_large_patch4_window24_384": ("large", 24, 384, 0.2, _FROM_22K),
}


def _swin_v2(name, class_num, kwargs):
    size, window, img_size, drop_path_rate, extra = VARIANTS[name]
    kwargs.pop("use_ssld", None)  # only chooses the zoo weights (registry)
    arch = dict(_SIZES[size], window_size=window, img_size=img_size, drop_path_rate=drop_path_rate, **extra)
    return SwinTransformerV2(class_num=class_num, **{**arch, **kwargs})


@register
def SwinTransformerV2_tiny_patch4_window8_256(class_num=1000, **kwargs):
    return _swin_v2("SwinTransformerV2_tiny_patch4_window8_256", class_num, kwargs)


@register
def SwinTransformerV2_tiny_patch4_window16_256(class_num=1000, **kwargs):
    return _swin_v2("SwinTransformerV2_tiny_patch4_window16_256", class_num, kwargs)


@register
def SwinTransformerV2_small_patch4_window8_256(class_num=1000, **kwargs):
    return _swin_v2("SwinTransformerV2_small_patch4_window8_256", class_num, kwargs)


@register
def SwinTransformerV2_small_patch4_window16_256(class_num=1000, **kwargs):
    return _swin_v2("SwinTransformerV2_small_patch4_window16_256", class_num, kwargs)


@register
def SwinTransformerV2_base_patch4_window8_256(class_num=1000, **kwargs):
    return _swin_v2("SwinTransformerV2_base_patch4_window8_256", class_num, kwargs)


@register
def SwinTransformerV2_base_patch4_window16_256(class_num=1000, **kwargs):
    return _swin_v2("SwinTransformerV2_base_patch4_window16_256", class_num, kwargs)


@register
def SwinTransformerV2_base_patch4_window24_384(class_num=1000, **kwargs):
    return _swin_v2("SwinTransformerV2_base_patch4_window24_384", class_num, kwargs)


@register
def SwinTransformerV2_large_patch4_window16_256(class_num=1000, **kwargs):
    return _swin_v2("SwinTransformerV2_large_patch4_window16_256", class_num, kwargs)


@register
def SwinTransformerV2_large_patch4_window24_384(class_num=1000, **kwargs):
    return _swin_v2("SwinTransformerV2_large_patch4_window24_384", class_num, kwargs)
