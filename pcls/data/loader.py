"""build_dataloader: a DataLoader.<Train|Eval> config section -> paddle.io.DataLoader + sampler + dataset.

Randomness is per sample: every image's augmentation draws from a Generator seeded by
(seed, epoch, index), and batch operators from (seed, epoch, batch position), so a run with a fixed
Global.seed produces the same batches whatever the number of workers. Unreadable images are replaced,
counted, and reported once per epoch.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from pcls.data.datasets import build_dataset
from pcls.data.sampler import DistributedBatchSampler, build_sampler
from pcls.data.transforms import build_batch_transforms, build_transforms
from pcls.errors import PclsError

log = logging.getLogger(__name__)

BAD_SLOTS = 3  # failed indices carried back per sample (the count is exact, the paths are examples)
_BATCH_STREAM = 0x5EED  # keeps batch-op seeds apart from per-sample seeds


def resize_chw(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """A CHW image resized to width x height (bilinear), for a batch that has its own size."""
    import cv2

    if image.shape[1:] == (height, width):
        return image
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
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            raise PclsError(
                f"images in one batch have different sizes {sorted(shapes)[:3]}; end the transform_ops with a "
                "fixed-size op (RandCropImage size, or ResizeImage + CropImage)"
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


class _WorkerInit:
    """Per-worker setup. The operators use only the per-sample Generators; the global RNGs are seeded from
    (seed, epoch, worker_id) too, so third-party code in a custom pipeline is reproducible as well."""

    def __init__(self, samples):
        self.samples = samples

    def __call__(self, worker_id):
        seq = np.random.SeedSequence([self.samples.seed, self.samples.epoch, int(worker_id)])
        state = seq.generate_state(2)
        random.seed(int(state[0]))
        np.random.seed(int(state[1]))


class EpochLoader:
    """The loader the engine iterates: yields (images [N,C,H,W] float32, labels) paddle Tensors.

    Sets the epoch on the samples before each pass (workers start per epoch, so they see it), and
    collects the unreadable-image records.
    """

    def __init__(self, paddle_loader, sampler, samples, num_workers=0):
        self._loader, self.sampler, self._samples = paddle_loader, sampler, samples
        self.num_workers = num_workers
        self.bad_count, self.bad_paths = 0, []

    def __len__(self):
        return len(self.sampler)

    def __iter__(self):
        self._samples.epoch = self.sampler.epoch
        self.bad_count, self.bad_paths = 0, []
        if self.num_workers > 0:
            # Workers are forked. OpenCV's pthreads pool does not survive fork (a forked worker touching
            # it can hang), and the workers are the parallelism anyway: one OpenCV thread, set here in
            # the parent so the children inherit it and never reconfigure a pool they do not own.
            import cv2

            cv2.setNumThreads(1)
        for images, labels, records in self._loader:
            rec = records.numpy()
            if rec[:, 0].any():
                self._record(rec)
            yield images, labels
        if self.bad_count:
            log.warning(
                "epoch %d: skipped %d unreadable image(s), replaced by other samples; first: %s",
                self.sampler.epoch + 1, self.bad_count, ", ".join(self.bad_paths),  # 1-based, as the epoch lines
            )

    def _record(self, rec):
        paths = self._samples.dataset.paths
        self.bad_count += int(rec[:, 0].sum())
        for idx in rec[:, 1:].ravel():
            if idx >= 0 and len(self.bad_paths) < 5 and paths[idx] not in self.bad_paths:
                self.bad_paths.append(paths[idx])


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
        raise PclsError(f"DataLoader '{key}' must be a map, got {value!r}")
    return value


def build_dataloader(section: dict, *, train: bool, seed: int = 0, class_num: Optional[int] = None,
                     num_replicas: int = 1, rank: int = 0, allow_unlabeled: bool = False,
                     epoch_offset_batches: int = 0, limit: Optional[int] = None) -> DataBundle:
    """Dataset, sampler and paddle DataLoader for cfg['DataLoader']['Train'] (train=True) or ['Eval'].

    `limit` keeps only the first N samples of the list (quick checks, benchmarks).
    """
    import paddle

    dataset_cfg = _section(section, "dataset", True)
    sampler_cfg = _section(section, "sampler", False)
    from pcls.config.schema import validate_part  # the schema's defaults for what a section leaves out

    loader_cfg = validate_part("DataLoader.Train.loader", _section(section, "loader", False))
    transforms = build_transforms(dataset_cfg.get("transform_ops") or [], to_chw=True)
    batch_ops = build_batch_transforms(dataset_cfg.get("batch_transform_ops") or [], class_num=class_num)
    dataset = build_dataset(dataset_cfg, transforms=transforms, allow_unlabeled=allow_unlabeled)
    if limit is not None:
        dataset.truncate(int(limit))
    if class_num is not None:
        dataset.check_labels(int(class_num))
    if batch_ops and (dataset.labels < 0).any():
        raise PclsError(f"{dataset.source}: Mixup/Cutmix need labels, but the list has unlabeled lines")
    sampler = build_sampler(sampler_cfg, len(dataset), train=train, num_replicas=num_replicas, rank=rank, seed=seed)
    if epoch_offset_batches:
        sampler.set_start_batch(epoch_offset_batches)
    samples = _Samples(dataset, seed)
    _preflight(samples)
    num_workers = int(loader_cfg["num_workers"])
    paddle_loader = paddle.io.DataLoader(
        samples,
        batch_sampler=sampler,
        collate_fn=_Collate(samples, batch_ops),
        num_workers=num_workers,
        use_shared_memory=bool(loader_cfg["use_shared_memory"]) and num_workers > 0,
        return_list=True,
        worker_init_fn=_WorkerInit(samples) if num_workers > 0 else None,
    )
    return DataBundle(EpochLoader(paddle_loader, sampler, samples, num_workers), sampler, dataset, transforms, batch_ops)


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

