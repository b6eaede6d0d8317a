"""PaddleClas 2.6's distillation methods against numpy formulas written out here, value and gradient (central
differences in float64) within 1e-5, on fixed random logits/features, plus behaviour the numbers alone do not
show (masking, errors, training steps). The formulas follow the papers where PaddleClas 2.6 does, and its code
where it departs from them (RKD's mean over all pairs, the batch label as DKD/WSL/SKD's target class);
tests/loss/test_paddleclas_parity.py measures the same losses against PaddleClas's own numbers. AFD's
connectors: tests/reference/distill/afd_connectors_paddleclas26.npz holds what PaddleClas 2.6's
LinearTransformTeacher/Student give (outputs and input gradients) on fixed inputs and weights.
"""

from pathlib import Path

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from pcls.errors import PclsError  # noqa: E402
from pcls.loss import build_loss  # noqa: E402

FIXTURE = Path(__file__).parents[1] / "reference" / "distill" / "afd_connectors_paddleclas26.npz"
RNG = np.random.default_rng(7)
N, C = 5, 7
STUDENT = RNG.standard_normal((N, C)) * 2
TEACHER = RNG.standard_normal((N, C)) * 3
LABELS = np.array([0, 3, 6, 2, 3])
PAIR = [["Student", "Teacher"]]


@pytest.fixture(autouse=True)
def float64():
    paddle.set_default_dtype("float64")
    yield
    paddle.set_default_dtype("float32")


# -- references (numpy, float64) ----------------------------------------------------------------------
def softmax(x, axis=-1):
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def log_softmax(x):
    return np.log(softmax(x))


def ce(logits, labels):
    return -log_softmax(logits)[np.arange(len(labels)), labels]


def dkd(s, t, labels, T=1.0, alpha=1.0, beta=1.0):
    p_s, p_t = softmax(s / T), softmax(t / T)
    target = np.eye(s.shape[1], dtype=bool)[labels]
    b_s = np.stack([p_s[target], 1 - p_s[target]], 1)
    b_t = np.stack([p_t[target], 1 - p_t[target]], 1)
    tckd = (b_t * (np.log(b_t) - np.log(b_s))).sum()
    nckd = 0.0
    for i in range(len(s)):  # KL among the non-target classes only
        keep = ~target[i]
        q, p = softmax(t[i, keep] / T), softmax(s[i, keep] / T)
        nckd += (q * (np.log(q) - np.log(p))).sum()
    return (alpha * tckd + beta * nckd) * T * T / len(s)


def wsl(s, t, labels, T=2.0):
    soft = -(softmax(t / T) * log_softmax(s / T)).sum(1)
    weight = 1 - np.exp(-np.maximum(ce(s, labels) / (ce(t, labels) + 1e-7), 0))  # (detached in the loss)
    return T * T * (weight * soft).mean(), weight


def skd(s, t, labels, T=1.0, multiplier=2.0, alpha=0.9):
    def sphere(x):
        return (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-7) * multiplier
    s_n, t_n = sphere(s), sphere(t)
    kd = -(softmax(t_n / T) * log_softmax(s_n / T)).sum(1).mean() * T * T
    return alpha * kd + (1 - alpha) * ce(s_n, labels).mean()


def pearson_rows(a, b):
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-8)


def dist(s, t, beta=1.0, gamma=1.0, T=1.0):
    y_s, y_t = softmax(s / T), softmax(t / T)
    return T * T * (beta * (1 - pearson_rows(y_s, y_t).mean()) + gamma * (1 - pearson_rows(y_s.T, y_t.T).mean()))


def rkd(s, t):
    def distances(e):
        d = np.sqrt(np.maximum(((e[:, None] - e[None]) ** 2).sum(-1), 1e-12))
        return d / (d.mean() + 1e-12)  # the mean over all N x N entries, the sqrt(eps) diagonal included

    def angles(e):
        diff = e[None] - e[:, None]
        unit = diff / np.maximum(np.linalg.norm(diff, axis=2, keepdims=True), 1e-12)
        return np.einsum("ijc,ikc->ijk", unit, unit).reshape(-1)

    def huber(a, b):
        x = np.abs(a - b)
        return np.where(x < 1, 0.5 * x * x, x - 0.5).mean()

    return huber(angles(s), angles(t)), huber(distances(s), distances(t))


def conv3x3(x, weight, bias):
    """[N, C, H, W] x [O, C, 3, 3], padding 1."""
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    h, w = x.shape[2:]
    out = sum(np.einsum("nchw,oc->nohw", padded[:, :, i:i + h, j:j + w], weight[:, :, i, j])
              for i in range(3) for j in range(3))
    return out + bias[None, :, None, None]


# -- helpers --------------------------------------------------------------------------------------------
def evaluate(entries, student, teacher, labels=LABELS):
    """(total loss, its gradient with respect to the student input) through build_loss."""
    s = paddle.to_tensor(student, stop_gradient=False)
    loss = build_loss(entries)({"Student": s, "Teacher": paddle.to_tensor(teacher)}, paddle.to_tensor(labels))
    loss["loss"].backward()
    return float(loss["loss"]), s.grad.numpy()


def numeric_grad(fn, x, h=1e-6):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += h
        down[index] -= h
        grad[index] = (fn(up) - fn(down)) / (2 * h)
    return grad


def check(entries, reference, student=STUDENT, teacher=TEACHER, labels=LABELS):
    value, grad = evaluate(entries, student, teacher, labels)
    assert value == pytest.approx(reference(student), abs=1e-5)
    np.testing.assert_allclose(grad, numeric_grad(reference, student), atol=1e-5)


# -- response-based ------------------------------------------------------------------------------------
@pytest.mark.parametrize("T, alpha, beta", [(1.0, 1.0, 1.0), (4.0, 0.5, 8.0)])
def test_dkd_is_target_plus_non_target_kl(T, alpha, beta):
    # PaddleClas's default: the batch label is the "target" class
    check([{"DistillationDKDLoss": {"model_name_pairs": PAIR, "temperature": T, "alpha": alpha, "beta": beta}}],
          lambda s: dkd(s, TEACHER, LABELS, T, alpha, beta))


def test_dkd_takes_the_teacher_for_unlabeled_rows_and_for_all_with_use_target_as_gt():
    labels = LABELS.copy()
    labels[1] = -1
    truth = np.where(labels >= 0, labels, TEACHER.argmax(1))
    check([{"DistillationDKDLoss": {"model_name_pairs": PAIR}}], lambda s: dkd(s, TEACHER, truth), labels=labels)
    check([{"DistillationDKDLoss": {"model_name_pairs": PAIR, "use_target_as_gt": True}}],
          lambda s: dkd(s, TEACHER, TEACHER.argmax(1)), labels=labels)


def test_wsl_weights_soft_ce_by_the_ce_ratio():
    value, grad = evaluate([{"DistillationWSLLoss": {"model_name_pairs": PAIR, "temperature": 2}}], STUDENT, TEACHER)
    expected, weight = wsl(STUDENT, TEACHER, LABELS)
    assert value == pytest.approx(expected, abs=1e-5)
    # the weights are constants: the gradient is that of the weighted soft CE alone
    soft = lambda s: 4.0 * (weight * -(softmax(TEACHER / 2) * log_softmax(s / 2)).sum(1)).mean()  # noqa: E731
    np.testing.assert_allclose(grad, numeric_grad(soft, STUDENT), atol=1e-5)


def test_skd_normalises_both_logits():
    check([{"DistillationSKDLoss": {"model_name_pairs": PAIR, "temperature": 1.0, "multiplier": 2.0,
                                    "alpha": 0.9}}], lambda s: skd(s, TEACHER, LABELS))
    # scaling or shifting the teacher's logits changes nothing: only their direction on the sphere counts
    a = evaluate([{"DistillationSKDLoss": {"model_name_pairs": PAIR}}], STUDENT, TEACHER)[0]
    b = evaluate([{"DistillationSKDLoss": {"model_name_pairs": PAIR}}], STUDENT, TEACHER * 3 + 1)[0]
    assert a == pytest.approx(b, abs=1e-6)


@pytest.mark.parametrize("beta, gamma, T", [(1.0, 1.0, 1.0), (2.0, 0.5, 4.0)])
def test_dist_is_inter_plus_intra_pearson(beta, gamma, T):
    check([{"DistillationDISTLoss": {"model_name_pairs": PAIR, "beta": beta, "gamma": gamma, "temperature": T}}],
          lambda s: dist(s, TEACHER, beta, gamma, T))


# -- feature- and relation-based ----------------------------------------------------------------------
def test_rkd_angle_and_distance():
    s_feat, t_feat = RNG.standard_normal((4, 6)), RNG.standard_normal((4, 6))
    check([{"DistillationRKDLoss": {"model_name_pairs": PAIR}}], lambda s: sum(rkd(s, t_feat)), s_feat, t_feat)


@pytest.mark.parametrize("mode", ["l1", "l2", "smooth_l1"])
def test_distance_loss_on_a_feature_tap(mode):
    s_map, t_map = RNG.standard_normal((2, 3, 2, 2)), RNG.standard_normal((2, 3, 2, 2))
    distance = {"l1": lambda d: np.abs(d), "l2": lambda d: d * d,
                "smooth_l1": lambda d: np.where(np.abs(d) < 1, 0.5 * d * d, np.abs(d) - 0.5)}[mode]
    s = paddle.to_tensor(s_map, stop_gradient=False)
    output = {"Student": {"logits": paddle.zeros([2, 3]), "blocks.5": s},
              "Teacher": {"logits": paddle.zeros([2, 3]), "blocks.5": paddle.to_tensor(t_map)}}
    loss = build_loss([{"DistillationDistanceLoss": {"model_name_pairs": PAIR, "key": "blocks[5]",
                                                     "mode": mode}}])(output, None)
    assert float(loss["loss_distance_Student_Teacher"]) == pytest.approx(distance(s_map - t_map).mean(), abs=1e-6)


def _pair_loss(base, s_map, t_map, **params):
    entry = {"DistillationPairLoss": {"base_loss_name": base, "model_name_pairs": PAIR, "s_key": "blocks[7]",
                                      "t_key": "blocks[15]", "name": "loss_x", **params}}
    loss = build_loss([entry])
    s = paddle.to_tensor(s_map, stop_gradient=False)
    parts = loss({"Student": {"logits": paddle.zeros([1]), "blocks.7": s},
                  "Teacher": {"logits": paddle.zeros([1]), "blocks.15": paddle.to_tensor(t_map)}}, None)
    parts["loss"].backward()
    return loss.parts[0][2].base, float(parts["loss_x_Student_Teacher"]), s.grad.numpy()


def test_mgd_generates_the_teacher_map_from_the_masked_student():
    s_map, t_map = RNG.standard_normal((2, 3, 4, 4)), RNG.standard_normal((2, 3, 4, 4))
    # lambda_mgd 0 masks nothing, so the loss is deterministic: 1.756 x MSE(generation(student), teacher)
    base, value, grad = _pair_loss("MGDLoss", s_map, t_map, student_channels=3, teacher_channels=3, lambda_mgd=0.0)
    w = {k: v.numpy() for k, v in base.generation.state_dict().items()}

    def reference(x):
        hidden = np.maximum(conv3x3(x, w["0.weight"], w["0.bias"]), 0)
        return 1.756 * ((conv3x3(hidden, w["2.weight"], w["2.bias"]) - t_map) ** 2).mean()

    assert value == pytest.approx(reference(s_map), abs=1e-5)
    np.testing.assert_allclose(grad, numeric_grad(reference, s_map), atol=1e-5)
    assert sum(int(np.prod(p.shape)) for p in base.parameters()) == 2 * (3 * 3 * 9 + 3)


def test_mgd_masks_whole_channels():
    paddle.seed(3)
    s_map, t_map = RNG.standard_normal((2, 3, 4, 4)), RNG.standard_normal((2, 3, 4, 4))
    # with lambda_mgd near 1 every channel is dropped: the generation block sees zeros whatever the student is
    base, masked, grad = _pair_loss("MGDLoss", s_map, t_map, student_channels=3, teacher_channels=3,
                                    lambda_mgd=0.9999)
    assert masked == pytest.approx(float(base(paddle.zeros([2, 3, 4, 4]), paddle.to_tensor(t_map))), abs=1e-9)
    assert not grad.any()
    # at lambda_mgd 0.5 each (sample, channel) map is dropped or kept whole: its gradient is all zero or nowhere zero
    _, _, grad = _pair_loss("MGDLoss", s_map, t_map, student_channels=3, teacher_channels=3, lambda_mgd=0.5)
    dropped = (grad == 0).reshape(2 * 3, -1)
    assert ((dropped.all(axis=1)) | (~dropped).all(axis=1)).all(), dropped
    assert 0 < dropped.all(axis=1).sum() < 6  # seed 3: some maps dropped, some kept


def test_pefd_aligns_the_projector_ensemble_with_the_teacher():
    s_feat, t_feat = RNG.standard_normal((3, 4, 1, 1)), RNG.standard_normal((3, 6, 1, 1))
    base, value, grad = _pair_loss("PEFDLoss", s_feat, t_feat, student_channel=4, teacher_channel=6)
    layers = [(p.weight.numpy()[:, :, 0, 0], p.bias.numpy()) for p in base.projectors]  # 1x1 convolutions
    assert len(layers) == 3

    def reference(x):
        x, t = x.reshape(3, 4), t_feat.reshape(3, 6)
        y = np.mean([np.maximum(x @ w.T + b, 0) for w, b in layers], axis=0)
        cos = (y * t).sum(1) / np.maximum(np.linalg.norm(y, axis=1) * np.linalg.norm(t, axis=1), 1e-8)
        return (1 - cos).mean()

    assert value == pytest.approx(reference(s_feat), abs=1e-5)
    np.testing.assert_allclose(grad, numeric_grad(reference, s_feat), atol=1e-5)
    # a pooled tap given as [N, C] is the same [N, C, 1, 1] map
    paddle.seed(0)
    flat = _pair_loss("PEFDLoss", s_feat.reshape(3, 4), t_feat.reshape(3, 6), student_channel=4, teacher_channel=6)
    paddle.seed(0)
    mapped = _pair_loss("PEFDLoss", s_feat, t_feat, student_channel=4, teacher_channel=6)
    assert flat[1] == pytest.approx(mapped[1], abs=1e-12)
    np.testing.assert_allclose(flat[2], mapped[2].reshape(3, 4), atol=1e-12)
    # a student every projector maps to zero (ReLU; biases start at 0) has cosine 0 with the teacher: loss 1, not NaN
    _, zero, zero_grad = _pair_loss("PEFDLoss", np.zeros_like(s_feat), t_feat, student_channel=4, teacher_channel=6)
    assert zero == pytest.approx(1.0) and np.isfinite(zero_grad).all()


def test_pefd_refuses_student_and_teacher_maps_of_different_sizes():
    with pytest.raises(PclsError, match="2x2 and the teacher's 1x1"):
        _pair_loss("PEFDLoss", RNG.standard_normal((3, 4, 2, 2)), RNG.standard_normal((3, 6, 1, 1)),
                   student_channel=4, teacher_channel=6)


# -- AFD ------------------------------------------------------------------------------------------------
def _afd_connectors():
    from pcls.distill.connectors import LinearTransformStudent, LinearTransformTeacher

    data = np.load(FIXTURE)
    t_shapes, s_shapes = [[4, 6, 6], [4, 6, 6], [8, 3, 3]], [[4, 6, 6], [8, 3, 3]]
    teacher = LinearTransformTeacher(qk_dim=8, t_shapes=t_shapes, keys=["t0", "t1", "t2"])
    student = LinearTransformStudent(qk_dim=8, t_shapes=t_shapes, s_shapes=s_shapes, keys=["s0", "s1"])
    for layer, prefix in ((teacher, "teacher."), (student, "student.")):
        layer.set_state_dict({k[len(prefix):]: v.astype("float64") for k, v in data.items() if k.startswith(prefix)})
    return data, teacher, student


def test_afd_connectors_equal_paddleclas():
    data, teacher, student = _afd_connectors()
    inputs = {k[3:]: paddle.to_tensor(v.astype("float64"), stop_gradient=False)
              for k, v in data.items() if k.startswith("in.")}
    t_out, s_out = teacher(inputs), student(inputs)
    flat = {"query": t_out["query"], "bilinear_key": s_out["bilinear_key"],
            **{f"t_value{i}": v for i, v in enumerate(t_out["value"])},
            **{f"s_value{i}": v for i, v in enumerate(s_out["value"])}}
    total = 0
    for key, value in flat.items():
        np.testing.assert_allclose(value.numpy(), data[f"out.{key}"], atol=1e-5, err_msg=key)
        total = total + (value * paddle.to_tensor(data[f"weight.{key}"].astype("float64"))).sum()
    total.backward()
    for key, tensor in inputs.items():
        np.testing.assert_allclose(tensor.grad.numpy(), data[f"grad.{key}"], atol=1e-5, err_msg=key)


def test_afd_loss_is_attention_weighted_value_distance():
    data, teacher, student = _afd_connectors()
    inputs = {k[3:]: paddle.to_tensor(v.astype("float64")) for k, v in data.items() if k.startswith("in.")}
    output = {"Student": student(inputs), "Teacher": teacher(inputs)}
    loss = build_loss([{"AFDLoss": {"model_name_pair": ["Student", "Teacher"], "qk_dim": 8,
                                    "s_shapes": [[4, 6, 6], [8, 3, 3]],
                                    "t_shapes": [[4, 6, 6], [4, 6, 6], [8, 3, 3]]}}])
    afd = loss.parts[0][2]
    value = float(loss(output, None)["loss_afd"])
    key, query = output["Student"]["bilinear_key"].numpy(), output["Teacher"]["query"].numpy()
    logit = (np.einsum("bstq,btq->bts", key, query) + afd.p_t.numpy() @ afd.p_s.numpy().T) / np.sqrt(8)
    attention = softmax(logit, axis=2)
    s_values = [v.numpy() for v in output["Student"]["value"]]
    expected = 0.0
    for index, (t_value, size_index) in enumerate(zip(output["Teacher"]["value"], [0, 0, 1])):
        distance = ((s_values[size_index] - t_value.numpy()[:, None]) ** 2).mean(2)
        expected += (distance * attention[:, index]).sum(1).mean()
    assert value == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("entry, fragment", [
    ({"DistillationPairLoss": {"base_loss_name": "FooLoss", "model_name_pairs": PAIR}}, "FooLoss"),
    ({"DistillationPairLoss": {"base_loss_name": "MGDLoss", "model_name_pairs": PAIR}}, "MGDLoss"),
    ({"DistillationDistanceLoss": {"model_name_pairs": PAIR, "mode": "l3"}}, "mode"),
    ({"DistillationDistanceLoss": {"model_name_pairs": PAIR, "act": "tanh"}}, "act"),
    ({"DistillationSKDLoss": {"model_name_pairs": PAIR, "alpha": 2}}, "alpha"),
    ({"AFDLoss": {"model_name_pair": ["Student", "Teacher"]}}, "s_shapes"),
])
def test_bad_parameters_are_one_line(entry, fragment):
    with pytest.raises(PclsError, match=fragment):
        build_loss([entry])


def test_a_feature_key_the_model_does_not_return_names_return_patterns():
    loss = build_loss([{"DistillationDistanceLoss": {"model_name_pairs": PAIR, "key": "blocks5"}}])
    with pytest.raises(PclsError, match="return_patterns"):
        loss({"Student": paddle.zeros([2, 3]), "Teacher": paddle.zeros([2, 3])}, None)


def test_dml_weight_ratio_weighs_each_class_term():
    a, b = STUDENT, TEACHER
    labels = (RNG.random((N, C)) > 0.5).astype("float64")
    ratio = RNG.random(C) * 0.8 + 0.1
    target = np.stack([labels, np.broadcast_to(ratio, labels.shape)], axis=1)
    weight = np.where(labels == 1, np.exp(1 - ratio), np.exp(ratio))
    p, q = softmax(a), softmax(b)
    terms = (q * (np.log(q) - np.log(p)) + p * (np.log(p) - np.log(q))) / 2 * weight
    # PaddleClas scales every (sample, class) term by C: its mean is the class sum averaged over the batch, and
    # sum_across_class_dim sums the scaled terms over the classes (C times that)
    for summed, expected in ((False, terms.sum(1).mean()), (True, C * terms.sum(1).mean())):
        value, _ = evaluate([{"DistillationDMLLoss": {"model_name_pairs": PAIR, "weight_ratio": True,
                                                      "sum_across_class_dim": summed}}], a, b, target)
        assert value == pytest.approx(expected, rel=1e-6)  # the label ratios are read as float32


@pytest.mark.parametrize("entry", [
    {"DistillationDKDLoss": {"model_name_pairs": PAIR, "temperature": 2.0}},
    {"DistillationWSLLoss": {"model_name_pairs": PAIR}},
    {"DistillationSKDLoss": {"model_name_pairs": PAIR}},
    {"DistillationDISTLoss": {"model_name_pairs": PAIR}},
    {"DistillationRKDLoss": {"model_name_pairs": PAIR}},
], ids=lambda e: next(iter(e)))
def test_gradient_steps_on_the_student_lower_each_loss(entry):
    student = paddle.create_parameter([N, C], "float64",
                                      default_initializer=paddle.nn.initializer.Assign(STUDENT))
    loss_fn = build_loss([entry])
    optimizer = paddle.optimizer.SGD(learning_rate=0.5, parameters=[student])
    values = []
    for _ in range(30):
        loss = loss_fn({"Student": student, "Teacher": paddle.to_tensor(TEACHER)}, paddle.to_tensor(LABELS))["loss"]
        values.append(float(loss))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
    assert values[-1] < 0.8 * values[0], values
