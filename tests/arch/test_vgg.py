"""VGG's PaddleClas `stop_grad_layers` option freezes the first N conv blocks."""

import pytest

paddle = pytest.importorskip("paddle")


def test_stop_grad_layers_freezes_leading_blocks_only():
    import pcls

    with paddle.LazyGuard():
        model = pcls.create_model("VGG11", stop_grad_layers=2)
    frozen = {name.split(".")[0] for name, p in model.named_parameters() if p.stop_gradient}
    assert frozen == {"conv_block_1", "conv_block_2"}
