"""Training throughput of `pcls train` on generated data, against PaddleClas's kernels and the machine (issue #18).

    python benchmarks/bench_train.py                     # ResNet18_vd, MobileNetV3_small_x1_0 at 32 and 224 px
    python benchmarks/bench_train.py --models ResNet18_vd --sizes 32 --rounds 2 --epochs 6 --eval
    python benchmarks/bench_train.py --threads 1,2 --json
    python benchmarks/bench_train.py --paddleclas-python /work/yardstick/venv/bin/python --paddleclas-root ~/PaddleClas \
        --no-baseline --eval-speed --models ResNet50_vd --sizes 224 --rounds 2

Every model and size is trained in two settings, interleaved round by round:
- "paddle kernels, 1 thread": `PCLS_GEMM_CONV=0 PCLS_NUM_THREADS=1` -- Paddle's per-image conv kernel on one
  math thread, which is how PaddleClas 2.6 trains on a CPU (Paddle's default thread count is 1 and its
  dygraph conv is that kernel). PaddleClas itself is not installed here (the project does not vendor it),
  so this stands in for it; the issue measured PaddleClas at about pcls's old speed;
- "pcls, 1 process": the defaults a user gets on a set this small (`Global.cpu_processes: auto` starts several
  processes only for runs of 2,000+ images at 224 px; `--nproc N` below measures what it does then);
plus one "pcls, N threads" setting per `--threads` value and one "pcls, NAME=VALUE" setting per `--ab NAME=VALUE`
(e.g. `--ab PCLS_DEPTHWISE_GRAD=0`: the defaults with one path switched off);
plus, with `--paddleclas-python PATH` (the python of a separate environment holding PaddleClas 2.6 and its own
Paddle; pcls never imports it), "PaddleClas": PaddleClas's own `tools/train.py` on the same generated data and
config, as its users run it (its environment and thread defaults, nothing of pcls's). `tools/train.py` is in
PaddleClas's source tree, not in the `paddleclas` package on PyPI (wheel and sdist 2.6.0 ship only ppcls/arch
and ppcls/utils), so `--paddleclas-root DIR` names that tree unless the installed package has it. Its training
images/s is counted as pcls counts its own -- every image of the epoch over the epoch's loop time, first
batches included -- from the running `batch_cost` means it logs every iteration (`paddleclas_loop_seconds`);
the `ips: ... samples/s` it prints itself leaves its first five iterations out and is kept as `own_ips`.
Speed-ups are then also given over PaddleClas.
With `--eval-speed`, each run's weights are then evaluated over the training list (more images than the val
list): PaddleClas's `tools/eval.py` (loop images/s from its logs, and the whole process) and `pcls eval` (the
whole process, and the loop as the difference to a one-batch run, since pcls prints no loop time).

For each, one `pcls train` process trains `--epochs` epochs (default 1) without evaluation, or with evaluation
every epoch under `--eval`, on the built-in shapes dataset rendered at that size (1,400 training images at
32 px, as the issue's measurement; 320 at 224 px). Printed per run: the training images/s as the run reports
it (mean over epochs), end-to-end images/s (every training image of every epoch over the process's wall
time: start-up, evaluation and checkpoints included), achieved GFLOP/s = paddle.flops MACs x 2 (FLOPs per
MAC) x 3 (forward + backward) x images/s, the machine's float32 matrix-product GFLOP/s (numpy, 2048x2048,
best of 5, all cores and one core) and the fraction; then each setting's speed-up over the paddle-kernel
setting. CPU utilisation ((user+sys)/wall), CPU milliseconds per training image and the load average go beside
every figure: on a shared machine absolute numbers move with the load, so compare settings from the same
rounds. Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_demo import load_line, timed_run  # noqa: E402  (one way to time a child process)

MODELS = ("ResNet18_vd", "MobileNetV3_small_x1_0")
NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                "order": ""}}
MATMUL = """
import time
import numpy as np
n = 2048
a = np.random.default_rng(0).random((n, n), dtype=np.float32)
b = a.T.copy()
a @ b
best = float("inf")
for _ in range(5):
    start = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - start)
print(2 * n ** 3 / best / 1e9)
"""


def matmul_gflops(threads=None) -> float:
    """float32 2048x2048 matrix-product GFLOP/s of numpy in a fresh process (all cores, or `threads`)."""
    env = dict(os.environ)
    if threads:
        env.update({k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    out = subprocess.run([sys.executable, "-c", MATMUL], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def model_macs(name: str, size: int) -> float:
    """Multiply-accumulates of one forward pass at size x size (paddle.flops counts MACs)."""
    import paddle

    from pcls.arch.registry import get_constructor

    net = get_constructor(name)(class_num=10)
    net.eval()
    with contextlib.redirect_stdout(io.StringIO()):  # paddle.flops prints its total; stdout is for results
        return float(paddle.flops(net, [1, 3, size, size], print_detail=False))


def make_data(root: Path, size: int, images: int) -> dict:
    from pcls.data.demo import make_demo_dataset

    return make_demo_dataset(root / f"shapes{size}", train_per_class=max(1, images // 10),
                             val_per_class=max(1, images // 50), size=size)  # the demo set's 5:1 split


BASELINE = ("paddle kernels, 1 thread", {"PCLS_GEMM_CONV": "0", "PCLS_NUM_THREADS": "1"})
# one process: a benchmark's few images are below the work for which `Global.cpu_processes: auto` starts several
# (pcls/engine/parallel.py); the --nproc N settings are what auto runs on larger sets (an auto run equals
# `--nproc N` on batch / N bit for bit: tests/engine/test_parallel.py)
DEFAULT = ("pcls, 1 process", {}, ["--nproc", "1"])
PADDLECLAS = "PaddleClas"
PADDLECLAS_IPS = re.compile(r"\[Train\]\[Epoch (\d+)/\d+\]\[Iter: \d+/\d+\].*?ips: ([0-9.]+) samples/s")
PADDLECLAS_STEP = re.compile(r"\[Train\]\[Epoch (\d+)/\d+\]\[Iter: (\d+)/(\d+)\].*?batch_cost: ([0-9.]+)")
PADDLECLAS_EVAL_STEP = re.compile(r"\[Eval\]\[Epoch \d+\]\[Iter: (\d+)/(\d+)\].*?batch_cost: ([0-9.]+)")
PADDLECLAS_RESET_AT = 5  # its loops reset their batch_cost mean before iteration 5 (warm-up excluded)


def paddleclas_loop_seconds(steps: list) -> float:
    """Wall seconds of one PaddleClas loop from its per-iteration logs [(iteration, of, batch_cost mean)]: the mean
    is over iterations 0..i up to iteration 4, then over 5..i, so the total is mean@4 x 5 + mean@last x (n - 5).
    That is the whole loop, first batches included -- how pcls counts its epoch -- while the `ips` PaddleClas
    prints leaves the first five iterations out."""
    means = {int(i): float(mean) for i, _, mean in steps}
    last = max(means)
    if last < PADDLECLAS_RESET_AT:
        return means[last] * (last + 1)
    return means[PADDLECLAS_RESET_AT - 1] * PADDLECLAS_RESET_AT + means[last] * (last + 1 - PADDLECLAS_RESET_AT)


def paddleclas_train_script(python: str, root: str) -> Path:
    """PaddleClas's tools/train.py: under `root`, else beside the package `python` imports."""
    if root:
        base = Path(root).expanduser()
    else:
        probe = subprocess.run([python, "-c", "import os, paddleclas; print(os.path.dirname(paddleclas.__file__))"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            raise SystemExit(f"--paddleclas-python {python}: cannot import paddleclas there "
                             f"({(probe.stderr.strip().splitlines() or ['no output'])[-1]})")
        base = Path(probe.stdout.strip())
    script = base / "tools" / "train.py"
    if not script.is_file():
        raise SystemExit(f"PaddleClas's training entry {script} does not exist (the PyPI package ships only "
                         "ppcls/arch and ppcls/utils); pass --paddleclas-root with a PaddleClas 2.6 source tree")
    return script


def train_config(data: dict, model: str, out: Path, batch_size: int, epochs: int, evaluate: bool) -> dict:
    decode = {"DecodeImage": {"to_rgb": True, "channel_first": False}}
    ops, eval_ops = [decode, {"RandFlipImage": {"flip_code": 1}}, NORMALIZE], [decode, NORMALIZE]
    cfg = {
        "Global": {"output_dir": str(out), "device": "cpu", "epochs": epochs, "eval_during_train": evaluate,
                   "eval_interval": 1, "seed": 0, "print_batch_step": 1000, "save_interval": epochs},
        "Arch": {"name": model, "class_num": 10},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.1},
                      "regularizer": {"name": "L2", "coeff": 1e-4}},
        "DataLoader": {"Train": {
            "dataset": {"name": "ImageNetDataset", "image_root": str(data["image_root"]),
                        "cls_label_path": str(data["train_list"]), "transform_ops": ops},
            "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "drop_last": True,
                        "shuffle": True},
            "loader": {"num_workers": 1}}},
        "Metric": {"Train": [{"TopkAcc": {"topk": [1, 5]}}], "Eval": [{"TopkAcc": {"topk": [1, 5]}}]},
    }
    if evaluate:
        cfg["DataLoader"]["Eval"] = {
            "dataset": {"name": "ImageNetDataset", "image_root": str(data["image_root"]),
                        "cls_label_path": str(data["val_list"]), "transform_ops": eval_ops},
            "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "drop_last": False,
                        "shuffle": False},
            "loader": {"num_workers": 1}}
    return json.loads(json.dumps(cfg))  # unshared copies: a dict used twice would be written as a YAML alias


def run_paddleclas(tmp: Path, cfg: dict, size: int, script: Path, python: str):
    """PaddleClas's tools/train.py on `cfg` (its own keys added); (process, wall s, cpu s, images/s, val top-1)."""
    cfg = json.loads(json.dumps(cfg))
    cfg["Global"].update({"checkpoints": None, "pretrained_model": None, "use_visualdl": False, "print_batch_step": 1,
                          "image_shape": [3, size, size], "save_inference_dir": str(tmp / "paddleclas-inference"),
                          "output_dir": str(tmp / "paddleclas-out")})
    cfg["DataLoader"]["Train"]["loader"]["use_shared_memory"] = True
    cfg_path = tmp / "paddleclas.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PCLS_") and k != "PYTHONPATH"}
    proc, wall, cpu = timed_run([python, str(script), "-c", str(cfg_path)], script.parent.parent, env)
    log = proc.stdout + proc.stderr
    own_ips, epochs = {}, {}
    for epoch, ips in PADDLECLAS_IPS.findall(log):
        own_ips[epoch] = float(ips)  # a running mean over the epoch: its last value is the epoch's
    for epoch, *step in PADDLECLAS_STEP.findall(log):
        epochs.setdefault(epoch, []).append(step)
    if proc.returncode != 0 or not epochs:
        raise SystemExit(f"PaddleClas failed (exit {proc.returncode}, {len(epochs)} epoch(s) logged):\n{log[-2000:]}")
    batch = cfg["DataLoader"]["Train"]["sampler"]["batch_size"]
    rates = [len(steps) * batch / paddleclas_loop_seconds(steps) for steps in epochs.values()]
    top1 = re.findall(r"\[Eval\]\[Epoch \d+\]\[Avg\].*?top1: ([0-9.]+)", log)
    return (proc, wall, cpu, sum(rates) / len(rates), sum(own_ips.values()) / len(own_ips),
            float(top1[-1]) if top1 else None)


def eval_config(cfg: dict, data: dict) -> dict:
    """`cfg` with an Eval loader over the training list (more images than the val list: a longer, steadier
    timing; accuracy does not matter here)."""
    cfg = json.loads(json.dumps(cfg))
    train = cfg["DataLoader"]["Train"]
    cfg["DataLoader"]["Eval"] = {
        "dataset": {**train["dataset"], "cls_label_path": str(data["train_list"]),
                    "transform_ops": [op for op in train["dataset"]["transform_ops"] if "RandFlipImage" not in op]},
        "sampler": {**train["sampler"], "drop_last": False, "shuffle": False}, "loader": dict(train["loader"])}
    return cfg


def eval_paddleclas(tmp: Path, cfg: dict, data: dict, script: Path, python: str) -> dict:
    """PaddleClas's tools/eval.py on the weights its training run saved: images/s of its evaluation loop (from
    its per-iteration logs) and of the whole process."""
    cfg = eval_config(cfg, data)
    cfg["Global"].update({"checkpoints": None, "use_visualdl": False, "print_batch_step": 1,
                          "output_dir": str(tmp / "paddleclas-eval"),
                          "pretrained_model": str(tmp / "paddleclas-out" / "latest")})  # save_model ignores model_name
    cfg["DataLoader"]["Eval"]["loader"]["use_shared_memory"] = True
    cfg_path = tmp / "paddleclas-eval.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PCLS_") and k != "PYTHONPATH"}
    proc, wall, _ = timed_run([python, str(script.parent / "eval.py"), "-c", str(cfg_path)], script.parent.parent, env)
    log = proc.stdout + proc.stderr
    steps = [(i, n, mean) for i, n, mean in PADDLECLAS_EVAL_STEP.findall(log)]
    if proc.returncode != 0 or not steps:
        raise SystemExit(f"PaddleClas eval failed (exit {proc.returncode}):\n{log[-2000:]}")
    images = list_length(data["train_list"])
    return {"eval_images_per_s": round(images / paddleclas_loop_seconds(steps), 1),
            "eval_end_to_end_images_per_s": round(images / wall, 1)}


def eval_pcls(tmp: Path, cfg: dict, data: dict, weights: str, env: dict) -> dict:
    """`pcls eval` on `weights`, over the training list and over its first batch: images/s of the whole process,
    and of the loop alone as (images - one batch) / (wall - wall of the one-batch run) -- pcls reports no loop
    time of its own, and start-up (imports, model, weights) would otherwise weigh on a short list."""
    batch = cfg["DataLoader"]["Train"]["sampler"]["batch_size"]
    lines = [line for line in Path(data["train_list"]).read_text().splitlines() if line.strip()]
    one_batch = tmp / "pcls-eval-one-batch.txt"
    one_batch.write_text("\n".join(lines[:batch]) + "\n")
    walls = []
    for listing in (data["train_list"], one_batch):
        cfg_path = tmp / "pcls-eval.yaml"
        cfg_path.write_text(yaml.safe_dump(eval_config(cfg, {**data, "train_list": listing})))
        cmd = [sys.executable, "-m", "pcls", "eval", "-c", str(cfg_path), "--weights", weights, "--json",
               "--out", str(tmp / "pcls-eval")]
        proc, wall, _ = timed_run(cmd, tmp, env)
        if proc.returncode != 0:
            raise SystemExit(f"pcls eval failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        walls.append(wall)
    loop = (len(lines) - batch) / (walls[0] - walls[1]) if walls[0] > walls[1] and len(lines) > batch else None
    return {"eval_images_per_s": None if loop is None else round(loop, 1),
            "eval_end_to_end_images_per_s": round(len(lines) / walls[0], 1)}


def list_length(path) -> int:
    return sum(1 for line in Path(path).read_text().splitlines() if line.strip())


def run_one(tmp: Path, data: dict, model: str, size: int, setting: tuple, args, macs: float, peak: float) -> dict:
    label, settings_env, *cli = setting  # cli: extra `pcls train` arguments of the setting (--nproc)
    out = tmp / "out"
    cfg = train_config(data, model, out, args.batch_size, args.epochs, args.eval)
    load = load_line()
    own_ips, timings = None, {}
    if label == PADDLECLAS:
        script = settings_env["script"]
        proc, wall, cpu, ips, own_ips, top1 = run_paddleclas(tmp, cfg, size, script, args.paddleclas_python)
        if args.eval_speed:
            timings = eval_paddleclas(tmp, cfg, data, script, args.paddleclas_python)
    else:
        cfg_path = tmp / f"{model}-{size}.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg))
        env = {**os.environ, **settings_env}
        cmd = [sys.executable, "-m", "pcls", "train", "-c", str(cfg_path), "--json", "--exist-ok", "--name", "bench",
               *(cli[0] if cli else [])]
        proc, wall, cpu = timed_run(cmd, tmp, env)
        if proc.returncode != 0:
            raise SystemExit(f"{model} at {size} px failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        summary = json.loads(proc.stdout)
        epochs = [json.loads(line) for line in Path(summary["files"]["metrics_jsonl"]).read_text().splitlines()
                  if line.strip()]
        ips, top1 = sum(row["images_per_s"] for row in epochs) / len(epochs), epochs[-1].get("val_top1")
        if args.eval_speed and label == DEFAULT[0]:  # training settings (--ab, --threads) leave evaluation alone
            timings = eval_pcls(tmp, cfg, data, summary["files"]["latest"], env)
    images = list_length(data["train_list"]) // args.batch_size * args.batch_size * args.epochs  # drop_last
    gflops = macs * 2 * 3 * ips / 1e9
    settings_env = {k: str(v) for k, v in settings_env.items()}
    return {"model": model, "size": size, "setting": label, "env": settings_env, "batch_size": args.batch_size,
            "epochs": args.epochs, "eval": args.eval, "images_per_s": round(ips, 1),
            "own_ips": None if own_ips is None else round(own_ips, 1), **timings,
            "end_to_end_images_per_s": round(images / wall, 1), "wall_s": round(wall, 1),
            "val_top1": top1, "cpu_utilisation": round(cpu / wall, 2),
            "cpu_ms_per_image": round(1000 * cpu / images, 1),  # start-up included; steadier than wall under load
            "gmacs_per_image": round(macs / 1e9, 4), "gflops": round(gflops, 2), "matmul_gflops": round(peak, 1),
            "fraction": round(gflops / peak, 4), "load": load}


def speedups(rows: list, reference: str = BASELINE[0]) -> list:
    """Each setting's mean images/s (training and end to end) over the `reference` setting's, per model/size."""
    out = []
    for key in dict.fromkeys((r["model"], r["size"]) for r in rows):
        group = [r for r in rows if (r["model"], r["size"]) == key]
        base = [r for r in group if r["setting"] == reference]
        if not base:
            continue
        for label in dict.fromkeys(r["setting"] for r in group if r["setting"] != reference):
            mine = [r for r in group if r["setting"] == label]
            ratio = {m: (sum(r[m] for r in mine) / len(mine)) / (sum(r[m] for r in base) / len(base))
                     for m in ("images_per_s", "end_to_end_images_per_s", "eval_images_per_s",
                               "eval_end_to_end_images_per_s")
                     if all(r.get(m) for r in mine + base)}
            out.append({"model": key[0], "size": key[1], "setting": label, "over": reference,
                        "training_speedup": round(ratio["images_per_s"], 2),
                        "end_to_end_speedup": round(ratio["end_to_end_images_per_s"], 2),
                        "cpu_per_image_speedup": round(sum(r["cpu_ms_per_image"] for r in base) / len(base) /
                                                       (sum(r["cpu_ms_per_image"] for r in mine) / len(mine)), 2),
                        **{f"eval{part}_speedup": round(ratio[f"eval{part}_images_per_s"], 2)
                           if f"eval{part}_images_per_s" in ratio else None for part in ("", "_end_to_end")}})
    return out


def extra_text(row: dict) -> str:
    """PaddleClas's own ips and the evaluation figures of a printed run, when there are any."""
    parts = [] if row["own_ips"] is None else [f"its own ips {row['own_ips']:.1f}"]
    if row.get("eval_end_to_end_images_per_s"):
        loop = "" if row["eval_images_per_s"] is None else f"loop {row['eval_images_per_s']:.1f}, "
        parts.append(f"eval {loop}end to end {row['eval_end_to_end_images_per_s']:.1f} img/s")
    return "".join(f"\n{'':<36}{part}" for part in parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--sizes", default="32,224", help="image sizes, comma-separated")
    parser.add_argument("--images-small", type=int, default=1400, help="training images at sizes up to 64 px")
    parser.add_argument("--images-large", type=int, default=320, help="training images at larger sizes")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--eval", action="store_true", help="evaluate every epoch (on the generated val list)")
    parser.add_argument("--threads", default="", help="extra pcls settings with PCLS_NUM_THREADS, e.g. 1,2")
    parser.add_argument("--ab", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra pcls setting with this environment variable (repeatable)")
    parser.add_argument("--nproc", default="", help="extra pcls settings with `--nproc N` data-parallel processes "
                        "on the CPU (gloo), each with batch-size / N images a step (the same global batch), e.g. 2")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions of every setting")
    parser.add_argument("--paddleclas-python", default="",
                        help="python of a separate environment with PaddleClas 2.6: run its tools/train.py too")
    parser.add_argument("--paddleclas-root", default="", help="PaddleClas source tree holding tools/train.py")
    parser.add_argument("--eval-speed", action="store_true",
                        help="after each PaddleClas and default pcls run, time evaluation of its weights over the "
                             "training list (tools/eval.py; pcls eval)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the paddle-kernel stand-in (e.g. when PaddleClas itself is measured)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    settings = ([] if args.no_baseline else [BASELINE]) + [DEFAULT] + [
        (f"pcls, {t} threads", {"PCLS_NUM_THREADS": t}) for t in args.threads.split(",") if t] + [
        (f"pcls, {pair}", dict([pair.split("=", 1)])) for pair in args.ab] + [
        (f"pcls, --nproc {n}", {}, ["--nproc", n, "-o", f"DataLoader.Train.sampler.batch_size={args.batch_size // int(n)}"])
        for n in args.nproc.split(",") if n]
    if args.paddleclas_python:
        settings.insert(0, (PADDLECLAS, {"script": paddleclas_train_script(args.paddleclas_python,
                                                                           args.paddleclas_root)}))
    peak = {"all_cores": matmul_gflops(), "one_core": matmul_gflops(1)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="pcls-bench-train-") as tmp_name:
        tmp = Path(tmp_name)
        for size in sizes:
            data = make_data(tmp, size, args.images_small if size <= 64 else args.images_large)
            for model in models:
                macs = model_macs(model, size)
                for _ in range(args.rounds):
                    for setting in settings:
                        row = run_one(tmp, data, model, size, setting, args, macs, peak["all_cores"])
                        rows.append(row)
                        if not args.json:
                            top1 = "" if row["val_top1"] is None else f"  val top-1 {100 * row['val_top1']:.1f}%"
                            print(f"{row['model']:<24} {size:>4}px  {row['setting']:<24} "
                                  f"{row['images_per_s']:>7.1f} img/s (end to end "
                                  f"{row['end_to_end_images_per_s']:>6.1f}, {row['wall_s']:.0f} s)  "
                                  f"{row['gflops']:>6.1f} GFLOP/s = "
                                  f"{100 * row['fraction']:.1f}% of matmul  cpu {row['cpu_utilisation']:.2f}{top1}  "
                                  f"[{row['load']}]{extra_text(row)}", flush=True)
    references = ([PADDLECLAS] if args.paddleclas_python else []) + ([] if args.no_baseline else [BASELINE[0]])
    references = references or [DEFAULT[0]]  # only pcls settings: each --ab/--threads one against the defaults
    result = {"matmul_gflops": {k: round(v, 1) for k, v in peak.items()}, "runs": rows,
              "speedups": [row for ref in references for row in speedups(rows, ref)],
              "load_after": load_line()}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for row in result["speedups"]:
            evaluation = "".join(f", x{row[key]:.2f} evaluation{text}" for key, text in (
                ("eval_speedup", " loop"), ("eval_end_to_end_speedup", " end to end")) if row[key] is not None)
            print(f"{row['model']:<24} {row['size']:>4}px  {row['setting']:<24} x{row['training_speedup']:.2f} training"
                  f" images/s, x{row['end_to_end_speedup']:.2f} end to end, x{row['cpu_per_image_speedup']:.2f} CPU time "
                  f"per image{evaluation}, over {row['over']}")
        print(f"float32 matmul (numpy 2048x2048): {peak['all_cores']:.1f} GFLOP/s all cores, "
              f"{peak['one_core']:.1f} one core; {result['load_after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
