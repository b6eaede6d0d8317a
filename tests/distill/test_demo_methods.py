"""The distillation demo for real (benchmarks/distill_demo.py): teachers trained first on the built-in demo
data, then a student distilled with each method's loss as its recipe writes it; every distillation loss term
(read back from the run's metrics.jsonl) must be lower in the last epoch than in the first."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("paddle")

DEMO_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "distill_demo.py"


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("distill_demo", DEMO_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_every_term_decreases(result, methods, epochs):
    assert list(result["methods"]) == list(methods)
    for method, run in result["methods"].items():
        assert run["terms"], f"{method}: no distillation term in metrics.jsonl"
        for term, values in run["terms"].items():
            assert len(values) == epochs, (method, term, values)
            assert values[-1] < values[0], f"{method} {term} per epoch: {values}"


def test_afd_terms_decrease_on_the_demo_data(demo, tmp_path):
    """The one fast check: AFD (16 + 8 feature taps, the attention connectors inside AttentionModel members,
    the trainable loss) on tiny settings: a narrow ResNet34 trained first (two epochs on 160 images: barely
    a teacher; the slow test below has real ones), then the student."""
    result = demo.run_demo(tmp_path, methods=["AFD"], epochs=3, teacher_epochs=2, width=8, train_per_class=16,
                           teacher_per_class=16, val_per_class=4, batch_size=16, alone=False)
    run = result["methods"]["AFD"]
    # the recipe's three terms reach metrics.jsonl; the ground-truth CE is not a distillation term
    assert sorted(run["terms"]) == ["loss_afd", "loss_kl_Student_Teacher"]
    assert (Path(run["run_dir"]) / "metrics.jsonl").is_file()
    assert_every_term_decreases(result, ["AFD"], epochs=3)


@pytest.mark.slow
def test_every_method_terms_decrease_on_the_demo_data(demo, tmp_path):
    result = demo.run_demo(tmp_path)
    assert_every_term_decreases(result, demo.METHODS, epochs=result["settings"]["epochs"])


def test_loss_terms_are_recorded_only_beside_a_combined_total():
    import paddle

    from pcls.engine.metrics import LossTermMeter
    from pcls.loss.registry import build_loss

    plain = build_loss([{"CELoss": {"weight": 1.0}}])
    logits, labels = paddle.to_tensor([[2.0, 0.0], [0.0, 1.0]]), paddle.to_tensor([0, 0])
    assert plain.named_terms(plain(logits, labels)) == {}  # its one term is train_loss itself
    pair = build_loss([{"DistillationGTCELoss": {"weight": 1.0, "model_names": ["Student"]}},
                       {"DistillationDMLLoss": {"weight": 0.5, "model_name_pairs": [["Student", "Teacher"]]}}])
    result = pair({"Student": logits, "Teacher": logits.flip([1])}, labels)
    terms = pair.named_terms(result)
    assert sorted(terms) == sorted(k for k in result if k != "loss") and len(terms) == 2
    meter = LossTermMeter()
    meter.update(terms, 2)
    meter.update({k: 2 * v for k, v in terms.items()}, 6)  # a larger batch weighs more
    resumed = LossTermMeter()
    resumed.load_state(meter.state())
    for name, value in terms.items():
        assert resumed.result()[name] == pytest.approx(float(value) * (2 + 12) / 8)
