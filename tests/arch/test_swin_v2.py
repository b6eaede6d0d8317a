"""Swin Transformer V2 behaviour the reference cannot check (its forward fails, so there is no fixture):
window clamping and shift alternation, window locality of (shifted) attention, the log-spaced continuous
position-bias coordinates, and weights made for one window loading into a model with another."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from pcls.arch.layers.pos_embed import adapt_state_dict  # noqa: E402
from pcls.arch.swin_v2 import SwinTransformerV2, log_spaced_coords  # noqa: E402
from tests.arch.eval_checks import assert_runs_in_eval, images, run  # noqa: E402


def tiny(window_size=4, img_size=64, **kwargs):
    arch = dict(img_size=img_size, patch_size=4, embed_dim=16, depths=(2, 2), num_heads=(1, 2), class_num=10)
    return SwinTransformerV2(window_size=window_size, **{**arch, **kwargs})


def test_windows_alternate_shift_and_clamp_to_small_maps():
    model = tiny(window_size=4, img_size=64)  # stage grids 16x16 and 8x8
    first, last = model.layers[0].blocks, model.layers[1].blocks
    assert [(b.window_size, b.shift_size) for b in first] == [(4, 0), (4, 2)]
    assert [(b.window_size, b.shift_size) for b in last] == [(4, 0), (4, 2)]
    clamped = tiny(window_size=8, img_size=32)  # stage grids 8x8 and 4x4: the last stage is one window, unshifted
    assert [(b.window_size, b.shift_size) for b in clamped.layers[1].blocks] == [(4, 0), (4, 0)]
    assert tuple(clamped.layers[1].blocks[0].attn.relative_coords_table.shape) == (1, 7, 7, 2)


def _changed_tokens(block, grid, token):
    """Which output tokens of `block`'s window attention change when input `token` (row, col) changes."""
    block.eval()
    # temperature 1 and a constant position bias keep every attention weight well above zero, so "changed"
    # is never a matter of rounding
    with paddle.no_grad():
        block.attn.logit_scale.set_value(paddle.zeros_like(block.attn.logit_scale))
        for param in block.attn.cpb_mlp.parameters():
            param.set_value(paddle.zeros_like(param))
    x = np.random.default_rng(0).standard_normal((1, grid * grid, block.norm1.weight.shape[0])).astype("float32")
    y = x.copy()
    y[0, token[0] * grid + token[1]] += 1.0
    with paddle.no_grad():
        a = block.windowed_attention(paddle.to_tensor(x), grid, grid).numpy()
        b = block.windowed_attention(paddle.to_tensor(y), grid, grid).numpy()
    changed = np.abs(a - b).max(axis=-1)[0] > 1e-6
    return {divmod(int(i), grid) for i in np.nonzero(changed)[0]}


def test_plain_windows_stay_local_and_shifted_windows_cross_their_borders():
    model = tiny(window_size=4, img_size=64)
    plain, shifted = model.layers[0].blocks  # 16x16 grid, window 4, shift 2
    reached = _changed_tokens(plain, 16, (3, 3))
    assert reached == {(r, c) for r in range(4) for c in range(4)}  # exactly the token's own window
    reached = _changed_tokens(shifted, 16, (3, 3))
    # the shifted window holding (3, 3) spans rows/cols 2..5: it reaches past the plain window's border
    assert (5, 5) in reached and (0, 0) not in reached
    assert reached == {(r, c) for r in range(2, 6) for c in range(2, 6)}


def test_log_spaced_coordinates_are_symmetric_and_extend_beyond_the_pretraining_window():
    table = log_spaced_coords(8)[0]
    assert table.shape == (15, 15, 2)
    assert table[7, 7].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(table[::-1, :, 0], -table[:, :, 0])
    assert np.all(np.diff(table[:, 0, 0]) > 0)  # monotonic in the offset, compressed (log) at large offsets
    assert np.diff(table[:, 0, 0])[0] < np.diff(table[:, 0, 0])[7]
    # a window-16 model fine-tuned from window 8 sees the pre-training offsets at the same coordinates
    np.testing.assert_allclose(log_spaced_coords(16, 8)[0, 8:23, 8:23], table, rtol=1e-6)


def test_weights_for_another_window_load_and_give_the_same_bias_on_shared_offsets():
    source = tiny(window_size=4, img_size=64)
    target = tiny(window_size=8, img_size=64, pretrained_window_sizes=(4, 4))
    state = adapt_state_dict(target, source.state_dict())
    block = "layers.0.blocks.1."
    # the derived tables are the target's own; everything learned (the CPB MLP) is unchanged
    assert tuple(state[block + "attn.relative_coords_table"].shape) == (1, 15, 15, 2)
    assert tuple(state[block + "attn.relative_position_index"].shape) == (64, 64)
    np.testing.assert_array_equal(state[block + "attn.cpb_mlp.0.weight"].numpy(),
                                  source.state_dict()[block + "attn.cpb_mlp.0.weight"].numpy())
    target.set_state_dict(state)
    src_attn, dst_attn = source.layers[0].blocks[1].attn, target.layers[0].blocks[1].attn
    with paddle.no_grad():
        src_bias = src_attn.position_bias().numpy()  # [heads, 16, 16] for a 4x4 window
        dst_bias = dst_attn.position_bias().numpy()  # [heads, 64, 64] for an 8x8 window
    # token pairs inside the top-left 4x4 of the 8x8 window have the offsets of the 4x4 window
    inner = [r * 8 + c for r in range(4) for c in range(4)]
    np.testing.assert_allclose(dst_bias[:, inner][:, :, inner], src_bias, rtol=1e-5, atol=1e-6)
    assert np.isfinite(run(target, images(64))).all()


@pytest.mark.parametrize("size", [56, 64, 96])  # 56: 14x14 then 7x7, padded to window multiples, odd merge
def test_other_input_sizes_run_and_eval_is_deterministic(size):
    model = tiny(window_size=4, img_size=64, drop_rate=0.1, attn_drop_rate=0.1, drop_path_rate=0.2)
    assert_runs_in_eval(model, size, 10)


def test_surface_and_classifier_reset():
    import pcls

    with paddle.LazyGuard():
        model = pcls.create_model("SwinTransformerV2_tiny_patch4_window8_256")
        assert model.classifier_prefixes() == ["head."]
        model.reset_classifier(7)
        reset = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        small = pcls.create_model("SwinTransformerV2_tiny_patch4_window8_256", class_num=7, use_ssld=True)
    assert reset == {k: tuple(v.shape) for k, v in small.state_dict().items()}
    assert model.get_classifier() is model.head
