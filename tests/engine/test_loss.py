"""Losses against values computed by hand from the formulas (log-softmax of small logits)."""

import math

import numpy as np
import paddle
import pytest

from pcls.errors import PclsError
from pcls.loss import build_loss, list_losses

LOGITS = [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def log_softmax_row(row):
    m = math.log(sum(math.exp(v) for v in row))
    return [v - m for v in row]


LS = [log_softmax_row(r) for r in LOGITS]


def _loss(entries, target, logits=LOGITS):
    return float(build_loss(entries)(paddle.to_tensor(logits), target)["loss"])


def test_ce_hard_labels():
    expected = -(LS[0][0] + LS[1][1]) / 2
    assert _loss([{"CELoss": {}}], paddle.to_tensor([0, 1])) == pytest.approx(expected, rel=1e-6)
    # PaddleClas lists give [N, 1] labels too
    assert _loss([{"CELoss": None}], paddle.to_tensor([[0], [1]])) == pytest.approx(expected, rel=1e-6)


def test_ce_label_smoothing():
    eps = 0.1
    total = 0.0
    for row, label in zip(LS, (0, 1)):
        target = [eps / 3 + (1 - eps) * (c == label) for c in range(3)]
        total += -sum(t * v for t, v in zip(target, row))
    got = _loss([{"CELoss": {"epsilon": eps}}], paddle.to_tensor([0, 1]))
    assert got == pytest.approx(total / 2, rel=1e-6)


def test_ce_soft_targets_from_mixup():
    soft = [[0.7, 0.3, 0.0], [0.0, 0.4, 0.6]]
    expected = -sum(t * v for srow, lrow in zip(soft, LS) for t, v in zip(srow, lrow)) / 2
    got = _loss([{"CELoss": {}}], paddle.to_tensor(soft, dtype="float32"))
    assert got == pytest.approx(expected, rel=1e-6)
    assert _loss([{"SoftTargetCrossEntropy": {}}], paddle.to_tensor(soft, dtype="float32")) == pytest.approx(
        expected, rel=1e-6)


def test_weights_sum_and_dict_outputs():
    labels = paddle.to_tensor([0, 1])
    parts = build_loss([{"CELoss": {"weight": 0.5}}, {"MixCELoss": {"weight": 2.0}}])(
        {"logits": paddle.to_tensor(LOGITS)}, labels)
    ce = -(LS[0][0] + LS[1][1]) / 2
    assert float(parts["CELoss"]) == pytest.approx(0.5 * ce, rel=1e-6)
    assert float(parts["loss"]) == pytest.approx(2.5 * ce, rel=1e-6)


def test_ce_gradient_matches_softmax_minus_onehot():
    logits = paddle.to_tensor(LOGITS, stop_gradient=False)
    build_loss([{"CELoss": {}}])(logits, paddle.to_tensor([0, 1]))["loss"].backward()
    probs = np.exp(np.array(LS))
    expected = (probs - np.eye(3)[[0, 1]]) / 2
    np.testing.assert_allclose(logits.grad.numpy(), expected, rtol=1e-5, atol=1e-7)


def test_bad_loss_config_is_one_clear_error():
    with pytest.raises(PclsError, match="unknown loss 'CELos'.*did you mean CELoss"):
        build_loss([{"CELos": {}}])
    with pytest.raises(PclsError, match="bad parameter"):
        build_loss([{"CELoss": {"smoothing": 0.1}}])
    with pytest.raises(PclsError, match="epsilon"):
        build_loss([{"CELoss": {"epsilon": 1.5}}])


def test_registry_lists_paddleclas_names():
    assert {"CELoss", "MixCELoss", "SoftTargetCrossEntropy"} <= set(list_losses())


def test_googlenet_loss_weights_auxiliary_heads_by_0_3():
    import numpy as np
    import paddle

    from pcls.loss import build_loss

    main = np.array([[2.0, 0.0, 0.0]], dtype="float32")
    aux1 = np.array([[0.0, 1.0, 0.0]], dtype="float32")
    aux2 = np.array([[0.0, 0.0, 3.0]], dtype="float32")
    target = paddle.to_tensor(np.array([0]))

    def ce(z):  # by hand: -log softmax(z)[0]
        return float(-(z[0, 0] - np.log(np.exp(z[0]).sum())))

    out = [paddle.to_tensor(a) for a in (main, aux1, aux2)]
    value = float(build_loss([{"GoogLeNetLoss": {"weight": 1.0}}])(out, target)["loss"])
    assert abs(value - (ce(main) + 0.3 * ce(aux1) + 0.3 * ce(aux2))) < 1e-5
    eval_value = float(build_loss([{"GoogLeNetLoss": {}}])(paddle.to_tensor(main), target)["loss"])
    assert abs(eval_value - ce(main)) < 1e-6
