"""Where the built-in recipe files are (`pcls/_recipes` in a wheel, `<repo>/recipes` in a checkout) and
their names: what the config loader needs to resolve `--recipe NAME` and `_base_: NAME`."""

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
        raise PclsError(f"unknown recipe '{name}'{did_you_mean(name, list_recipes(), n=3)}; see 'pcls recipes list'")
    return path
