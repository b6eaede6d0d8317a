"""HarDNet's harmonic links (layer k reads layers k - 2^i for every 2^i dividing k) and its classifier, which
lives at the end of the flat `base` list."""

import pytest

paddle = pytest.importorskip("paddle")


def test_harmonic_links_follow_powers_of_two():
    from pcls.arch.hardnet import harmonic_links

    assert harmonic_links(1, 64, 14, 1.7)[2] == [0]
    assert harmonic_links(6, 64, 14, 1.7)[2] == [5, 4]
    assert harmonic_links(8, 64, 14, 1.7)[2] == [7, 6, 4, 0]
    # width: growth x grmul per extra link, rounded to even: 14 * 1.7^3 = 68.8 -> 68
    out, inp, _ = harmonic_links(8, 64, 14, 1.7)
    assert out == 68 and inp == 14 + 24 + 40 + 64


def test_reset_classifier_replaces_the_head_linear():
    import pcls

    model = pcls.create_model("HarDNet39_ds")
    model.reset_classifier(4)
    assert model.classifier_prefixes() == ["base.14.3."]
    assert model.get_classifier().weight.shape == [1024, 4]
    model.eval()
    assert model(paddle.randn([1, 3, 64, 64])).shape == [1, 4]
