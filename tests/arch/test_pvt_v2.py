"""PVT v2 behaviour beyond the reference fixtures: spatial-reduction attention shrinks keys/values by the
stage's ratio, the linear variant pools them to a fixed 7x7 whatever the input, and any input size runs."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from pcls.arch.pvt_v2 import PVTAttention, PVTv2  # noqa: E402
from tests.arch.eval_checks import assert_runs_in_eval  # noqa: E402


def tiny(**kwargs):
    arch = dict(embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 3, 4), depths=(1, 1, 1, 1), class_num=10)
    return PVTv2(**{**arch, **kwargs})


def _key_count(attn, side):
    """How many key/value tokens `attn` attends to for a side x side map (captured from its kv projection)."""
    seen = []
    hook = attn.kv.register_forward_post_hook(lambda layer, inputs, output: seen.append(output.shape[1]))
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((1, side * side, 8)).astype("float32"))
    with paddle.no_grad():
        out = attn(x, side, side)
    hook.remove()
    assert out.shape == [1, side * side, 8]
    return seen[0]


@pytest.mark.parametrize("side", [14, 28])
def test_spatial_reduction_attends_to_a_map_shrunk_by_the_ratio(side):
    attn = PVTAttention(8, 1, True, None, 0.0, 0.0, sr_ratio=2, linear=False)
    assert _key_count(attn, side) == (side // 2) ** 2


@pytest.mark.parametrize("side", [14, 28, 56])
def test_linear_attention_always_attends_to_7x7_pooled_keys(side):
    attn = PVTAttention(8, 1, True, None, 0.0, 0.0, sr_ratio=8, linear=True)
    assert _key_count(attn, side) == 49


def test_last_stage_without_reduction_attends_to_every_token():
    attn = PVTAttention(8, 1, True, None, 0.0, 0.0, sr_ratio=1, linear=False)
    assert not hasattr(attn, "sr") and _key_count(attn, 7) == 49


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("size", [64, 96])
def test_other_input_sizes_run_and_eval_is_deterministic(linear, size):
    model = tiny(linear=linear, drop_rate=0.1, attn_drop_rate=0.1, drop_path_rate=0.2)
    assert_runs_in_eval(model, size, 10, seed=1)
