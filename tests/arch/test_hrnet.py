"""HRNet's PaddleClas `has_se` option and its multi-resolution fuse on a small input."""

import pytest

paddle = pytest.importorskip("paddle")


def test_has_se_adds_squeeze_excitation_to_every_residual_block():
    import pcls

    with paddle.LazyGuard():
        plain = pcls.create_model("HRNet_W18_C")
        with_se = pcls.create_model("HRNet_W18_C", has_se=True)
    extra = set(with_se.state_dict()) - set(plain.state_dict())
    assert extra and all(".se.fc_squeeze." in k or ".se.fc_excitation." in k for k in extra)
    # 4 layer1 + 4 head bottlenecks + 4 basic blocks per branch per module: (1*2 + 4*3 + 3*4) * 4
    assert len({k.split(".se.")[0] for k in extra}) == 4 + 4 + (2 + 12 + 12) * 4
    assert set(plain.state_dict()) <= set(with_se.state_dict())


def test_forward_on_small_input():
    import pcls

    model = pcls.create_model("HRNet_W18_C", class_num=4)
    model.eval()
    with paddle.no_grad():
        out = model(paddle.randn([2, 3, 64, 64]))
    assert out.shape == [2, 4]
