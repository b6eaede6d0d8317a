"""`pcls bench`: model and end-to-end inference speed, and (`pcls bench data`) the data pipeline."""

import contextlib
from typing import Annotated, Optional

import typer

from pcls.cli.common import ConfigOpt, JsonOpt, OverrideOpt, RecipeOpt, console, fail, out, print_json, table


def parse_sizes(text: str):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        fail(f"--batch-sizes takes positive integers separated by commas, e.g. 1,4,8; got {text!r}")
    return sizes


@contextlib.contextmanager
def stage_status(title: str):
    """A spinner on stderr reading `title: <stage>`; yields the progress callback long library work reports its
    stages to (export, bench)."""
    with console.status(f"{title} ...") as status:
        yield lambda stage: status.update(f"{title}: {stage}")


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        target: Annotated[str, typer.Argument(help="An exported model folder, a training run folder, a zoo/backbone name, or 'data' "
                                              "(benchmark the data pipeline of -c CONFIG).")] = "./inference",
        batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="Comma-separated batch sizes.")] = "1,4,8",
        threads: Annotated[int, typer.Option("--threads", help="CPU threads for the model.")] = 2,
        device: Annotated[str, typer.Option("--device", help="cpu, gpu or gpu:N.")] = "cpu",
        trt: Annotated[bool, typer.Option("--trt", help="TensorRT engine (GPU).")] = False,
        fp16: Annotated[bool, typer.Option("--fp16", help="Half precision (GPU).")] = False,
        int8: Annotated[bool, typer.Option("--int8", help="INT8 on GPU with --trt (legacy exports; a Paddle 3 export says "
                        "to use its int8 ONNX model).")] = False,
        compare: Annotated[bool, typer.Option("--compare", help="Run Paddle Inference and ONNX Runtime.")] = False,
        weights: Annotated[Optional[str], typer.Option("--weights", help="Weights when TARGET is a name "
                           "(speed does not depend on them; default random).")] = None,
        images: Annotated[Optional[str], typer.Option("--images", help="Folder of JPEGs for the end-to-end run "
                          "(default: 500 generated 500x375 JPEGs).")] = None,
        iters: Annotated[int, typer.Option("--iters", help="Timed iterations per batch size.")] = 30,
        warmup: Annotated[int, typer.Option("--warmup", help="Untimed warm-up iterations.")] = 5,
        no_e2e: Annotated[bool, typer.Option("--no-e2e", help="Skip the end-to-end predict run.")] = False,
        formats: Annotated[bool, typer.Option("--formats", help="One table of every format/precision the export "
                           "holds (Paddle, ONNX, ONNX int8): size, ms/img at batch 1 and 8, end-to-end img/s, "
                           "top-1 on --val.")] = False,
        val: Annotated[Optional[str], typer.Option("--val", help="With --formats: labelled list for top-1.")] = None,
        root: Annotated[Optional[str], typer.Option("--root", help="Folder the --val paths are relative to.")] = None,
        config: ConfigOpt = None,
        recipe: RecipeOpt = None,
        override: OverrideOpt = None,
        as_json: JsonOpt = False,
    ):
        """Measure latency (p50/p90/p99) and throughput per batch size, model alone and end to end.

        Example: pcls bench ResNet50_vd --batch-sizes 1,4,8 --threads 2
        """
        if target == "data":
            return _bench_data(config, recipe, override, as_json)
        if fp16 and int8:
            fail("choose one of --fp16 and --int8")
        precision = "fp16" if fp16 else "int8" if int8 else "fp32"
        from pcls.deploy.gpu import parse_device, require_cuda

        if parse_device(device)[0] == "gpu" or trt or fp16:
            # before exporting or generating anything; the line names the flags to drop
            require_cuda(device, drop=[flag for flag, given in (("--trt", trt), ("--fp16", fp16), ("--int8", int8 and trt))
                                       if given])
        if formats:
            ignored = [flag for flag, given in (("--compare", compare), ("--trt", trt), ("--fp16", fp16),
                                                ("--int8", int8), ("--no-e2e", no_e2e)) if given]
            if ignored:
                fail(f"bench --formats measures every format the export holds; drop {', '.join(ignored)}")
            return _bench_formats(target, threads, weights, images, val, root, iters, warmup, as_json)
        if val or root:
            fail("--val and --root give the top-1 column of bench --formats; add --formats or drop them")
        from pcls.deploy.bench import run_bench

        with stage_status(f"bench {target}") as progress:
            result = run_bench(target, batch_sizes=parse_sizes(batch_sizes), threads=threads, device=device, trt=trt,
                               precision=precision, compare=compare, weights=weights, images=images, iters=iters,
                               warmup=warmup, end_to_end=not no_e2e, progress=progress)
        if as_json:
            print_json(result)
            return
        from pcls.deploy.spec import size_text

        f = _number
        rows = [(r["runtime"], r["batch_size"], f(r["p50_ms"], ".2f"), f(r["p90_ms"], ".2f"), f(r["p99_ms"], ".2f"),
                 f(r["images_per_s"]), f(r.get("end_to_end_images_per_s")),
                 f(None if r.get("end_to_end_fraction") is None else r["end_to_end_fraction"] * 100, ".0f"),
                 f(r.get("bare_paddle_mean_ms"), ".2f"),
                 None if r["documented_ms"] is None else f"{r['documented_ms']} ({r['documented_key']})")
                for r in result["rows"]]
        title = (f"{result['model']} {size_text(result['input_size'])}px on {result['gpu'] or result['device']}, "
                 f"{result['threads']} threads, {result['precision']}{' TensorRT' if result['trt'] else ''}")
        out.print(table(title, ["runtime", "batch", "p50 ms", "p90 ms", "p99 ms", "model img/s", "e2e img/s",
                                "e2e % of model", "bare paddle ms", "documented ms"], rows))
        _print_rejected(result)
        if compare:
            for batch, ratio in result["onnx_over_paddle_speed"].items():
                out.print(f"batch {batch}: ONNX Runtime is {ratio:.2f}x the speed of Paddle Inference")


def _number(value, spec=".1f"):
    """A table cell: the number formatted, or None (printed '-') when there is none."""
    return None if value is None else format(value, spec)


def _bench_formats(target, threads, weights, images, val, root, iters, warmup, as_json):
    from pcls.deploy.bench import run_formats
    from pcls.deploy.spec import size_text

    with stage_status(f"bench {target}") as progress:
        result = run_formats(target, threads=threads, weights=weights, images=images, val=val, root=root,
                             iters=iters, warmup=warmup, progress=progress)
    if as_json:
        print_json(result)
        return
    f = _number
    rows = [(r["format"], r["precision"], f(r["size_mb"]), f(r["ms_per_img_b1"], ".2f"), f(r["ms_per_img_b8"], ".2f"),
             f(r["end_to_end_images_per_s"]), f(r["top1"], ".2f")) for r in result["rows"]]
    out.print(table(f"{result['model']} {size_text(result['input_size'])}px, {result['threads']} threads (CPU)",
                    ["format", "precision", "size MB", "ms/img b1", "ms/img b8", "e2e img/s",
                     f"top-1 % ({result['val']})" if result["val"] else "top-1 %"], rows))
    _print_rejected(result)


def _print_rejected(result: dict) -> None:
    from pcls.deploy.bench import rejected_note

    note = rejected_note(result)
    if note:
        out.print(note)


def _bench_data(config, recipe, override, as_json):
    from pcls.cli.common import resolve_config

    cfg = resolve_config(config, recipe, override)
    try:
        from pcls.data.bench import run_data_bench
    except ImportError:
        fail("'pcls bench data' is not available in this build")
    result = run_data_bench(cfg)
    if as_json:
        print_json(result)
    else:
        print_data_bench(result)


def print_data_bench(result: dict, console=None) -> None:
    """The figures as a Rich table (stdout by default)."""
    console = console or out
    rows = []
    for r in result["sections"]:
        rows.append((
            r["section"],
            r["images"],
            r["num_workers"],
            f"{r['decode_ips_per_worker']:.0f}",
            f"{r['pipeline_ips_per_worker']:.0f}",
            f"{r['pipeline_cost_vs_decode']:.2f}x",
            f"{r['loader_ips_total']:.0f}",
            f"{r['loader_fraction_of_decode_ceiling']:.0%}",
        ))
    console.print(table(
        "data pipeline throughput (images/s)",
        ["set", "images", "workers", "decode 1w", "pipeline 1w", "cost", "loader", "of ceiling"],
        rows,
    ))
    for r in result["sections"]:
        console.print(f"{r['section']}: {' -> '.join(r['ops'])}" + (f" | batch: {', '.join(r['batch_ops'])}" if r["batch_ops"] else ""))
    console.print("images/s; 1w = one worker thread; cost = pipeline time / decode-only time (target <= 1.5x); "
                  "loader = the DataLoader with all its workers; ceiling = decode 1w x workers")
