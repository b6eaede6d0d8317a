"""Load a config: read YAML (anchors, aliases, comments as published), resolve `_base_` inheritance,
apply `-o` overrides, validate against the schema."""

from __future__ import annotations

import copy
import functools
import logging
import marshal
from pathlib import Path
from typing import Iterable, Optional

import yaml

from pcls.config.overrides import apply_overrides
from pcls.config.recipe_files import recipe_path, recipes_dir
from pcls.config.safe_yaml import load_yaml_text
from pcls.config.schema import validate
from pcls.errors import PclsError

log = logging.getLogger(__name__)
_MAX_BASE_DEPTH = 10


def load_yaml_file(path) -> dict:
    """Parse one YAML file into a dict, with errors that name the file and line."""
    path = Path(path)
    if not path.exists():
        raise PclsError(f"config file not found: {path}")
    if not path.is_file():
        raise PclsError(f"config path is not a file: {path}")
    if path.resolve().parent == recipes_dir().resolve():
        # a built-in recipe or base ships with pcls: parsed once per process (`recipes list` reads every recipe
        # and each one's base again), not measured against the YAML limits, and copied for the caller to change
        data, frozen = _shipped_yaml(str(path.resolve()), path.stat().st_mtime)
        # a fresh copy: marshal's round trip copies plain YAML data (dicts, lists, str, numbers) ~4x faster than
        # deepcopy; the bytes are made here from our own parse, never read from a file
        return marshal.loads(frozen) if frozen is not None else copy.deepcopy(data)
    return _parse_yaml_file(path, measure=True)


@functools.lru_cache(maxsize=None)
def _shipped_yaml(path: str, mtime: float):
    """(parsed data, its marshal bytes or None when it holds values marshal cannot copy, such as dates)."""
    data = _parse_yaml_file(Path(path), measure=False)
    try:
        return data, marshal.dumps(data)
    except ValueError:
        return data, None


def _parse_yaml_file(path: Path, measure: bool) -> dict:
    try:
        data = load_yaml_text(path.read_text(encoding="utf-8"), str(path), measure=measure)
    except UnicodeDecodeError:
        raise PclsError(f"{path}: not a text file (expected a YAML config)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PclsError(f"{path}: a config must be a mapping of sections (Global, Arch, ...), "
                        f"got {type(data).__name__}")
    return data


def _resolve_base(reference: str, current: Path) -> Path:
    if reference.endswith((".yaml", ".yml")) or "/" in reference:
        path = (current.parent / reference).resolve()
        if not path.exists():
            raise PclsError(f"{current}: _base_ file not found: {reference}")
        return path
    return recipe_path(reference)


def _merge_into(base: dict, child: dict) -> dict:
    """Deep-merge child into base, in place: mappings merge key by key; anything else replaces. Both are the
    caller's own freshly loaded data, so nothing is copied (copying every level again was most of what
    `pcls recipes list` spent on its 109 recipes' bases)."""
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge_into(base[key], value)
        else:
            base[key] = value
    return base


def _load_with_bases(path: Path, chain: tuple = ()) -> dict:
    path = path.resolve()
    if path in chain:
        raise PclsError(f"{path}: _base_ inheritance loops back to itself")
    if len(chain) > _MAX_BASE_DEPTH:
        raise PclsError(f"{path}: _base_ inheritance is nested more than {_MAX_BASE_DEPTH} deep")
    data = load_yaml_file(path)
    bases = data.pop("_base_", None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise PclsError(f"{path}: _base_ must be a recipe name or file path (or a list of them)")
    merged: dict = {}
    for base in bases:  # every _load_with_bases result is a fresh dict (load_yaml_file copies a shipped file)
        _merge_into(merged, _load_with_bases(_resolve_base(base, path), chain + (path,)))
    return _merge_into(merged, data)


def load_config(source, overrides: Iterable[str] = (), is_recipe: bool = False, validate_schema: bool = True,
                notes: bool = True) -> dict:
    """Load a config file (or a built-in recipe when `is_recipe`), apply overrides, validate.

    Returns a plain nested dict with every schema default filled; `cfg["_source"]` says where it came from.
    `notes`: log the schema's notes on keys other tools read (off for a listing: it is not a run).
    """
    path = recipe_path(source) if is_recipe else Path(source)
    raw = _load_with_bases(path)
    apply_overrides(raw, list(overrides))
    config = validate(raw, notes=notes) if validate_schema else raw
    config["_source"] = str(path)
    glob = config.get("Global")
    if isinstance(glob, dict) and glob.get("use_dali"):  # unvalidated (recipes show): Global may be anything
        log.warning("%s: Global.use_dali: DALI is not part of pcls; images are decoded by pcls's own loader "
                    "(OpenCV), with the same operators", path)
    return config


def dump_config(config: dict) -> str:
    """The resolved config as YAML (what --print-config shows)."""
    printable = {k: v for k, v in config.items() if not k.startswith("_")}
    return yaml.safe_dump(printable, sort_keys=False, default_flow_style=None, allow_unicode=True)


def is_builtin_recipe(path: Optional[str]) -> bool:
    try:
        return path is not None and Path(path).resolve().parent == recipes_dir().resolve()
    except PclsError:
        return False
