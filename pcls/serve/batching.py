"""The batching queue: concurrent requests' pre-processed images wait (at most `max_wait_s`, at most `max_batch`
of them) and run as one model call; each caller gets its own row back. The queue is bounded: a full queue says so
at once (`QueueFull`, the server answers 503) instead of growing without limit.

A batch waits only for images known to be on the way (requests inside `arriving()`, being decoded): a lone
request runs at once instead of paying `max_wait_s` for company that is not coming.

Each worker owns one model instance and runs its batches in its own thread, so the event loop keeps accepting
and decoding while a batch runs; `workers > 1` runs that many model instances side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

BatchRunner = Callable[[np.ndarray], np.ndarray]  # (N, C, H, W) float32 -> (N, classes) scores


def stacked_call(runner: BatchRunner, arrays: list) -> np.ndarray:
    """On the model's thread: the stacking copy too stays off the event loop."""
    return runner(np.stack(arrays))


class QueueFull(Exception):
    """The queue holds `max_queue` images already: the caller should retry later."""


class BatchQueue:
    def __init__(self, runners: Sequence[BatchRunner], max_batch: int, max_wait_s: float, max_queue: int,
                 on_batch: Optional[Callable[[int], None]] = None):
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0 or not runners:
            raise ValueError("max_batch and max_queue must be >= 1, max_wait_s >= 0, and one runner at least")
        self.runners = list(runners)
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_s, max_queue
        self.on_batch = on_batch  # told each batch's size (the batch-size histogram)
        self._queue: Optional[asyncio.Queue] = None
        self._tasks: List[asyncio.Task] = []
        self._executors: List[ThreadPoolExecutor] = []
        self._running = 0  # batches inside a model call now
        self._waiting = 0  # images submitted whose model call has not started (queued, or gathered into a batch)
        self._arriving = 0  # requests being decoded, whose image will be submitted soon

    @property
    def depth(self) -> int:
        """Images waiting for their model call."""
        return self._waiting

    def start(self) -> None:
        """Start one worker per runner on the running event loop."""
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        for index, runner in enumerate(self.runners):
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pcls-model-{index}")
            self._executors.append(executor)
            self._tasks.append(asyncio.create_task(self._work(runner, executor), name=f"pcls-batcher-{index}"))

    async def stop(self) -> None:
        """Finish what is queued, then stop the workers (the server has stopped accepting by then)."""
        if self._queue is not None:
            while (self._running or not self._queue.empty()) and any(not t.done() for t in self._tasks):
                await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for executor in self._executors:
            executor.shutdown(wait=True)
        self._tasks, self._executors = [], []

    @contextlib.contextmanager
    def arriving(self):
        """Around a request's decoding: batches formed meanwhile may wait (max_wait_s) for its image."""
        self._arriving += 1
        try:
            yield
        finally:
            self._arriving -= 1

    async def submit(self, array: np.ndarray) -> np.ndarray:
        """The model's score row for one pre-processed image; raises QueueFull when the queue is full.
        A caller that gives up (its timeout, a closed connection) cancels the wait; its image is then skipped."""
        if self._queue is None:
            raise RuntimeError("BatchQueue.start() was not called")
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((array, future))
        except asyncio.QueueFull:
            raise QueueFull(f"{self.max_queue} images are waiting") from None
        self._waiting += 1
        return await future

    async def _next_batch(self) -> list:
        """The first waiting image, then those waiting already, then (while others are being decoded) whatever
        arrives within max_wait_s; up to max_batch images."""
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            if not self._arriving:  # nothing else is on its way: waiting would only add latency
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        self._waiting -= len(batch)
        return [(array, future) for array, future in batch if not future.done()]  # done: its caller gave up

    async def _work(self, runner: BatchRunner, executor: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            if self.on_batch:
                self.on_batch(len(batch))
            self._running += 1
            try:
                scores = await loop.run_in_executor(executor, stacked_call, runner, [array for array, _ in batch])
            except Exception as err:  # noqa: BLE001 - a model failure is every caller's error, never the worker's end
                log.exception("model call failed for a batch of %d", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            finally:
                self._running -= 1
            for (_, future), row in zip(batch, scores):
                if not future.done():
                    future.set_result(row)
