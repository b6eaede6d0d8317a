"""The batch sampler: a deterministic per-epoch order (seed + epoch), split across replicas, resumable."""

from __future__ import annotations

import math

import numpy as np

from pcls.errors import PclsError


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
