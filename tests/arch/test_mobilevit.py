"""The MobileViT families' patch layouts (unfold/fold), their behaviour at input sizes whose feature maps are not
a multiple of the 2x2 patch, and the dilated (output_stride) variants of MobileViTV2/V3."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")


def _map(shape):
    return paddle.to_tensor(np.random.default_rng(0).standard_normal(shape).astype("float32"))


def test_token_layout_is_one_sequence_of_patches_per_pixel_position():
    from pcls.arch.layers.mobilevit_blocks import fold_patches, unfold_patches

    x = _map([2, 3, 4, 6])  # 2 x 3 patches of 2x2
    tokens, info = unfold_patches(x, 2, 2)
    assert tokens.shape == [2 * 4, 6, 3]
    # batch 1, pixel (1, 0) inside the patch, patch (row 1, col 2), channel 2
    assert float(tokens[1 * 4 + 1 * 2 + 0, 1 * 3 + 2, 2]) == float(x[1, 2, 1 * 2 + 1, 2 * 2 + 0])
    np.testing.assert_array_equal(fold_patches(tokens, info, 2, 2).numpy(), x.numpy())


def test_patch_map_layout_matches_unfold():
    import paddle.nn.functional as F

    from pcls.arch.layers.mobilevit_blocks import fold_patch_map, unfold_patch_map

    x = _map([2, 3, 4, 6])
    patches, info = unfold_patch_map(x, 2, 2)
    # the layout of paddle's im2col unfold: channel-major, then the pixel inside the patch; patches row-major
    expected = F.unfold(x, [2, 2], strides=[2, 2]).reshape([2, 3, 4, 6])
    np.testing.assert_array_equal(patches.numpy(), expected.numpy())
    np.testing.assert_array_equal(fold_patch_map(patches, info, 2, 2).numpy(), x.numpy())


def test_odd_maps_are_resized_to_the_patch_grid_and_back():
    from pcls.arch.layers.mobilevit_blocks import fold_patch_map, fold_patches, unfold_patch_map, unfold_patches

    x = _map([1, 3, 5, 7])
    tokens, info = unfold_patches(x, 2, 2)
    assert tokens.shape == [4, 3 * 4, 3]  # resized to 6 x 8
    assert fold_patches(tokens, info, 2, 2).shape == [1, 3, 5, 7]
    patches, info = unfold_patch_map(x, 2, 2)
    assert patches.shape == [1, 3, 4, 12]
    assert fold_patch_map(patches, info, 2, 2).shape == [1, 3, 5, 7]


@pytest.mark.parametrize("name", ["MobileViT_XXS", "MobileViTV2_x0_5", "MobileViTV3_XXS", "MobileViTV3_x0_5"])
def test_any_input_size_works(name):
    import pcls

    model = pcls.create_model(name, class_num=5)
    model.eval()
    with paddle.no_grad():
        logits = model(_map([1, 3, 100, 100])).numpy()  # feature maps 25, 13, 7, 4: odd ones get resized
    assert logits.shape == (1, 5) and np.isfinite(logits).all()


@pytest.mark.parametrize("name", ["MobileViTV2_x0_5", "MobileViTV3_x0_5", "MobileViTV3_XXS"])
def test_output_stride_dilates_instead_of_striding(name):
    import pcls

    with paddle.LazyGuard():
        plain = {k: v.shape for k, v in pcls.create_model(name).state_dict().items()}
    model = pcls.create_model(name, output_stride=16)
    assert {k: v.shape for k, v in model.state_dict().items()} == plain  # the same weights load
    model.eval()
    with paddle.no_grad():
        features = model.forward_features(_map([1, 3, 128, 128]))
    assert features.shape[2:] == [8, 8]  # 128 / 16, not 128 / 32
