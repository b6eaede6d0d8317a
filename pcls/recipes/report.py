"""What a recipe run achieved against what the docs report: the end-of-run panel, `result.json` in the run
dir, and the trick tables `pcls recipes table` prints from those results."""

from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path
from typing import Optional

from pcls.utils.io import atomic_write_text
from pcls.utils.text import count, percent

RESULT_FILE = "result.json"


def hardware_label(device: str = "cpu", gpu_name: Optional[str] = None) -> str:
    if gpu_name:
        return gpu_name
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or device


def setting_deviations(cfg: dict, world_size: int, epochs_run: int) -> list:
    """How the run's setting differs from the one the documented figure assumes ([] = matched)."""
    reference = cfg.get("Reference") or {}
    deviations = []
    batch = cfg.get("DataLoader", {}).get("Train", {}).get("sampler", {}).get("batch_size")
    ref_gpus, ref_batch = reference.get("gpus"), reference.get("batch_size")
    if ref_gpus and ref_batch and batch and (world_size * batch != ref_gpus * ref_batch):
        deviations.append(f"global batch {world_size}x{batch}={world_size * batch} "
                          f"vs documented {ref_gpus}x{ref_batch}={ref_gpus * ref_batch}")
    ref_epochs = reference.get("epochs") or cfg["Global"]["epochs"]
    if epochs_run != ref_epochs:
        deviations.append(f"{count(epochs_run, 'epoch')} vs documented {ref_epochs}")
    return deviations


def write_result(run_dir, cfg: dict, *, recipe: Optional[str], metrics: dict, world_size: int, epochs_run: int,
                 device: str, gpu_name: Optional[str] = None, smoke: bool = False) -> dict:
    """Record what a run achieved (read back by `pcls recipes table`) and return the record. `metrics`: the
    run's eval metrics by key (top1, tpr, label_mA, ...); `achieved` is the one Reference.metric names."""
    reference = cfg["Reference"]
    metric = reference["metric"]
    achieved, documented = metrics.get(metric), reference.get(metric)
    record = {
        "recipe": recipe,
        "metric": metric,
        "achieved": achieved,
        "documented_value": documented,
        "top1": metrics.get("top1"),
        "top5": metrics.get("top5"),
        "documented_top1": reference.get("top1"),
        "documented_top5": reference.get("top5"),
        "documented": reference.get("documented"),
        "delta": None if achieved is None or documented is None else achieved - documented,
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "hardware": hardware_label(device, gpu_name),
        "device": device,
        "world_size": world_size,
        "epochs": epochs_run,
        "deviations": setting_deviations(cfg, world_size, epochs_run),
        "smoke": smoke,
    }
    atomic_write_text(Path(run_dir) / RESULT_FILE, json.dumps(record, indent=2) + "\n")
    return record


def metric_label(metric: str) -> str:
    """A metric key as people read it: top1 -> 'top-1'; tpr, label_mA as the eval table names them."""
    return f"top-{metric[3:]}" if metric.startswith("top") else metric


def documented_figure(record: dict) -> Optional[str]:
    """The documented figure in one format for people: the fraction as a percentage (2 decimals) when there is
    one, else the page's own text ("77.9%"); None when neither. `record`: a result record, a `recipes list`
    summary or a trick-table row (each carries `documented_value` and `documented`)."""
    if record.get("documented_value") is not None:
        return percent(record["documented_value"])
    return record.get("documented")


def report_lines(record: dict) -> list:
    """The lines every recipe run ends with (the CLI draws them in a panel): achieved vs documented in the
    recipe's metric, and whether the setting matched."""

    def pct(value):
        return percent(value) or "-"

    label = metric_label(record["metric"])
    achieved = f"{label} {pct(record.get('achieved'))}"
    # beside it: top-1 when the task's own metric is another (a binary task's accuracy), else top-5
    achieved += f"   top-5 {pct(record['top5'])}" if label == "top-1" else f"   top-1 {pct(record['top1'])}"
    lines = [f"recipe      {record.get('recipe') or '(config file)'}",
             f"achieved    {achieved}",
             f"documented  {label} {documented_figure(record) or '-'}"]
    if record.get("delta") is not None:
        lines.append(f"delta       {record['delta'] * 100:+.2f} points")
    if record.get("smoke"):
        lines.append("setting     SMOKE RUN on generated data: the accuracy means nothing, the pipeline ran")
    elif record["deviations"]:
        lines.append("setting     deviated: " + "; ".join(record["deviations"]))
    else:
        lines.append("setting     matched the documented GPUs x batch size and epochs")
    return lines


def find_results(output_root="output") -> dict:
    """recipe name -> the result record `pcls recipes table` shows, from the runs under output_root.

    Smoke runs never count. A run that matched the documented setting (no deviations) beats any that deviated
    (a 1-epoch try-out must not stand for the recipe); among equals the newest wins.
    """
    chosen: dict = {}
    root = Path(output_root)
    if not root.is_dir():
        return chosen
    for path in root.rglob(RESULT_FILE):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        name = record.get("recipe")
        if not name or record.get("smoke"):
            continue
        record["run_dir"] = str(path.parent)
        rank = (not record.get("deviations"), record.get("date", ""))
        best = chosen.get(name)
        if best is None or rank > (not best.get("deviations"), best.get("date", "")):
            chosen[name] = record
    return chosen


def trick_tables(output_root="output", group: Optional[str] = None) -> list:
    """[{group, title, rows: [{recipe, row, documented, achieved, delta, date, hardware}]}] in doc order."""
    from pcls.recipes import list_recipes
    from pcls.config import load_config

    results = find_results(output_root)
    groups: dict = {}
    for name in list_recipes():
        cfg = load_config(name, is_recipe=True, notes=False)  # a listing, not a run
        reference = cfg.get("Reference") or {}
        if not reference.get("group") or (group and reference["group"] != group):
            continue
        entry = groups.setdefault(reference["group"], {"group": reference["group"],
                                                       "title": reference.get("recipe_group_title"), "rows": []})
        result = results.get(name) or {}
        entry["rows"].append({
            "recipe": name,
            "row": reference.get("row") or name,
            "order": reference.get("order", 0),
            "metric": reference["metric"],
            "documented": reference.get("documented"),
            "documented_value": reference.get(reference["metric"]),
            "documented_top1": reference.get("top1"),
            "achieved": result.get("achieved", result.get("top1")),  # records before Reference.metric: top-1
            "achieved_top1": result.get("top1"),
            "delta": result.get("delta"),
            "deviations": result.get("deviations") or [],
            "date": result.get("date"),
            "hardware": result.get("hardware"),
        })
    tables = []
    for entry in groups.values():
        entry["rows"].sort(key=lambda r: (r["order"], r["recipe"]))
        tables.append(entry)
    return tables
