"""What the training commands (`pcls train`, `pcls distill`) share: the run options, the config of a run
being resumed, the progress bar, and the closing report (tables, or the summary as --json)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pcls.cli.common import out, print_json, table
from pcls.utils.text import metric_text

ResumeOpt = Annotated[Optional[str], typer.Option(
    "--resume", metavar="DIR", help="Continue a run exactly where it stopped: its directory (output/<run>) or a "
    "checkpoint prefix (output/<run>/epoch_3).")]
GpusOpt = Annotated[Optional[str], typer.Option(
    "--gpus", metavar="IDS", help="Train on these GPUs, one process each (e.g. 0,1), via paddle.distributed.launch.")]


def _process_count(value: str):
    """--nproc: a whole number >= 1, or auto (a mistake is click's one 'Invalid value' line)."""
    from pcls.engine.run_config import process_count
    from pcls.errors import PclsError

    try:
        return process_count(value)
    except PclsError as err:
        raise typer.BadParameter(err.message) from None


NprocOpt = Annotated[Optional[str], typer.Option(
    "--nproc", metavar="N|auto", parser=_process_count, help="CPU processes (gloo, data parallel). Default: "
    "Global.cpu_processes, auto: the batch split over the cores when the run is long enough. N: N processes "
    "with the config's batch each; 1: one process.")]
ExistOkOpt = Annotated[bool, typer.Option(
    "--exist-ok", help="Reuse the run directory when it holds an earlier run, after removing that run's files "
    "(default: the next free name, <run>-2, <run>-3, ...).")]

# what each output of a run is, for the closing summary
_OUTPUT_MEANING = {
    "best_model": "weights with the best validation top-1 (use with pcls eval / export / predict)",
    "latest": "last checkpoint: weights + optimizer + state; continue with --resume",
    "curves": "loss, top-1 (train/val) and learning rate per epoch",
    "metrics_jsonl": "one JSON row of metrics per epoch",
    "metrics_csv": "the same rows as CSV",
    "config": "the resolved config this run used",
    "result": "achieved vs documented, in the recipe's metric (pcls recipes table)",
    "student_best_model": "the distilled student alone, a plain backbone checkpoint (pcls eval --model / export)",
    "student_latest": "the latest student weights, a plain backbone checkpoint",
}


def config_for_resume(resume: str, overrides):
    """The config saved with a run, when --resume is given without -c/--recipe."""
    from pcls.engine.run_config import resumed_config

    return resumed_config(resume, overrides)


def progress_callbacks(json_out: bool) -> list:
    """The progress bar, for every run (a launched job's rank 0 relays its progress to it), except with --json:
    stdout is data."""
    if json_out:
        return []
    from pcls.cli.progress import ProgressBar

    return [ProgressBar()]


def report_run(summary: dict, json_out: bool, title: str) -> None:
    """Print a training summary (tables, recipe panel) or the JSON; exit 130 for an interrupted run."""
    if json_out:
        print_json(summary)
    else:
        best, final = summary.get("best") or {}, summary.get("final") or {}
        rows = [("status", summary["status"]), ("run directory", summary["run_dir"]),
                ("epochs", summary["epochs_done"]), ("time", f"{summary['seconds']:.0f} s")]
        if summary.get("processes"):  # data parallel on the CPU by default: say which it was, and why not
            reason = summary.get("processes_reason")
            rows.append(("processes", f"{summary['processes']}" + (f" ({reason})" if reason else "")))
        if best.get("value") is not None:
            best_text = metric_text(best["metric"], best["value"])
            rows.append((f"best {best['metric']}", f"{best_text} (epoch {best['epoch']})"))
        for key in ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "ema_val_top1"):
            if key in final:
                rows.append((f"last {key}", metric_text(key, final[key])))
        out.print(table(title, ["", "value"], rows))
        files = [(key, path, _OUTPUT_MEANING.get(key, "")) for key, path in summary["files"].items()
                 if Path(path).exists()]
        out.print(table("outputs", ["file", "path", "what it is"], files))
        if summary.get("recipe_result"):
            from rich.panel import Panel

            from pcls.recipes.report import report_lines

            out.print(Panel("\n".join(report_lines(summary["recipe_result"])), title="achieved vs documented",
                            expand=False), soft_wrap=False)
        if summary.get("student_weights"):
            out.print(f"next: pcls export {summary.get('student_model')} --weights {summary['student_weights']}")
    if summary["status"] == "interrupted":
        raise typer.Exit(130)
