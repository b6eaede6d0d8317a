"""Helpers the family test files share: random input images, an eval-mode forward, and a check that a model
runs at an input size it was not built for, gives finite logits of the right shape, and is deterministic in eval
mode (dropout / drop-path off)."""

import numpy as np


def assert_runs_in_eval(model, size, class_num, batch=2, seed=0):
    import paddle

    model.eval()
    x = paddle.to_tensor(np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype("float32"))
    with paddle.no_grad():
        first, second = model(x).numpy(), model(x).numpy()
    assert first.shape == (batch, class_num) and np.isfinite(first).all()
    np.testing.assert_array_equal(first, second)


def images(size, batch=2, seed=0):
    import paddle

    return paddle.to_tensor(np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype("float32"))


def run(model, x):
    import paddle

    model.eval()
    with paddle.no_grad():
        return model(x).numpy()
