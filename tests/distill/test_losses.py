"""Distillation losses against values computed by hand (numpy formulas written out here, and one worked number)."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from pcls.errors import PclsError  # noqa: E402
from pcls.loss import build_loss  # noqa: E402

S = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], dtype="float32")
T = np.array([[3.0, 2.0, 1.0], [0.0, 1.0, 0.0]], dtype="float32")


def softmax(x, temperature=1.0):
    z = np.exp(x / temperature - (x / temperature).max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def kl(q, p):  # KL(q || p), mean over the batch
    return float((q * (np.log(q) - np.log(p))).sum(axis=-1).mean())


def run(entries, labels=(0, 2), student=S, teacher=T):
    output = {"Student": paddle.to_tensor(student), "Teacher": paddle.to_tensor(teacher)}
    return build_loss(entries)(output, paddle.to_tensor(np.array(labels, dtype="int64")))


def test_soft_label_ce_worked_example():
    # first row by hand: p = softmax(1,2,3) = (.0900, .2447, .6652), q = reversed; -sum q log p = .6652*2.4076 + .2447*1.4076 + .0900*0.4076 = 1.9828
    value = run([{"DistillationCELoss": {"model_name_pairs": [["Student", "Teacher"]]}}],
                student=S[:1], teacher=T[:1], labels=[0])["loss"]
    assert float(value) == pytest.approx(1.9828, abs=1e-3)


def test_soft_label_ce_matches_formula_with_temperature():
    value = run([{"DistillationCELoss": {"model_name_pairs": [["Student", "Teacher"]], "temperature": 2.0}}])
    expected = float(-(softmax(T, 2) * np.log(softmax(S, 2))).sum(-1).mean())
    assert float(value["loss"]) == pytest.approx(expected, rel=1e-5)
    assert "loss_ce_Student_Teacher" in value


def test_kd_is_t_squared_kl():
    value = run([{"DistillationKLDivLoss": {"model_name_pairs": [["Student", "Teacher"]], "temperature": 4.0}}])
    expected = 16.0 * kl(softmax(T, 4), softmax(S, 4))
    assert float(value["loss"]) == pytest.approx(expected, rel=1e-5)


def test_js_divergence():
    value = run([{"DistillationJSDivLoss": {"model_name_pairs": [["Student", "Teacher"]]}}])
    p, q = softmax(S), softmax(T)
    m = (p + q) / 2
    expected = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    assert float(value["loss"]) == pytest.approx(expected, rel=1e-4)


def test_dml_is_symmetric_kl_and_reaches_both_models():
    a = paddle.to_tensor(S, stop_gradient=False)
    b = paddle.to_tensor(T, stop_gradient=False)
    fn = build_loss([{"DistillationDMLLoss": {"model_name_pairs": [["Student", "Teacher"]]}}])
    value = fn({"Student": a, "Teacher": b}, paddle.to_tensor(np.array([0, 1])))["loss"]
    expected = (kl(softmax(T), softmax(S)) + kl(softmax(S), softmax(T))) / 2
    assert float(value) == pytest.approx(expected, rel=1e-5)
    value.backward()
    assert a.grad is not None and b.grad is not None and float(paddle.abs(b.grad).sum()) > 0


def test_teacher_gets_no_gradient_from_soft_label_losses():
    a = paddle.to_tensor(S, stop_gradient=False)
    b = paddle.to_tensor(T, stop_gradient=False)
    fn = build_loss([{"DistillationCELoss": {"model_name_pairs": [["Student", "Teacher"]]}}])
    fn({"Student": a, "Teacher": b}, paddle.to_tensor(np.array([0, 1])))["loss"].backward()
    assert b.grad is None or float(paddle.abs(b.grad).sum()) == 0


def test_gt_ce_skips_unlabeled_samples():
    entries = [{"DistillationGTCELoss": {"model_names": ["Student"], "weight": 0.5}}]
    both = run(entries, labels=(0, 2))["loss"]
    only_first = run(entries, labels=(0, -1))["loss"]
    none = run(entries, labels=(-1, -1))["loss"]
    ce = -np.log(softmax(S))
    assert float(both) == pytest.approx(0.5 * (ce[0, 0] + ce[1, 2]) / 2, rel=1e-5)
    assert float(only_first) == pytest.approx(0.5 * ce[0, 0], rel=1e-5)
    assert float(none) == 0.0


def test_weights_sum_the_terms():
    entries = [{"DistillationCELoss": {"weight": 2.0, "model_name_pairs": [["Student", "Teacher"]]}},
               {"DistillationGTCELoss": {"weight": 1.0, "model_names": ["Student"]}}]
    parts = run(entries)
    assert float(parts["loss"]) == pytest.approx(float(parts["loss_ce_Student_Teacher"]) +
                                                 float(parts["loss_gt_ce_Student"]), rel=1e-6)


@pytest.mark.parametrize("entry, fragment", [
    ({"DistillationCELoss": {"model_name_pairs": [["Student", "Nobody"]]}}, "no model named 'Nobody'"),
    ({"DistillationCELoss": {"model_name_pairs": ["Student"]}}, "model_name_pairs"),
    ({"DistillationKLDivLoss": {"model_name_pairs": [["Student", "Teacher"]], "temperature": 0}}, "temperature"),
    ({"DistillationGTCELoss": {"model_names": "Student"}}, "model_names"),
    ({"DistillationCELoss": {"model_name_pairs": [["Student", "Teacher"]], "key": "backbone"}}, "key: 'backbone'"),
    ({"DistillationDMLLoss": {"model_name_pairs": [["Student", "Teacher"]], "act": "sigmoid"}}, "act: 'sigmoid'"),
])
def test_bad_loss_configs(entry, fragment):
    with pytest.raises(PclsError, match=fragment):
        run([entry])


def test_paddleclas_key_logits_is_accepted():
    plain = run([{"DistillationDMLLoss": {"model_name_pairs": [["Student", "Teacher"]]}},
                 {"DistillationGTCELoss": {"model_names": ["Student"]}}])["loss"]
    keyed = run([{"DistillationDMLLoss": {"model_name_pairs": [["Student", "Teacher"]], "key": "logits",
                                          "act": "softmax"}},
                 {"DistillationGTCELoss": {"model_names": ["Student"], "key": "logits"}}])["loss"]
    assert float(keyed) == pytest.approx(float(plain), rel=1e-6)
