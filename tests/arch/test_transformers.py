"""Transformer backbones (ViT/DeiT, Swin, LeViT, Twins, TNT): weights made for one input or window
size load into a model built for another (`adapt_state_dict`), other input sizes run, dropout and
drop-path rates are configurable, eval mode is deterministic. Tiny configurations keep this fast."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from pcls.arch.layers.pos_embed import (  # noqa: E402
    adapt_state_dict,
    resample_abs_pos_embed,
    resample_rel_pos_table,
    resize_grid,
)
from pcls.arch.levit import LeViT  # noqa: E402
from pcls.arch.swin import SwinTransformer  # noqa: E402
from pcls.arch.tnt import TNT  # noqa: E402
from pcls.arch.twins import Twins  # noqa: E402
from pcls.arch.vit import VisionTransformer  # noqa: E402
from tests.arch.eval_checks import images, run  # noqa: E402


def tiny_vit(img_size=32, **kwargs):
    arch = dict(img_size=img_size, patch_size=8, embed_dim=32, depth=2, num_heads=2, qkv_bias=True, class_num=10)
    return VisionTransformer(**{**arch, **kwargs})


def tiny_swin(window_size=2, img_size=32, **kwargs):
    arch = dict(img_size=img_size, patch_size=4, embed_dim=16, depths=(2, 2), num_heads=(1, 2), class_num=10)
    return SwinTransformer(window_size=window_size, **{**arch, **kwargs})


def tiny_twins(**kwargs):
    arch = dict(embed_dims=(16, 32), num_heads=(1, 2), mlp_ratios=(2, 2), depths=(2, 2), sr_ratios=(2, 1),
                windows=(2, 2), class_num=10)
    return Twins(**{**arch, **kwargs})


def tiny_tnt(img_size=32, **kwargs):
    arch = dict(img_size=img_size, embed_dim=32, in_dim=8, depth=2, num_heads=2, in_num_head=2, class_num=10)
    return TNT(**{**arch, **kwargs})


def tiny_levit(img_size=64, **kwargs):
    arch = dict(img_size=img_size, embed_dim=(32, 48, 64), key_dim=8, depth=(1, 1, 1), num_heads=(2, 3, 4),
                class_num=10)
    return LeViT(**{**arch, **kwargs})


# -- interpolation primitives -----------------------------------------------------------------------


def test_resample_to_the_same_grid_returns_the_same_values():
    pos = paddle.randn([1, 1 + 14 * 14, 8])
    assert np.array_equal(resample_abs_pos_embed(pos, (14, 14), 1).numpy(), pos.numpy())
    grid = paddle.randn([5 * 5, 3])
    assert np.array_equal(resize_grid(grid, (5, 5), (5, 5)).numpy(), grid.numpy())


def test_a_constant_embedding_stays_constant_and_prefix_tokens_are_kept():
    prefix = paddle.to_tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]])
    grid = paddle.full([1, 14 * 14, 3], 0.25)
    resampled = resample_abs_pos_embed(paddle.concat([prefix, grid], axis=1), (24, 24), 2).numpy()
    assert resampled.shape == (1, 2 + 24 * 24, 3)
    assert np.array_equal(resampled[:, :2], prefix.numpy())
    np.testing.assert_allclose(resampled[:, 2:], 0.25, atol=1e-6)


def test_upsampled_grid_keeps_the_spatial_layout():
    # a value that grows left to right must still grow left to right, row by row, after resampling
    columns = np.tile(np.arange(4, dtype="float32"), (4, 1)).reshape(16, 1)
    out = resize_grid(paddle.to_tensor(columns), (4, 4), (8, 8)).numpy().reshape(8, 8)
    assert np.all(np.diff(out, axis=1) >= 0) and np.all(np.diff(out, axis=1).sum(axis=1) > 2)
    np.testing.assert_allclose(out, out[:1].repeat(8, axis=0), atol=1e-6)


def test_relative_position_table_resamples_to_the_new_window():
    table = paddle.randn([(2 * 7 - 1) ** 2, 3])
    assert tuple(resample_rel_pos_table(table, 12).shape) == ((2 * 12 - 1) ** 2, 3)


# -- weights for another size -----------------------------------------------------------------------


def test_deit_384_loads_224_weights_with_interpolated_position_embedding():
    import pcls

    source = pcls.create_model("DeiT_tiny_distilled_patch16_224")
    target = pcls.create_model("DeiT_tiny_distilled_patch16_224", img_size=384)
    state = {key: value.numpy() for key, value in source.state_dict().items()}
    adapted = adapt_state_dict(target, state)
    assert adapted["pos_embed"].shape == (1, 2 + 24 * 24, 192)
    assert isinstance(adapted["pos_embed"], np.ndarray)
    np.testing.assert_array_equal(adapted["pos_embed"][:, :2], state["pos_embed"][:, :2])
    assert all(adapted[k] is state[k] for k in state if k != "pos_embed")
    missing, unexpected = target.set_state_dict(adapted)
    assert not missing and not unexpected
    logits = run(target, images(384, batch=1))
    assert logits.shape == (1, 1000) and np.isfinite(logits).all()


def test_vit_runtime_resize_matches_a_model_built_for_that_size():
    paddle.seed(1)
    small = tiny_vit(img_size=32)
    large = tiny_vit(img_size=48)
    large.set_state_dict(adapt_state_dict(large, small.state_dict()))
    x = images(48)
    np.testing.assert_allclose(run(small, x), run(large, x), rtol=1e-5, atol=1e-5)


def test_swin_loads_weights_of_another_window_size():
    paddle.seed(2)
    source, target = tiny_swin(window_size=2), tiny_swin(window_size=4)
    adapted = adapt_state_dict(target, source.state_dict())
    table = "layers.0.blocks.0.attn.relative_position_bias_table"
    index = "layers.0.blocks.0.attn.relative_position_index"
    assert tuple(adapted[table].shape) == (7 * 7, 1)
    assert tuple(adapted[index].shape) == (16, 16)
    missing, unexpected = target.set_state_dict(adapted)
    assert not missing and not unexpected
    assert np.isfinite(run(target, images(32))).all()


def test_levit_loads_weights_of_another_size_and_runs_other_sizes():
    paddle.seed(3)
    source, target = tiny_levit(img_size=64), tiny_levit(img_size=96)
    adapted = adapt_state_dict(target, source.state_dict())
    assert tuple(adapted["blocks.0.m.attention_biases"].shape) == (2, 36)
    target.set_state_dict(adapted)
    # the built grid uses the stored biases; another grid resamples them on the fly (LeViT_384 at 384)
    x = images(96)
    np.testing.assert_allclose(run(source, x), run(target, x), rtol=1e-4, atol=1e-4)
    assert np.isfinite(run(source, images(48))).all()


def test_tnt_loads_weights_of_another_size():
    paddle.seed(4)
    source, target = tiny_tnt(img_size=32), tiny_tnt(img_size=64)
    adapted = adapt_state_dict(target, source.state_dict())
    assert tuple(adapted["patch_pos"].shape) == (1, 1 + 4 * 4, 32)
    target.set_state_dict(adapted)
    x = images(64)
    np.testing.assert_allclose(run(source, x), run(target, x), rtol=1e-5, atol=1e-5)


def test_classifier_mismatch_is_left_to_the_loader():
    source, target = tiny_vit(class_num=10), tiny_vit(class_num=3)
    state = source.state_dict()
    adapted = adapt_state_dict(target, state)
    assert adapted["head.weight"] is state["head.weight"]


# -- other input sizes, dropout, determinism ----------------------------------------------------------


@pytest.mark.parametrize(
    "build, size",
    [
        (lambda: tiny_swin(window_size=4), 40),  # stage grids 10 and 5: padded to the window
        (tiny_swin, 24),  # odd grid before patch merging: padded
        (tiny_twins, 40),  # windows padded
        (tiny_twins, 64),
        (tiny_vit, 40),
        (tiny_tnt, 48),
    ],
)
def test_other_input_sizes_run(build, size):
    logits = run(build(), images(size))
    assert logits.shape == (2, 10) and np.isfinite(logits).all()


@pytest.mark.parametrize("build", [tiny_vit, tiny_swin, tiny_twins, tiny_tnt])
def test_dropout_rates_are_configurable_and_eval_is_deterministic(build):
    paddle.seed(5)
    model = build(drop_rate=0.3, attn_drop_rate=0.3, drop_path_rate=0.5)
    rates = [layer.drop_prob for layer in model.sublayers() if type(layer).__name__ == "DropPath"]
    dropouts = [layer.p for layer in model.sublayers() if isinstance(layer, paddle.nn.Dropout)]
    assert max(rates) == pytest.approx(0.5) and min(rates) == 0.0
    assert set(dropouts) == {0.3}
    x = images(32)
    model.train()
    assert not np.allclose(model(x).numpy(), model(x).numpy())
    np.testing.assert_array_equal(run(model, x), run(model, x))


def test_levit_drop_path_is_configurable():
    model = tiny_levit(drop_path_rate=0.2)
    assert {layer.drop_prob for layer in model.sublayers() if type(layer).__name__ == "DropPath"} == {0.2}


def test_distilled_deit_returns_the_mean_of_both_heads():
    model = tiny_vit(distilled=True)
    model.eval()
    x = images(32)
    with paddle.no_grad():
        tokens = model.forward_features(x)
        expected = (model.head(tokens[:, 0]) + model.head_dist(tokens[:, 1])) / 2
        np.testing.assert_allclose(model(x).numpy(), expected.numpy(), rtol=1e-6)
    assert model.classifier_prefixes() == ["head.", "head_dist."]
    model.reset_classifier(3)
    assert run(model, x).shape == (2, 3)


def test_zoo_loader_adapts_position_tables(tmp_path):
    from pcls.utils.state_files import save_state_file
    from pcls.zoo.weights import load_pretrained

    paddle.seed(6)
    source, target = tiny_vit(img_size=32), tiny_vit(img_size=64)
    path = save_state_file({k: v.numpy() for k, v in source.state_dict().items()}, tmp_path / "vit32.pdparams")
    load_pretrained(target, str(path), verbose=False)
    x = images(64)
    np.testing.assert_allclose(run(source, x), run(target, x), rtol=1e-5, atol=1e-5)
