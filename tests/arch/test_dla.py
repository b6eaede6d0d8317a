"""DLA's tree aggregation: a level root concatenates both blocks' outputs plus the downsampled level input and
every earlier sub-tree output; the grouped 'x' variants widen the bottleneck by cardinality x base width."""

import pytest

paddle = pytest.importorskip("paddle")


def test_root_widths_count_every_aggregated_child():
    import pcls

    with paddle.LazyGuard():
        model = pcls.create_model("DLA34")
    # level3 (two levels, level root): left tree root 2*128; right root 2*128 + 128 (left tree) + 64 (input)
    assert model.level3.tree1.root.conv.weight.shape == [128, 256, 1, 1]
    assert model.level3.tree2.root.conv.weight.shape == [128, 448, 1, 1]


def test_grouped_bottleneck_width():
    from pcls.arch.dla import DlaBottleneck

    block = DlaBottleneck(32, 128, cardinality=64, base_width=4)  # floor(128 * 4/64) * 64 / 2 = 256 wide
    assert block.conv2.weight.shape == [256, 4, 3, 3] and block.conv2._groups == 64


def test_forward_small_input():
    import pcls

    model = pcls.create_model("DLA46_c", class_num=5)
    model.eval()
    features = model.forward_features(paddle.randn([1, 3, 64, 64]))
    assert features.shape == [1, 256, 2, 2] and model.forward_head(features).shape == [1, 5]
