"""EfficientNetV2 and TinyNet (EfficientNet's blocks with TinyNet's fixed stem and head): the TensorFlow
"SAME" padding pads a stride-2 conv only at the bottom/right, the fused blocks keep the residual only where
stride and width allow it, and TinyNet's stem/head stay at 32/1280 channels whatever the width."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")


def test_stride2_same_padding_pads_only_bottom_right():
    from pcls.arch.efficientnet_v2 import EfficientNetV2

    model = EfficientNetV2(class_num=10)
    conv = model._stem._conv_stem._conv
    x = np.zeros((1, 3, 8, 8), "float32")
    x[0, :, 2, 2] = 1.0
    conv.weight.set_value(np.ones(conv.weight.shape, "float32"))
    with paddle.no_grad():
        out = conv(paddle.to_tensor(x)).numpy()[0, 0]
    # windows start at rows/cols 0, 2, 4, ...: pixel 2 lies in the first two. Symmetric padding 1 would start
    # them at -1, 1, 3, ... and put it in the second window only.
    assert out.shape == (4, 4)
    np.testing.assert_array_equal(out[:2, :2], np.full((2, 2), 3.0))
    assert float(out.sum()) == 12.0


def test_residual_only_where_shape_allows_and_options():
    import pcls

    with paddle.LazyGuard():
        model = pcls.create_model("EfficientNetV2_S", class_num=10, drop_path_rate=0.3, dropout_prob=0.1,
                                  use_ssld=True)
    blocks = list(model._blocks)
    assert [b.use_residual for b in blocks[:3]] == [True, True, False]  # 24->24, 24->24, 24->48 stride 2
    assert blocks[-1].drop_path.drop_prob == pytest.approx(0.3 * (len(blocks) - 1) / len(blocks))


@pytest.mark.parametrize("name", ["TinyNet_C", "TinyNet_E"])
def test_tinynet_keeps_stem_and_head_width(name):
    import pcls

    with paddle.LazyGuard():
        model = pcls.create_model(name, class_num=10, use_ssld=True, drop_connect_rate=0.1)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert state["_ef._conv_stem._conv._conv._conv.weight"][0] == 32
    assert state["_conv._conv._conv.weight"][0] == 1280
    assert state["_fc.weight"] == (1280, 10)
