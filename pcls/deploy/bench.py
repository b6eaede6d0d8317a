"""`pcls bench`: latency percentiles and throughput of an exported model, alone and end to end (decode +
pre-process + model through the predictor pipeline), beside the zoo's documented figures when the hardware
matches, and optionally Paddle Inference vs ONNX Runtime (`run_bench`); every format/precision an export holds
in one table (`run_formats`, `pcls bench --formats`)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np

from pcls.deploy.gpu import cuda_device_name, parse_device, require_cuda
from pcls.deploy.measure import file_size_mb, time_models, top1
from pcls.deploy.spec import INT8_ONNX_FILE, ONNX_FILE, export_folder, model_files, read_spec
from pcls.errors import PclsError

END_TO_END_IMAGES = 500
Progress = Optional[Callable[[str], None]]  # told each stage of a long run ("paddle: batch 8 ..."); the CLI shows it


def make_jpegs(folder: Path, count: int = END_TO_END_IMAGES, size=(375, 500)) -> List[Path]:
    """Synthetic photo-sized JPEGs (smooth gradients + noise, ~ImageNet's typical 500x375) for end-to-end runs."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    paths = []
    for index in range(count):
        base = np.stack([(xx * (index % 7 + 1)) % 256, (yy * (index % 5 + 1)) % 256, (xx + yy) % 256], axis=-1)
        noisy = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"img_{index:04d}.jpg"
        cv2.imwrite(str(path), noisy, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def time_end_to_end(predictor, paths: List[Path]) -> dict:
    """Predicted images/s through predict_stream (decode + pre-process in the pool, batches on the model), and how
    many images were rejected (unreadable, or refused by the pre-processing): only predicted images are counted,
    so a rejected image never makes the pipeline look faster than the model."""
    list(predictor.predict_stream(paths[: predictor.batch_size * 2]))  # warm-up: pool threads, first allocations
    start = time.perf_counter()
    outcomes = [outcome for _, outcome in predictor.predict_stream(paths)]
    elapsed = time.perf_counter() - start
    rejected = sum(isinstance(outcome, Exception) for outcome in outcomes)
    predicted = len(outcomes) - rejected
    return {"images_per_s": predicted / elapsed if predicted else None, "rejected": rejected}


def _e2e_fields(timing: dict, model_images_per_s: Optional[float]) -> dict:
    """The end-to-end columns of a row; no ratio to the model alone when any image was rejected."""
    fraction = None
    if not timing["rejected"] and timing["images_per_s"] and model_images_per_s:
        fraction = timing["images_per_s"] / model_images_per_s
    return {"end_to_end_images_per_s": timing["images_per_s"], "end_to_end_rejected": timing["rejected"],
            "end_to_end_fraction": fraction}


def bare_paddle_runner(model_dir: Path, threads: int):
    """A plain paddle.inference predictor with only the thread count set: the yardstick for pcls's config."""
    import paddle.inference as pi

    from pcls.deploy.runtimes import runner_from_config

    graph, params = model_files(model_dir)
    config = pi.Config(str(graph), str(params))
    config.set_cpu_math_library_num_threads(threads)
    config.disable_glog_info()
    return runner_from_config(config)


def documented_latency(model_name: str, device_name: Optional[str], precision: str, trt: bool, batch: int):
    """The zoo's documented latency for this hardware/precision/batch, or None when nothing matches."""
    from pcls.zoo.catalog import load_catalog

    if not device_name:
        return None
    figures = (load_catalog().get(model_name) or {}).get("latency_ms") or {}
    engine = "trt" if trt else "fluid"
    for gpu in ("V100", "T4", "P4"):
        key = f"{gpu}_{engine}_{precision}_bs{batch}"
        if gpu in device_name and key in figures:
            return {"key": key, "ms": figures[key]}
    return None


def _workdir():
    """A temp folder for what a bench run generates (an export of a zoo name, JPEGs); removed afterwards."""
    return tempfile.TemporaryDirectory(prefix="pcls-bench-", ignore_cleanup_errors=True)


def _model_dir_for(target: str, weights: Optional[str], fmt: str, workdir: Path) -> Path:
    """`target` when it is an export folder, the cached export of a run folder, else the zoo/backbone name `target`
    exported into `workdir` now."""
    from pcls.deploy.export import ExportRequest, export
    from pcls.deploy.zoo_export import exported_run_dir

    folder = exported_run_dir(target) or export_folder(target)
    if folder is not None:
        return folder
    folder = workdir / target
    export(ExportRequest(model_name=target, out_dir=folder, weights=weights, fmt=fmt,
                         measure=lambda *_: {"paddle": 0.0, "onnx": 0.0}))  # bench measures for itself
    return folder


def _end_to_end_images(images: Optional[str], workdir: Path, count: int = END_TO_END_IMAGES) -> List[Path]:
    """The JPEGs of `images`, or `count` generated ones."""
    paths = sorted(Path(images).rglob("*.jp*g")) if images else make_jpegs(workdir / "images", count)
    if not paths:
        raise PclsError(f"no JPEG files in {images}")
    return paths


def _shown_dir(model_dir: Path, workdir: Path, target: str) -> str:
    return f"{target} (exported to a temporary folder, removed)" if workdir in model_dir.parents else str(model_dir)


def run_bench(target: str, *, batch_sizes=(1, 4, 8), threads: int = 2, device: str = "cpu", trt: bool = False,
              precision: str = "fp32", compare: bool = False, weights: Optional[str] = None,
              images: Optional[str] = None, warmup: int = 5, iters: int = 30, end_to_end: bool = True,
              bare: bool = True, progress: Progress = None) -> dict:
    """Latency and throughput of `target` (an export folder, a run folder or a zoo/backbone name) per runtime and
    batch size. `progress(stage)` is told what is being timed."""
    from pcls.deploy.predictor import Predictor
    from pcls.deploy.runtimes import RuntimeSettings, create_runner

    kind, _ = parse_device(device)
    if kind == "gpu" or trt:
        require_cuda(device, drop=("--trt",) if trt else ())  # before exporting or generating anything
    if precision == "int8" and kind == "cpu":  # the settings' own refusal would suggest a --runtime bench lacks
        raise PclsError("pcls bench --int8 times TensorRT INT8 (--device gpu --trt); the CPU int8 model is timed "
                        "by 'pcls bench EXPORT --formats'")
    RuntimeSettings(device=kind, trt=trt, precision=precision).validate()
    say = progress or (lambda stage: None)
    with _workdir() as tmp:
        workdir = Path(tmp)
        model_dir = _model_dir_for(target, weights, "onnx" if compare else "paddle", workdir)
        if compare and not (model_dir / ONNX_FILE).exists():
            raise PclsError(f"{model_dir} has no ONNX model; export with --format onnx to compare runtimes")
        spec = read_spec(model_dir)
        size, name = spec["Global"]["input_size"], spec["Global"]["model_name"]
        gpu = cuda_device_name() if kind == "gpu" else None
        paths = _end_to_end_images(images, workdir) if end_to_end else []
        rows = []
        for runtime in ("paddle", "onnx") if compare else ("paddle",):
            settings = RuntimeSettings(runtime=runtime, device=kind, gpu_id=parse_device(device)[1], threads=threads,
                                       trt=trt, precision=precision,
                                       max_batch_size=max(batch_sizes), trt_batch_sizes=tuple(batch_sizes)).validate()
            runners = {"pcls": create_runner(model_dir, settings, size)}
            if bare and runtime == "paddle" and kind == "cpu":
                runners["bare"] = bare_paddle_runner(model_dir, threads)
            for batch in batch_sizes:
                say(f"{runtime}: batch {batch} ...")
                timed = time_models(runners, size, batch, warmup, iters)
                row = {"runtime": runtime, "batch_size": batch, **timed["pcls"]}
                if "bare" in timed:
                    row["bare_paddle_mean_ms"] = timed["bare"]["mean_ms"]
                    row["bare_paddle_p50_ms"] = timed["bare"]["p50_ms"]
                if end_to_end:
                    predictor = Predictor(model_dir, runtime=runtime, device=device, threads=threads, trt=trt,
                                          precision=precision, batch_size=batch, trt_batch_sizes=tuple(batch_sizes))
                    row.update(_e2e_fields(time_end_to_end(predictor, paths), row["images_per_s"]))
                documented = documented_latency(name, gpu, precision, trt, batch) or {}
                row["documented_ms"] = documented.get("ms")
                row["documented_key"] = documented.get("key")
                rows.append(row)
    result = {"model": name, "model_dir": _shown_dir(model_dir, workdir, target), "device": device, "gpu": gpu,
              "threads": threads, "trt": trt, "precision": precision, "input_size": size,
              "end_to_end_images": len(paths), "end_to_end_rejected": _max_rejected(rows), "rows": rows}
    if compare:
        by = {(r["runtime"], r["batch_size"]): r for r in rows}
        result["onnx_over_paddle_speed"] = {
            b: by[("paddle", b)]["mean_ms"] / by[("onnx", b)]["mean_ms"] for b in batch_sizes}
    return result


def _formats_in(model_dir: Path) -> dict:
    """(runtime, precision) -> model files, for each model the export holds: Paddle fp32, ONNX fp32, ONNX int8."""
    candidates = {("paddle", "fp32"): list(model_files(model_dir)), ("onnx", "fp32"): [model_dir / ONNX_FILE],
                  ("onnx", "int8"): [model_dir / INT8_ONNX_FILE]}
    return {fmt: files for fmt, files in candidates.items() if all(f.exists() for f in files)}


def run_formats(target: str, *, threads: int = 2, weights: Optional[str] = None, images: Optional[str] = None,
                val: Optional[str] = None, root: Optional[str] = None, warmup: int = 3, iters: int = 20,
                e2e_images: int = 200, progress: Progress = None) -> dict:
    """Every format/precision an export holds: file size, ms/img at batch 1 and 8, end-to-end images/s and
    top-1 on `val` — one table, as Ultralytics' benchmark prints it. Formats are timed in alternating rounds."""
    from pcls.deploy.predictor import Predictor
    from pcls.deploy.runtimes import RuntimeSettings, create_runner
    from pcls.deploy.converters.int8 import load_images

    say = progress or (lambda stage: None)
    with _workdir() as tmp:
        workdir = Path(tmp)
        model_dir = _model_dir_for(target, weights, "onnx", workdir)
        spec = read_spec(model_dir)
        size = spec["Global"]["input_size"]  # int, or [height, width]
        present = _formats_in(model_dir)
        runners = {(rt, prec): create_runner(model_dir, RuntimeSettings(runtime=rt, precision=prec, threads=threads)
                                             .validate(), size) for rt, prec in present}
        timed = {}
        for batch in (1, 8):
            say(f"formats: batch {batch} ...")
            timed[batch] = time_models(runners, size, batch, warmup, iters)
        paths = _end_to_end_images(images, workdir, e2e_images)
        val_data = load_images(val, root, spec["PreProcess"]["transform_ops"]) if val else None
        rows = []
        for (rt, prec), files in present.items():
            predictor = Predictor(model_dir, runtime=rt, precision=prec, threads=threads, batch_size=8)
            rows.append({
                "format": rt, "precision": prec, "size_mb": round(file_size_mb(files), 2),
                "ms_per_img_b1": timed[1][(rt, prec)]["p50_ms"],  # median: robust to a busy machine
                "ms_per_img_b8": timed[8][(rt, prec)]["p50_ms"] / 8,
                **_e2e_fields(time_end_to_end(predictor, paths), None),
                "top1": top1(runners[(rt, prec)], *val_data) if val_data is not None else None,
            })
    return {"model": spec["Global"]["model_name"], "model_dir": _shown_dir(model_dir, workdir, target),
            "threads": threads, "input_size": size, "val": val, "end_to_end_images": len(paths),
            "end_to_end_rejected": _max_rejected(rows), "rows": rows}


def _max_rejected(rows) -> int:
    return max((row.get("end_to_end_rejected") or 0 for row in rows), default=0)


def rejected_note(result: dict) -> Optional[str]:
    """The line that says how many images the end-to-end run could not predict (None when all were)."""
    rejected = result.get("end_to_end_rejected")
    if not rejected:
        return None
    return (f"{rejected} of {result['end_to_end_images']} images were not predicted (unreadable, or refused by the "
            "export's pre-processing): end-to-end figures count only predicted images, and no ratio to the model "
            "alone is given")
