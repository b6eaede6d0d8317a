"""PP-HGNet / PP-HGNetV2 options PaddleClas configs pass: use_lab, use_last_conv, class_expand, lr_mult_list,
and the V2 stem's "SAME"-padded 2x2 paths on odd input sizes."""

import math

import pytest

paddle = pytest.importorskip("paddle")


def _keys(name, **kwargs):
    import pcls

    with paddle.LazyGuard():
        return {k: tuple(v.shape) for k, v in pcls.create_model(name, **kwargs).state_dict().items()}


def test_use_lab_adds_the_affine_blocks_and_can_be_turned_off():
    with_lab = _keys("PPHGNetV2_B0")
    without = _keys("PPHGNetV2_B0", use_lab=False)
    labs = [k for k in with_lab if ".lab." in k or k.startswith("lab.")]
    assert labs and "lab.scale" in with_lab  # the head's own affine block too
    assert set(with_lab) - set(without) == set(labs)
    assert not [k for k in _keys("PPHGNetV2_B4") if "lab" in k]  # B4-B6 are published without


@pytest.mark.parametrize("name, width", [("PPHGNet_tiny", 768), ("PPHGNetV2_B0", 1024)])
def test_head_options(name, width):
    plain = _keys(name, use_last_conv=False, class_num=5)
    assert "last_conv.weight" not in plain and plain["fc.weight"] == (width, 5)
    assert _keys(name, class_expand=512)["last_conv.weight"] == (512, width, 1, 1)


def test_lr_mult_list_must_cover_stem_and_stages():
    import pcls
    from pcls.errors import PclsError

    with pytest.raises(PclsError, match="lr_mult_list needs 5 values"):
        pcls.create_model("PPHGNetV2_B0", lr_mult_list=[1.0, 1.0])
    model = pcls.create_model("PPHGNet_tiny", lr_mult_list=[0.1, 0.2, 0.3, 0.4, 0.5])
    assert model.stages[3].blocks[0].aggregation_conv.conv.weight.optimize_attr["learning_rate"] == 0.5


@pytest.mark.parametrize("size", [63, 64])
def test_v2_forward_on_odd_and_even_sizes(size):
    import pcls

    model = pcls.create_model("PPHGNetV2_B0", class_num=3)
    model.eval()
    with paddle.no_grad():
        assert model(paddle.randn([2, 3, size, size])).shape == [2, 3]
        # the stem's pool and conv paths keep the size, so they concatenate at any size
        assert model.stem(paddle.randn([1, 3, size, size])).shape[-1] == math.ceil(math.ceil(size / 2) / 2)
