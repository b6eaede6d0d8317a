"""Top-k accuracy, loss averaging, soft targets, unlabelled rows and the confusion matrix."""

import paddle
import pytest

from pcls.engine.metrics import TopkMeter, metric_topk


def test_topk_counts_by_hand():
    meter = TopkMeter([1, 2], class_num=3, confusion=True)
    logits = paddle.to_tensor([[3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0]])
    labels = paddle.to_tensor([0, 2, 1, 1])
    meter.update(logits, labels, loss=paddle.to_tensor(0.5))
    res = meter.result()
    # top-1 hits: row 0 only; top-2 hits: rows 0, 1 (2 is 2nd), 2 (1 is 2nd); row 3's label is last
    assert res["top1"] == pytest.approx(1 / 4) and res["top2"] == pytest.approx(3 / 4)
    assert res["loss"] == pytest.approx(0.5) and res["samples"] == 4
    assert meter.confusion.tolist() == [[1, 0, 0], [1, 0, 1], [0, 1, 0]]
    per_class = meter.per_class()
    assert [r["top1"] for r in per_class] == [1.0, 0.0, 0.0] and per_class[1]["support"] == 2


def test_soft_targets_and_unlabelled_rows():
    meter = TopkMeter([1])
    meter.update(paddle.to_tensor([[2.0, 1.0], [0.0, 1.0]]), paddle.to_tensor([[0.8, 0.2], [0.7, 0.3]]))
    assert meter.result()["top1"] == pytest.approx(0.5)
    meter = TopkMeter([1])
    meter.update(paddle.to_tensor([[2.0, 1.0], [0.0, 1.0]]), paddle.to_tensor([-1, 1]))
    assert meter.result() == {"top1": 1.0, "loss": 0.0, "samples": 1}


def test_metric_topk_from_config_is_capped_by_class_num():
    assert metric_topk([{"TopkAcc": {"topk": [1, 5]}}], class_num=4) == [1, 4]
    assert metric_topk(None) == [1, 5]
