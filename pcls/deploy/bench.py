"""`pcls bench`: latency percentiles and throughput of an exported model, alone and end to end (decode +
pre-process + model through the predictor pipeline), beside the zoo's documented figures when the hardware
matches, and optionally Paddle Inference vs ONNX Runtime."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from pcls.errors import PclsError

END_TO_END_IMAGES = 500


def _percentiles(samples_s: List[float]) -> dict:
    ms = np.asarray(samples_s) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}


def time_models(runners: dict, input_size: int, batch_size: int, warmup: int = 5, iters: int = 30,
                rounds: int = 3) -> dict:
    """Latency of each model alone on a fixed random batch (data already in memory), name -> stats.

    Several runners are timed in alternating rounds, so drift in the machine's load affects them alike.
    """
    batch = np.random.default_rng(0).standard_normal((batch_size, 3, input_size, input_size)).astype("float32")
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
    """Images/s through predict_stream (decode + pre-process in the pool, batches on the model)."""
    list(predictor.predict_stream(paths[: predictor.batch_size * 2]))  # warm-up
    start = time.perf_counter()
    count = sum(1 for _ in predictor.predict_stream(paths))
    elapsed = time.perf_counter() - start
    return {"images": count, "seconds": elapsed, "images_per_s": count / elapsed}


def bare_paddle_runner(model_dir: Path, threads: int):
    """A plain paddle.inference predictor with only the thread count set: the yardstick for pcls's config."""
    import paddle.inference as pi

    from pcls.deploy.predictor import runner_for
    from pcls.deploy.spec import model_files

    graph, params = model_files(model_dir)
    config = pi.Config(str(graph), str(params))
    config.set_cpu_math_library_num_threads(threads)
    config.disable_glog_info()
    return runner_for(config)


def documented_latency(model_name: str, device_name: Optional[str], precision: str, trt: bool, batch: int):
    """The zoo's documented latency for this hardware/precision/batch, or None when nothing matches."""
    from pcls.zoo.catalog import load_catalog

    row = load_catalog().get(model_name) or {}
    figures = row.get("latency_ms") or {}
    if not device_name:
        return None
    for gpu in ("V100", "T4", "P4"):
        if gpu in device_name:
            engine = "trt" if trt else "fluid"
            key = f"{gpu}_{engine}_{precision}_bs{batch}"
            if key in figures:
                return {"key": key, "ms": figures[key]}
    return None


def gpu_name() -> Optional[str]:
    try:
        import paddle

        if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
            return paddle.device.cuda.get_device_name(0)
    except Exception:  # no CUDA runtime: CPU-only build or no driver
        return None
    return None


def ensure_model_dir(target: str, weights: Optional[str], fmt_needed: str, workdir: Path) -> Path:
    """A folder with an exported model for `target` (an export folder, or a zoo/backbone name exported now)."""
    from pcls.deploy.export import ExportRequest, export
    from pcls.deploy.spec import ONNX_FILE, SPEC_FILE, check_model_target

    path = Path(target)
    if (path / SPEC_FILE).exists():
        if fmt_needed == "onnx" and not (path / ONNX_FILE).exists():
            raise PclsError(f"{path} has no ONNX model; export with --format onnx to compare runtimes")
        return path
    check_model_target(target)
    out = workdir / target
    export(ExportRequest(model_name=target, out_dir=out, weights=weights, fmt=fmt_needed,
                         measure=lambda *_: {"paddle": 0.0, "onnx": 0.0}))  # bench measures for itself
    return out


@contextlib.contextmanager
def bench_workdir():
    """A temp folder for what a bench run generates (an export of a zoo name, 500 JPEGs); removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="pcls-bench-"))
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _images_for(images: Optional[str], workdir: Path, count: int = END_TO_END_IMAGES) -> List[Path]:
    paths = sorted(Path(images).rglob("*.jp*g")) if images else make_jpegs(workdir / "images", count)
    if not paths:
        raise PclsError(f"no JPEG files in {images}")
    return paths


def run_bench(target: str, *, batch_sizes=(1, 4, 8), threads: int = 2, device: str = "cpu", trt: bool = False,
              precision: str = "fp32", compare: bool = False, weights: Optional[str] = None,
              images: Optional[str] = None, warmup: int = 5, iters: int = 30, end_to_end: bool = True,
              bare: bool = True, log=print) -> dict:
    from pcls.deploy.predictor import Predictor, RuntimeSettings, create_runner
    from pcls.deploy.spec import read_spec

    if device == "gpu" or trt:
        from pcls.deploy.gpu import require_cuda

        require_cuda()  # before exporting or generating anything
    RuntimeSettings(device=device, trt=trt, precision=precision).validate()
    with bench_workdir() as workdir:
        model_dir = ensure_model_dir(target, weights, "onnx" if compare else "paddle", workdir)
        spec = read_spec(model_dir)
        size = int(spec["Global"]["input_size"])
        name = spec["Global"]["model_name"]
        gpu = gpu_name() if device == "gpu" else None
        runtimes = ["paddle", "onnx"] if compare else ["paddle"]
        rows = []
        paths = _images_for(images, workdir) if end_to_end else None
        for runtime in runtimes:
            settings = RuntimeSettings(runtime=runtime, device=device, threads=threads, trt=trt, precision=precision,
                                       max_batch_size=max(batch_sizes), trt_batch_sizes=tuple(batch_sizes)).validate()
            runner = create_runner(model_dir, settings, size, log=log)
            bare_runner = (bare_paddle_runner(model_dir, threads)
                           if (bare and runtime == "paddle" and device == "cpu") else None)
            for batch in batch_sizes:
                log(f"{runtime}: batch {batch} ...")
                runners = {"pcls": runner, **({"bare": bare_runner} if bare_runner is not None else {})}
                timed = time_models(runners, size, batch, warmup, iters)
                row = {"runtime": runtime, "batch_size": batch, **timed["pcls"]}
                if bare_runner is not None:
                    row["bare_paddle_mean_ms"] = timed["bare"]["mean_ms"]
                    row["bare_paddle_p50_ms"] = timed["bare"]["p50_ms"]
                if end_to_end:
                    predictor = Predictor(model_dir, runtime=runtime, device=device, threads=threads, trt=trt,
                                          precision=precision, batch_size=batch, trt_batch_sizes=tuple(batch_sizes))
                    e2e = time_end_to_end(predictor, paths)
                    row["end_to_end_images_per_s"] = e2e["images_per_s"]
                    row["end_to_end_fraction"] = e2e["images_per_s"] / row["images_per_s"]
                documented = documented_latency(name, gpu, precision, trt, batch)
                row["documented_ms"] = documented["ms"] if documented else None
                row["documented_key"] = documented["key"] if documented else None
                rows.append(row)
    result = {"model": name, "model_dir": _shown_dir(model_dir, workdir, target), "device": device, "gpu": gpu,
              "threads": threads, "trt": trt, "precision": precision, "input_size": size,
              "end_to_end_images": len(paths) if paths else 0, "rows": rows}
    if compare:
        by = {(r["runtime"], r["batch_size"]): r for r in rows}
        result["onnx_over_paddle_speed"] = {
            b: by[("paddle", b)]["mean_ms"] / by[("onnx", b)]["mean_ms"] for b in batch_sizes}
    return result


def _shown_dir(model_dir: Path, workdir: Path, target: str) -> str:
    return f"{target} (exported to a temporary folder, removed)" if workdir in model_dir.parents else str(model_dir)


FORMATS = (  # (runtime, precision, files)
    ("paddle", "fp32", ("inference.json", "inference.pdmodel", "inference.pdiparams")),
    ("onnx", "fp32", ("inference.onnx",)),
    ("onnx", "int8", ("inference.int8.onnx",)),
)


def run_formats(target: str, *, threads: int = 2, weights: Optional[str] = None, images: Optional[str] = None,
                val: Optional[str] = None, root: Optional[str] = None, warmup: int = 3, iters: int = 20,
                e2e_images: int = 200, log=print) -> dict:
    """Every format/precision an export holds: file size, ms/img at batch 1 and 8, end-to-end images/s and
    top-1 on `val` — one table, as Ultralytics' benchmark prints it. Formats are timed in alternating rounds."""
    from pcls.deploy.predictor import Predictor, RuntimeSettings, create_runner
    from pcls.deploy.quantize import file_size_mb, load_images, top1
    from pcls.deploy.spec import read_spec

    with bench_workdir() as workdir:
        model_dir = ensure_model_dir(target, weights, "onnx", workdir)
        spec = read_spec(model_dir)
        size = int(spec["Global"]["input_size"])
        present = [(rt, prec, [model_dir / f for f in files]) for rt, prec, files in FORMATS
                   if any((model_dir / f).exists() for f in files)]
        runners = {(rt, prec): create_runner(model_dir, RuntimeSettings(runtime=rt, precision=prec, threads=threads)
                                             .validate(), size) for rt, prec, _ in present}
        timed = {}
        for batch in (1, 8):
            log(f"formats: batch {batch} ...")
            timed[batch] = time_models(runners, size, batch, warmup, iters)
        paths = _images_for(images, workdir, e2e_images)
        val_data = load_images(val, root, spec["PreProcess"]["transform_ops"]) if val else None
        rows = []
        for rt, prec, files in present:
            predictor = Predictor(model_dir, runtime=rt, precision=prec, threads=threads, batch_size=8)
            rows.append({
                "format": rt, "precision": prec, "size_mb": round(file_size_mb(files), 2),
                "ms_per_img_b1": timed[1][(rt, prec)]["p50_ms"],  # median: robust to a busy machine
                "ms_per_img_b8": timed[8][(rt, prec)]["p50_ms"] / 8,
                "end_to_end_images_per_s": time_end_to_end(predictor, paths)["images_per_s"],
                "top1": top1(runners[(rt, prec)], *val_data) if val_data is not None else None,
            })
    return {"model": spec["Global"]["model_name"], "model_dir": _shown_dir(model_dir, workdir, target),
            "threads": threads, "input_size": size, "val": val, "rows": rows}
