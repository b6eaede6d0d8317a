"""Built-in recipes: where they live (`pcls/_recipes` in a wheel, `<repo>/recipes` in a checkout), their
metadata, trick tables and run reports."""

from __future__ import annotations

from pathlib import Path

from pcls.errors import PclsError, did_you_mean

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def recipes_dir() -> Path:
    for candidate in (_PACKAGE_DIR / "_recipes", _PACKAGE_DIR.parent / "recipes"):
        if candidate.is_dir():
            return candidate
    raise PclsError("the built-in recipes folder is missing from this installation; reinstall pcls")


def list_recipes() -> list:
    """Public recipe names (files starting with `_` are bases other recipes inherit from)."""
    return sorted(p.stem for p in recipes_dir().glob("*.yaml") if not p.stem.startswith("_"))


def recipe_path(name: str) -> Path:
    path = recipes_dir() / f"{name}.yaml"
    if not path.is_file():
        raise PclsError(f"unknown recipe '{name}'{did_you_mean(name, list_recipes())}; see 'pcls recipes list'")
    return path


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
    }


def _model_label(arch: dict) -> str:
    if arch.get("name") != "DistillationModel":
        return arch.get("name")
    names = [next(iter(m.values()))["name"] for m in arch.get("models") or []]
    return " -> ".join(names)
