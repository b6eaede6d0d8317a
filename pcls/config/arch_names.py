"""The names `Arch.name` may take, known without importing paddle: config validation (and with it
`pcls train --print-config`) rejects an unknown backbone with a did-you-mean, while `pcls --help` and
other non-compute commands stay paddle-free.

The names come from the source of the backbone package (every function decorated `@register`), the
plugin files named by PCLS_PLUGINS (the same decorator, or `register_arch("Name")`), the model kinds
(DistillationModel) and whatever a running process registered already (a test's or a notebook's own
backbone). Reading the source instead of importing it is what keeps paddle out.
"""

from __future__ import annotations

import ast
import functools
import os
import sys
from pathlib import Path
from typing import FrozenSet, Iterable

_DECORATOR = "register"
_KIND_CALL = "register_arch"
_BUILT_IN_KINDS = ("DistillationModel",)


def _decorated_names(tree: ast.AST) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
                if name == _DECORATOR:
                    yield node.name
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name == _KIND_CALL and node.args and isinstance(node.args[0], ast.Constant):
                yield str(node.args[0].value)


@functools.lru_cache(maxsize=None)
def _names_in(path: str, mtime: float) -> FrozenSet[str]:
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return frozenset()  # the import at build time reports a broken file properly
    return frozenset(_decorated_names(tree))


def _source_files() -> list:
    arch_dir = Path(__file__).resolve().parent.parent / "arch"
    files = [p for p in sorted(arch_dir.glob("*.py")) if p.stem not in ("registry", "base", "measure")]
    files += [Path(p) for p in os.environ.get("PCLS_PLUGINS", "").split(os.pathsep) if p]
    return [p for p in files if p.is_file()]


def _registered_at_runtime() -> set:
    """Names already in the registries of this process (without triggering their discovery)."""
    names = set()
    registry = sys.modules.get("pcls.arch.registry")
    if registry is not None:
        names.update(registry.BACKBONES.registered())
    model = sys.modules.get("pcls.engine.model")
    if model is not None:
        names.update(model.MODEL_KINDS.registered())
    return names


def known_arch_names() -> set:
    """Every name `Arch.name` can take in this process."""
    names = set(_BUILT_IN_KINDS) | _registered_at_runtime()
    for path in _source_files():
        names |= _names_in(str(path), path.stat().st_mtime)
    return names
