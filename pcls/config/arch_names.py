"""The names `Arch.name` may take, known without importing paddle: config validation (and with it
`pcls train --print-config`) rejects an unknown backbone with a did-you-mean, while `pcls --help` and
other non-compute commands stay paddle-free.

The names come from the source of the backbone package (every function decorated `@register`), the
plugin files named by PCLS_PLUGINS (the same decorator, or `register_arch("Name")`), the model kinds
(DistillationModel) and whatever a running process registered already (a test's or a notebook's own
backbone). Reading the source instead of importing it is what keeps paddle out.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from pathlib import Path
from typing import FrozenSet, Iterable

_DECORATOR = "register"
_KIND_CALL = "register_arch"
_BUILT_IN_KINDS = ("DistillationModel",)


# Read as text, not parsed: parsing the ~60 backbone files with `ast` was most of what `pcls recipes list` cost.
# A function or class with `@register` (or `@registry.register(...)`) among the decorator lines just above it,
# and the string argument of a `register_arch("Name")` call.
_DECORATED = re.compile(r"^[ \t]*@[\w.]*\b%s\b[^\n]*\n(?:[ \t]*@[^\n]*\n)*[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)"
                        % _DECORATOR, re.MULTILINE)
_KIND = re.compile(r"\b%s\(\s*[\"']([^\"'\n]+)[\"']" % _KIND_CALL)


def _decorated_names(text: str) -> Iterable[str]:
    yield from _DECORATED.findall(text)
    yield from _KIND.findall(text)


@functools.lru_cache(maxsize=None)
def _names_in(path: str, mtime: float) -> FrozenSet[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return frozenset()  # the import at build time reports a broken file properly
    return frozenset(_decorated_names(text))


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
