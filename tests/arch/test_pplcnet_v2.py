"""PP-LCNetV2's deploy conversion: rep() folds the 5x5/3x3(/1x1) depthwise conv-bn branches of stages 3-4 into
the single `dw_conv` and the model gives the same outputs."""

import numpy as np
import pytest

from tests.reference import fill_weights, fixture_input

paddle = pytest.importorskip("paddle")


def _model():
    import pcls

    model = pcls.create_model("PPLCNetV2_small", class_num=10)
    fill_weights(model)  # BN statistics far from (0, 1), so a wrong fold shows
    model.eval()
    return model


def test_rep_preserves_outputs_and_drops_the_branches():
    model = _model()
    x = paddle.to_tensor(fixture_input(64))
    with paddle.no_grad():
        before = model(x).numpy()
        assert model.rep() is model
        after = model(x).numpy()
    keys = list(model.state_dict())
    assert not [k for k in keys if "dw_conv_list" in k]
    # one fused conv with bias per re-parameterised block: stage 3 (4 blocks) and stage 4 (2 blocks) of small
    assert sum(k.endswith("dw_conv.bias") for k in keys) == 6
    assert np.abs(after - before).max() <= 1e-4 * max(1.0, np.abs(before).max())


def test_rep_changes_the_forward_path():
    # the fused conv starts from the rule's random values: before rep() the forward must ignore it
    model = _model()
    x = paddle.to_tensor(fixture_input(64))
    block = model.stages[3][1]
    with paddle.no_grad():
        before = model(x).numpy()
        block.dw_conv.weight.set_value(paddle.zeros_like(block.dw_conv.weight))
        assert np.array_equal(model(x).numpy(), before)
        model.rep()
        assert float(paddle.abs(block.dw_conv.weight).sum()) > 0


def test_rep_twice_is_a_no_op():
    model = _model()
    x = paddle.to_tensor(fixture_input(64))
    with paddle.no_grad():
        once = model.rep()(x).numpy()
        twice = model.rep()(x).numpy()
    assert np.array_equal(once, twice)

