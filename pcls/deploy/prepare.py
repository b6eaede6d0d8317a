"""The predictor's batch makers: the next batches are read, decoded, pre-processed and stacked while the model runs
the current one, by daemon threads or by forked processes (the predictor picks: `Predictor._batch_maker`).

Paddle Inference's Python `run()` holds the GIL for the whole model run (Paddle 3.3,
paddle/fluid/pybind/inference_api.cc: released only in the Ascend build), so a decoding thread stops at its next
Python line until the run ends: beside a one-thread PPLCNet_x1_0 run on the other core, one thread decoded 441
JPEGs/s alone and 37/s. Processes have their own GIL and write each batch straight into shared memory, so they
overlap the model on the cores it leaves free; on cores the model's OpenMP threads use, they take those cores
between its many short parallel regions, which costs more than the overlap gains (CHANGELOG #29).
`benchmarks/bench_predict.py --makers threads,processes` compares them.

Both makers answer to the same calls: `submit(items)` -> ticket, `take(ticket)` -> (items, stacked good arrays or
None, {index in items: error}), `release(ticket)` once the model is done with the batch, `close()`.
"""

from __future__ import annotations

import mmap
import multiprocessing
import signal
import sys
import threading
from collections import deque
from typing import Callable, Deque, List, Optional

import numpy as np

from pcls.data.decode import opencv_threads
from pcls.errors import PclsError, clip

FAILED = "preparing a batch of images failed"


class Unreadable(Exception):
    """One input that could not be pre-processed; the message names it."""


def prepare_each(prepare: Callable, items: List, stop: Optional[threading.Event] = None):
    """(good arrays in input order, {index: Unreadable}) for `prepare(item)` (an array, or an Unreadable)."""
    arrays, errors = [], {}
    for index, item in enumerate(items):
        if stop is not None and stop.is_set():
            return None, {}
        outcome = prepare(item)
        if isinstance(outcome, Exception):
            errors[index] = outcome
        else:
            arrays.append(outcome)
    return arrays, errors


class ThreadBatches:
    """Daemon threads making whole batches (a thread stuck in a file read never keeps the process alive)."""

    def __init__(self, prepare: Callable, workers: int):
        from pcls.data.loader import DaemonThreads

        self._stop = threading.Event()  # set at close: the workers drop the rest of their batch
        self._prepare = prepare
        self._threads = DaemonThreads(self._make, workers, name="pcls-predict-decode")
        self._futures: set = set()

    def _make(self, items):
        arrays, errors = prepare_each(self._prepare, items, self._stop)
        return items, (np.stack(arrays) if arrays else None), errors

    def submit(self, items):
        future = self._threads.submit(items)
        self._futures.add(future)
        return future

    def take(self, future):
        self._futures.discard(future)
        try:
            return future.result()
        except PclsError:
            raise
        except Exception as err:  # noqa: BLE001 - a worker's failure reaches the caller as one line
            raise PclsError(f"{FAILED}: {_reason(err)}") from None

    def release(self, future):
        pass  # each batch is its own array

    def close(self):
        self._stop.set()
        for future in self._futures:
            future.cancel()
        self._threads.close()


def processes_available() -> bool:
    """Forked batch makers need fork (Linux; macOS's system frameworks are not fork-safe, Windows has none)."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


class _Ticket:
    __slots__ = ("index", "items", "slot")

    def __init__(self, index, items):
        self.index, self.items, self.slot = index, items, None


class ProcessBatches:
    """`workers` forked processes, each making every `workers`-th batch into one of `slots` batch buffers in
    anonymous shared memory (gone with the processes: nothing to clean up after a crash). Batch k goes to worker
    k % workers, so each worker's answers come back in the order they are taken. A batch is sent as soon as a
    buffer is free; the buffer is free again once the model is done with it (`release`)."""

    def __init__(self, prepare: Callable, sample_shape, batch_size: int, workers: int, slots: int):
        context = multiprocessing.get_context("fork")
        values = slots * batch_size * int(np.prod(sample_shape))
        self._memory = mmap.mmap(-1, max(1, values) * 4)  # shared and anonymous: the children see these pages
        self._slots = np.frombuffer(self._memory, np.float32).reshape(slots, batch_size, *sample_shape)
        self._free: Deque[int] = deque(range(slots))
        self._waiting: Deque[_Ticket] = deque()
        self._workers = []
        self._submitted = 0
        with opencv_threads(1):  # the workers inherit it: OpenCV in their own thread, never a pool
            try:
                for _ in range(workers):
                    task_reader, task_writer = context.Pipe(duplex=False)
                    result_reader, result_writer = context.Pipe(duplex=False)
                    process = context.Process(target=_serve, args=(prepare, self._slots, task_reader, result_writer),
                                              name="pcls-predict-prepare", daemon=True)
                    process.start()
                    task_reader.close()
                    result_writer.close()
                    self._workers.append((process, task_writer, result_reader))
            except BaseException:
                self.close()
                raise

    def submit(self, items) -> _Ticket:
        ticket = _Ticket(self._submitted, items)
        self._submitted += 1
        self._waiting.append(ticket)
        self._dispatch()
        return ticket

    def _dispatch(self):
        while self._waiting and self._free:
            ticket = self._waiting.popleft()
            ticket.slot = self._free.popleft()
            _, tasks, _ = self._workers[ticket.index % len(self._workers)]
            tasks.send((ticket.index, ticket.slot, ticket.items))

    def take(self, ticket: _Ticket):
        if ticket.slot is None:  # more batches taken ahead than buffers: a caller's bug, never a user's
            raise RuntimeError("batch taken before a buffer was free for it")
        process, _, results = self._workers[ticket.index % len(self._workers)]
        try:  # only the worker holds the other end: its end is this end's EOF
            index, count, errors, failure = results.recv()
        except EOFError:
            process.join(timeout=5)
            raise PclsError(f"{FAILED}: its worker process ended ({_ending(process.exitcode)})") from None
        if failure:
            raise PclsError(f"{FAILED}: {failure}")
        if index != ticket.index:
            raise RuntimeError(f"worker answered batch {index} for batch {ticket.index}")
        batch = self._slots[ticket.slot, :count] if count else None
        return ticket.items, batch, {i: Unreadable(message) for i, message in errors.items()}

    def release(self, ticket: _Ticket):
        self._free.append(ticket.slot)
        self._dispatch()

    def close(self):
        """Each worker ends after the batches already sent to it (at most `slots`, a few); it only reads files and
        writes into the buffers, so one still busy after 5 s is killed."""
        for process, tasks, _ in self._workers:
            try:
                tasks.send(None)
            except OSError:  # it has already ended
                pass
        for process, tasks, results in self._workers:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
            tasks.close()
            results.close()
        self._workers = []


def _serve(prepare, slots, tasks, results):
    """A worker process: batches from `tasks` into `slots`, answered on `results` as (batch index, good images,
    {index: error message}, failure of the whole batch or None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers itself
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the handler inherited from Paddle
    while True:
        try:
            task = tasks.recv()
        except EOFError:
            return
        if task is None:
            return
        index, slot, items = task
        try:
            count, errors = 0, {}
            for position, item in enumerate(items):
                outcome = prepare(item)
                if not isinstance(outcome, Exception) and outcome.shape != slots.shape[2:]:
                    outcome = Unreadable(f"{item}: is {_shape_text(outcome.shape)} after pre-processing, but the model "
                                         f"takes {_shape_text(slots.shape[2:])}")
                if isinstance(outcome, Exception):
                    errors[position] = str(outcome)
                else:
                    slots[slot, count] = outcome
                    count += 1
            results.send((index, count, errors, None))
        except Exception as err:  # noqa: BLE001 - the parent reports it in one line
            results.send((index, 0, {}, _reason(err)))


def _shape_text(shape) -> str:
    return "x".join(str(side) for side in shape) + " (channels x height x width)"


def _reason(err: BaseException) -> str:
    """An exception as one clipped line: its type and message."""
    return f"{type(err).__name__}: {clip(' '.join(str(err).split()))}"


def _ending(exitcode) -> str:
    if exitcode is not None and exitcode < 0:
        killed = f"killed by signal {-exitcode}"
        return killed + (", which usually means the system ran out of memory" if exitcode == -9 else "")
    return f"exit code {exitcode}"
