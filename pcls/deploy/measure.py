"""How fast, how accurate and how large an exported model is: the measurements `pcls bench`, the export's
runtime choice (`--runtime auto`) and the int8 accuracy check share. Runners are callables batch -> scores."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

from pcls.deploy.spec import input_hw


def _percentiles(samples_s: List[float]) -> dict:
    ms = np.asarray(samples_s) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}


def time_models(runners: Dict[object, Callable], input_size: int, batch_size: int, warmup: int = 5, iters: int = 30,
                rounds: int = 3) -> dict:
    """Latency of each model alone on a fixed random batch (data already in memory), name -> stats.

    Several runners are timed in alternating rounds, so drift in the machine's load affects them alike.
    """
    height, width = input_hw(input_size)
    batch = np.random.default_rng(0).standard_normal((batch_size, 3, height, width)).astype("float32")
    samples = {name: [] for name in runners}
    for run_batch in runners.values():
        for _ in range(warmup):
            run_batch(batch)
    per_round = max(1, iters // rounds)
    for _ in range(rounds):
        for name, run_batch in runners.items():
            for _ in range(per_round):
                start = time.perf_counter()
                run_batch(batch)
                samples[name].append(time.perf_counter() - start)
    result = {}
    for name, times in samples.items():
        stats = _percentiles(times)
        stats["images_per_s"] = batch_size / (stats["mean_ms"] / 1000.0)
        result[name] = stats
    return result


def top1(run: Callable, images: np.ndarray, labels: np.ndarray, batch_size: int = 16) -> float:
    """Top-1 accuracy in percent of `run` (batch -> scores)."""
    hits = 0
    for i in range(0, len(images), batch_size):
        scores = run(images[i:i + batch_size])
        hits += int((np.argmax(scores, axis=-1) == labels[i:i + batch_size]).sum())
    return 100.0 * hits / max(len(images), 1)


def file_size_mb(paths: List[Path]) -> float:
    return sum(p.stat().st_size for p in paths if p.exists()) / 1e6
