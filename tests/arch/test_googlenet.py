"""GoogLeNet's two output modes: eval returns the main logits only, train adds the two aux heads."""

import pytest

paddle = pytest.importorskip("paddle")


def test_eval_returns_main_logits_and_train_returns_three_heads():
    import pcls

    paddle.seed(0)
    model = pcls.create_model("GoogLeNet", class_num=5)
    x = paddle.randn([2, 3, 224, 224])
    model.eval()
    with paddle.no_grad():
        logits = model(x)
    assert isinstance(logits, paddle.Tensor) and logits.shape == [2, 5]
    model.train()
    outputs = model(x)
    assert isinstance(outputs, list) and [o.shape for o in outputs] == [[2, 5]] * 3
    assert not bool(paddle.allclose(outputs[1], outputs[2]))


def test_reset_classifier_resizes_all_three_heads():
    import pcls

    model = pcls.create_model("GoogLeNet")
    model.reset_classifier(7)
    assert [layer.weight.shape for layer in model.get_classifier()] == [[1024, 7]] * 3
    model.train()
    assert [o.shape for o in model(paddle.randn([1, 3, 224, 224]))] == [[1, 7]] * 3
