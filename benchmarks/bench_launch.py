"""What a launched job costs over one process: `pcls train --nproc 2` against `pcls train` on the same global
batch, start to exit, on a few images (issue #29: the start-up a multi-process CPU run has to earn back).

    python benchmarks/bench_launch.py                        # 4 interleaved rounds, 64 images, this pcls
    python benchmarks/bench_launch.py --rounds 6 --other-tree /tmp/pcls-base   # A/B against another checkout

The built-in demo recipe (PPLCNet_x0_35 at 64 px) trains one epoch on the first --images images of the demo
set (generated once into --work) and evaluates on 32; one process takes the global batch, each of two
processes half of it. With --other-tree DIR (a folder holding another revision's `pcls` package), every round
also runs that revision (PYTHONPATH=DIR), the order alternating by round. Prints each run's wall seconds, then
per revision the medians and the two-process overhead; the load average goes beside every round, as the
machine is shared. Asserts nothing.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def demo_lists(work: Path, images: int) -> dict:
    """Train/val lists over the first `images` / 32 images of the demo set (made once under `work`)."""
    sys.path.insert(0, str(ROOT))
    from pcls.data.demo import make_demo_dataset

    paths = make_demo_dataset(work / "pcls-demo")
    lists = {}
    for split, key, count in (("Train", "train_list", images), ("Eval", "val_list", 32)):
        lines = Path(paths[key]).read_text().splitlines()
        lists[split] = work / f"{key}_{count}.txt"
        lists[split].write_text("\n".join(lines[:count]) + "\n")
    return {"root": paths["root"], **lists}


def run(tree: Path, work: Path, lists: dict, nproc: int, batch: int, name: str) -> float:
    args = ["train", "--recipe", "demo", "--name", name, "-o", f"Global.output_dir={work / 'out'}",
            "-o", "Global.epochs=1", "-o", "Global.device=cpu",
            "-o", f"DataLoader.Train.sampler.batch_size={batch // nproc}"]
    for split in ("Train", "Eval"):
        args += ["-o", f"DataLoader.{split}.dataset.image_root={lists['root']}",
                 "-o", f"DataLoader.{split}.dataset.cls_label_path={lists[split]}"]
    if nproc > 1:
        args += ["--nproc", str(nproc)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pcls", *args], env=env, cwd=work, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"{tree} {name} failed:\n{result.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32, help="global batch")
    parser.add_argument("--work", type=Path, default=Path("/tmp/pcls-bench-launch"))
    parser.add_argument("--other-tree", type=Path, help="a folder holding another revision's pcls package")
    options = parser.parse_args()
    options.work.mkdir(parents=True, exist_ok=True)
    lists = demo_lists(options.work, options.images)
    trees = {"this": ROOT, **({"other": options.other_tree.resolve()} if options.other_tree else {})}
    times = {(label, nproc): [] for label in trees for nproc in (1, 2)}
    for round_ in range(options.rounds):
        order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for label in order:
            for nproc in (2, 1):
                seconds = run(trees[label], options.work, lists, nproc, options.batch, f"{label}-{round_}-{nproc}")
                times[label, nproc].append(seconds)
                print(f"round {round_ + 1}  {label:<5}  {nproc} process(es)  {seconds:6.2f} s", flush=True)
        print(f"round {round_ + 1}  load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print(f"\n{'revision':<8} {'1 process':>10} {'2 processes':>12} {'overhead':>9}   (median s of {options.rounds})")
    for label in trees:
        one, two = (statistics.median(times[label, n]) for n in (1, 2))
        print(f"{label:<8} {one:>10.2f} {two:>12.2f} {two - one:>9.2f}")


if __name__ == "__main__":
    main()
