"""ShuffleNetV2's channel shuffle interleaves the two halves (kept, transformed), as the reference does."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")


def test_channel_shuffle_interleaves_halves():
    from pcls.arch.shufflenet import channel_shuffle

    x = paddle.arange(8, dtype="float32").reshape([1, 8, 1, 1])
    assert channel_shuffle(x, 2).flatten().numpy().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_stride1_block_passes_first_half_through_to_even_channels():
    from pcls.arch.shufflenet import ShuffleBlock

    paddle.seed(0)
    block = ShuffleBlock(8, "relu")
    block.eval()
    x = paddle.randn([1, 8, 5, 5])
    with paddle.no_grad():
        out = block(x).numpy()
    np.testing.assert_array_equal(out[:, 0::2], x.numpy()[:, :4])


@pytest.mark.parametrize("name,last", [("ShuffleNetV2_x0_25", 512), ("ShuffleNetV2_x2_0", 2048)])
def test_scales_and_small_input(name, last):
    import pcls

    model = pcls.create_model(name, class_num=3)
    model.eval()
    features = model.forward_features(paddle.randn([1, 3, 64, 64]))
    assert features.shape == [1, last, 2, 2]
    assert model.forward_head(features).shape == [1, 3]
