"""`pcls recipes`: the built-in recipes (documented experiments) and their trick tables."""

from typing import Annotated, Optional

import typer

from pcls.cli.common import JsonOpt, OverrideOpt, complete_recipe, fail, print_json, table
from pcls.cli.zoo import print_wide
from pcls.utils.text import percent

app = typer.Typer(
    help="List the built-in recipes, show one, print the documented trick tables with achieved results.\n\n"
    "Example: pcls recipes table flowers102",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _achieved(row: dict):
    text = percent(row["achieved"])
    if text and row["deviations"]:
        text += " (deviated: " + "; ".join(row["deviations"]) + ")"
    return text


@app.command("list")
def list_(
    group: Annotated[Optional[str], typer.Option("--group", help="Only recipes of this table group.")] = None,
    as_json: JsonOpt = False,
):
    """List the built-in recipes with their documented figure and the metric it is measured in.

    Example: pcls recipes list --group flowers102
    """
    from pcls.recipes import list_recipes, recipe_summary
    from pcls.recipes.report import documented_figure, metric_label

    rows = [recipe_summary(name) for name in list_recipes()]
    if group:
        rows = [r for r in rows if r["group"] == group]
        if not rows:
            fail(f"no recipe is in group '{group}'; groups: {', '.join(sorted({r['group'] for r in map(recipe_summary, list_recipes()) if r['group']}))}")
    if as_json:
        print_json(rows)
        return
    listing = table(
        f"{len(rows)} recipes",
        ["name", "model", "dataset", "epochs", "GPUs x batch", "metric", "documented"],
        [(r["name"], r["model"], r["dataset"], r["epochs"], f"{r['gpus']}x{r['batch_size']}" if r["gpus"] else None,
          metric_label(r["metric"]) if r["metric"] else None, documented_figure(r)) for r in rows],
    )
    listing.columns[0].no_wrap = True  # a recipe name is what users copy: never cut it
    print_wide(listing)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Recipe name (see 'pcls recipes list').",
                                        autocompletion=complete_recipe)],
    override: OverrideOpt = None,
    raw: Annotated[bool, typer.Option("--raw", help="Print the recipe file as written (with _base_).")] = False,
):
    """Print what a recipe sets (its bases and -o overrides included) and the defaults that apply to it, as YAML.

    Example: pcls recipes show flowers102-finetune -o Global.epochs=5
    """
    from pcls.config import dump_config, load_config, recipe_path
    from pcls.recipes import shown_config

    if raw:
        print(recipe_path(name).read_text(), end="")
        return
    written = load_config(name, override or [], is_recipe=True, validate_schema=False)
    print(dump_config(shown_config(written, load_config(name, override or [], is_recipe=True))), end="")


@app.command("table")
def table_(
    group: Annotated[Optional[str], typer.Argument(help="One table: flowers102, augmentation, label-smoothing, "
                                                        "weight-decay, crop-scale, reference, zoo.")] = None,
    output: Annotated[str, typer.Option("--output", help="Where to look for finished runs.")] = "output",
    as_json: JsonOpt = False,
):
    """Print the documented trick tables with achieved results from runs under output/.

    Example: pcls recipes table augmentation
    """
    from pcls.recipes.report import documented_figure, metric_label, trick_tables

    tables = trick_tables(output, group)
    if not tables:
        fail(f"no recipe table named '{group}'; try one of: flowers102, augmentation, label-smoothing, "
             "weight-decay, crop-scale, reference, zoo")
    if as_json:
        print_json(tables)
        return
    for entry in tables:
        print_wide(table(
            entry["title"] or entry["group"],
            ["experiment", "recipe", "metric", "documented", "achieved", "delta", "run date", "hardware"],
            [(r["row"], r["recipe"], metric_label(r["metric"]), documented_figure(r), _achieved(r),
              None if r["delta"] is None else f"{r['delta'] * 100:+.2f}", (r["date"] or "")[:10] or None,
              r["hardware"]) for r in entry["rows"]],
        ))
