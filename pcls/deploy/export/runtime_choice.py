"""Which runtime an export records for CPU prediction (`Global.runtime` in inference.yml): the faster of Paddle
Inference and ONNX Runtime at batch 1, in a quick interleaved measurement. `--runtime auto` reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional


def choose_cpu_runtime(model_dir: Path, size: int, has_onnx: bool, measure: Optional[Callable] = None) -> dict:
    """What `--runtime auto` uses on CPU. `measure(model_dir, size) -> {"paddle": ms, "onnx": ms}` is injectable
    (tests force either result)."""
    if not has_onnx:
        return {"cpu": "paddle", "why": "no ONNX model in the export (export with --format onnx to compare)"}
    timings = (measure or measure_runtimes)(model_dir, size)
    faster = min(("paddle", "onnx"), key=lambda name: timings[name])
    return {"cpu": faster, "measured_ms_batch1": {k: round(float(v), 3) for k, v in timings.items()}}


def measure_runtimes(model_dir: Path, size: int) -> dict:
    """ms per batch-1 call of Paddle Inference and ONNX Runtime, timed in alternating rounds."""
    from pcls.deploy.measure import time_models
    from pcls.deploy.runtimes import RuntimeSettings, cpu_threads, create_runner

    threads = cpu_threads(cap=4)
    runners = {name: create_runner(model_dir, RuntimeSettings(runtime=name, threads=threads), size)
               for name in ("paddle", "onnx")}
    timed = time_models(runners, size, batch_size=1, warmup=5, iters=9, rounds=3)  # a few seconds for ResNet50
    return {name: stats["p50_ms"] for name, stats in timed.items()}
