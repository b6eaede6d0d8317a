"""`pcls eval` on CPU: Paddle Inference (the default) against dygraph (`PCLS_EVAL_INFERENCE=0`), interleaved.

    python benchmarks/bench_eval.py                                      # ResNet50_vd and PPLCNet_x1_0, 224 px
    python benchmarks/bench_eval.py --models ResNet50_vd --images 256 --batch-size 32 --rounds 3

Generates `--images` photo-sized JPEGs (500x375) and a labelled list, saves random weights for each model, and
evaluates them as `pcls eval --model NAME --data LIST` does (the zoo's eval pre-processing, pcls's loader), once
per path and round, in alternating order. Prints, per run, the set-up time (model, weights, tracing), the
evaluation loop's images/s, the whole call's images/s, top-1 and loss (equal between the paths within float
rounding), and the load average: the machine is shared, so compare rounds run under a similar load. Asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from pcls.engine.evaluate_inference import EVAL_INFERENCE_ENV as SWITCH


def evaluate_once(name: str, cfg: dict, weights: Path) -> dict:
    from pcls.data import build_dataloader
    from pcls.engine.evaluator import cpu_eval_model, run_eval
    from pcls.engine.model import build_model, load_weights
    from pcls.loss import build_loss

    started = time.perf_counter()
    bundle = build_dataloader(cfg["DataLoader"]["Eval"], train=False, class_num=cfg["Arch"]["class_num"])
    model = build_model({**cfg["Arch"], "pretrained": False}, {"pretrained_model": None})
    load_weights(model, str(weights), reinit_classifier=False)
    model = cpu_eval_model(model, bundle)
    ready = time.perf_counter()
    meter = run_eval(model, bundle.loader, loss_fn=build_loss(cfg["Loss"]["Eval"]))
    done = time.perf_counter()
    result = meter.result()
    return {"setup_s": ready - started, "loop": result["samples"] / (done - ready),
            "total": result["samples"] / (done - started), "top1": result["top1"], "loss": result["loss"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ResNet50_vd,PPLCNet_x1_0", help="comma-separated backbone names")
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=None, help="default: pcls eval's (the schema's)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import logging

    import pcls
    from pcls.deploy.bench import make_jpegs
    from pcls.engine.evaluator import eval_config
    from pcls.utils.state_files import save_state_file

    logging.getLogger("pcls").setLevel(logging.WARNING)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; {args.images} generated "
          "500x375 JPEGs, 224 px")
    ratios = {}
    with tempfile.TemporaryDirectory(prefix="pcls-bench-eval-") as work:
        work = Path(work)
        paths = make_jpegs(work / "images", args.images)
        data = work / "val.txt"
        data.write_text("".join(f"{p.name} {i % 10}\n" for i, p in enumerate(paths)))
        for name in (n.strip() for n in args.models.split(",")):
            weights = work / f"{name}.pdparams"
            model = pcls.create_model(name, class_num=1000)
            save_state_file({k: v.numpy() for k, v in model.state_dict().items()}, weights)
            cfg = eval_config(name, str(data), str(work / "images"), class_num=1000, batch_size=args.batch_size)
            print(f"{name}: batch {cfg['DataLoader']['Eval']['sampler']['batch_size']}")
            for index in range(args.rounds):
                timed = {}
                for mode in ("1", "0") if index % 2 == 0 else ("0", "1"):
                    os.environ[SWITCH] = mode
                    load = os.getloadavg()[0]
                    timed[mode] = run = evaluate_once(name, cfg, weights)
                    path = "inference" if mode == "1" else "dygraph  "
                    print(f"  round {index + 1} {path}: set-up {run['setup_s']:5.1f} s, loop {run['loop']:6.1f} img/s, "
                          f"whole {run['total']:6.1f} img/s, top-1 {run['top1']:.4f}, loss {run['loss']:.6f} "
                          f"(load {load:.2f})", flush=True)
                ratios.setdefault(name, []).append((timed["1"]["loop"] / timed["0"]["loop"],
                                                    timed["1"]["total"] / timed["0"]["total"]))
    os.environ.pop(SWITCH, None)
    for name, pairs in ratios.items():
        print(f"{name}: inference / dygraph, median of rounds: loop {statistics.median(p[0] for p in pairs):.2f}x, "
              f"whole call {statistics.median(p[1] for p in pairs):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
