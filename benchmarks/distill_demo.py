"""PaddleClas 2.6's distillation methods for real on pcls's demo data, each loss term's first and last epoch.

    python benchmarks/distill_demo.py                      # every method; a fresh temp dir
    python benchmarks/distill_demo.py --methods MGD,AFD --epochs 3 --keep out/distill-demo
    python benchmarks/distill_demo.py --json > r.json      # the same figures as JSON on stdout
    python benchmarks/distill_demo.py --table-from r.json  # the table of an earlier --json run

Teachers are trained first (on the demo's 2500 training images), then one student per method (on the first
100 images of each class) is distilled with that method's loss exactly as its recipe writes it: the same
loss parameters, feature taps and connectors, on narrow models at a small input so the lot fits a few CPU
minutes. Scaled down, and nothing else: the recipes' ResNet34 -> ResNet18 keep their depths and layer names
(so `blocks[7]`, `blocks[15]`, `avg_pool` tap the same places) with `--width` channels in the first stage
instead of 64, at `--side` pixels; UDML/DML's PPLCNet_x2_5 pair becomes the demo recipe's PPLCNet_x0_35 at
the demo's 64 px (same `blocks3..6` taps); the channel counts the losses are given (MGD, PEFD) and AFD's
feature shapes follow from those models; the schedule is the demo recipe's (Momentum, Cosine with one warm-up
epoch), class_num 10.
Methods without a recipe of their own are assembled from the recipes' parts: KD = the DKD recipe with AFD's
`DistillationKLDivLoss` term (T = 4) in place of DKD's; DML = the UDML recipe without its feature distance (as
PaddleClas's PPLCNet_x2_5_dml.yaml); RKD = the PEFD recipe (avg_pool taps) with `DistillationRKDLoss`.
DML and UDML train both models, as their configs say: their Teacher starts from the trained teacher. "alone"
is each student architecture trained with CE on the students' images for the same epochs. Each term's
per-epoch value is read back from the run's metrics.jsonl (`train_<term>`: the epoch's mean over its samples).
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("distill_demo")

# method -> (recipe whose model/taps it uses, how its Loss.Train is made)
METHODS = ("KD", "DML", "UDML", "DKD", "WSL", "SKD", "DIST", "MGD", "PEFD", "AFD", "RKD")
RECIPE = {"KD": "distill-dkd", "DML": "distill-udml", "UDML": "distill-udml", "DKD": "distill-dkd",
          "WSL": "distill-wsl", "SKD": "distill-skd", "DIST": "distill-dist", "MGD": "distill-mgd",
          "PEFD": "distill-pefd", "AFD": "distill-afd", "RKD": "distill-pefd"}
# the ground-truth CE terms train the models but distil nothing; every other train_loss_* column is a
# distillation term (SKD's single loss mixes in its own CE: it is reported as one term, as it is computed)
GROUND_TRUTH_TERMS = ("loss_gt_ce",)
SETTINGS = ("epochs", "teacher_epochs", "width", "side", "train_per_class", "teacher_per_class", "val_per_class",
            "batch_size", "seed")
CONNECTORS = ("AttentionModel", "LinearTransformTeacher", "LinearTransformStudent")  # AFD's, not backbones
SMALL = {"PPLCNet_x2_5": "PPLCNet_x0_35"}  # the demo recipe's model
DEMO_SIDE = 64  # the demo images' side; PPLCNet (32x down-sampling) trains at it, the narrow ResNets at --side


def _recipe(name: str) -> dict:
    from pcls.config import load_config

    cfg = load_config(name, is_recipe=True, validate_schema=False)
    cfg.pop("_source", None)
    return cfg


def _loss_entry(cfg: dict, name: str) -> dict:
    (entry,) = [item for item in cfg["Loss"]["Train"] if next(iter(item)) == name]
    return entry


def method_config(method: str) -> dict:
    """The recipe config whose Arch/Loss the method runs (before shrinking)."""
    cfg = _recipe(RECIPE[method])
    train = cfg["Loss"]["Train"]
    if method == "KD":
        kd = _loss_entry(_recipe("distill-afd"), "DistillationKLDivLoss")
        cfg["Loss"]["Train"] = [_loss_entry(cfg, "DistillationGTCELoss"), kd]
    elif method == "DML":
        cfg["Loss"]["Train"] = [item for item in train if next(iter(item)) != "DistillationDistanceLoss"]
        for _, _, member in _members(cfg["Arch"]):
            member.pop("return_patterns", None)
    elif method == "RKD":
        cfg["Loss"]["Train"] = [_loss_entry(cfg, "DistillationGTCELoss"),
                                {"DistillationRKDLoss": {"weight": 1.0, "model_name_pairs": [["Student", "Teacher"]],
                                                         "student_keepkeys": ["avg_pool"],
                                                         "teacher_keepkeys": ["avg_pool"]}}]
    return cfg


def _members(arch: dict, top=None):
    """(top-level label, label, section) of Arch.models and of an AttentionModel's own models (AFD: the
    backbone and its connector), the config's own sections."""
    for item in arch.get("models") or []:
        (label, section), = item.items()
        yield top or label, label, section
        if section.get("name") == "AttentionModel":
            yield from _members(section, top or label)


def _backbone(section: dict, width: int) -> dict:
    """The narrow stand-in for a recipe backbone: the same family and depth, fewer channels."""
    name = SMALL.get(section["name"], section["name"])
    options = {"name": name, "class_num": 10}
    if name.startswith("ResNet"):
        options.update(channels=[width, 2 * width, 4 * width, 8 * width], stem_channels=[width])
    return options


def _side(backbone: dict, side: int) -> int:
    return side if backbone["name"].startswith("ResNet") else DEMO_SIDE


def _shapes(backbone: dict, patterns, side: int) -> list:
    """[C, H, W] of each tapped feature for a `side` x `side` input (AFD's s_shapes / t_shapes)."""
    import paddle

    from pcls.arch.registry import create_model
    from pcls.loss.distillation import pattern_key

    options = {k: v for k, v in backbone.items() if k != "name"}
    model = create_model(backbone["name"], return_patterns=list(patterns), **options)
    model.eval()
    with paddle.no_grad():
        out = model(paddle.zeros([1, 3, side, side]))
    return [list(out[pattern_key(p)].shape[1:]) for p in patterns]


def shrink(cfg: dict, *, data: dict, out_dir, teachers: dict, width: int, side: int, epochs: int, seed: int,
           batch_size: int) -> dict:
    """`cfg` with narrow models (teacher weights from `teachers[arch name]`), the demo data and schedule."""
    cfg = copy.deepcopy(cfg)
    demo = _recipe("demo")
    cfg.pop("Reference", None)
    cfg["Global"].update(output_dir=str(out_dir), device="cpu", epochs=epochs, seed=seed, eval_interval=1,
                         save_interval=epochs, print_batch_step=10 ** 6, image_shape=[3, side, side],
                         pretrained_model=None, checkpoints=None)
    cfg["AMP"] = {**cfg.get("AMP", {}), "use_amp": False}
    cfg["Arch"]["class_num"] = 10
    taps = {"Teacher": {}, "Student": {}}  # top-level label -> {return pattern: [C, H, W]}
    for top, _, section in _members(cfg["Arch"]):
        if section["name"] in CONNECTORS:
            continue
        patterns = section.get("return_patterns")
        small = _backbone(section, width)
        section.clear()
        section.update(small, pretrained=teachers[small["name"]] if top == "Teacher" else False)
        if patterns:
            section["return_patterns"] = patterns
            taps[top] = dict(zip(patterns, _shapes(small, patterns, side)))
    # AFD: the connectors' and the loss's shapes are those of the narrow models' taps, in tap order
    shapes = {"s_shapes": list(taps["Student"].values()), "t_shapes": list(taps["Teacher"].values())}
    for _, _, section in _members(cfg["Arch"]):
        section.update({key: shapes[key] for key in shapes if key in section})
    for item in cfg["Loss"]["Train"]:
        (name, params), = item.items()
        if name == "AFDLoss":
            params.update(shapes)
        if params.get("base_loss_name") in ("MGDLoss", "PEFDLoss"):  # MGD: student_channels; PEFD: student_channel
            plural = "s" if params["base_loss_name"] == "MGDLoss" else ""
            params[f"student_channel{plural}"] = taps["Student"][params["s_key"]][0]
            params[f"teacher_channel{plural}"] = taps["Teacher"][params["t_key"]][0]
    cfg["Optimizer"] = copy.deepcopy(demo["Optimizer"])
    cfg["DataLoader"] = _loaders(demo, data, batch_size, side)
    cfg["Infer"] = copy.deepcopy(demo["Infer"])
    cfg["Infer"]["PostProcess"]["class_id_map_file"] = str(data["labels"])
    return cfg


def _loaders(demo: dict, data: dict, batch_size: int, side: int) -> dict:
    loaders = copy.deepcopy(demo["DataLoader"])
    for split, list_file in (("Train", data["train_list"]), ("Eval", data["val_list"])):
        dataset = loaders[split]["dataset"]
        dataset.update(image_root=str(data["image_root"]), cls_label_path=str(list_file))
        if side != DEMO_SIDE:  # right after DecodeImage
            dataset["transform_ops"].insert(1, {"ResizeImage": {"size": side}})
    loaders["Train"]["sampler"]["batch_size"] = batch_size
    return loaders


def plain_config(backbone: dict, *, data: dict, out_dir, side: int, epochs: int, seed: int,
                 batch_size: int) -> dict:
    """The demo recipe training `backbone` alone (teachers; students trained alone)."""
    cfg = _recipe("demo")
    cfg.pop("Reference", None)
    cfg["Global"].update(output_dir=str(out_dir), device="cpu", epochs=epochs, seed=seed,
                         save_interval=epochs, print_batch_step=10 ** 6, image_shape=[3, side, side])
    cfg["Arch"] = dict(backbone)
    cfg["DataLoader"] = _loaders(cfg, data, batch_size, side)
    cfg["Infer"]["PostProcess"]["class_id_map_file"] = str(data["labels"])
    return cfg


def _rows(run_dir) -> list:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def loss_terms(rows: list) -> dict:
    """{distillation term: [per-epoch value]} from metrics.jsonl rows (ground-truth CE and the total left out)."""
    terms = [k[len("train_"):] for k in rows[0] if k.startswith("train_loss_")]
    return {t: [row[f"train_{t}"] for row in rows] for t in terms if not t.startswith(GROUND_TRUTH_TERMS)}


def _train(cfg: dict, run_name: str) -> dict:
    from pcls.engine.trainer import train

    started = time.perf_counter()
    summary = train(cfg, run_name=run_name, exist_ok=True)
    log.info("%s: %.0f s, val top-1 %.3f", run_name, time.perf_counter() - started,
             summary["final"].get("val_top1", float("nan")))
    return summary


def _first_per_class(list_file, per_class: int) -> Path:
    """A train list of the first `per_class` lines of each class of `list_file` (the students' share)."""
    taken, lines = {}, []
    for line in Path(list_file).read_text().splitlines():
        label = line.rsplit(" ", 1)[-1]
        if taken.get(label, 0) < per_class:
            taken[label] = taken.get(label, 0) + 1
            lines.append(line)
    from pcls.utils.io import atomic_write_text

    path = Path(list_file).with_name(f"train_list_first{per_class}.txt")
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def run_demo(workdir, *, methods=METHODS, epochs=4, teacher_epochs=6, width=16, side=32, train_per_class=100,
             teacher_per_class=250, val_per_class=30, seed=42, batch_size=32, alone=True, progress=None) -> dict:
    """Train the teachers, the students alone and one distilled student per method under `workdir`.

    Returns {"teachers": {arch: top1}, "alone": {arch: top1}, "methods": {method: {"student", "top1",
    "teacher_top1", "alone_top1", "terms": {term: [per-epoch values]}, "run_dir"}}, "settings": {...}}.
    alone=False skips the students trained alone (their top-1 is then None).
    `progress(done, total, what)` is called before each training run.
    """
    from pcls.data.demo import make_demo_dataset

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    workdir = Path(workdir)
    teacher_data = make_demo_dataset(workdir / "data", train_per_class=max(train_per_class, teacher_per_class),
                                     val_per_class=val_per_class, size=DEMO_SIDE, seed=seed)
    data = {**teacher_data, "train_list": _first_per_class(teacher_data["train_list"], train_per_class)}
    settings = {"epochs": epochs, "teacher_epochs": teacher_epochs, "width": width, "side": side,
                "train_images": 10 * train_per_class, "teacher_train_images": 10 * max(train_per_class,
                                                                                       teacher_per_class),
                "val_images": 10 * val_per_class, "seed": seed, "batch_size": batch_size}
    common = {"data": data, "out_dir": workdir / "runs", "seed": seed, "batch_size": batch_size}
    configs = {m: method_config(m) for m in methods}
    # the architectures to train first (teachers) and alone (students), in their narrow forms
    pairs = {}
    for method, cfg in configs.items():
        backbones = {top: section for top, _, section in _members(cfg["Arch"]) if section["name"] not in CONNECTORS}
        pairs[method] = (_backbone(backbones["Teacher"], width), _backbone(backbones["Student"], width))
    teacher_archs = {t["name"]: t for t, _ in pairs.values()}
    student_archs = {s["name"]: s for _, s in pairs.values()} if alone else {}
    total, done = len(teacher_archs) + len(student_archs) + len(methods), 0

    def step(what):
        nonlocal done
        if progress:
            progress(done, total, what)
        done += 1

    teachers, teacher_top1, alone_top1 = {}, {}, {}
    for name, backbone in teacher_archs.items():
        step(f"teacher {name}")
        summary = _train(plain_config(backbone, epochs=teacher_epochs, side=_side(backbone, side),
                                      **{**common, "data": teacher_data}), f"teacher-{name}")
        teachers[name] = str(Path(summary["run_dir"]) / "best_model")
        teacher_top1[name] = summary["best"]["value"]
    for name, backbone in student_archs.items():
        step(f"{name} alone")
        summary = _train(plain_config(backbone, epochs=epochs, side=_side(backbone, side), **common),
                         f"alone-{name}")
        alone_top1[name] = summary["final"]["val_top1"]
    results = {}
    for method in methods:
        step(f"distil {method}")
        teacher, student = pairs[method]
        cfg = shrink(configs[method], teachers=teachers, width=width, epochs=epochs, side=_side(student, side),
                     **common)
        summary = _train(cfg, f"distill-{method.lower()}")
        results[method] = {"teacher": teacher["name"], "student": student["name"],
                           "top1": summary["final"]["val_top1"], "teacher_top1": teacher_top1[teacher["name"]],
                           "alone_top1": alone_top1.get(student["name"]), "side": _side(student, side),
                           "terms": loss_terms(_rows(summary["run_dir"])), "run_dir": summary["run_dir"]}
    step("done")
    return {"settings": settings, "teachers": teacher_top1, "alone": alone_top1, "methods": results}


def _load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from: " + ", ".join(METHODS))
    defaults = {name: p.default for name, p in inspect.signature(run_demo).parameters.items()}
    helps = {"epochs": "epochs of each student (distilled and alone)", "width": "ResNet first-stage channels "
             "(recipes: 64)", "side": "ResNet input side in pixels (recipes: 224; PPLCNet runs at the demo's 64)"}
    for name in SETTINGS:
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=defaults[name],
                            help=f"{helps.get(name, '')} (default {defaults[name]})".strip())
    parser.add_argument("--keep", metavar="DIR", help="work in DIR (created) and keep the runs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument("--table-from", metavar="JSON", help="only print the table of an earlier --json output")
    args = parser.parse_args()
    methods = [m.strip().upper() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if args.table_from:
        render(json.loads(Path(args.table_from).read_text()))
        return 0
    from rich.console import Console
    from rich.logging import RichHandler
    from rich.progress import Progress

    err = Console(stderr=True)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=err)])
    logging.getLogger("pcls").setLevel(logging.WARNING)
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pcls-distill-demo-"))
    load_before, started = _load_line(), time.perf_counter()
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("distillation demo", total=None)

        def progress(done, total, what):
            bar.update(task, completed=done, total=total, description=what)

        settings = {name: getattr(args, name) for name in SETTINGS}
        result = run_demo(workdir, methods=methods, progress=progress, **settings)
    result.update(seconds=round(time.perf_counter() - started, 1), load_before=load_before,
                  load_after=_load_line(), workdir=str(workdir))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    render(result)
    return 0


def render(result: dict) -> None:
    """The Rich table of a run_demo result (plus timing and load lines when present)."""
    from rich.console import Console
    from rich.table import Table

    s = result["settings"]
    table = Table(title=f"Distillation on the demo data ({s['train_images']} train / {s['val_images']} val images, "
                        f"teachers {s['teacher_train_images']} train; "
                        f"students {s['epochs']} epochs, teachers {s['teacher_epochs']}; ResNets {s['width']} "
                        f"channels wide)")
    for column in ("method", "teacher -> student @ px", "loss term (train_*)", "first epoch", "last epoch",
                   "decreased", "student top-1", "teacher top-1", "alone top-1"):
        table.add_column(column, justify="right" if "epoch" in column or "top-1" in column else "left")
    for method, r in result["methods"].items():
        for index, (term, values) in enumerate(r["terms"].items()):
            first = index == 0
            table.add_row(method if first else "", f"{r['teacher']} -> {r['student']} @ {r['side']}" if first else "",
                          term, f"{values[0]:.4f}", f"{values[-1]:.4f}", "yes" if values[-1] < values[0] else "NO",
                          *(f"{r[k]:.3f}" if first and r[k] is not None else "" for k in ("top1", "teacher_top1",
                                                                                          "alone_top1")))
    console = Console()
    if not console.is_terminal:  # a pipe or a file: the whole table, not one squeezed to 80 columns
        console = Console(width=170)
    console.print(table)
    print(f"{result['seconds']:.0f} s; load average before {result['load_before']}, after {result['load_after']}; "
          f"runs in {result['workdir']}")


if __name__ == "__main__":
    sys.exit(main())
