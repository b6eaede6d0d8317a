"""CPU evaluation through Paddle Inference (pcls/engine/evaluate_inference.py): the same logits and metrics as
dygraph within float rounding, one switch to turn it off, and dygraph for a network it cannot run."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

import pcls  # noqa: E402
from pcls.engine import evaluate_inference as ei  # noqa: E402
from pcls.errors import PclsError  # noqa: E402
from pcls.utils.state_files import save_state_file  # noqa: E402
from tests.engine.conftest import write_colour_dataset  # noqa: E402
from tests.reference import fill_weights  # noqa: E402


def test_logits_equal_dygraph_within_float_rounding():
    net = pcls.create_model("ResNet18_vd", class_num=7)
    fill_weights(net)
    net.eval()
    # Paddle Inference sets the process's math thread count to the predictor's; pcls gives it the count training
    # and `pcls eval` already set (compute_threads), so dygraph's summation order is the same before and after
    paddle.base.core.set_num_threads(1)
    images = paddle.to_tensor(np.random.default_rng(0).standard_normal((3, 3, 48, 48)).astype("float32"))
    with paddle.no_grad():
        expected = net(images).numpy()
    traced = ei.InferenceEvalModel(net, threads=1)
    assert traced.prepare((3, 48, 48)) is None
    got = traced(images).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    assert (got.argmax(-1) == expected.argmax(-1)).all()
    again = traced(images[:1]).numpy()  # another batch size, same predictor
    np.testing.assert_allclose(again, got[:1], rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    with paddle.no_grad():  # the network itself is left as it was: dygraph, same outputs
        np.testing.assert_array_equal(net(images).numpy(), expected)


def test_pcls_eval_gives_the_same_metrics_through_inference_and_dygraph(tmp_path, monkeypatch):
    data = write_colour_dataset(tmp_path / "data", train_per_class=1, val_per_class=5, size=40)
    net = pcls.create_model("MobileNetV1_x0_25", class_num=4)
    fill_weights(net)
    weights = tmp_path / "w.pdparams"
    save_state_file({k: v.numpy() for k, v in net.state_dict().items()}, weights)
    calls = []
    real_call = ei.InferenceEvalModel.__call__
    monkeypatch.setattr(ei.InferenceEvalModel, "__call__", lambda self, x: calls.append(1) or real_call(self, x))
    results = {}
    for setting in ("1", "0"):
        monkeypatch.setenv(ei.EVAL_INFERENCE_ENV, setting)
        results[setting] = pcls.evaluate(model="MobileNetV1_x0_25", data=data["val"], root=data["root"],
                                         image_size=32, batch_size=6, weights=str(weights),
                                         out_dir=tmp_path / f"eval{setting}")
        if setting == "1":
            assert len(calls) == 4  # 20 images in batches of 6: every batch went through the predictor
    assert len(calls) == 4  # and none with the switch off
    fast, slow = results["1"], results["0"]
    assert fast["samples"] == slow["samples"] == 20
    assert fast["top1"] == slow["top1"] and fast["top4"] == slow["top4"]
    assert abs(fast["loss"] - slow["loss"]) <= 1e-5 * max(1.0, abs(slow["loss"]))
    assert fast["per_class"] == slow["per_class"]


def test_the_switch_takes_one_and_zero_and_refuses_anything_else():
    assert ei.inference_eval_enabled({}) is True
    assert ei.inference_eval_enabled({ei.EVAL_INFERENCE_ENV: "0"}) is False
    assert ei.inference_eval_enabled({ei.EVAL_INFERENCE_ENV: "1"}) is True
    with pytest.raises(PclsError, match="PCLS_EVAL_INFERENCE='maybe' is not a switch; set it to 1"):
        ei.inference_eval_enabled({ei.EVAL_INFERENCE_ENV: "maybe"})


class TwoHeads(paddle.nn.Layer):
    """A network with two outputs (as a distillation pair has): not one logits tensor."""

    def __init__(self):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 4, 3)

    def forward(self, x):
        y = self.conv(x).mean(axis=[2, 3])
        return y, y * 2


def test_a_network_with_two_outputs_is_evaluated_in_dygraph(caplog):
    from pcls.engine.evaluator import cpu_eval_model

    class Bundle:  # what cpu_eval_model reads of the eval data: the first sample's shape
        class dataset:
            @staticmethod
            def load(index, rng):
                return np.zeros((3, 16, 16), np.float32), 0, []

    net = TwoHeads()
    with caplog.at_level(logging.INFO, logger="pcls.engine.evaluator"):
        chosen = cpu_eval_model(net, Bundle)
    assert chosen is net
    assert "evaluating in dygraph: the network outputs a tuple, not one logits tensor" in caplog.text


def test_the_training_loops_evaluation_goes_through_inference_for_a_large_set(tmp_path, colour_data, tinynet,
                                                                              monkeypatch):
    from pcls.engine import evaluator
    from pcls.engine.trainer import train
    from tests.engine.conftest import tiny_config

    calls = []
    real_call = ei.InferenceEvalModel.__call__
    monkeypatch.setattr(ei.InferenceEvalModel, "__call__", lambda self, x: calls.append(1) or real_call(self, x))
    monkeypatch.setattr(evaluator, "TRAINING_EVAL_INFERENCE_MIN_IMAGES", 20)  # the 24 colour images count as large
    runs = {}
    for setting in ("1", "0"):
        monkeypatch.setenv(ei.EVAL_INFERENCE_ENV, setting)
        runs[setting] = train(tiny_config(colour_data, tmp_path / f"out{setting}", epochs=2), log=lambda msg: None)
    assert len(calls) == 2 * 3  # two evaluations of 24 images in batches of 8, with the switch on only
    fast, slow = ([json.loads(line) for line in (Path(runs[s]["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
                  for s in ("1", "0"))
    assert len(fast) == len(slow) == 2
    assert [r["val_top1"] for r in fast] == [r["val_top1"] for r in slow]
    assert all(abs(a["val_loss"] - b["val_loss"]) <= 1e-5 for a, b in zip(fast, slow))
    assert [r["train_loss"] for r in fast] == [r["train_loss"] for r in slow]  # training itself is untouched
