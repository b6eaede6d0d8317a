"""--cache-teacher: compute each training image's teacher logits once and keep them in a memory-mapped file.

Rows are keyed by a hash of the sample's input tensor, so no sample ids have to travel through the loader.
Reuse is exact only when the training pipeline is deterministic (decode, resize, crop, normalise): a random
augmentation gives the student a different input every epoch, so there the cache is not used and the log
says why.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from pcls.utils.io import record_written

log = logging.getLogger(__name__)
DETERMINISTIC_OPS = {"DecodeImage", "ResizeImage", "CropImage", "NormalizeImage", "ToCHWImage", "Pad"}


def random_ops(train_cfg: dict) -> List[str]:
    """Names of the operators that make the training inputs change between epochs."""
    dataset = train_cfg.get("dataset") or {}
    names = [next(iter(op)) for op in dataset.get("transform_ops") or []]
    names += [next(iter(op)) for op in dataset.get("batch_transform_ops") or []]
    return [name for name in names if name not in DETERMINISTIC_OPS]


class TeacherCache:
    """Memory-mapped [capacity, class_num] float32 logits per frozen model, filled on first sight."""

    def __init__(self, folder, capacity: int, class_num: int):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        record_written(self.folder, folder=True)
        self.capacity, self.class_num = int(capacity), int(class_num)
        self.rows: Dict[str, Dict[bytes, int]] = {}
        self.tables: Dict[str, np.memmap] = {}
        self.hits = self.misses = 0

    def _table(self, name: str) -> np.memmap:
        if name not in self.tables:
            self.tables[name] = np.memmap(self.folder / f"{name}.logits.f32", dtype=np.float32, mode="w+",
                                          shape=(self.capacity, self.class_num))
            self.rows[name] = {}
        return self.tables[name]

    @staticmethod
    def keys_for(x) -> List[bytes]:
        batch = x.numpy() if hasattr(x, "numpy") else np.asarray(x)
        return [hashlib.blake2b(np.ascontiguousarray(sample).tobytes(), digest_size=16).digest() for sample in batch]

    def lookup(self, name: str, keys: List[bytes]) -> Optional[np.ndarray]:
        table, rows = self._table(name), self.rows[name]
        if all(key in rows for key in keys):
            self.hits += len(keys)
            return np.asarray(table[[rows[key] for key in keys]])
        self.misses += len(keys)
        return None

    def store(self, name: str, keys: List[bytes], logits: np.ndarray) -> None:
        table, rows = self._table(name), self.rows[name]
        for key, row in zip(keys, logits):
            if key not in rows and len(rows) < self.capacity:
                rows[key] = len(rows)
                table[rows[key]] = row

    def __len__(self) -> int:
        return max((len(r) for r in self.rows.values()), default=0)

    def close(self) -> None:
        """Drop the tables and their files: rows are indexed in memory only, so no later run can reuse them."""
        for name in list(self.tables):
            path = Path(self.tables.pop(name).filename)
            path.unlink(missing_ok=True)
        self.rows.clear()
        if self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()


def make_teacher_cache(model, train_loader_cfg: dict, dataset_size: int, class_num: int, folder):
    """A TeacherCache for a DistillationModel when the training pipeline allows exact reuse, else None."""
    if not getattr(model, "frozen", None):
        log.info("--cache-teacher: no frozen model (teacher) to cache; ignored")
        return None
    random = random_ops(train_loader_cfg)
    if random:
        log.info("--cache-teacher: not used — the training pipeline is random (%s), so the student sees a "
                 "different input every epoch and cached teacher logits would not match it; the teacher runs "
                 "on every batch", ", ".join(random))
        return None
    log.info("--cache-teacher: teacher logits for the %d training images are computed in the first epoch and "
             "reused in every later one (deterministic pipeline), memory-mapped under %s", dataset_size, folder)
    return TeacherCache(folder, dataset_size, class_num)
