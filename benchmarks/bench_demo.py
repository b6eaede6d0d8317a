"""Time the embedded default, `pcls train --recipe demo`, from a clean directory: wall time, val top-1 and
how much of the machine the run used.

    python benchmarks/bench_demo.py            # fresh temp dir: dataset generation + training + eval
    python benchmarks/bench_demo.py --keep DIR # run in DIR and keep the outputs

CPU utilisation = (user + sys CPU seconds of the run and its loader workers) / wall seconds: 1.0 is one
core kept busy, 2.0 both cores of a 2-core machine. The bar (issue #14): >= 95% val top-1 in under
2 minutes on 2 idle cores. Prints the figures with the machine's load average; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAR_SECONDS, BAR_TOP1 = 120, 0.95


def timed_run(cmd, cwd, env=None):
    """Run `cmd` to completion; returns (CompletedProcess, wall seconds, CPU seconds of it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=dict(env or os.environ))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", metavar="DIR", help="run in DIR (created) and keep the outputs")
    parser.add_argument("-o", dest="overrides", action="append", default=[], help="extra config overrides")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pcls-bench-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pcls", "train", "--recipe", "demo", "--json"]
    for override in args.overrides:
        cmd += ["-o", override]
    load_before = load_line()
    proc, wall, cpu = timed_run(cmd, workdir)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        print(f"pcls train --recipe demo failed with exit {proc.returncode}")
        return proc.returncode
    summary = json.loads(proc.stdout)
    final, best = summary["final"], summary["best"]
    top1 = final.get("val_top1", float("nan"))
    figures = {
        "wall_s": round(wall, 1), "train_eval_s": summary["seconds"], "epochs": summary["epochs_done"],
        "val_top1": top1, "val_top5": final.get("val_top5"), "best_val_top1": best["value"],
        "best_epoch": best["epoch"], "last_epoch_images_per_s": round(final["images_per_s"], 1),
        "cpu_s": round(cpu, 1), "cpu_utilisation": round(cpu / wall, 2), "cores": os.cpu_count(),
        "load_before": load_before, "load_after": load_line(),
        "bar_met": bool(top1 >= BAR_TOP1 and wall <= BAR_SECONDS), "outputs": str(workdir / summary["run_dir"]),
    }
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    print(f"machine: {figures['cores']} cores; before: {load_before}; after: {figures['load_after']}")
    print(f"wall time (python start -> exit, incl. dataset generation): {wall:.1f} s")
    print(f"training + eval time reported by the run: {summary['seconds']:.1f} s for {summary['epochs_done']} epochs")
    print(f"CPU: {cpu:.1f} s user+sys -> utilisation {cpu / wall:.2f} cores")
    print(f"final val top-1: {top1:.4f}  top-5: {final.get('val_top5', float('nan')):.4f}")
    print(f"best val top-1: {best['value']:.4f} (epoch {best['epoch']})")
    print(f"train throughput in the last epoch: {final['images_per_s']:.0f} img/s")
    print(f"bar: >= {BAR_TOP1:.2f} val top-1 within {BAR_SECONDS} s -> {'met' if figures['bar_met'] else 'NOT met'}")
    print(f"outputs: {figures['outputs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
