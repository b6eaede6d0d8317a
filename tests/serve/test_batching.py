"""The batching queue on its own: callers share model calls and each gets its own row back; full means QueueFull."""

import asyncio
import threading

import numpy as np
import pytest

from pcls.serve.batching import BatchQueue, QueueFull


def test_concurrent_callers_share_one_call_and_each_gets_its_own_row():
    calls = []

    def runner(batch):  # row i tells which image it was computed from
        calls.append(len(batch))
        return batch.reshape(len(batch), -1).sum(axis=1, keepdims=True) * np.array([[1.0, -1.0]])

    async def main():
        queue = BatchQueue([runner], max_batch=6, max_wait_s=30, max_queue=16)
        queue.start()
        inputs = [np.full((3, 2, 2), i, np.float32) for i in range(6)]
        rows = await asyncio.gather(*(queue.submit(x) for x in inputs))
        await queue.stop()
        return inputs, rows

    inputs, rows = asyncio.run(main())
    assert calls == [6]  # a full batch goes at once, without waiting max_wait_s
    for x, row in zip(inputs, rows):
        np.testing.assert_allclose(row, [x.sum(), -x.sum()])


def test_full_queue_refuses_at_once_and_the_waiting_ones_still_finish():
    gate, entered = threading.Event(), threading.Event()

    def runner(batch):
        entered.set()
        gate.wait(30)
        return batch.reshape(len(batch), -1)[:, :1]

    async def main():
        queue = BatchQueue([runner], max_batch=1, max_wait_s=0, max_queue=1)
        queue.start()
        first = asyncio.create_task(queue.submit(np.ones((1, 1, 1), np.float32)))
        while not entered.is_set():  # the first image is inside the model call
            await asyncio.sleep(0.005)
        second = asyncio.create_task(queue.submit(np.full((1, 1, 1), 2, np.float32)))
        await asyncio.sleep(0)
        assert queue.depth == 1
        with pytest.raises(QueueFull):
            await queue.submit(np.zeros((1, 1, 1), np.float32))
        gate.set()
        results = [float(r[0]) for r in await asyncio.gather(first, second)]
        await queue.stop()
        return results

    assert asyncio.run(main()) == [1.0, 2.0]


def test_a_failing_model_call_fails_its_callers_not_the_worker():
    state = {"fail": True}

    def runner(batch):
        if state.pop("fail", False):
            raise RuntimeError("model broke")
        return batch.reshape(len(batch), -1)[:, :1]

    async def main():
        queue = BatchQueue([runner], max_batch=1, max_wait_s=0, max_queue=4)
        queue.start()
        with pytest.raises(RuntimeError, match="model broke"):
            await queue.submit(np.ones((1, 1, 1), np.float32))
        row = await queue.submit(np.full((1, 1, 1), 3, np.float32))
        await queue.stop()
        return float(row[0])

    assert asyncio.run(main()) == 3.0


def test_the_batch_is_stacked_and_run_on_the_model_thread(monkeypatch):
    """Stacking a batch copies every image: done on the model's thread, it never holds up the event loop."""
    stacked_on = []
    stack = np.stack

    def recording_stack(arrays, *args, **kwargs):
        stacked_on.append(threading.current_thread().name)
        return stack(arrays, *args, **kwargs)

    def runner(batch):
        return batch.reshape(len(batch), -1)[:, :1] + threading.current_thread().name.startswith("pcls-model")

    async def main():
        queue = BatchQueue([runner], max_batch=2, max_wait_s=30, max_queue=4)
        queue.start()
        monkeypatch.setattr(np, "stack", recording_stack)
        rows = await asyncio.gather(*(queue.submit(np.full((1, 1, 1), i, np.float32)) for i in range(2)))
        monkeypatch.undo()
        await queue.stop()
        return [float(r[0]) for r in rows]

    assert asyncio.run(main()) == [1.0, 2.0]  # each image's value + 1: the runner ran on the model thread
    assert stacked_on and all(name.startswith("pcls-model") for name in stacked_on)
