"""Position tables at another input or window size: bicubic resampling of learned position embeddings,
Swin relative-position bias tables and LeViT attention biases, and `adapt_state_dict`, the hook the
weight loader calls so weights trained at one size load into a model built for another.

    state = adapt_state_dict(model, state)   # before model.set_state_dict(state)
"""

from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.nn.functional as F


def resize_grid(values, old_hw, new_hw):
    """[h*w, C] values laid out row-major on an h x w grid -> [H*W, C] by bicubic interpolation."""
    old_hw, new_hw = tuple(old_hw), tuple(new_hw)
    if old_hw == new_hw:
        return values
    channels = values.shape[-1]
    grid = values.reshape([1, old_hw[0], old_hw[1], channels]).transpose([0, 3, 1, 2])
    grid = F.interpolate(grid, size=new_hw, mode="bicubic", align_corners=False)
    return grid.transpose([0, 2, 3, 1]).reshape([new_hw[0] * new_hw[1], channels])


def square_side(count: int, what: str) -> int:
    side = math.isqrt(count)
    if side * side != count:
        raise ValueError(f"{what}: {count} positions do not form a square grid")
    return side


def resample_abs_pos_embed(pos_embed, new_hw, num_prefix_tokens: int = 1, old_hw=None):
    """[1, prefix + h*w, C] embedding -> [1, prefix + H*W, C]: the patch-grid part is resampled, the
    prefix (class / distillation token) positions are kept as they are."""
    prefix, patches = pos_embed[:, :num_prefix_tokens], pos_embed[0, num_prefix_tokens:]
    if old_hw is None:
        side = square_side(patches.shape[0], "pos_embed")
        old_hw = (side, side)
    if tuple(old_hw) == tuple(new_hw):
        return pos_embed
    patches = resize_grid(patches, old_hw, new_hw).unsqueeze(0)
    return paddle.concat([prefix, patches], axis=1) if num_prefix_tokens else patches


def resample_rel_pos_table(table, new_window: int):
    """Swin bias table [(2w-1)^2, heads] -> [(2W-1)^2, heads] for window size W."""
    side = square_side(table.shape[0], "relative_position_bias_table")
    new_side = 2 * new_window - 1
    return resize_grid(table, (side, side), (new_side, new_side))


def resample_offset_biases(biases, new_resolution: int):
    """LeViT attention biases [heads, r*r] (one per |dy|, |dx| offset) -> [heads, R*R]."""
    side = square_side(biases.shape[1], "attention_biases")
    return resize_grid(biases.transpose([1, 0]), (side, side), (new_resolution, new_resolution)).transpose([1, 0])


def _resample_entry(model, key: str, value, target_shape):
    leaf = key.rsplit(".", 1)[-1]
    if leaf in ("pos_embed", "patch_pos"):
        prefix = getattr(model, "num_prefix_tokens", 1)
        grid = getattr(model, "grid_size", None)
        if grid is None:
            side = square_side(target_shape[1] - prefix, key)
            grid = (side, side)
        return resample_abs_pos_embed(value, grid, prefix)
    if leaf == "relative_position_bias_table":
        return resample_rel_pos_table(value, (square_side(target_shape[0], key) + 1) // 2)
    if leaf == "attention_biases":
        return resample_offset_biases(value, square_side(target_shape[1], key))
    return None


_DERIVED_BUFFERS = ("relative_position_index", "attention_bias_idxs", "relative_coords_table", "attn_mask")


def adapt_state_dict(model, state: dict) -> dict:
    """Return `state` with its position tables resampled to the shapes `model` has.

    Entries whose shape already matches, and all other mismatches (e.g. a classifier with another
    class_num), are returned untouched for the loader to judge. Index buffers derived from the window
    or grid size take the model's own values. Values may be numpy arrays or paddle tensors; each keeps
    its type and dtype.
    """
    own = model.state_dict()
    adapted = dict(state)
    for key, value in state.items():
        if key not in own or tuple(value.shape) == tuple(own[key].shape):
            continue
        target = tuple(own[key].shape)
        if key.rsplit(".", 1)[-1] in _DERIVED_BUFFERS:
            adapted[key] = own[key].numpy() if isinstance(value, np.ndarray) else own[key]
            continue
        tensor = paddle.to_tensor(value, dtype="float32") if isinstance(value, np.ndarray) else value
        try:
            resampled = _resample_entry(model, key, tensor.astype("float32"), target)
        except ValueError:
            resampled = None
        if resampled is None or tuple(resampled.shape) != target:
            continue
        if isinstance(value, np.ndarray):
            adapted[key] = resampled.numpy().astype(value.dtype)
        else:
            adapted[key] = resampled.astype(value.dtype)
    return adapted


class AdaptsPositionTables:
    """Mixin for backbones with position tables: the zoo weight loader calls
    `model.adapt_state_dict(state)` before `set_state_dict`, so weights made for another input or
    window size load with resampled tables."""

    def adapt_state_dict(self, state: dict) -> dict:
        return adapt_state_dict(self, state)
