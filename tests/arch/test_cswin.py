"""CSWin Transformer behaviour beyond the reference fixtures: cross-shaped (stripe) attention stays inside
its stripes, the last stage attends globally, other input sizes run."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from pcls.arch.cswin import CSWinTransformer, LePEAttention  # noqa: E402
from tests.arch.eval_checks import assert_runs_in_eval  # noqa: E402


@pytest.fixture(autouse=True)
def _fixed_weights():
    paddle.seed(0)  # layers built by a test get the same weights every run


def tiny(**kwargs):
    arch = dict(embed_dim=16, depths=(1, 1, 1, 1), split_size=(1, 2, 2, 2), num_heads=(2, 2, 2, 2), class_num=10)
    return CSWinTransformer(**{**arch, **kwargs})


def _reached(attn, grid, token, which):
    """The output tokens of `attn` that change when token (row, col) of input `which` (0=q, 1=k, 2=v) changes."""
    attn.eval()
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((1, grid * grid, 4)).astype("float32") for _ in range(3)]
    changed = [t.copy() for t in inputs]
    changed[which][0, token[0] * grid + token[1]] += 1.0
    with paddle.no_grad():
        a = attn(*(paddle.to_tensor(t) for t in inputs), grid, grid).numpy()
        b = attn(*(paddle.to_tensor(t) for t in changed), grid, grid).numpy()
    moved = np.abs(a - b).max(axis=1)[0] > 1e-6  # [H, W] of the [B, C, H, W] output
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(moved))}


@pytest.mark.parametrize("which", [1, 2])
def test_vertical_stripes_only_mix_tokens_of_the_same_stripe(which):
    attn = LePEAttention(4, 2, split_size=2, axis=0)
    reached = _reached(attn, 6, (1, 3), which)
    # a stripe is 2 columns wide and full height: columns 2 and 3 hold the changed token
    assert reached and {c for _, c in reached} <= {2, 3}
    assert {r for r, _ in reached} == set(range(6))  # every row of the stripe attends to it


def test_horizontal_stripes_and_the_global_branch():
    horizontal = _reached(LePEAttention(4, 2, split_size=2, axis=1), 6, (3, 1), 1)
    assert {r for r, _ in horizontal} == {2, 3} and {c for _, c in horizontal} == set(range(6))
    assert len(_reached(LePEAttention(4, 2, split_size=2, axis=None), 6, (3, 1), 1)) == 36


def test_last_stage_has_one_branch_and_others_two():
    model = tiny()
    assert [len(stage.blocks[0].attns) for stage in model.stages] == [2, 2, 2, 1]


@pytest.mark.parametrize("size", [32, 56, 72])
def test_other_input_sizes_run_and_eval_is_deterministic(size):
    model = tiny(drop_rate=0.1, attn_drop_rate=0.1, drop_path_rate=0.2)
    assert_runs_in_eval(model, size, 10, seed=1)
