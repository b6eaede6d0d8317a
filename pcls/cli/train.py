"""`pcls train` and `pcls eval`: parse the options, call the engine (pcls.train / pcls.evaluate), print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pcls.cli.common import (
    ConfigOpt,
    JsonOpt,
    OverrideOpt,
    PrintConfigOpt,
    RecipeOpt,
    fail,
    out,
    print_config,
    print_json,
    resolve_config,
    table,
)
from pcls.cli.own_data import DataOpt, ImageSizeOpt, ModelOpt, NoPretrainedOpt, ValSplitOpt, folder_run
from pcls.cli.runs import (
    ExistOkOpt,
    GpusOpt,
    NprocOpt,
    ResumeOpt,
    config_for_resume,
    progress_callbacks,
    report_run,
)
from pcls.utils.text import metric_text


def register(app: typer.Typer) -> None:
    @app.command("train")
    def _train(
        config: ConfigOpt = None,
        recipe: RecipeOpt = None,
        override: OverrideOpt = None,
        print_cfg: PrintConfigOpt = False,
        resume: ResumeOpt = None,
        device: Annotated[Optional[str], typer.Option(
            "--device", metavar="DEVICE",
            help="cpu, gpu or gpu:N (default: Global.device; auto = a GPU when there is one).")] = None,
        gpus: GpusOpt = None,
        nproc: NprocOpt = None,
        ips: Annotated[Optional[str], typer.Option(
            "--ips", metavar="HOSTS", help="Multi-node: comma-separated host IPs; run the same command on each.")] = None,
        scale_lr: Annotated[bool, typer.Option(
            "--scale-lr", help="Scale every learning rate by global batch / --ref-batch (linear rule: lr 0.1 "
            "for 256 images: PaddleClas docs, Tricks for Training, Choice of Batch_size).")] = False,
        ref_batch: Annotated[int, typer.Option(
            "--ref-batch", metavar="N", help="The global batch the config's learning rate was tuned for (with --scale-lr).")] = 256,
        name: Annotated[Optional[str], typer.Option(
            "--name", metavar="NAME", help="Run name: outputs go to Global.output_dir/NAME (default: the recipe name, else Global.run_name, else Arch.name).")] = None,
        exist_ok: ExistOkOpt = False,
        smoke: Annotated[bool, typer.Option(
            "--smoke", help="Run 2 iterations on generated data of the config's input size and class count "
            "(no download, CPU): the check to run before renting GPUs.")] = False,
        keep_checkpoints: Annotated[bool, typer.Option(
            "--keep-checkpoints", help="With --smoke: keep the run's checkpoints (default: only metrics, curves, "
            "config and summary stay).")] = False,
        model: ModelOpt = None,
        data: DataOpt = None,
        val_split: ValSplitOpt = 0.2,
        no_pretrained: NoPretrainedOpt = False,
        image_size: ImageSizeOpt = None,
        json_out: JsonOpt = False,
    ):
        """Train a classifier from a config or recipe, or a zoo model on your own class folders.

        Example: pcls train --recipe demo

        Example: pcls train --model PPLCNet_x1_0 --data my_images/
        """
        if model or data or image_size:
            cfg = folder_run(model, data, val_split=val_split, pretrained=not no_pretrained, image_size=image_size,
                             name=name, overrides=override, exist_ok=exist_ok, write=not (print_cfg or smoke),
                             config=config, recipe=recipe, resume=resume)
            name = cfg["Global"]["run_name"]  # the folder it chose (output/<name>-2 when <name> holds a run)
        elif resume and not (config or recipe):
            cfg = config_for_resume(resume, override)
        else:
            cfg = resolve_config(config, recipe, override)
        if smoke:  # one CPU process
            gpus, ips, nproc = None, None, None
        if print_cfg:
            if smoke:
                from pcls.engine.run_config import RunOptions
                from pcls.recipes.smoke import smoke_run

                cfg = smoke_run(cfg, RunOptions.build(cfg, run_name=name, recipe=recipe, resume=resume))[0]
            print_config(cfg)
            return
        from pcls.engine.trainer import train

        summary = train(cfg, resume=resume, device=device, nproc=nproc, gpus=gpus, ips=ips, scale_lr=scale_lr,
                        ref_batch=ref_batch, run_name=name, exist_ok=exist_ok, recipe=recipe, smoke=smoke,
                        callbacks=progress_callbacks(json_out, nproc if nproc != "auto" else None, gpus, ips))
        if smoke and not keep_checkpoints:
            from pcls.recipes.smoke import discard_checkpoints

            discard_checkpoints(summary["run_dir"])
        report_run(summary, json_out, "training run")

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
        batch_size: Annotated[Optional[int], typer.Option("--batch-size", metavar="N", min=1, help="Evaluation batch "
                                                          "size (default: the config's, or 32).")] = None,
        image_size: Annotated[Optional[int], typer.Option(
            "--image-size", metavar="PX", min=8, help="Input size in pixels, with --model (resize-short and crop "
            "follow the zoo's ratio). Default: the model's.")] = None,
        out_dir: Annotated[Optional[str], typer.Option(
            "--out", metavar="DIR", help="Where confusion_matrix.json/.csv and per_class.csv go.")] = None,
        device: Annotated[Optional[str], typer.Option("--device", metavar="DEVICE", help="cpu, gpu or gpu:N.")] = None,
        json_out: JsonOpt = False,
    ):
        """Evaluate weights on a labelled list: top-1/top-5, per-class accuracy, confusion matrix.
        Example: pcls eval --recipe demo --weights output/demo/best_model"""
        from pcls.engine.evaluator import evaluate

        if config or recipe:
            if image_size is not None:
                fail("--image-size is for --model NAME; with -c/--recipe set the crop size in the config")
            cfg = resolve_config(config, recipe, override)
            if data:
                cfg["DataLoader"]["Eval"]["dataset"].update(cls_label_path=data, **({"image_root": root} if root else {}))
            else:
                from pcls.data.sources import check_list_file

                check_list_file(cfg, "Eval")  # a recipe's data not made yet: say which command makes it
            if class_num:
                cfg["Arch"]["class_num"] = class_num
            if batch_size:
                cfg["DataLoader"]["Eval"].setdefault("sampler", {})["batch_size"] = batch_size
        else:
            if not (model and data):
                fail("give -c CONFIG (or --recipe NAME), or --model NAME --weights W --data LIST --root DIR")
            cfg = None
        if cfg is not None:
            labels = labels or ((cfg.get("Infer") or {}).get("PostProcess") or {}).get("class_id_map_file")
        result = evaluate(cfg, model=model, data=data, root=root or ".", class_num=class_num, batch_size=batch_size,
                          image_size=image_size, weights=weights, device=device, out_dir=out_dir, labels_file=labels)
        if json_out:
            print_json(result)
            return
        # every metric the config's Metric.Eval gives (top-k, mAP, ATTRMetric's label_mA/instance_*, TprAtFpr's tpr)
        ks = [k for k, v in result.items() if isinstance(v, float) and k != "loss"]
        out.print(table(f"{result['model']} on {result['samples']} images", ["metric", "value"],
                        [(k, metric_text(k, result[k])) for k in ks] + [("loss", f"{result['loss']:.4f}")]))
        per_class = result["per_class"]
        worst = sorted((r for r in per_class if r["top1"] is not None), key=lambda r: r["top1"])[:10]
        out.print(table("per-class top-1 (lowest first)", ["class", "name", "images", "top1"],
                        [(r["class_id"], r["name"], r["support"], metric_text("top1", r["top1"])) for r in worst]))
        out.print(table("files", ["file", "path"], list(result["files"].items())))
