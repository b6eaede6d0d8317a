"""pcls's distillation losses equal PaddleClas 2.6's, value and gradients, on the same inputs.

The numbers in tests/reference/distill/<loss>_paddleclas26.npz were made by running PaddleClas's own loss
files in paddle 2.6.2 (a throwaway environment outside the repository; tests/reference/distill/README.md
names each file and commit). Each npz holds the inputs, per case the config parameters (as a PaddleClas
config writes them), the value, the gradients with respect to the trained inputs and, for losses with
parameters, the parameters and their gradients. Here pcls's losses are built from the same config
parameters, given the same inputs (and parameters), and must give the same numbers.

Tolerance: float32 on both sides, so each entry must satisfy |pcls - paddleclas| <= 1e-5 + 1e-5 * |paddleclas|.
The relative part is for values in the tens (DML summed over classes is ~63, where one float32 step is 3.8e-6
and two correct summation orders already differ by a few steps); measured, every difference is below 1e-5
absolute (the largest, 7.6e-6, is that DML value; gradients agree within 1e-6).
"""

import json
from pathlib import Path

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from pcls.loss import build_loss  # noqa: E402

REFERENCE = Path(__file__).parents[1] / "reference" / "distill"
PAIR = [["Student", "Teacher"]]
ATOL = RTOL = 1e-5


def fixture(name):
    with np.load(REFERENCE / f"{name}_paddleclas26.npz") as data:
        return {key: data[key] for key in data.files}


def cases(arrays):
    return [key.split("/")[0] for key in arrays if key.endswith("/params")]


def params_of(arrays, case):
    return json.loads(str(arrays[f"{case}/params"]))


def tensor(array, trained=True):
    return paddle.to_tensor(array, stop_gradient=not trained)


def assert_close(actual, expected, what):
    actual = np.asarray(actual, dtype="float64")
    np.testing.assert_allclose(actual, expected, atol=ATOL, rtol=RTOL, err_msg=what)


def total(terms):
    return paddle.add_n([value for key, value in terms.items() if key != "loss"])


@pytest.mark.parametrize("name, entry, grads, target", [
    ("dkd", {"DistillationDKDLoss": {"model_name_pairs": PAIR}}, ("s",), "label"),
    ("wsl", {"DistillationWSLLoss": {"model_name_pairs": PAIR}}, ("s",), "label"),
    ("skd", {"DistillationSKDLoss": {"model_name_pairs": PAIR}}, ("s",), "label"),
    ("dist", {"DistillationDISTLoss": {"model_name_pairs": PAIR}}, ("s",), "label"),
    ("kldiv", {"DistillationKLDivLoss": {"model_name_pairs": PAIR}}, ("s",), "label"),
    ("gtce", {"DistillationGTCELoss": {"model_names": ["Student"]}}, ("s",), "label"),
    ("distillation_ce", {"DistillationCELoss": {"model_name_pairs": PAIR}}, ("s",), "label"),
    ("dml", {"DistillationDMLLoss": {"model_name_pairs": PAIR}}, ("s", "t"), "label"),
    ("dml_ratio", {"DistillationDMLLoss": {"model_name_pairs": PAIR}}, ("s", "t"), "target"),
])
def test_logit_losses_equal_paddleclas(name, entry, grads, target):
    arrays = fixture(name)
    assert cases(arrays)
    for case in cases(arrays):
        (loss_name, base), = entry.items()
        loss = build_loss([{loss_name: {**base, **params_of(arrays, case)}}])
        s, t = tensor(arrays["s"]), tensor(arrays["t"], trained="t" in grads)
        value = total(loss({"Student": s, "Teacher": t}, tensor(arrays[target], False)))
        value.backward()
        assert_close(value.numpy(), arrays[f"{case}/value"], f"{name}/{case} value")
        for key, x in (("s", s), ("t", t)):
            if key in grads:
                assert_close(x.grad.numpy(), arrays[f"{case}/grad.{key}"], f"{name}/{case} d/d{key}")


def features(student, teacher, key):
    """A DistillationModel's output whose members also return the feature map `key`."""
    return {"Student": {"logits": paddle.zeros([student.shape[0], 2]), key: student},
            "Teacher": {"logits": paddle.zeros([teacher.shape[0], 2]), key: teacher}}


def test_udml_distance_equals_paddleclas_and_reaches_both_models():
    arrays = fixture("distance")
    for case in cases(arrays):
        params = {"model_name_pairs": PAIR, "key": "blocks5", **params_of(arrays, case)}
        s, t = tensor(arrays["s"]), tensor(arrays["t"])
        value = total(build_loss([{"DistillationDistanceLoss": params}])(features(s, t, "blocks5"), None))
        value.backward()
        assert_close(value.numpy(), arrays[f"{case}/value"], f"distance/{case} value")
        assert_close(s.grad.numpy(), arrays[f"{case}/grad.s"], f"distance/{case} d/ds")
        assert_close(t.grad.numpy(), arrays[f"{case}/grad.t"], f"distance/{case} d/dt")


@pytest.mark.parametrize("case, s_key, t_key", [("embedding", "s", "t"), ("pooled", "s4", "t4")])
def test_rkd_angle_and_distance_equal_paddleclas(case, s_key, t_key):
    arrays = fixture("rkd")
    params = {"model_name_pairs": PAIR, "student_keepkeys": ["feat"], "teacher_keepkeys": ["feat"],
              **params_of(arrays, f"{case}.angle")}
    s = tensor(arrays[s_key])
    terms = build_loss([{"DistillationRKDLoss": params}])(features(s, tensor(arrays[t_key], False), "feat"), None)
    for part in ("angle", "dist"):
        (value,) = [v for k, v in terms.items() if f"_{part}_" in k]
        (grad,) = paddle.grad(value, s, retain_graph=True)
        assert_close(value.numpy(), arrays[f"{case}.{part}/value"], f"rkd/{case}.{part} value")
        assert_close(grad.numpy(), arrays[f"{case}.{part}/grad.s"], f"rkd/{case}.{part} d/ds")


def load_parameters(layer, arrays, prefix, rename=lambda key: key):
    """Set the layer's parameters to PaddleClas's (stored as `<prefix><its state-dict name>`); returns
    {pcls name: PaddleClas name}."""
    names = {rename(key[len(prefix):]): key[len(prefix):] for key in arrays if key.startswith(prefix)}
    assert sorted(names) == sorted(layer.state_dict())
    layer.set_state_dict({key: paddle.to_tensor(arrays[prefix + names[key]]) for key in names})
    return names


def check_pair_loss(name, base_loss_name, rename=lambda key: key, monkeypatch=None):
    arrays = fixture(name)
    for case in cases(arrays):
        if monkeypatch is not None:  # MGD's random channel mask: PaddleClas's draw, stored with the fixture
            monkeypatch.setattr(paddle, "rand", lambda shape, u=arrays[f"{case}/rand"]: paddle.to_tensor(u))
        loss = build_loss([{"DistillationPairLoss": {"base_loss_name": base_loss_name, "model_name_pairs": PAIR,
                                                     "s_key": "blocks[7]", "t_key": "blocks[15]",
                                                     **params_of(arrays, case)}}])
        (_, _, layer), = loss.parts
        names = load_parameters(layer.base, arrays, f"{case}/param.", rename)
        s, t = tensor(arrays[f"{case}/s"]), tensor(arrays[f"{case}/t"], False)
        output = {"Student": {"logits": s.mean(axis=[2, 3]), "blocks.7": s},
                  "Teacher": {"logits": t.mean(axis=[2, 3]), "blocks.15": t}}
        value = total(loss(output, None))
        value.backward()
        assert_close(value.numpy(), arrays[f"{case}/value"], f"{name}/{case} value")
        assert_close(s.grad.numpy(), arrays[f"{case}/grad.s"], f"{name}/{case} d/ds")
        for key, param in layer.base.named_parameters():
            assert_close(param.grad.numpy(), arrays[f"{case}/grad.{names[key]}"], f"{name}/{case} d/d{key}")


def test_mgd_with_its_generation_block_equals_paddleclas(monkeypatch):
    check_pair_loss("mgd", "MGDLoss", monkeypatch=monkeypatch)


def test_pefd_with_its_projector_ensemble_equals_paddleclas():
    check_pair_loss("pefd", "PEFDLoss", rename=lambda key: key.replace(".conv", ""))


def test_afd_attention_loss_equals_paddleclas():
    arrays = fixture("afd")
    params = params_of(arrays, "config")
    loss = build_loss([{"AFDLoss": {"model_name_pair": ["Student", "Teacher"], **params}}])
    (_, _, layer), = loss.parts
    names = load_parameters(layer, arrays, "config/param.", rename=lambda key: key.replace("attention.", ""))
    inputs = {key: tensor(arrays[key]) for key in arrays if "/" not in key}
    s_values = [inputs[k] for k in sorted(k for k in inputs if k.startswith("s_value"))]
    t_values = [inputs[k] for k in sorted(k for k in inputs if k.startswith("t_value"))]
    output = {"Student": {"bilinear_key": inputs["bilinear_key"], "value": s_values},
              "Teacher": {"query": inputs["query"], "value": t_values}}
    value = total(loss(output, None))
    value.backward()
    assert_close(value.numpy(), arrays["config/value"], "afd value")
    for key, x in inputs.items():
        assert_close(x.grad.numpy(), arrays[f"config/grad.{key}"], f"afd d/d{key}")
    for key, param in layer.named_parameters():
        assert_close(param.grad.numpy(), arrays[f"config/grad.{names[key]}"], f"afd d/d{key}")


def test_afd_connectors_and_loss_together_equal_paddleclas():
    """Features -> PaddleClas's connectors -> AFDLoss: the connectors' parameters get PaddleClas's gradients."""
    from pcls.distill.connectors import LinearTransformStudent, LinearTransformTeacher

    arrays = fixture("afd_pipeline")
    params = params_of(arrays, "config")
    teacher = LinearTransformTeacher(qk_dim=params["qk_dim"], t_shapes=params["t_shapes"], keys=["t0", "t1", "t2"])
    student = LinearTransformStudent(qk_dim=params["qk_dim"], t_shapes=params["t_shapes"],
                                     s_shapes=params["s_shapes"], keys=["s0", "s1"])
    loss = build_loss([{"AFDLoss": {"model_name_pair": ["Student", "Teacher"], **params}}])
    (_, _, afd), = loss.parts
    modules = {"teacher": teacher, "student": student, "loss": afd}
    names = {prefix: load_parameters(module, arrays, f"config/param.{prefix}.",
                                     rename=lambda key: key.replace("attention.", ""))
             for prefix, module in modules.items()}
    teacher.train(), student.train()
    inputs = {key: tensor(arrays[key]) for key in arrays if "/" not in key}
    value = total(loss({"Student": student(inputs), "Teacher": teacher(inputs)}, None))
    value.backward()
    assert_close(value.numpy(), arrays["config/value"], "afd pipeline value")
    for key, x in inputs.items():
        assert_close(x.grad.numpy(), arrays[f"config/grad.{key}"], f"afd pipeline d/d{key}")
    trained = [(prefix, key, param) for prefix, module in modules.items()
               for key, param in module.named_parameters() if not param.stop_gradient]
    assert len(trained) == len([k for k in arrays if k.startswith("config/grad.") and k.count(".") > 1])
    for prefix, key, param in trained:
        assert_close(param.grad.numpy(), arrays[f"config/grad.{prefix}.{names[prefix][key]}"],
                     f"afd pipeline d/d{prefix}.{key}")
