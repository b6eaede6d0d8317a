"""Next-ViT's deploy conversion: rep() folds every pre-norm BatchNorm (NCB/NTB norms and E-MHSA's pooled
key/value norm) into the linear layer after it, with the same outputs."""

import numpy as np
import pytest

from tests.reference import fill_weights, fixture_input

paddle = pytest.importorskip("paddle")


def _tiny_nextvit():
    from pcls.arch.nextvit import NextViT

    # one block per stage except stage 3 (4 NCB + 1 NTB): every block kind, sr_ratio 8, 4, 2 and 1
    model = NextViT((1, 2, 5, 2), class_num=10)
    model.eval()
    fill_weights(model)  # BN statistics far from (0, 1), so a wrong fold shows
    return model


def test_rep_folds_every_pre_norm_and_keeps_outputs():
    model = _tiny_nextvit()
    x = paddle.to_tensor(fixture_input(64))
    with paddle.no_grad():
        before = model(x).numpy()
        model.rep()
        after = model(x).numpy()
    keys = list(model.state_dict())
    folded = [k for k in keys if k.endswith(("norm1.weight", "norm2.weight", "e_mhsa.norm.weight"))]
    assert not folded
    assert not [k for k in keys if k.startswith("features.") and k.split(".")[2] == "norm"]
    assert np.abs(after - before).max() <= 1e-4 * max(1.0, np.abs(before).max())


def test_rep_twice_is_a_no_op():
    model = _tiny_nextvit()
    x = paddle.to_tensor(fixture_input(64))
    with paddle.no_grad():
        once = model.rep()(x).numpy()
        twice = model.rep()(x).numpy()
    np.testing.assert_array_equal(once, twice)


def test_odd_sizes_downsample_with_ceil_mode():
    import pcls

    model = pcls.create_model("NextViT_small_224", class_num=3)
    model.eval()
    with paddle.no_grad():
        features = model.forward_features(paddle.randn([1, 3, 100, 100]))
    # 100 -> stem /4 = 25 -> 13 -> 7 -> 4: the 2x2 pools keep the odd last row and column
    assert features.shape == [1, 1024, 4, 4]
