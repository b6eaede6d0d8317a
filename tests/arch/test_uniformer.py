"""UniFormer's variants: layer scale only in the global-attention stages (UniFormer_base_ls), the overlapping
conv-BN patch embeddings of the "plus" models, and inputs of any size (no position tables)."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")


def _tiny(**kwargs):
    from pcls.arch.uniformer import UniFormer

    return UniFormer(depth=(1, 1, 1, 1), class_num=3, **kwargs)


def test_layer_scale_is_in_the_attention_stages_only():
    gammas = {k: v.numpy() for k, v in _tiny(layer_scale=1e-6).state_dict().items() if ".gamma_" in k}
    assert sorted(gammas) == ["blocks3.0.gamma_1", "blocks3.0.gamma_2", "blocks4.0.gamma_1", "blocks4.0.gamma_2"]
    assert all(np.allclose(v, 1e-6) for v in gammas.values())
    assert not [k for k in _tiny().state_dict() if ".gamma_" in k]


def test_layer_scale_scales_the_attention_and_mlp_branches():
    model = _tiny(layer_scale=1.0)
    model.eval()
    block = model.blocks3[0]
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((1, 320, 4, 4)).astype("float32"))
    with paddle.no_grad():
        full = block(x).numpy()
        block.gamma_1.set_value(np.zeros(320, "float32"))
        block.gamma_2.set_value(np.zeros(320, "float32"))
        gated = block(x).numpy()
        expected = (x + block.pos_embed(x)).numpy()  # both branches switched off: only the position conv remains
    np.testing.assert_allclose(gated, expected, rtol=1e-6, atol=1e-6)
    assert np.abs(full - gated).max() > 1e-3


@pytest.mark.parametrize("conv_stem", [False, True])
def test_any_input_size_gives_a_32x_downsampled_map(conv_stem):
    model = _tiny(conv_stem=conv_stem)
    model.eval()
    with paddle.no_grad():
        features = model.forward_features(paddle.randn([1, 3, 96, 128]))
        logits = model(paddle.randn([1, 3, 100, 100]))
    assert features.shape == [1, 512, 3, 4]
    assert logits.shape == [1, 3]
    keys = model.state_dict()
    assert ("patch_embed1.proj.3.weight" in keys) == conv_stem  # overlapping 3x3 stem: two conv-BN pairs
