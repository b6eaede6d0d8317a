"""MobileNetV4 behaviour beyond the reference fixtures: the four UIB instances and where their stride sits,
Mobile MQA's shared, sub-sampled key/value head, layer scales only on the hybrids, the PaddleClas options
and other input sizes."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

import pcls  # noqa: E402
from pcls.arch.mobilenet_v4 import UIB, MobileMQA  # noqa: E402
from tests.arch.eval_checks import assert_runs_in_eval  # noqa: E402


def _x(channels, size, batch=1, seed=0):
    values = np.random.default_rng(seed).standard_normal((batch, channels, size, size))
    return paddle.to_tensor(values.astype("float32"))


@pytest.mark.parametrize(
    "start, mid, strided",
    [(0, 3, "dw_mid"), (3, 0, "dw_start"), (3, 5, "dw_mid"), (0, 0, None)],
    ids=["inverted-bottleneck", "convnext-like", "extra-dw", "ffn"],
)
def test_uib_instances_put_the_stride_on_the_right_depthwise_conv(start, mid, strided):
    stride = 2 if strided else 1
    block = UIB(8, start, mid, stride, 8, 2.0, "relu")
    assert (block.dw_start is not None, block.dw_mid is not None) == (bool(start), bool(mid))
    if strided:
        assert getattr(block, strided)._sub_layers["conv"]._stride == [2, 2]
    block.eval()
    with paddle.no_grad():
        out = block(_x(8, 8))
    assert out.shape == [1, 8, 8 // stride, 8 // stride]
    assert block.has_skip == (stride == 1)


def test_mqa_shares_one_key_value_head_from_a_subsampled_map():
    mqa = MobileMQA(16, num_heads=4, key_dim=8, kv_stride=2, layer_scale=1e-5)
    shapes = {}

    def record(name):
        def hook(layer, inputs, output):
            shapes[name] = output.shape

        return hook

    for name in ("query_proj", "key_proj", "value_proj"):
        getattr(mqa, name).register_forward_post_hook(record(name))
    mqa.eval()
    x = _x(16, 8)
    with paddle.no_grad():
        out = mqa(x)
    assert shapes == {"query_proj": [1, 32, 8, 8], "key_proj": [1, 8, 4, 4], "value_proj": [1, 8, 4, 4]}
    # the residual branch starts scaled by 1e-5: the block is nearly the identity at initialisation
    assert out.shape == x.shape and float((out - x).abs().max()) < 1e-2


def test_only_the_hybrids_have_layer_scales():
    with paddle.LazyGuard():
        conv = pcls.create_model("MobileNetV4_conv_medium").state_dict()
        hybrid = pcls.create_model("MobileNetV4_hybrid_medium").state_dict()
    assert not any("layer_scale" in key for key in conv)
    assert sum("layer_scale" in key for key in hybrid) == 30  # every block but the fused stem and the last conv


def test_paddleclas_options_are_accepted():
    with paddle.LazyGuard():
        model = pcls.create_model("MobileNetV4_conv_small", class_num=5, drop_rate=0.3, drop_path_rate=0.1,
                                  class_expand=640, use_ssld=True)
    assert model.classifier.weight.shape == [640, 5] and model.dropout.p == 0.3
    assert model.blocks[10].drop_path.drop_prob == pytest.approx(0.1 * 10 / 17)


@pytest.mark.parametrize("size", [96, 160])
def test_other_input_sizes_run_and_eval_is_deterministic(size):
    model = pcls.create_model("MobileNetV4_hybrid_medium", class_num=10, drop_rate=0.2)
    assert_runs_in_eval(model, size, 10, seed=3)
