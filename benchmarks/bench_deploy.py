"""CPU deployment figures: Paddle Inference vs ONNX Runtime (fp32) vs ONNX Runtime int8, and int8's accuracy cost.

    python benchmarks/bench_deploy.py                                  # ResNet50_vd, random weights, 1 thread
    python benchmarks/bench_deploy.py --recipe demo --weights output/demo/best_model \\
        --calib dataset/pcls-demo/train_list.txt --val dataset/pcls-demo/val_list.txt --root dataset/pcls-demo \\
        --images dataset/pcls-demo/images/val

Exports the model the way `pcls export --format onnx --int8` does (the int8 model calibrated on --calib, or on
generated photo-like JPEGs), prints which runtime the export's own measurement picked for `--runtime auto`, then
the `pcls bench --formats` table (formats timed in alternating rounds). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ResNet50_vd")
    parser.add_argument("--recipe", help="export as this recipe's config does (model, pre-processing, labels)")
    parser.add_argument("--weights", help="weights (default: random; speed does not depend on them)")
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--calib", help="calibration list (default: 64 generated JPEGs)")
    parser.add_argument("--val", help="labelled list for top-1 of fp32 vs int8")
    parser.add_argument("--root", help="folder the list paths are relative to")
    parser.add_argument("--images", help="folder of JPEGs for the end-to-end column (default: generated 500x375)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args()

    from pcls.deploy.bench import make_jpegs, run_formats
    from pcls.deploy.export import ExportRequest, export
    from pcls.deploy.spec import read_spec

    with tempfile.TemporaryDirectory(prefix="pcls-bench-deploy-") as work:
        work = Path(work)
        calib, root = args.calib, args.root
        if not calib:
            paths = make_jpegs(work / "calib", count=64)
            (work / "calib" / "list.txt").write_text("".join(f"{p.name}\n" for p in paths))
            calib, root = str(work / "calib" / "list.txt"), str(work / "calib")
        out = work / "export"
        started = time.perf_counter()
        options = dict(fmt="onnx", int8=True, calib=calib, root=root, val=args.val, max_drop=100.0)
        if args.recipe:
            from pcls.config import load_config
            from pcls.deploy.export import request_from_config

            request = request_from_config(load_config(args.recipe, [], is_recipe=True), out, args.weights, **options)
        else:
            request = ExportRequest(model_name=args.model, out_dir=out, weights=args.weights,
                                    input_size=args.image_size, **options)
        report = export(request)
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
        print(f"export with int8 calibration: {time.perf_counter() - started:.1f} s")
        for note in report.notes:
            print(f"  {note}")
        choice = read_spec(out)["Global"]["runtime"]
        print(f"--runtime auto on CPU: {choice['cpu']} (batch-1 p50 ms: {choice['measured_ms_batch1']})")
        result = run_formats(str(out), threads=args.threads, iters=args.iters, val=args.val, images=args.images,
                             root=args.root)
    rows = {(r["format"], r["precision"]): r for r in result["rows"]}
    print(f"\n{result['model']} {result['input_size']}px, {args.threads} thread(s)")
    print(f"{'format':8} {'prec':5} {'MB':>7} {'ms/img b1':>10} {'ms/img b8':>10} {'e2e img/s':>10} {'top-1':>7}")
    for (fmt, prec), r in rows.items():
        top1 = "-" if r["top1"] is None else f"{r['top1']:.2f}"
        print(f"{fmt:8} {prec:5} {r['size_mb']:7.1f} {r['ms_per_img_b1']:10.2f} {r['ms_per_img_b8']:10.2f} "
              f"{r['end_to_end_images_per_s']:10.1f} {top1:>7}")
    paddle, onnx, int8 = rows[("paddle", "fp32")], rows[("onnx", "fp32")], rows.get(("onnx", "int8"))
    for batch in ("b1", "b8"):
        line = f"{batch}: ONNX Runtime fp32 {paddle[f'ms_per_img_{batch}'] / onnx[f'ms_per_img_{batch}']:.2f}x Paddle"
        if int8:
            line += f"; int8 {onnx[f'ms_per_img_{batch}'] / int8[f'ms_per_img_{batch}']:.2f}x ONNX fp32"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
