"""`pcls predict` end to end against the model alone, at one batch size, in interleaved rounds.

    python benchmarks/bench_predict.py                                   # ResNet50_vd and PPLCNet_x1_0, batch 8
    python benchmarks/bench_predict.py --models ResNet50_vd --images 200 --rounds 4 --threads 2
    python benchmarks/bench_predict.py --makers threads,processes     # both batch makers, interleaved
    python benchmarks/bench_predict.py --stages                          # CPU per pre-processing stage first

Each model is exported with random weights into a temp folder (speed does not depend on the weights), and
`--images` photo-sized JPEGs (500x375) are generated. A round times the model alone (`Predictor.infer` on the
same images, already pre-processed, batch by batch) and the predictor end to end (`predict_stream`: read, decode,
pre-process, model, top-k), in alternating order, and prints images/s of both, their ratio and the load average
(the machine is shared: read the ratios of rounds run under a similar load); at the end the median of the rounds'
ratios and the ratio of the best run of each. `--makers` times each named batch maker of the predictor (worker
threads or processes, `pcls.deploy.prepare`) in every round. `--stages` first prints the CPU time of each
pre-processing stage per image on one thread. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def model_only(predictor, batches) -> float:
    """Images/s of the model alone over pre-processed batches."""
    count = 0
    start = time.perf_counter()
    for batch in batches:
        predictor.infer(batch)
        count += len(batch)
    return count / (time.perf_counter() - start)


def end_to_end(predictor, paths) -> tuple:
    """(images/s of predict_stream over the files, the fraction of that time the model was running): a fraction
    near 1 means decoding never kept the model waiting, and what is left between end to end and the model alone is
    the model running slower beside the decoding threads (they share the cores)."""
    infer, in_model = predictor.infer, [0.0]

    def timed_infer(batch):
        started = time.perf_counter()
        try:
            return infer(batch)
        finally:
            in_model[0] += time.perf_counter() - started

    predictor.infer = timed_infer
    try:
        start = time.perf_counter()
        predicted = sum(not isinstance(outcome, Exception) for _, outcome in predictor.predict_stream(paths))
        elapsed = time.perf_counter() - start
    finally:
        del predictor.infer
    if predicted != len(paths):
        raise SystemExit(f"only {predicted} of {len(paths)} images were predicted")
    return predicted / elapsed, in_model[0] / elapsed


def stage_times(predictor, paths) -> dict:
    """CPU ms per image of each pre-processing stage on this thread (best of 3 passes over the images), and of the
    model's copy-in + run + top-k per image at the predictor's batch size."""
    import cv2
    import numpy as np

    from pcls.data.decode import header_size, read_image_file

    def best(step, inputs):
        fastest, outputs = float("inf"), None
        for _ in range(3):
            start = time.process_time()
            outputs = [step(x) for x in inputs]
            fastest = min(fastest, time.process_time() - start)
        return fastest * 1e3 / len(paths), outputs

    times = {}
    times["read file"], data = best(read_image_file, [str(p) for p in paths])
    times["header check (Pillow)"], _ = best(lambda d: header_size(d, 1 << 62), data)
    decode, *ops = predictor.preprocess.ops
    times["decode (OpenCV, to RGB)"], image = best(lambda d: decode(d), data)
    for op in ops:
        times[type(op).__name__], image = best(lambda x, op=op: op(x), image)
    size = predictor.batch_size
    times[f"stack {size}"], batches = best(lambda i: np.stack(image[i:i + size]), range(0, len(image), size))
    times["model + top-k"], _ = best(lambda b: predictor.postprocess(predictor.infer(b)), batches)
    times[f"(OpenCV threads: {cv2.getNumThreads()})"] = 0.0
    return times


def bench_model(name: str, paths, work: Path, args) -> list:
    import numpy as np

    from pcls.deploy.export import ExportRequest, export
    from pcls.deploy.predictor import Predictor

    out = work / name
    export(ExportRequest(model_name=name, out_dir=out, measure=lambda *_: {"paddle": 0.0, "onnx": 0.0}))
    predictor = Predictor(out, runtime="paddle", threads=args.threads, batch_size=args.batch_size,
                          **({"workers": args.workers} if args.workers else {}))
    arrays = [predictor.preprocess_one(p) for p in paths]
    batches = [np.stack(arrays[i:i + args.batch_size]) for i in range(0, len(arrays), args.batch_size)]
    model_only(predictor, batches[:2])  # warm-up: oneDNN primitives, the decode threads, first allocations
    if args.stages:
        for stage, ms in stage_times(predictor, paths).items():
            print(f"  {name:14} {stage:28} {ms:6.3f} ms of CPU per image")
    makers = {maker: {"threads": False, "processes": True}[maker] for maker in args.makers.split(",")}
    for processes in makers.values():
        predictor.processes = processes
        end_to_end(predictor, paths[: 3 * args.batch_size])
    rounds = []
    for index in range(args.rounds):
        load = os.getloadavg()[0]
        timed = {}
        order = ["model", *makers]
        for what in order if index % 2 == 0 else order[::-1]:
            if what == "model":
                timed["model"] = model_only(predictor, batches)
            else:
                predictor.processes = makers[what]
                timed[what] = end_to_end(predictor, paths)
        rounds.append(timed)
        figures = ", ".join(f"{maker} {timed[maker][0]:7.1f} img/s ratio {timed[maker][0] / timed['model']:.3f} "
                            f"busy {timed[maker][1]:.0%}" for maker in makers)
        print(f"  {name:14} round {index + 1}: model {timed['model']:7.1f} img/s; predict: {figures}  "
              f"(load {load:.2f} -> {os.getloadavg()[0]:.2f})", flush=True)
    return rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ResNet50_vd,PPLCNet_x1_0", help="comma-separated zoo/backbone names")
    parser.add_argument("--images", type=int, default=64, help="generated 500x375 JPEGs per round")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None, help="model threads (default: pcls's, every core)")
    parser.add_argument("--workers", type=int, default=None, help="decode workers (default: the predictor's)")
    parser.add_argument("--makers", default="threads", help="comma-separated batch makers to time in every round: "
                        "threads (the predictor's default), processes")
    parser.add_argument("--stages", action="store_true", help="first print the CPU time of each pre-processing stage")
    args = parser.parse_args()
    unknown = set(args.makers.split(",")) - {"threads", "processes"}
    if unknown:
        parser.error(f"--makers: unknown {', '.join(sorted(unknown))}; use threads and/or processes")

    from pcls.deploy.bench import make_jpegs
    from pcls.deploy.runtimes import cpu_threads

    args.threads = args.threads or cpu_threads()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; model threads {args.threads}, "
          f"batch {args.batch_size}, {args.images} generated 500x375 JPEGs")
    summary = {}
    with tempfile.TemporaryDirectory(prefix="pcls-bench-predict-") as work:
        work = Path(work)
        paths = make_jpegs(work / "images", args.images)
        for name in args.models.split(","):
            summary[name] = bench_model(name.strip(), paths, work, args)
    for name, rounds in summary.items():
        for maker in args.makers.split(","):
            ratios = [r[maker][0] / r["model"] for r in rounds]
            best = max(r[maker][0] for r in rounds) / max(r["model"] for r in rounds)  # the least disturbed runs
            busy = statistics.median(r[maker][1] for r in rounds)
            print(f"{name} ({maker}): predict / model-only at batch {args.batch_size}: median of rounds "
                  f"{statistics.median(ratios):.3f}, best / best {best:.3f}; model busy {busy:.0%} of predict's time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
