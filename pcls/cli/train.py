"""`pcls train` and `pcls eval`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from pcls.cli.common import (
    ConfigOpt,
    JsonOpt,
    OverrideOpt,
    PrintConfigOpt,
    RecipeOpt,
    console,
    fail,
    out,
    print_config,
    print_json,
    resolve_config,
    table,
)

# what each output of a run is, for the closing summary
_OUTPUT_MEANING = {
    "best_model": "weights with the best validation top-1 (use with pcls eval / export / predict)",
    "latest": "last checkpoint: weights + optimizer + state; continue with --resume",
    "curves": "loss, top-1 (train/val) and learning rate per epoch",
    "metrics_jsonl": "one JSON row of metrics per epoch",
    "metrics_csv": "the same rows as CSV",
    "config": "the resolved config this run used",
    "student_best_model": "the distilled student alone, a plain backbone checkpoint (pcls eval --model / export)",
    "student_latest": "the latest student weights, a plain backbone checkpoint",
}


def _config_for_resume(resume: str, overrides):
    """The config saved with a run, when --resume is given without -c/--recipe."""
    from pcls.config import load_config
    from pcls.engine.checkpoint import checkpoint_prefix

    saved = checkpoint_prefix(resume).parent / "config.yaml"
    if not saved.is_file():
        fail(f"{saved} not found: pass the run's config with -c FILE together with --resume")
    return load_config(str(saved), overrides or [])


def _print_summary(summary: dict) -> None:
    best = summary.get("best") or {}
    final = summary.get("final") or {}
    rows = [("status", summary["status"]), ("run directory", summary["run_dir"]),
            ("epochs", summary["epochs_done"]), ("time", f"{summary['seconds']:.0f} s")]
    if best.get("value") is not None:
        rows.append((f"best {best['metric']}", f"{best['value']:.4f} (epoch {best['epoch']})"))
    for key in ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "ema_val_top1"):
        if key in final:
            rows.append((f"last {key}", f"{final[key]:.4f}"))
    out.print(table("training run", ["", "value"], rows))
    files = [(key, path, _OUTPUT_MEANING.get(key, "")) for key, path in summary["files"].items() if Path(path).exists()]
    out.print(table("outputs", ["file", "path", "what it is"], files))


def register(app: typer.Typer) -> None:
    @app.command("train")
    def _train(
        config: ConfigOpt = None,
        recipe: RecipeOpt = None,
        override: OverrideOpt = None,
        print_cfg: PrintConfigOpt = False,
        resume: Annotated[Optional[str], typer.Option(
            "--resume", metavar="DIR", help="Continue a run exactly where it stopped: its directory "
            "(output/<run>) or a checkpoint prefix (output/<run>/epoch_3).")] = None,
        device: Annotated[Optional[str], typer.Option(
            "--device", metavar="DEVICE",
            help="cpu, gpu or gpu:N (default: Global.device; auto = a GPU when there is one).")] = None,
        gpus: Annotated[Optional[str], typer.Option(
            "--gpus", metavar="IDS", help="Train on these GPUs, one process each (e.g. 0,1), via "
            "paddle.distributed.launch.")] = None,
        nproc: Annotated[Optional[int], typer.Option(
            "--nproc", metavar="N", help="Train with N CPU processes (gloo backend).")] = None,
        ips: Annotated[Optional[str], typer.Option(
            "--ips", metavar="HOSTS", help="Multi-node: comma-separated host IPs; run the same command on each.")] = None,
        scale_lr: Annotated[bool, typer.Option(
            "--scale-lr", help="Scale every learning rate by global batch / --ref-batch (linear rule: lr 0.1 "
            "for 256 images, seed 2.2.3).")] = False,
        ref_batch: Annotated[int, typer.Option(
            "--ref-batch", metavar="N", help="The global batch the config's learning rate was tuned for (with --scale-lr).")] = 256,
        name: Annotated[Optional[str], typer.Option(
            "--name", metavar="NAME", help="Run name: outputs go to Global.output_dir/NAME (default: the recipe name, else Global.run_name, else Arch.name).")] = None,
        smoke: Annotated[bool, typer.Option(
            "--smoke", help="Run 2 iterations on generated data of the config's input size and class count "
            "(no download, CPU): the check to run before renting GPUs.")] = False,
        json_out: JsonOpt = False,
    ):
        """Train a classifier from a config or recipe.

        Example: pcls train --recipe demo
        """
        if resume and not (config or recipe):
            cfg = _config_for_resume(resume, override)
        else:
            cfg = resolve_config(config, recipe, override)
        if recipe and not name and not resume and not cfg["Global"].get("run_name"):
            name = recipe  # recipes sharing a backbone must not overwrite each other's runs
        if smoke:
            from pcls.recipes.smoke import smoke_config

            label = recipe or Path(config or resume).stem
            cfg = smoke_config(cfg, Path(cfg["Global"]["output_dir"]) / "smoke" / label)
            device, gpus, ips, nproc = "cpu", None, None, None
            name = name or label
        if print_cfg:
            print_config(cfg)
            return
        if gpus or ips or (nproc and nproc > 1):
            summary = _launch(cfg, resume=resume, device=device, gpus=gpus, nproc=nproc, ips=ips,
                              scale_lr=scale_lr, ref_batch=ref_batch, name=name)
        else:
            from pcls.engine.trainer import train

            summary = train(cfg, resume=resume, device=device, scale_lr=scale_lr, ref_batch=ref_batch,
                            run_name=name, show_progress=not json_out)
        world = (nproc or (len(gpus.split(",")) if gpus else 1)) * max(1, len((ips or "").split(",")))
        record = _recipe_result(cfg, recipe, summary, world, smoke)
        if json_out:
            print_json({**summary, **({"recipe_result": record} if record else {})})
        else:
            _print_summary(summary)
            if record:
                from pcls.recipes.report import render_panel

                out.print(render_panel(record), soft_wrap=False)
        if summary["status"] == "interrupted":
            raise typer.Exit(130)

    @app.command("eval")
    def _eval(
        config: ConfigOpt = None,
        recipe: RecipeOpt = None,
        override: OverrideOpt = None,
        model: Annotated[Optional[str], typer.Option("--model", metavar="NAME", help="Backbone name (without -c).")] = None,
        weights: Annotated[Optional[str], typer.Option(
            "--weights", metavar="W", help="Weights: a run directory (its best_model), a .pdparams path or "
            "prefix, or a zoo model name.")] = None,
        data: Annotated[Optional[str], typer.Option(
            "--data", metavar="LIST", help="Labelled list file ('path label' per line).")] = None,
        root: Annotated[Optional[str], typer.Option("--root", metavar="DIR", help="Image root of the list.")] = None,
        class_num: Annotated[Optional[int], typer.Option(
            "--class-num", metavar="N", help="Number of classes (default: Arch.class_num, or lines of --labels, or the "
            "largest label in the list + 1).")] = None,
        labels: Annotated[Optional[str], typer.Option(
            "--labels", metavar="FILE", help="Class names file, one per line (for the per-class table).")] = None,
        batch_size: Annotated[int, typer.Option("--batch-size", metavar="N", help="Evaluation batch size.")] = 32,
        out_dir: Annotated[Optional[str], typer.Option(
            "--out", metavar="DIR", help="Where confusion_matrix.json/.csv and per_class.csv go.")] = None,
        device: Annotated[Optional[str], typer.Option("--device", metavar="DEVICE", help="cpu, gpu or gpu:N.")] = None,
        json_out: JsonOpt = False,
    ):
        """Evaluate weights on a labelled list: top-1/top-5, per-class accuracy, confusion matrix.
        Example: pcls eval --recipe demo --weights output/demo/best_model"""
        from pcls.engine.evaluator import evaluate

        if config or recipe:
            cfg = resolve_config(config, recipe, override)
            if data:
                cfg["DataLoader"]["Eval"]["dataset"].update(cls_label_path=data, **({"image_root": root} if root else {}))
            if class_num:
                cfg["Arch"]["class_num"] = class_num
        else:
            if not (model and data):
                fail("give -c CONFIG (or --recipe NAME), or --model NAME --weights W --data LIST --root DIR")
            cfg = _eval_config(model, data, root or ".", class_num, labels, batch_size)
        labels = labels or ((cfg.get("Infer") or {}).get("PostProcess") or {}).get("class_id_map_file")
        result = evaluate(cfg, weights=weights, device=device, out_dir=out_dir, labels_file=labels,
                          log=lambda msg: console.print(msg, highlight=False))
        if json_out:
            print_json(result)
            return
        ks = [k for k in result if k.startswith("top")]
        out.print(table(f"{result['model']} on {result['samples']} images", ["metric", "value"],
                        [(k, f"{result[k]:.4f}") for k in ks] + [("loss", f"{result['loss']:.4f}")]))
        per_class = result["per_class"]
        worst = sorted((r for r in per_class if r["top1"] is not None), key=lambda r: r["top1"])[:10]
        out.print(table("per-class top-1 (lowest first)", ["class", "name", "images", "top1"],
                        [(r["class_id"], r["name"], r["support"], f"{r['top1']:.4f}") for r in worst]))
        out.print(table("files", ["file", "path"], list(result["files"].items())))

    from pcls.cli import distill

    distill.register(app)


def _eval_config(model, data, root, class_num, labels, batch_size) -> dict:
    """A config for `pcls eval --model ... --data ...`: the catalog's eval pre-processing for the model."""
    from pcls.zoo.catalog import eval_transform_ops, preprocess_for

    if not Path(data).is_file():
        fail(f"list file {data} does not exist")
    if class_num is None and labels and Path(labels).is_file():
        class_num = sum(1 for line in Path(labels).read_text().splitlines() if line.strip())
    if class_num is None:
        from pcls.data.lists import class_count

        class_num = class_count(data)
    ops = eval_transform_ops(preprocess_for(model))
    raw = {
        "Global": {"device": "auto"},
        "Arch": {"name": model, "class_num": class_num},
        "DataLoader": {"Eval": {
            "dataset": {"name": "ImageNetDataset", "image_root": root, "cls_label_path": data, "transform_ops": ops},
            "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "shuffle": False,
                        "drop_last": False},
            "loader": {"num_workers": 0},
        }},
    }
    from pcls.config.schema import validate

    return validate(raw)  # fill the defaults as for any config


def _recipe_result(cfg, recipe, summary, world, smoke):
    """For configs with a Reference block (every recipe): record achieved vs documented in result.json."""
    if not cfg.get("Reference") or summary.get("status") != "done":
        return None
    from pcls.recipes.report import write_result

    best, final = summary.get("best") or {}, summary.get("final") or {}
    top1 = best.get("value") if best.get("metric") == "val_top1" else final.get("val_top1")
    return write_result(summary["run_dir"], cfg, recipe=recipe or Path(cfg.get("_source", "config")).stem,
                        top1=top1, top5=final.get("val_top5"), world_size=world,
                        epochs_run=int(summary.get("epochs_done") or 0), device=cfg["Global"].get("device", "cpu"),
                        smoke=smoke)


def _launch(cfg, *, resume, device, gpus, nproc, ips, scale_lr, ref_batch, name) -> dict:
    """Re-run this training under paddle.distributed.launch and return rank 0's summary."""
    import re

    from pcls.engine import launch, worker
    from pcls.engine.trainer import prepare_builtin_data, preflight, run_dir_of
    from pcls.utils.io import atomic_write_text

    prepare_builtin_data(cfg, log=lambda msg: console.print(msg, highlight=False))
    world = (nproc or (len(gpus.split(",")) if gpus else 1)) * max(1, len((ips or "").split(",")))
    preflight(cfg, resume, world)
    if resume and not name:
        from pcls.engine.checkpoint import checkpoint_prefix

        run_dir = checkpoint_prefix(resume).parent
    else:
        run_dir = run_dir_of(cfg, name)
    device = "gpu" if gpus else (device or "cpu")
    spec = {"config": cfg, "options": {"resume": resume, "device": device, "scale_lr": scale_lr,
                                       "ref_batch": ref_batch, "run_dir": str(run_dir), "show_progress": False}}
    spec_path = run_dir / "launch.json"
    atomic_write_text(spec_path, json.dumps(spec, default=str))
    (run_dir / "summary.json").unlink(missing_ok=True)
    cmd = launch.launch_command(worker.__file__, [str(spec_path)], log_dir=run_dir / "log",
                                nproc=nproc if not gpus else None, gpus=gpus, ips=ips)
    console.print(f"launching {nproc or len(gpus.split(','))} processes: {' '.join(cmd)}", highlight=False)
    noise = re.compile(r"^([IWE]\d{4} |\s|=+$|FLAGS\(|.*warnings\.warn|.*ccache|.*Modified FLAGS|LAUNCH )")

    def echo(line):
        if line.strip() and not noise.match(line):
            console.print(line, highlight=False, markup=False)

    try:
        launch.run_launcher(cmd, run_dir / "log", env=launch.worker_env(device), echo=echo)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted: rank 0 saved its last update in {run_dir}; continue with: "
                      f"pcls train --resume {run_dir} --nproc/--gpus ...[/yellow]")
        raise typer.Exit(130) from None
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        fail(f"the distributed job ended without a summary; see the logs in {run_dir / 'log'}", 1)
    return json.loads(summary_path.read_text())
