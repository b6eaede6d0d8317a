"""TopkMeter sums on the logits' device and reads back once, with the figures a host computation gives: a stable
descending sort (ties: the lower class id first, NaN last), counts exact, the loss summed in float64 in batch
order, unlabelled rows skipped."""

import numpy as np
import paddle

from pcls.engine.metrics import TopkMeter


class HostMeter:
    """What the meter computed on the host before, batch by batch: the yardstick."""

    def __init__(self, topk, class_num):
        self.topk, self.correct, self.loss_sum, self.count = topk, np.zeros(len(topk)), 0.0, 0
        self.confusion = np.zeros((class_num, class_num), dtype=np.int64)

    def update(self, scores, labels, loss):
        keep = labels >= 0
        scores, labels = scores[keep], labels[keep]
        if len(labels) == 0:
            return
        order = np.argsort(-scores, axis=-1, kind="stable")
        hit = order == labels[:, None]
        for i, k in enumerate(self.topk):
            self.correct[i] += hit[:, :k].any(axis=1).sum()
        self.loss_sum += float(loss) * len(labels)
        self.count += len(labels)
        np.add.at(self.confusion, (labels, order[:, 0]), 1)


def batches(seed=0, count=6, n=9, classes=5):
    rng = np.random.default_rng(seed)
    for index in range(count):
        scores = rng.integers(-2, 3, (n, classes)).astype(np.float32)  # many ties
        scores[rng.random((n, classes)) < 0.1] = np.nan
        if index == 2:
            scores[0] = np.nan  # a row of NaN
            scores[1] = -np.inf
        labels = rng.integers(-1, classes, n)  # -1: unlabelled lines
        if index == 3:
            labels[:] = -1  # a batch without any labelled row
        yield scores, labels, np.float32(rng.random() * 3)


def test_device_sums_equal_the_host_computation():
    topk = [1, 2, 7]  # 7 > the 5 classes: every labelled row counts
    meter, host = TopkMeter(topk, class_num=5, confusion=True), HostMeter(topk, 5)
    for scores, labels, loss in batches():
        meter.update(paddle.to_tensor(scores), paddle.to_tensor(labels), paddle.to_tensor(loss))
        host.update(scores, labels, loss)
    assert meter.count == host.count > 0
    np.testing.assert_array_equal(meter.correct, host.correct)
    assert meter.loss_sum == host.loss_sum  # the same float64 additions in the same order
    np.testing.assert_array_equal(meter.confusion, host.confusion)


def test_figures_read_between_batches_keep_adding_up():
    meter, host = TopkMeter([1, 2], class_num=5, confusion=True), HostMeter([1, 2], 5)
    for scores, labels, loss in batches(seed=1):
        meter.update(paddle.to_tensor(scores), paddle.to_tensor(labels), paddle.to_tensor(loss))
        host.update(scores, labels, loss)
        assert meter.result()["samples"] == host.count  # read back after every batch, as training does
    np.testing.assert_array_equal(meter.correct, host.correct)
    assert meter.loss_sum == host.loss_sum
    restored = TopkMeter([1, 2], class_num=5)
    restored.load_state(meter.state())
    assert restored.result() == meter.result()
    np.testing.assert_array_equal(meter.confusion, host.confusion)
