"""`pcls export` and `pcls predict`."""

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from pcls.cli.bench import parse_sizes, stage_status
from pcls.cli.common import (
    ConfigOpt,
    JsonOpt,
    OverrideOpt,
    RecipeOpt,
    console,
    fail,
    out,
    print_json,
    progress,
    table,
)


def _batch(value: str):
    if value in ("dynamic", "None", "none", ""):
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        fail(f"--batch takes a positive integer or 'dynamic', got {value!r}")
    return number


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_(
        model: Annotated[Optional[str], typer.Argument(help="Backbone / zoo model name (or give -c CONFIG).")] = None,
        config: ConfigOpt = None,
        recipe: RecipeOpt = None,
        override: OverrideOpt = None,
        weights: Annotated[Optional[str], typer.Option("--weights", help="Weights: a .pdparams path (e.g. "
                           "output/run/best_model) or a zoo name. Default: random init (for speed tests).")] = None,
        out_dir: Annotated[Optional[str], typer.Option("--out", help="Output folder (default: the config's "
                           "Global.save_inference_dir, ./inference).")] = None,
        fmt: Annotated[str, typer.Option("--format", help="paddle or onnx (onnx also writes the Paddle model).")] = "paddle",
        batch: Annotated[str, typer.Option("--batch", help="Fixed batch size, or 'dynamic'.")] = "dynamic",
        fp16: Annotated[bool, typer.Option("--fp16", help="With --trt: a FP16 TensorRT conversion; with --format "
                        "onnx: an fp16 ONNX model. (A Paddle 3 model needs none: predict --precision fp16.)")] = False,
        image_size: Annotated[Optional[int], typer.Option("--image-size", help="Input size in pixels (resize-short "
                              "and crop keep their ratio; with -c/--recipe the config's sizes are rescaled). Default: "
                              "the model's.")] = None,
        trt: Annotated[bool, typer.Option("--trt", help="Also convert for TensorRT with paddle.tensorrt (GPU build), "
                       "into <out>/trt_<precision>/.")] = False,
        batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="TensorRT dynamic batch: min, optimum (the "
                               "middle one) and max of these.")] = "1,8,32",
        int8: Annotated[bool, typer.Option("--int8", help="Also write an int8 ONNX model (symmetric Q/DQ: ONNX Runtime "
                        "on CPU, its TensorRT provider on GPU), calibrated on --calib.")] = False,
        calib: Annotated[Optional[str], typer.Option("--calib", help="List file of a few hundred of your images "
                         "for int8 calibration.")] = None,
        root: Annotated[Optional[str], typer.Option("--root", help="Folder the --calib/--val paths are relative to "
                        "(default: the list file's folder).")] = None,
        val: Annotated[Optional[str], typer.Option("--val", help="Labelled list: report top-1 of fp32 vs int8.")] = None,
        max_drop: Annotated[float, typer.Option("--max-drop", help="Refuse an int8 model whose top-1 drops by more "
                            "than this many points on --val.")] = 1.0,
        force: Annotated[bool, typer.Option("--force", help="Write into a non-empty folder that is not a pcls "
                         "export (its files are kept; none is ever deleted).")] = False,
        class_num: Annotated[Optional[int], typer.Option("--class-num", help="Classes (default: from the weights).")] = None,
        labels: Annotated[Optional[str], typer.Option("--labels", help="Label file ('id name' or one name per line).")] = None,
        topk: Annotated[Optional[int], typer.Option("--topk", min=1, help="Default top-k written into inference.yml "
                        "(default: the config's Infer.PostProcess.topk, else 5).")] = None,
        as_json: JsonOpt = False,
    ):
        """Export a model to a Paddle inference model (or ONNX) that verifies itself against the dygraph model.

        Example: pcls export ResNet50_vd --weights output/ResNet50_vd/best_model --out inference/ --format onnx
        """
        from pcls.cli.common import resolve_config
        from pcls.deploy.export import ExportRequest, export, request_from_config
        from pcls.deploy.spec import read_label_file

        if fp16 and int8:
            fail("choose one of --fp16 and --int8")
        options = dict(fmt=fmt, batch_size=_batch(batch), fp16=fp16, force=force,
                       trt=("fp16" if fp16 else "int8" if int8 else "fp32") if trt else None,
                       trt_batch_sizes=tuple(parse_sizes(batch_sizes)), int8=int8 and not trt, calib=calib,
                       root=root, val=val, max_drop=max_drop)
        if config or recipe:
            if model:
                fail("give either a MODEL name or -c/--recipe, not both")
            cfg = resolve_config(config, recipe, override)
            request = request_from_config(cfg, out_dir or cfg["Global"]["save_inference_dir"], weights, **options)
        elif model:
            from pcls.config.schema import default_of

            out_dir = out_dir or default_of("Global.save_inference_dir")
            request = ExportRequest(model_name=model, out_dir=Path(out_dir), weights=weights, **options)
        else:
            fail("nothing to export: give a MODEL name or -c CONFIG (see 'pcls export --help')")
        if image_size is not None:
            request.input_size = image_size
            if config or recipe:
                request.image_size = image_size  # the config's crop/resize sizes are rescaled to it
        if class_num is not None:
            request.class_num = class_num
        if labels:
            request.labels = read_label_file(labels)
        if topk is not None:
            request.topk = topk
        with stage_status(f"exporting {request.model_name}") as stage:
            report = export(request, progress=stage)  # verifies itself; with --int8 also measures and may refuse
        if as_json:
            print_json(report.__dict__)
            return
        rows = [("output", report.out_dir), ("files", ", ".join(report.files))]
        rows += [(f"verified on {runtime}", f"max relative diff {diff:.2e}") for runtime, diff in report.max_relative_diff.items()]
        if report.load_report:
            rows.append(("weights", report.load_report))
        rows += [("note", note) for note in report.notes]
        out.print(table("export", ["", ""], rows))
        out.print(f"next: pcls predict IMAGES --model {report.out_dir}")

    @app.command("predict")
    def predict(
        inputs: Annotated[List[str], typer.Argument(help="Image files, folders (recursive), globs or list files.")],
        model: Annotated[str, typer.Option("--model", help="An exported model folder, a training run folder or a "
                                           "zoo name (either exported once into the cache on first use).")] = "./inference",
        topk: Annotated[Optional[int], typer.Option("--topk", min=1, help="How many classes per image.")] = None,
        batch_size: Annotated[int, typer.Option("--batch-size", help="Images per model call.")] = 8,
        runtime: Annotated[str, typer.Option("--runtime", help="auto (on CPU the runtime the export measured "
                           "faster), paddle (Paddle Inference) or onnx.")] = "auto",
        device: Annotated[str, typer.Option("--device", help="cpu, gpu or gpu:N.")] = "cpu",
        threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for the model.")] = None,
        trt: Annotated[bool, typer.Option("--trt", help="TensorRT engine (GPU).")] = False,
        precision: Annotated[Optional[str], typer.Option("--precision", help="fp32, fp16 (GPU) or int8 (GPU, or CPU "
                             "with an int8 export). Default: int8 for an int8 export on CPU, else fp32.")] = None,
        csv_path: Annotated[Optional[str], typer.Option("--csv", help="Also write the results to this CSV file.")] = None,
        as_json: JsonOpt = False,
    ):
        """Classify images with an exported model; exit code 1 when any input could not be read.

        Example: pcls predict ./imgs --model inference/ --topk 5
        """
        from pcls.deploy.gpu import parse_device, require_cuda
        from pcls.deploy.inputs import expand_inputs
        from pcls.deploy.predictor import Predictor
        from pcls.deploy.zoo_export import prepared_model_dir

        kind, _ = parse_device(device)
        if kind == "gpu" or trt:
            require_cuda(device, drop=[flag for flag, given in (("--trt", trt), ("--precision", precision)) if given])
        if csv_path:
            _check_csv_path(csv_path)  # before predicting, so a bad path never costs a whole run
        paths, skipped = expand_inputs(inputs)
        if not paths:
            fail(f"no images to predict: the {len(skipped)} file(s) found are not images (by extension), "
                 f"e.g. {skipped[0][0]}")
        if skipped:  # files in folders that are not images: counted, not failed
            console.print(f"skipped {len(skipped)} file(s) in the folders given that are not images "
                          f"(by extension), e.g. {skipped[0][0]}")
        with stage_status(f"preparing {model}") as stage:
            model_dir = prepared_model_dir(model, progress=stage)
        predictor = Predictor(model_dir, runtime=runtime, device=device, threads=threads, trt=trt,
                              precision=precision, topk=topk, batch_size=batch_size)
        results, failures = [], []
        with progress(transient=True) as bar:
            task = bar.add_task("predict", total=len(paths), rate="", info="")
            for item, outcome in predictor.predict_stream(paths):
                if isinstance(outcome, Exception):
                    failures.append({"file": str(item), "error": str(outcome).split(": ", 1)[-1]})
                else:
                    results.append({"file": str(item), **outcome})
                bar.advance(task)
        if csv_path:
            _write_csv(csv_path, results, failures, predictor.labels)
        if as_json:
            print_json({"model": str(model_dir), "results": results, "failures": failures,
                        "skipped_not_images": [f for f, _ in skipped]})
        else:
            shown = "attributes" if any("attributes" in r for r in results) else "top-k (label: score)"
            out.print(table(f"{len(results)} predicted with {model_dir}", ["file", shown],
                            [(r["file"], _result_text(r)) for r in results]))
            if failures:
                out.print(table(f"{len(failures)} not predicted", ["file", "why"],
                                [(f["file"], f["error"]) for f in failures]))
        if failures:
            raise typer.Exit(1)


def _check_csv_path(path: str) -> None:
    """--csv must name a file in an existing, writable folder; checked by creating (and removing) a temp file."""
    import tempfile

    target = Path(path)
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            fail(f"--csv {path}: {parent} is a file, not a folder; choose another path")
    if target.is_dir():
        fail(f"--csv {path} is a folder; give a file name, e.g. {target / 'predictions.csv'}")
    folder = target.parent
    if not folder.is_dir():
        fail(f"--csv {path}: folder {folder} does not exist; create it or choose another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
    except OSError as err:
        fail(f"--csv {path}: cannot write in {folder} ({err.strerror}); choose a writable path")
    import os

    os.close(fd)
    os.unlink(probe)


def _result_text(result: dict) -> str:
    """A table cell: an attribute model's decoded phrases, else each picked class with its score."""
    if "attributes" in result:
        return "; ".join(result["attributes"])
    return "; ".join(f"{label}: {score:.4f}" for label, score in zip(result["labels"], result["scores"]))


def _write_csv(path, results, failures, labels=None) -> None:
    import csv
    import io

    from pcls.deploy.postprocess import scored_classes
    from pcls.utils.io import atomic_write_text

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "rank", "class_id", "label", "score", "error"])
    for r in results:
        for rank, (cid, lab, score) in enumerate(scored_classes(r, labels), 1):
            writer.writerow([r["file"], rank, cid, lab, f"{score:.6f}", ""])
    for f in failures:
        writer.writerow([f["file"], "", "", "", "", f["error"]])
    try:
        atomic_write_text(path, buffer.getvalue())
    except OSError as err:
        fail(f"cannot write --csv {path}: {err.strerror or err}")
