"""Built-in recipes: where they live (`pcls/_recipes` in a wheel, `<repo>/recipes` in a checkout), their
metadata, trick tables and run reports."""

from __future__ import annotations

# where the recipe files are and their names live with the config loader that reads them
from pcls.config.recipe_files import list_recipes, recipe_path, recipes_dir  # noqa: F401


def complete_recipe_names(incomplete: str) -> list:
    """Shell completion for --recipe / a recipe argument: names read off the recipe folder (nothing loaded)."""
    return [n for n in list_recipes() if n.startswith(incomplete)]


def recipe_summary(name: str) -> dict:
    """What `pcls recipes list` shows of one recipe (loads and validates it; no paddle)."""
    from pcls.config import load_config

    cfg = load_config(name, is_recipe=True)
    reference = cfg.get("Reference") or {}
    train = (cfg.get("DataLoader") or {}).get("Train") or {}
    return {
        "name": name,
        "model": _model_label(cfg["Arch"]),
        "dataset": reference.get("dataset"),
        "epochs": cfg["Global"]["epochs"],
        "batch_size": (train.get("sampler") or {}).get("batch_size"),
        "gpus": reference.get("gpus"),
        "group": reference.get("group"),
        "documented_top1": reference.get("top1"),
        "documented": reference.get("documented"),
        "source": reference.get("source"),
        "notes": reference.get("notes"),
    }


def _model_label(arch: dict) -> str:
    if arch.get("name") != "DistillationModel":
        return arch.get("name")
    from pcls.config.members import distill_members

    names = [member["name"] for _, member in distill_members(arch)]
    return " -> ".join(names)
