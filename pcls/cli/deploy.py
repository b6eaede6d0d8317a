"""`pcls export` and `pcls predict`."""

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from pcls.cli.common import ConfigOpt, JsonOpt, OverrideOpt, RecipeOpt, console, fail, out, print_json, table


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
        out_dir: Annotated[str, typer.Option("--out", help="Output folder.")] = "./inference",
        fmt: Annotated[str, typer.Option("--format", help="paddle or onnx (onnx also writes the Paddle model).")] = "paddle",
        batch: Annotated[str, typer.Option("--batch", help="Fixed batch size, or 'dynamic'.")] = "dynamic",
        fp16: Annotated[bool, typer.Option("--fp16", help="Half-precision weights for GPU inference.")] = False,
        class_num: Annotated[Optional[int], typer.Option("--class-num", help="Classes (default: from the weights).")] = None,
        labels: Annotated[Optional[str], typer.Option("--labels", help="Label file ('id name' or one name per line).")] = None,
        topk: Annotated[int, typer.Option("--topk", help="Default top-k written into inference.yml.")] = 5,
        as_json: JsonOpt = False,
    ):
        """Export a model to a Paddle inference model (or ONNX) that verifies itself against the dygraph model.

        Example: pcls export ResNet50_vd --weights output/ResNet50_vd/best_model --out inference/ --format onnx
        """
        from pcls.cli.common import resolve_config
        from pcls.deploy.export import ExportRequest, export, request_from_config
        from pcls.deploy.spec import read_label_file

        options = dict(fmt=fmt, batch_size=_batch(batch), fp16=fp16)
        if config or recipe:
            if model:
                fail("give either a MODEL name or -c/--recipe, not both")
            request = request_from_config(resolve_config(config, recipe, override), out_dir, weights, **options)
        elif model:
            request = ExportRequest(model_name=model, out_dir=Path(out_dir), weights=weights, **options)
        else:
            fail("nothing to export: give a MODEL name or -c CONFIG (see 'pcls export --help')")
        if class_num is not None:
            request.class_num = class_num
        if labels:
            request.labels = read_label_file(labels)
        request.topk = topk if topk != 5 else request.topk
        with console.status(f"exporting {request.model_name} ..."):
            report = export(request)
        if as_json:
            print_json(report.__dict__)
            return
        rows = [("output", report.out_dir), ("files", ", ".join(report.files))]
        rows += [(f"verified on {runtime}", f"max relative diff {diff:.2e}") for runtime, diff in report.max_abs_diff.items()]
        if report.load_report:
            rows.append(("weights", report.load_report))
        rows += [("note", note) for note in report.notes]
        out.print(table("export", ["", ""], rows))
        out.print(f"next: pcls predict IMAGES --model {report.out_dir}")

    @app.command("predict")
    def predict(
        inputs: Annotated[List[str], typer.Argument(help="Image files, folders (recursive), globs or list files.")],
        model: Annotated[str, typer.Option("--model", help="An exported model folder, or a zoo name (exported "
                                           "from its pretrained weights on first use).")] = "./inference",
        topk: Annotated[Optional[int], typer.Option("--topk", help="How many classes per image.")] = None,
        batch_size: Annotated[int, typer.Option("--batch-size", help="Images per model call.")] = 8,
        runtime: Annotated[str, typer.Option("--runtime", help="paddle (Paddle Inference) or onnx.")] = "paddle",
        device: Annotated[str, typer.Option("--device", help="cpu or gpu.")] = "cpu",
        threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for the model.")] = None,
        trt: Annotated[bool, typer.Option("--trt", help="TensorRT engine (GPU).")] = False,
        precision: Annotated[str, typer.Option("--precision", help="fp32, fp16 or int8 (GPU only).")] = "fp32",
        csv_path: Annotated[Optional[str], typer.Option("--csv", help="Also write the results to this CSV file.")] = None,
        as_json: JsonOpt = False,
    ):
        """Classify images with an exported model; exit code 1 when any input could not be read.

        Example: pcls predict ./imgs --model inference/ --topk 5
        """
        from pcls.deploy.inputs import expand_inputs
        from pcls.deploy.predictor import Predictor

        paths, skipped = expand_inputs(inputs)
        model_dir = _model_dir(model)
        predictor = Predictor(model_dir, runtime=runtime, device=device, threads=threads, trt=trt,
                              precision=precision, topk=topk, batch_size=batch_size)
        results, failures = [], [{"file": f, "error": why} for f, why in skipped]
        from pcls.cli.common import progress

        with progress(transient=True) as bar:
            task = bar.add_task("predict", total=len(paths), rate="", info="")
            for item, outcome in predictor.predict_stream(paths):
                if isinstance(outcome, Exception):
                    failures.append({"file": str(item), "error": str(outcome).split(": ", 1)[-1]})
                else:
                    results.append({"file": str(item), **outcome})
                bar.advance(task)
        if csv_path:
            _write_csv(csv_path, results, failures)
        if as_json:
            print_json({"model": str(model_dir), "results": results, "failures": failures})
        else:
            out.print(table(f"{len(results)} predicted with {model_dir}", ["file", "top-k (label: score)"], [
                (r["file"], "; ".join(f"{lab}: {s:.4f}" for lab, s in zip(r["labels"], r["scores"]))) for r in results]))
            if failures:
                out.print(table(f"{len(failures)} not predicted", ["file", "why"],
                                [(f["file"], f["error"]) for f in failures]))
        if failures:
            raise typer.Exit(1)


def _model_dir(model: str) -> Path:
    """An export folder as given, or a zoo name exported (with its pretrained weights) into the cache once."""
    from pcls.deploy.spec import SPEC_FILE, check_model_target

    path = Path(model)
    if (path / SPEC_FILE).exists():
        return path
    check_model_target(model)
    from pcls.zoo.catalog import get_entry

    entry = get_entry(model)  # a clear error with suggestions when the name is unknown
    from pcls.deploy.export import ExportRequest, export
    from pcls.zoo.cache import pcls_home

    target = pcls_home() / "inference" / entry["name"]
    if not (target / SPEC_FILE).exists():
        console.print(f"exporting zoo model {entry['name']} to {target} (once)")
        export(ExportRequest(model_name=entry["arch"], out_dir=target, weights=entry["name"]))
    return target


def _write_csv(path, results, failures) -> None:
    import csv
    import io

    from pcls.utils.io import atomic_write_text

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "rank", "class_id", "label", "score", "error"])
    for r in results:
        for rank, (cid, lab, score) in enumerate(zip(r["class_ids"], r["labels"], r["scores"]), 1):
            writer.writerow([r["file"], rank, cid, lab, f"{score:.6f}", ""])
    for f in failures:
        writer.writerow([f["file"], "", "", "", "", f["error"]])
    atomic_write_text(path, buffer.getvalue())
