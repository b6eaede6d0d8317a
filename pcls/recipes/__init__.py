"""Built-in recipes: where they live (`pcls/_recipes` in a wheel, `<repo>/recipes` in a checkout), their
metadata, trick tables and run reports."""

from __future__ import annotations

# where the recipe files are and their names live with the config loader that reads them
from pcls.config.recipe_files import list_recipes, recipe_path, recipes_dir  # noqa: F401


def complete_recipe_names(incomplete: str) -> list:
    """Shell completion for --recipe / a recipe argument: names read off the recipe folder (nothing loaded)."""
    return [n for n in list_recipes() if n.startswith(incomplete)]


def recipe_summary(name: str) -> dict:
    """What `pcls recipes list` shows of one recipe (no paddle). Only the sections it shows are checked and
    completed by the schema: validating all of every recipe was a fifth of the listing's time, and each
    recipe is validated whole when it runs (and by the recipe tests)."""
    from pcls.config import load_config
    from pcls.config.schema import validate_part

    cfg = load_config(name, is_recipe=True, validate_schema=False)
    reference = validate_part("Reference", cfg["Reference"]) if cfg.get("Reference") else {}
    metric = reference.get("metric")
    train = (cfg.get("DataLoader") or {}).get("Train") or {}
    return {
        "name": name,
        "model": _model_label(cfg["Arch"]),
        "dataset": reference.get("dataset"),
        "epochs": validate_part("Global", cfg.get("Global") or {})["epochs"],
        "batch_size": (train.get("sampler") or {}).get("batch_size"),
        "gpus": reference.get("gpus"),
        "group": reference.get("group"),
        "metric": metric,
        "documented_value": reference.get(metric) if metric else None,
        "documented_top1": reference.get("top1"),
        "documented": reference.get("documented"),
        "source": reference.get("source"),
        "notes": reference.get("notes"),
    }


def _model_label(arch: dict) -> str:
    if arch.get("name") != "DistillationModel":
        return arch.get("name")
    from pcls.config.members import distill_members

    def backbone(member):  # AFD's AttentionModel wraps the backbone with its connector
        return next(iter(member["models"][0].values()))["name"] if member["name"] == "AttentionModel" else member["name"]

    return " -> ".join(backbone(member) for _, member in distill_members(arch))


def shown_config(raw: dict, resolved: dict) -> dict:
    """What `pcls recipes show` prints: every value the recipe (its bases and -o overrides included) sets, plus
    the defaults the schema fills in that apply to it. Left out: null defaults (a feature left off, a key pcls
    only reads to refuse) and the parameters of optimizers, schedules, samplers and post-processes the recipe
    does not use (even when a base recipe sets them: nothing reads them)."""
    return _shown(raw, resolved, ())


def _shown(raw: dict, resolved: dict, path: tuple) -> dict:
    foreign = _foreign_parameters(path, resolved)
    shown = {}
    for key, value in resolved.items():
        if key in foreign:  # even when a base sets it: _imagenet's Momentum `momentum` under an AdamW recipe
            continue
        if key in raw:
            mine = raw[key]
            shown[key] = _shown(mine, value, path + (key,)) if isinstance(mine, dict) and isinstance(value, dict) \
                else value
        elif value is not None:
            shown[key] = _shown({}, value, path + (key,)) if isinstance(value, dict) else value
    return shown


# keys one kind of sampler / post-process reads, under the section's last name
_ONLY_FOR = {"sampler": {"divided_factor": "MultiScaleSampler"},
             "PostProcess": {"default_label_index": "ThreshOutput"}}


def _foreign_parameters(path: tuple, section: dict) -> set:
    """Keys of a section that only other components take: an Optimizer's (Optimizer.lr's) that only other
    optimizers (schedules) take, as the builders' own keyword arguments say (no paddle import)."""
    import inspect

    if path and path[-1] in _ONLY_FOR:
        return {key for key, owner in _ONLY_FOR[path[-1]].items() if section.get("name") != owner}
    if path == ("Optimizer",):
        from pcls.optim.optimizer import OPTIMIZERS as registry
    elif path == ("Optimizer", "lr"):
        from pcls.optim.lr import SCHEDULES as registry
    else:
        return set()

    def takes(name):
        return {p.name for p in inspect.signature(registry.get(name)).parameters.values()
                if p.kind is p.KEYWORD_ONLY or p.default is not p.empty}

    everyone = set().union(*(takes(name) for name in registry.names()))
    chosen = section.get("name")
    return everyone - (takes(chosen) if chosen in registry.names() else everyone)
