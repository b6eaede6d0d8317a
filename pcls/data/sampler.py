"""Batch samplers by PaddleClas name (`DataLoader.<split>.sampler.name`): a deterministic per-epoch order
(seed + epoch), split across replicas, resumable; MultiScaleSampler adds an image size per batch, RASampler
repeats each image (repeated augmentation)."""

from __future__ import annotations

import math

import numpy as np

from pcls.errors import PclsError
from pcls.utils.registry import Registry


class DistributedBatchSampler:
    """Batches of dataset indices for one replica.

    Each epoch's order is a permutation from (seed, epoch) when shuffling; it is padded by wrapping to a
    multiple of num_replicas and dealt round-robin (replica r takes positions r, r+R, ...), so all
    replicas see the same number of batches. `set_start_batch(k)` skips the first k batches of the next
    iteration only (resume mid-epoch); `len()` is always the full epoch's batch count.
    """

    def __init__(self, dataset_len, batch_size, *, shuffle=False, drop_last=False, num_replicas=1, rank=0, seed=0):
        if int(batch_size) <= 0:
            raise PclsError(f"sampler batch_size must be > 0, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise PclsError(f"rank {rank} is outside [0, {num_replicas})")
        self.dataset_len = int(dataset_len)
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.num_replicas, self.rank, self.seed = int(num_replicas), int(rank), int(seed)
        self.epoch = 0
        self.start_batch = 0
        self.num_samples = math.ceil(self.dataset_len / self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_start_batch(self, k: int) -> None:
        if not 0 <= int(k) <= len(self):
            raise PclsError(f"cannot resume at batch {k}: an epoch has {len(self)} batches")
        self.start_batch = int(k)

    def indices(self) -> np.ndarray:
        """This replica's sample indices for the current epoch, in order."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.dataset_len)
        else:
            order = np.arange(self.dataset_len)
        total = self.num_samples * self.num_replicas
        if total > self.dataset_len:
            order = np.resize(order, total)  # wraps around: pads with the first indices
        return order[self.rank : total : self.num_replicas]

    def __iter__(self):
        mine = self.indices()
        start, self.start_batch = self.start_batch, 0
        for b in range(start, len(self)):
            yield mine[b * self.batch_size : (b + 1) * self.batch_size].tolist()

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)


class MultiScaleSampler(DistributedBatchSampler):
    """PaddleClas's MultiScaleSampler: every batch has its own image size, drawn from `scales`, and a batch
    size that keeps the pixels per batch near `first_bs` images at the first scale.

    Yields lists of (index, width, height): the loader resizes each image of the batch to that size. The
    sizes are rounded up to multiples of `divided_factor` ([w, h] or one number). Each epoch's order and
    scale draws come from (seed, epoch), so a resumed run (`set_start_batch`) sees the same batches.
    """

    def __init__(self, dataset_len, scales, first_bs, *, divided_factor=32, shuffle=True, num_replicas=1, rank=0,
                 seed=0):
        if not scales:
            raise PclsError("MultiScaleSampler needs DataLoader.<split>.sampler.scales, e.g. [[224, 224], [256, 256]]")
        super().__init__(dataset_len, first_bs, shuffle=shuffle, num_replicas=num_replicas, rank=rank, seed=seed)
        factors = divided_factor if isinstance(divided_factor, (list, tuple)) else [divided_factor] * 2
        if len(factors) != 2 or min(int(v) for v in factors) < 1:
            raise PclsError(f"MultiScaleSampler divided_factor must be a positive number or [w, h], got {divided_factor}")
        pairs = []
        for scale in scales:
            width, height = (scale, scale) if isinstance(scale, (int, float)) else scale
            width = max(int(factors[0]), int(factors[0]) * math.ceil(float(width) / int(factors[0])))
            height = max(int(factors[1]), int(factors[1]) * math.ceil(float(height) / int(factors[1])))
            pairs.append((width, height))
        pixels = pairs[0][0] * pairs[0][1] * int(first_bs)
        self.scales = [(w, h, max(1, pixels // (w * h))) for w, h in pairs]

    def plan(self) -> list:
        """This epoch's batches: [(width, height, [indices])]."""
        mine = self.indices()
        rng = np.random.default_rng([self.seed, self.epoch, 0x5CA1E])
        batches, start = [], 0
        while start < len(mine):
            width, height, size = self.scales[int(rng.integers(len(self.scales)))]
            chunk = mine[start : start + size].tolist()
            start += size
            if len(chunk) < size and self.drop_last:
                break
            batches.append((width, height, chunk))
        return batches

    def __iter__(self):
        start, self.start_batch = self.start_batch, 0
        for width, height, chunk in self.plan()[start:]:
            yield [(index, width, height) for index in chunk]

    def __len__(self) -> int:
        return len(self.plan())


class RASampler(DistributedBatchSampler):
    """PaddleClas's RASampler: repeated augmentation (Hoffer et al. 2019; DeiT's sampler), CvT's configs use it.

    Each epoch's order (from seed + epoch when shuffling) lists every index `num_repeats` times in a row; it is
    padded by wrapping to a multiple of num_replicas and dealt round-robin, so the copies of one image go to
    different replicas (with one replica, to consecutive positions of one batch). Each replica then keeps only
    its first floor(N / 256) * 256 / num_replicas positions: an epoch is about N images, of which about
    N / num_repeats are distinct, each seen under `num_repeats` different augmentations.
    """

    def __init__(self, dataset_len, batch_size, *, num_repeats, shuffle=True, drop_last=False, num_replicas=1,
                 rank=0, seed=0):
        super().__init__(dataset_len, batch_size, shuffle=shuffle, drop_last=drop_last, num_replicas=num_replicas,
                         rank=rank, seed=seed)
        if int(num_repeats) < 1:
            raise PclsError(f"RASampler num_repeats must be >= 1, got {num_repeats}")
        self.num_repeats = int(num_repeats)
        self.num_samples = math.ceil(self.dataset_len * self.num_repeats / self.num_replicas)
        self.selected = self.dataset_len // 256 * 256 // self.num_replicas
        if len(self) == 0:
            raise PclsError(f"RASampler keeps floor(images / 256) * 256 / replicas = {self.selected} images per epoch "
                            f"per replica (PaddleClas's rule), so {self.dataset_len} images make no batch of "
                            f"{self.batch_size}; use DistributedBatchSampler for a data set this small")

    def indices(self) -> np.ndarray:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.dataset_len)
        else:
            order = np.arange(self.dataset_len)
        repeated = np.repeat(order, self.num_repeats)
        total = self.num_samples * self.num_replicas
        if total > repeated.size:
            repeated = np.resize(repeated, total)  # wraps around: pads with the first positions
        return repeated[self.rank : total : self.num_replicas][: self.selected]

    def __len__(self) -> int:
        if self.drop_last:
            return self.selected // self.batch_size
        return math.ceil(self.selected / self.batch_size)


def _batch_sampler(cfg, dataset_len, *, train, num_replicas, rank, seed):
    return DistributedBatchSampler(dataset_len, cfg["batch_size"], shuffle=cfg["shuffle"],
                                   drop_last=cfg["drop_last"], num_replicas=num_replicas, rank=rank,
                                   seed=seed)


def _multi_scale_sampler(cfg, dataset_len, *, train, num_replicas, rank, seed):
    shuffle = cfg["is_training"]
    return MultiScaleSampler(dataset_len, cfg["scales"], cfg["first_bs"] or cfg["batch_size"],
                             divided_factor=cfg["divided_factor"],
                             shuffle=train if shuffle is None else bool(shuffle), num_replicas=num_replicas,
                             rank=rank, seed=seed)


def _ra_sampler(cfg, dataset_len, *, train, num_replicas, rank, seed):
    return RASampler(dataset_len, cfg["batch_size"], num_repeats=cfg["num_repeats"], shuffle=cfg["shuffle"],
                     drop_last=cfg["drop_last"], num_replicas=num_replicas, rank=rank, seed=seed)


SAMPLERS = Registry("sampler", where="DataLoader.<split>.sampler.name",
                    listing="not supported: use DistributedBatchSampler, BatchSampler, MultiScaleSampler or "
                            "RASampler (identity/PK samplers for retrieval are not part of pcls)")
SAMPLERS.add("DistributedBatchSampler", _batch_sampler)
SAMPLERS.add("BatchSampler", _batch_sampler)
SAMPLERS.add("MultiScaleSampler", _multi_scale_sampler)
SAMPLERS.add("RASampler", _ra_sampler)


def build_sampler(cfg: dict, dataset_len: int, *, train: bool, num_replicas: int = 1, rank: int = 0, seed: int = 0):
    """The batch sampler a DataLoader.<split>.sampler section names."""
    if "batch_size" not in cfg:
        raise PclsError("DataLoader sampler needs batch_size")
    from pcls.config.schema import validate_part  # the schema's defaults for what the section leaves out

    if "name" in cfg:
        SAMPLERS.get(cfg["name"])  # an unknown sampler: the registry's message says what pcls supports
    cfg = validate_part(f"DataLoader.{'Train' if train else 'Eval'}.sampler", cfg)
    builder = SAMPLERS.get(cfg["name"])
    return builder(cfg, dataset_len, train=train, num_replicas=num_replicas, rank=rank, seed=seed)
