"""The predictor: an exported model (or a zoo name, exported once) with its inference.yml pre- and
post-processing, on a runtime from `pcls.deploy.runtimes`, fed by workers (`pcls.deploy.prepare`: threads, or
processes when the model leaves cores free) that decode and pre-process the next batches while the model runs the
current one.
`runtime="auto"` takes, on CPU, the runtime the export measured faster (`choose_runtime`).

    predictor = pcls.Predictor("inference/")        # or a zoo name: pcls.Predictor("ResNet50_vd")
    predictor.predict(["a.jpg", "b.jpg"])   # -> [{"class_ids": [...], "scores": [...], "labels": [...]}, ...]
"""

from __future__ import annotations

import contextlib
from collections import deque
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple

import numpy as np

from pcls.deploy.gpu import parse_device, require_cuda
from pcls.deploy.postprocess import build_postprocess
from pcls.deploy.prepare import ProcessBatches, ThreadBatches, Unreadable, processes_available
from pcls.deploy.runtimes import (
    RuntimeSettings, choose_runtime, cpu_threads, create_runner, openmp_spinning_off,
)
from pcls.deploy.spec import input_hw, read_spec, size_text, spec_input_size
from pcls.errors import PclsError

__all__ = ["Predictor"]

# starting two worker processes takes ~10-25 ms; over 8 batches (64 images) they were no faster than threads
PROCESS_MIN_BATCHES = 8


class Predictor:
    """Exported model + its inference.yml: pre-processing, runtime, top-k post-processing."""

    def __init__(self, model_dir, runtime: str = "auto", device: str = "cpu", threads: Optional[int] = None,
                 trt: bool = False, precision: Optional[str] = None, topk: Optional[int] = None, batch_size: int = 8,
                 workers: Optional[int] = None, trt_batch_sizes: Tuple[int, ...] = (),
                 processes: Optional[bool] = None):
        from pcls.data.transforms import build_transforms
        from pcls.deploy.zoo_export import prepared_model_dir

        given, (device, gpu_id) = device, parse_device(device)
        if device == "gpu" or trt:
            require_cuda(given, drop=("--trt",) if trt else ())  # before reading or building anything
        self.model_dir = prepared_model_dir(model_dir)  # an export folder, or a zoo name exported once
        self.spec = read_spec(self.model_dir)
        if precision is None:  # an int8 export predicts in int8 on CPU unless told otherwise
            precision = "int8" if self.spec["Global"].get("int8") and device == "cpu" else "fp32"
        self.labels = self.spec["labels"]
        self.topk = int(topk or self.spec["PostProcess"]["topk"])
        self.post = build_postprocess(self.spec["PostProcess"], self.labels, self.topk)
        fixed = self.spec["Global"].get("batch_size")
        self.fixed_batch = int(fixed) if fixed else None
        self.batch_size = self.fixed_batch or int(batch_size)
        if self.batch_size < 1:
            raise PclsError(f"--batch-size must be >= 1, got {batch_size}")
        RuntimeSettings(runtime=runtime, device=device, trt=trt, precision=precision).validate()
        self.runtime = choose_runtime(self.spec, self.model_dir, runtime, device, precision)
        self.settings = RuntimeSettings(runtime=self.runtime, device=device, gpu_id=gpu_id, trt=trt, precision=precision,
                                        threads=threads or cpu_threads(), max_batch_size=self.batch_size,
                                        trt_batch_sizes=tuple(trt_batch_sizes)).validate()
        self.input_size = spec_input_size(self.spec["Global"]["input_size"])  # int, or [height, width]
        self.input_hw = input_hw(self.input_size)
        self.class_num = self.spec["Global"].get("class_num")
        self.run_batch = create_runner(self.model_dir, self.settings, self.input_hw)
        self.preprocess = build_transforms(self.spec["PreProcess"]["transform_ops"], to_chw=True)
        self.workers = workers or cpu_threads(cap=4)
        self.processes = processes  # True / False: forked processes / threads make the batches; None: `_batch_maker`

    # -- single steps -----------------------------------------------------------------------------------------
    def preprocess_one(self, item) -> np.ndarray:
        """A path, encoded bytes, or an HWC uint8 RGB array -> the CHW float32 model input."""
        if isinstance(item, Path):
            item = str(item)
        array = np.asarray(self.preprocess(item, np.random.default_rng(0)), dtype=np.float32)
        if array.shape[-2:] != self.input_hw:
            # an export written before exports added resize + crop to such pipelines takes its own size only
            raise PclsError(f"is {array.shape[-2]}x{array.shape[-1]} (height x width) after the export's "
                            f"pre-processing, but the model takes {size_text(self.input_size)}; export the model "
                            "again (exports now add resize + center-crop) to predict images of any size")
        return array

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Scores for a pre-processed batch; pads to the exported batch size when it is fixed."""
        n = batch.shape[0]
        if self.fixed_batch and n != self.fixed_batch:
            pad = np.zeros((self.fixed_batch - n, *batch.shape[1:]), dtype=batch.dtype)
            scores = self.run_batch(np.concatenate([batch, pad]))[:n]
        else:
            scores = self.run_batch(batch)
        if self.class_num and scores.shape[-1] != int(self.class_num):
            raise PclsError(f"the model in {self.model_dir} outputs {scores.shape[-1]} classes but its "
                            f"inference.yml says {self.class_num}; re-export it")
        return scores

    def postprocess(self, scores: np.ndarray) -> List[dict]:
        """inference.yml's PostProcess (Topk, ThreshOutput: pcls.deploy.postprocess) on a batch of scores."""
        return self.post(scores)

    # -- the pipeline ---------------------------------------------------------------------------------------------
    def predict(self, images: Iterable) -> List[dict]:
        """Top-k for each image (paths, bytes or HWC RGB arrays); raises on an unreadable input."""
        results = []
        for _, outcome in self.predict_stream(list(images)):
            if isinstance(outcome, Exception):
                raise PclsError(str(outcome))
            results.append(outcome)
        return results

    def predict_stream(self, items: List) -> Iterator[Tuple[object, object]]:
        """(item, result-or-error) in input order. Workers read, decode, pre-process and stack the next batches (at
        most `ahead` of them) while the model runs the current one; an unreadable image is that image's error, never
        fatal for the others."""
        items = list(items)
        ahead = max(2, self.workers + 1)  # every worker busy while the model runs, and one batch ready
        batches = [items[start:start + self.batch_size] for start in range(0, len(items), self.batch_size)]
        maker = self._batch_maker(len(batches), ahead)
        pending: deque = deque()
        on_cpu = self.runtime == "paddle" and self.settings.device == "cpu"
        with openmp_spinning_off() if on_cpu else contextlib.nullcontext():
            try:
                for batch_items in batches:
                    pending.append(maker.submit(batch_items))
                    if len(pending) > ahead:
                        yield from self._run_prepared(maker, pending.popleft())
                while pending:
                    yield from self._run_prepared(maker, pending.popleft())
            finally:  # also on Ctrl-C and when the consumer stops early: nothing queued runs, nothing waits
                maker.close()

    def _batch_maker(self, batches: int, ahead: int):
        """Forked processes or threads (`pcls.deploy.prepare`). By default processes when Paddle Inference runs the
        model on CPU on fewer threads than there are cores, over more than `PROCESS_MIN_BATCHES` batches: they keep
        preparing while the model holds the GIL (PPLCNet_x1_0 on 1 of 2 cores, 256 images: 0.88x the model alone vs
        0.75x with threads). When the model takes every core, processes take cores from its OpenMP threads, which
        costs more than the overlap gains (0.46x vs 0.54x on 2 cores; CHANGELOG #29), so threads."""
        use_processes = self.processes
        if use_processes is None:
            use_processes = (self.runtime == "paddle" and self.settings.device == "cpu"
                             and batches > PROCESS_MIN_BATCHES and self.settings.threads < cpu_threads()
                             and processes_available())
        if use_processes:
            if not processes_available():
                raise PclsError("worker processes need fork (Linux); use the default worker threads")
            shape = (self.input_channels, *self.input_hw)
            return ProcessBatches(self._safe_preprocess, shape, self.batch_size, self.workers, slots=ahead + 1)
        return ThreadBatches(self._safe_preprocess, self.workers)

    @property
    def input_channels(self) -> int:
        """Channels of one pre-processed image: NormalizeImage's channel_num (4 for PaddleClas's NHWC fp16
        configs), else 3."""
        from pcls.data.transforms.basic import NormalizeImage

        ops = getattr(self.preprocess, "ops", ())
        return next((op.channel_num for op in reversed(ops) if isinstance(op, NormalizeImage)), 3)

    def _run_prepared(self, maker, ticket) -> Iterator[Tuple[object, object]]:
        """The model and post-processing on one prepared batch (waited for), in input order."""
        batch_items, batch, errors = maker.take(ticket)
        try:
            results = iter(self.postprocess(self.infer(batch)) if batch is not None else ())
        finally:
            maker.release(ticket)  # the model has copied the batch in
        for index, item in enumerate(batch_items):
            yield item, errors[index] if index in errors else next(results)

    def _safe_preprocess(self, item):
        try:
            return self.preprocess_one(item)
        except Exception as err:  # a bad image is reported for that image, never fatal for the others
            reason = str(err) or type(err).__name__
            return Unreadable(f"{item}: {reason}")
