"""CvT behaviour beyond the reference fixtures: convolutional projections sub-sample keys/values, only the
last stage has a class token (read by the head), QuickGELU, per-stage drop-path rates, any input size."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

import pcls  # noqa: E402
from pcls.arch.cvt import ConvAttention, CvT, QuickGELU  # noqa: E402
from tests.arch.eval_checks import assert_runs_in_eval  # noqa: E402


def tiny(**kwargs):
    arch = dict(embed_dims=(8, 16, 24), depths=(1, 1, 2), num_heads=(1, 2, 3), class_num=10)
    return CvT(**{**arch, **kwargs})


def test_keys_and_values_come_from_a_stride_2_map_queries_from_the_full_map():
    attn = ConvAttention(8, 2, True, 0.0, 0.0, has_cls_token=True)
    attn.eval()
    shapes = {}
    def record(name):
        def hook(layer, inputs, output):
            shapes[name] = output.shape[1]  # returns None: the output is kept

        return hook

    for name in ("q", "k", "v"):
        getattr(attn, f"proj_{name}").register_forward_post_hook(record(name))
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((1, 1 + 8 * 8, 8)).astype("float32"))
    with paddle.no_grad():
        assert attn(x, 8, 8).shape == [1, 65, 8]
    assert shapes == {"q": 1 + 64, "k": 1 + 16, "v": 1 + 16}  # the class token joins every projection


def test_only_the_last_stage_has_a_class_token_and_the_head_reads_it():
    model = tiny()
    assert [model.stage0.cls_token, model.stage1.cls_token] == [None, None]
    assert model.stage2.cls_token.shape == [1, 1, 24]
    model.eval()
    x = paddle.to_tensor(np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype("float32"))
    with paddle.no_grad():
        assert model.forward_features(x).shape == [2, 24]


def test_quick_gelu_is_close_to_gelu():
    x = paddle.linspace(-4, 4, 81)
    quick, exact = QuickGELU()(x).numpy(), paddle.nn.functional.gelu(x).numpy()
    assert np.abs(quick - exact).max() < 0.03 and np.abs(quick - exact).max() > 0  # an approximation, not GELU


def test_drop_path_rates_are_per_stage_and_a_single_rate_drives_the_last_stage():
    def rates(model):
        return [[b.drop_path.drop_prob for b in getattr(model, f"stage{i}").blocks] for i in range(3)]

    assert rates(tiny()) == [[0.0], [0.0], [0.0, 0.1]]
    assert rates(tiny(drop_path_rate=0.4)) == [[0.0], [0.0], [0.0, 0.4]]
    assert rates(tiny(drop_path_rate=(0.2, 0.0, 0.3))) == [[0.0], [0.0], [0.0, 0.3]]
    with paddle.LazyGuard():  # no weights allocated
        assert rates(pcls.create_model("CvT_W24_384", class_num=3))[2][-1] == pytest.approx(0.3)


@pytest.mark.parametrize("size", [48, 80])
def test_other_input_sizes_run_and_eval_is_deterministic(size):
    model = tiny(drop_rate=0.1, attn_drop_rate=0.1)
    assert_runs_in_eval(model, size, 10, seed=2)
