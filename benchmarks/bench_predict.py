"""`pcls predict` end to end against the model alone, at one batch size, in interleaved rounds.

    python benchmarks/bench_predict.py                                   # ResNet50_vd and PPLCNet_x1_0, batch 8
    python benchmarks/bench_predict.py --models ResNet50_vd --images 200 --rounds 4 --threads 2

Each model is exported with random weights into a temp folder (speed does not depend on the weights), and
`--images` photo-sized JPEGs (500x375) are generated. A round times the model alone (`Predictor.infer` on the
same images, already pre-processed, batch by batch) and the predictor end to end (`predict_stream`: read, decode,
pre-process, model, top-k), in alternating order, and prints images/s of both, their ratio and the load average
(the machine is shared: read the ratios of rounds run under a similar load); at the end the median of the rounds'
ratios and the ratio of the best run of each. Prints figures; asserts nothing.
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
    end_to_end(predictor, paths[: 2 * args.batch_size])
    rounds = []
    for index in range(args.rounds):
        load = os.getloadavg()[0]
        timed = {}
        order = ("model", "e2e") if index % 2 == 0 else ("e2e", "model")
        for what in order:
            if what == "model":
                timed["model"] = model_only(predictor, batches)
            else:
                timed["e2e"], timed["busy"] = end_to_end(predictor, paths)
        rounds.append(timed)
        print(f"  {name:14} round {index + 1}: model {timed['model']:7.1f} img/s, predict {timed['e2e']:7.1f} img/s,"
              f" ratio {timed['e2e'] / timed['model']:.3f}, model busy {timed['busy']:.0%} of predict's time  "
              f"(load {load:.2f} -> {os.getloadavg()[0]:.2f})", flush=True)
    return rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ResNet50_vd,PPLCNet_x1_0", help="comma-separated zoo/backbone names")
    parser.add_argument("--images", type=int, default=64, help="generated 500x375 JPEGs per round")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None, help="model threads (default: pcls's, every core)")
    parser.add_argument("--workers", type=int, default=None, help="decode threads (default: the predictor's)")
    args = parser.parse_args()

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
        ratios = [r["e2e"] / r["model"] for r in rounds]
        best = max(r["e2e"] for r in rounds) / max(r["model"] for r in rounds)  # the least disturbed run of each
        busy = statistics.median(r["busy"] for r in rounds)
        print(f"{name}: predict / model-only at batch {args.batch_size}: median of rounds {statistics.median(ratios):.3f}"
              f", best / best {best:.3f}; model busy {busy:.0%} of predict's time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
