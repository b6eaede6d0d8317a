"""DSNet: the bilinear resizing between its two streams equals Paddle's bilinear interpolation and, unlike
it, runs in Paddle Inference on CPU after export; the model runs at input sizes other than 224."""

import os
from pathlib import Path

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")


@pytest.mark.parametrize("src,dst", [((56, 57), (7, 9)), ((14, 14), (7, 7)), ((7, 7), (3, 3)), ((3, 3), (7, 7)),
                                     ((2, 2), (1, 1)), ((5, 4), (5, 4)), ((10, 3), (3, 8))])
def test_bilinear_resize_equals_paddle_interpolate(src, dst):
    import paddle.nn.functional as F

    from pcls.arch.layers.resize import bilinear_resize

    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((2, 3, *src)).astype("float32"))
    expected = F.interpolate(x, size=dst, mode="bilinear", align_corners=False).numpy()
    np.testing.assert_allclose(bilinear_resize(x, dst).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_bilinear_resize_runs_in_paddle_inference(tmp_path):
    from pcls.arch.layers.resize import bilinear_resize
    from pcls.deploy.export.verify import run_paddle_inference
    from pcls.deploy.spec import MODEL_PREFIX

    class DownUp(paddle.nn.Layer):
        def forward(self, x):
            return bilinear_resize(bilinear_resize(x, (3, 3)), (7, 7))

    layer = DownUp()
    x = np.random.default_rng(0).standard_normal((2, 4, 7, 7)).astype("float32")
    expected = layer(paddle.to_tensor(x)).numpy()
    spec = paddle.static.InputSpec([None, 4, 7, 7], "float32", "x")
    paddle.jit.save(layer, os.path.join(tmp_path, MODEL_PREFIX), input_spec=[spec])
    np.testing.assert_allclose(run_paddle_inference(Path(tmp_path), x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [96, 160])
def test_runs_at_other_input_sizes(size):
    import pcls

    model = pcls.create_model("DSNet_tiny", class_num=10, drop_path_rate=0.2, use_ssld=True)
    model.eval()
    with paddle.no_grad():
        out = model(paddle.randn([1, 3, size, size]))
    assert out.shape == [1, 10] and np.isfinite(out.numpy()).all()
