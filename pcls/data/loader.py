"""build_dataloader: a DataLoader.<Train|Eval> config section -> batch loader + sampler + dataset.

The loader is pcls's own rather than paddle.io.DataLoader, whose C++ queue blocks the main thread with no
timeout: a worker's exception hung the run forever, and signal handlers could not run while it waited.

Randomness is per sample: every image's augmentation draws from a Generator seeded by
(seed, epoch, index), and batch operators from (seed, epoch, batch position), so a run with a fixed
Global.seed produces the same batches whatever the number of workers. Unreadable images are replaced,
counted, and reported once per epoch.
"""

from __future__ import annotations

import collections
import logging
import queue
import random
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from pcls.data.datasets import build_dataset
from pcls.data.decode import check_output_size
from pcls.data.sampler import DistributedBatchSampler, build_sampler
from pcls.data.transforms import build_batch_transforms, build_transforms
from pcls.errors import PclsError, clip, short_repr
from pcls.utils.env import env_number
from pcls.utils.signals import DeferredStop

log = logging.getLogger(__name__)

BAD_SLOTS = 3  # failed indices carried back per sample (the count is exact, the paths are examples)
_BATCH_STREAM = 0x5EED  # keeps batch-op seeds apart from per-sample seeds
LOADER_TIMEOUT_ENV = "PCLS_LOADER_TIMEOUT"
DEFAULT_LOADER_TIMEOUT = 300.0  # seconds for one batch: minutes more than any real batch takes on one core
SIGNAL_GRACE_SECONDS = 30.0  # after SIGINT/SIGTERM, how long the trainer may wait for the batch it is finishing
_POLL_SECONDS = 0.2  # waits are sliced so that signal handlers run in between
# Without worker processes, evaluation decodes in two threads: through Paddle Inference a light model outruns one
# (PPLCNet_x1_0 takes ~2 ms per 224 px image on 2 cores, decode + pre-processing ~2.4 ms on one); OpenCV and
# numpy release the GIL. Training keeps one: its model waits for no decoder.
EVAL_LOADER_THREADS = 2


def resize_chw(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """A CHW image resized to width x height (bilinear), for a batch that has its own size."""
    import cv2

    if image.shape[1:] == (height, width):
        return image
    check_output_size(width, height, image.shape[1:], "MultiScaleSampler's resize")
    hwc = np.ascontiguousarray(image.transpose(1, 2, 0))
    resized = cv2.resize(hwc, (int(width), int(height)), interpolation=cv2.INTER_LINEAR)
    return resized.reshape(height, width, -1).transpose(2, 0, 1)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(epoch), int(index)])


class _Samples:
    """What the workers index: one sample = (CHW image, label, failure record)."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, int(seed), 0

    def __len__(self):
        return len(self.dataset)

    def path_of(self, index) -> str:
        """The file of sample `index` (a MultiScaleSampler index is (index, width, height))."""
        return str(self.dataset.paths[index[0] if isinstance(index, tuple) else index])

    def __getitem__(self, index):
        size = None
        if isinstance(index, tuple):  # MultiScaleSampler: (index, width, height)
            index, size = index[0], index[1:]
        image, label, failed = self.dataset.load(index, sample_rng(self.seed, self.epoch, index))
        if size is not None:
            image = resize_chw(image, *size)
        record = np.full(1 + BAD_SLOTS, -1, dtype=np.int64)
        record[0] = len(failed)
        record[1 : 1 + min(len(failed), BAD_SLOTS)] = failed[:BAD_SLOTS]
        return image, label, index, record


class _Collate:
    """Stack samples into a batch and apply the batch operators (in the worker)."""

    def __init__(self, owner, batch_ops):
        self.owner, self.batch_ops = owner, batch_ops

    def __call__(self, samples):
        images = [s[0] for s in samples]
        if len({im.shape for im in images}) > 1:
            first = images[0].shape
            other = next(s for s in samples if s[0].shape != first)
            paths = self.owner.path_of(samples[0][2]), self.owner.path_of(other[2])
            raise PclsError(
                f"images in one batch have different sizes: {paths[0]} is {first}, {paths[1]} is {other[0].shape} "
                "(CHW); end the transform_ops with a fixed-size op (RandCropImage size, or ResizeImage + CropImage)"
            )
        images = np.stack(images)
        if images.dtype not in (np.float32, np.float16):
            images = images.astype(np.float32)
        labels = np.asarray([s[1] for s in samples], dtype=np.int64)
        records = np.stack([s[3] for s in samples])
        if self.batch_ops:
            owner = self.owner
            rng = np.random.default_rng([owner.seed, owner.epoch, _BATCH_STREAM, int(samples[0][2])])
            images, labels = self.batch_ops(images, labels, rng)
            images = np.ascontiguousarray(images, dtype=np.float32)
            labels = np.asarray(labels, dtype=np.float32)
        return images, labels, records


def _init_worker(samples, collate, counter) -> None:
    """Per-worker setup in a forked worker: signals are the parent's to handle (Ctrl-C reaches the whole process
    group; the parent stops the workers), and the global RNGs are seeded from (seed, epoch, worker number): the
    operators use only the per-sample Generators, but third-party code in a custom pipeline is seeded too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with counter.get_lock():
        worker_id, counter.value = counter.value, counter.value + 1
    seq = np.random.SeedSequence([samples.seed, samples.epoch, int(worker_id)])
    state = seq.generate_state(2)
    random.seed(int(state[0]))
    np.random.seed(int(state[1]))
    _WORKER["batch"] = _BatchMaker(samples, collate)


_WORKER: dict = {}  # a worker process's batch maker (set by _init_worker; the parent never uses it)


def _make_batch_in_worker(indices):
    return _WORKER["batch"](indices)


class _BatchMaker:
    """Samples -> one collated batch, with any failure turned into one PclsError naming the file."""

    def __init__(self, samples, collate):
        self.samples, self.collate = samples, collate

    def __call__(self, indices):
        items = []
        for index in indices:
            try:
                items.append(self.samples[index])
            except PclsError:
                raise
            except Exception as err:  # an operator meeting data it cannot handle: name the file, in one line
                raise PclsError(f"{self.samples.path_of(index)}: {type(err).__name__}: {clip(err)}") from None
        return self.collate(items)


class DaemonThreads:
    """Background threads that make batches ahead of the consumer, `make(task)` each (what the loader uses without
    worker processes, and the predictor). Daemon threads: one stuck in a system call can never keep the process
    from exiting. `close` ends them once the tasks queued before it are done; a cancelled future is skipped."""

    def __init__(self, make, count: int = 1, name: str = "pcls-loader"):
        self._make, self._tasks, self._count = make, queue.Queue(), int(count)
        for _ in range(self._count):
            threading.Thread(target=self._run, name=name, daemon=True).start()

    def submit(self, task) -> Future:
        future = Future()
        self._tasks.put((future, task))
        return future

    def _run(self):
        while True:
            item = self._tasks.get()
            if item is None:
                return
            future, task = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._make(task))
            except BaseException as err:  # noqa: BLE001 - handed to the consumer, which raises it
                future.set_exception(err)

    def close(self):
        for _ in range(self._count):
            self._tasks.put(None)


class _WorkerProcesses:
    """`num_workers` forked processes making batches; forked per epoch, so they see the epoch's seed."""

    def __init__(self, samples, collate, num_workers):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("fork")  # forked: the initializer's arguments are never pickled
        self._pool = ProcessPoolExecutor(num_workers, mp_context=context, initializer=_init_worker,
                                         initargs=(samples, collate, context.Value("i", 0)))

    def submit(self, indices) -> Future:
        return self._pool.submit(_make_batch_in_worker, indices)

    def close(self):
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # a worker stuck on a file would otherwise outlive the run
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(timeout=5)


class _Signals(DeferredStop):
    """SIGINT/SIGTERM while batches are being loaded or used. A Python handler already installed (the trainer's:
    finish the update, save, stop) still gets the signal. With none (eval, bench), the loader ends the run at
    its next step with one line (DeferredStop's `check`): raising inside the handler could unwind through
    Paddle's C++ frames, which aborts the process. Either way `received` tells the waiting loader, which stops waiting after a grace
    period, so a stuck worker can never make a run ignore signals."""

    def __init__(self):
        self.received, self.unhandled = None, None

    def _handle(self, signum, frame):
        previous = self.previous.get(signum)
        self.received = self.received or (signum, time.monotonic())
        if previous is signal.SIG_IGN:
            return
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)
            return
        self.unhandled = self.unhandled or signum

    def __exit__(self, exc_type, *exc):
        super().__exit__(exc_type, *exc)
        if self.unhandled and exc_type is GeneratorExit:  # the consumer stopped iterating: the signal is its own
            signal.raise_signal(self.unhandled)


class EpochLoader:
    """The loader the engine iterates: yields (images [N,C,H,W] float32, labels) paddle Tensors.

    Batches are made ahead by a background thread (num_workers 0) or by worker processes forked at the start
    of each pass (so they see the epoch), and collected in order. Every wait for a batch is bounded
    ($PCLS_LOADER_TIMEOUT seconds) and interruptible: a worker's error reaches the caller as one PclsError
    naming the file, a dead worker as one line, and SIGINT/SIGTERM are handled while waiting. Also collects
    the unreadable-image records.
    """

    def __init__(self, sampler, samples, collate, num_workers=0, threads=1):
        self.sampler, self._samples, self._collate = sampler, samples, collate
        self.num_workers, self.threads = int(num_workers), int(threads)
        self.bad_count, self.bad_paths = 0, []

    def __len__(self):
        return len(self.sampler)

    @property
    def all_labelled(self) -> bool:
        """Every sample has its label in the list (none < 0): evaluation takes the loss of every batch without
        reading its labels back from the device first."""
        return bool((np.asarray(self._samples.dataset.labels) >= 0).all())

    def __iter__(self):
        import paddle

        self._samples.epoch = self.sampler.epoch
        self.bad_count, self.bad_paths = 0, []
        timeout = loader_timeout()
        with _Signals() as signals:
            makers, pending = self._start(), collections.deque()
            try:
                batches = iter(self.sampler)
                ahead = max(2, 2 * self.num_workers, self.threads + 1)
                while True:
                    while len(pending) < ahead:
                        indices = next(batches, None)
                        if indices is None:
                            break
                        pending.append((indices, makers.submit(indices)))
                    if not pending:
                        break
                    signals.check()
                    indices, future = pending.popleft()
                    images, labels, records = self._wait(future, indices, timeout, signals)
                    if records[:, 0].any():
                        self._record(records)
                    yield paddle.to_tensor(images), paddle.to_tensor(labels)
                signals.check()  # a signal during the last batch's use
            finally:
                for _, future in pending:  # the consumer stopped early or failed: batches nobody will take
                    future.cancel()
                makers.close()
        if self.bad_count:
            log.warning(
                "epoch %d: skipped %d unreadable image(s), replaced by other samples; first: %s",
                self.sampler.epoch + 1, self.bad_count, ", ".join(self.bad_paths),  # 1-based, as the epoch lines
            )

    def _start(self):
        if self.num_workers > 0:
            # Workers are forked. OpenCV's pthreads pool does not survive fork (a forked worker touching
            # it can hang), and the workers are the parallelism anyway: one OpenCV thread, set here in
            # the parent so the children inherit it and never reconfigure a pool they do not own.
            import cv2

            cv2.setNumThreads(1)
            return _WorkerProcesses(self._samples, self._collate, self.num_workers)
        return DaemonThreads(_BatchMaker(self._samples, self._collate), self.threads)

    def _wait(self, future, indices, timeout, signals):
        """The batch, or one PclsError: the worker's own, a dead worker, no batch within `timeout` seconds,
        or no batch within SIGNAL_GRACE seconds of a signal the trainer is waiting to act on."""
        from concurrent.futures import TimeoutError as FutureTimeout
        from concurrent.futures.process import BrokenProcessPool

        files = ", ".join(self._samples.path_of(i) for i in indices[:3]) + (", ..." if len(indices) > 3 else "")
        deadline = time.monotonic() + timeout
        while True:
            try:
                return future.result(timeout=_POLL_SECONDS)
            except FutureTimeout:
                signals.check()
            except PclsError:
                raise
            except BrokenProcessPool:
                raise PclsError(f"a data-loader worker process died while loading a batch of {files} (killed by the "
                                "system: out of memory?); lower DataLoader loader.num_workers or the batch size"
                                ) from None
            except Exception as err:  # noqa: BLE001 - anything else a worker raised, as one line
                raise PclsError(f"loading a batch of {files} failed: {type(err).__name__}: "
                                f"{clip(err)}") from None
            now = time.monotonic()
            if signals.received and now - signals.received[1] > SIGNAL_GRACE_SECONDS:
                name = signal.Signals(signals.received[0]).name
                raise PclsError(f"stopped by {name}: the data loader was still waiting for a batch of {files}",
                                exit_code=128 + signals.received[0])
            if now > deadline:
                raise PclsError(f"no batch after {timeout:g} s waiting for {files}: a file that never finishes "
                                f"reading (a stalled mount?) or a stuck operator; {LOADER_TIMEOUT_ENV} sets the limit")

    def _record(self, rec):
        paths = self._samples.dataset.paths
        self.bad_count += int(rec[:, 0].sum())
        for idx in rec[:, 1:].ravel():
            if idx >= 0 and len(self.bad_paths) < 5 and paths[idx] not in self.bad_paths:
                self.bad_paths.append(paths[idx])


def loader_timeout() -> float:
    """Seconds the loader waits for one batch: $PCLS_LOADER_TIMEOUT (a positive number) or the default."""
    return env_number(LOADER_TIMEOUT_ENV, DEFAULT_LOADER_TIMEOUT, "a positive number of seconds")


@dataclass
class DataBundle:
    loader: EpochLoader
    sampler: DistributedBatchSampler
    dataset: Any
    transforms: Any = None
    batch_transforms: Any = None
    extras: dict = field(default_factory=dict)

    def bad_samples(self):
        """(count, first few paths) of images skipped in the current / last epoch."""
        return self.loader.bad_count, list(self.loader.bad_paths)


def _section(cfg, key, required):
    value = cfg.get(key) if isinstance(cfg, dict) else None
    if value is None:
        if required:
            raise PclsError(f"DataLoader section is missing '{key}'")
        return {}
    if not isinstance(value, dict):
        raise PclsError(f"DataLoader '{key}' must be a map, got {short_repr(value)}")
    return value


def build_dataloader(section: dict, *, train: bool, seed: int = 0, class_num: Optional[int] = None,
                     num_replicas: int = 1, rank: int = 0, allow_unlabeled: bool = False,
                     epoch_offset_batches: int = 0, limit: Optional[int] = None) -> DataBundle:
    """Dataset, sampler and paddle DataLoader for cfg['DataLoader']['Train'] (train=True) or ['Eval'].

    `limit` keeps only the first N samples of the list (quick checks, benchmarks).
    """
    dataset_cfg = _section(section, "dataset", True)
    sampler_cfg = _section(section, "sampler", False)
    from pcls.config.schema import validate_part  # the schema's defaults for what a section leaves out

    split = "Train" if train else "Eval"
    loader_cfg = validate_part(f"DataLoader.{split}.loader", _section(section, "loader", False))
    transforms = build_transforms(dataset_cfg.get("transform_ops") or [], to_chw=True)
    batch_ops = build_batch_transforms(dataset_cfg.get("batch_transform_ops") or [], class_num=class_num)
    dataset = build_dataset(dataset_cfg, transforms=transforms, allow_unlabeled=allow_unlabeled)
    if limit is not None:
        dataset.truncate(int(limit))
    # the model's class count (Arch.class_num) and the dataset section's own (PaddleClas's key): labels fit both
    for count, setting in ((class_num, "Arch.class_num"),
                           (dataset_cfg.get("class_num"), f"DataLoader.{split}.dataset.class_num")):
        if count is not None:
            dataset.check_labels(int(count), setting)
    if batch_ops and (dataset.labels < 0).any():
        raise PclsError(f"{dataset.source}: Mixup/Cutmix need labels, but the list has unlabeled lines")
    sampler = build_sampler(sampler_cfg, len(dataset), train=train, num_replicas=num_replicas, rank=rank, seed=seed)
    if epoch_offset_batches:
        sampler.set_start_batch(epoch_offset_batches)
    samples = _Samples(dataset, seed)
    _preflight(samples)
    num_workers = int(loader_cfg["num_workers"])
    if num_workers < 0:
        raise PclsError(f"DataLoader loader.num_workers must be >= 0, got {num_workers}")
    # use_shared_memory (PaddleClas's key) needs nothing here: workers send each batch back through a pipe
    loader = EpochLoader(sampler, samples, _Collate(samples, batch_ops), num_workers,
                         threads=1 if train else EVAL_LOADER_THREADS)
    return DataBundle(loader, sampler, dataset, transforms, batch_ops)


def _preflight(samples) -> None:
    """Run the pipeline on the first sample in this process, so a config mistake (a crop larger than the
    image, an operator on the wrong layout) is one clear error before training instead of a worker traceback."""
    try:
        image = samples[0][0]
    except PclsError:
        raise
    except Exception as err:  # an operator meeting data it cannot handle: say which pipeline and file
        raise PclsError(
            f"transform_ops fail on {samples.dataset.paths[0]}: {type(err).__name__}: {err} "
            f"(pipeline: {samples.dataset.transforms}; it must start with DecodeImage)"
        ) from err
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        raise PclsError(
            f"the transform_ops produce {type(image).__name__} of shape {getattr(image, 'shape', None)}, not a "
            "CHW image; start them with DecodeImage"
        )

