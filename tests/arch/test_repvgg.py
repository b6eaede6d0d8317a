"""RepVGG's deploy conversion: rep() folds the 3x3, 1x1 and identity-BN branches into one 3x3 conv that gives
the same outputs, including grouped convs and the SE variant."""

import numpy as np
import pytest

from tests.reference import fill_weights, fixture_input

paddle = pytest.importorskip("paddle")


def _tiny_repvgg(**kwargs):
    from pcls.arch.repvgg import RepVGG

    # stage widths 16/32/64/128, blocks 1/2/2/1: stride-2 blocks (no identity) and identity blocks
    return RepVGG((1, 2, 2, 1), (0.25, 0.25, 0.25, 0.25), class_num=10, **kwargs)


def _check_rep(model, size=32):
    model.eval()
    fill_weights(model)  # BN statistics far from (0, 1), so a wrong fold shows
    x = paddle.to_tensor(fixture_input(size))
    with paddle.no_grad():
        before = model(x).numpy()
        model.rep()
        after = model(x).numpy()
    keys = list(model.state_dict())
    assert not [k for k in keys if any(b in k for b in ("rbr_dense", "rbr_1x1", "rbr_identity"))]
    assert [k for k in keys if "rbr_reparam.bias" in k]
    assert np.abs(after - before).max() <= 1e-4 * max(1.0, np.abs(before).max())
    return keys


def test_rep_preserves_outputs_plain():
    keys = _check_rep(_tiny_repvgg())
    # one fused conv (weight + bias) per block: stage0 + 6 blocks, plus the linear
    assert sum(k.endswith("rbr_reparam.weight") for k in keys) == 7
    assert not [k for k in keys if ".se." in k]


def test_rep_preserves_outputs_grouped_with_se():
    model = _tiny_repvgg(groups=2, grouped_layers=(2, 4), use_se=True)
    assert model.stage2[0].rbr_dense.conv.weight.shape == [32, 8, 3, 3]  # layer 2: grouped
    assert model.stage2[1].rbr_dense.conv.weight.shape == [32, 32, 3, 3]  # layer 3: dense
    keys = _check_rep(model)
    assert [k for k in keys if k.endswith(".se.down.weight")]  # SE survives the conversion


def test_rep_twice_is_a_no_op():
    model = _tiny_repvgg()
    model.eval()
    model.rep()
    model.rep()
    assert model(paddle.randn([2, 3, 32, 32])).shape == [2, 10]


@pytest.mark.slow
def test_rep_full_size_a0():
    import pcls

    _check_rep(pcls.create_model("RepVGG_A0"), size=64)
