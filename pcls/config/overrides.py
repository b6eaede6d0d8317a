"""`-o Section.key=value` overrides: dotted path (list items by index) = a YAML value."""

from __future__ import annotations

from typing import Any, Iterable, List, Tuple

from pcls.config.safe_yaml import load_yaml_text
from pcls.errors import PclsError, short_repr


def parse_override(text: str) -> Tuple[List[str], Any]:
    """'Global.epochs=10' -> (['Global', 'epochs'], 10). The value is parsed as YAML."""
    if not isinstance(text, str) or "=" not in text:
        raise PclsError(f"bad override {short_repr(text)}: expected KEY=VALUE, e.g. -o Global.epochs=10")
    key, raw = text.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if not key or any(part.strip() == "" for part in parts):
        raise PclsError(f"bad override {short_repr(text)}: the key must be a dotted path like Global.epochs")
    try:
        value = load_yaml_text(raw, f"-o {short_repr(key)}") if raw.strip() else None
    except PclsError as err:
        raise PclsError(f"bad override {short_repr(text)}: {err.message.split(': ', 1)[-1]}; quote it if it is text"
                        ) from None
    if isinstance(value, (dict, list)) or value is None or isinstance(value, (str, int, float, bool)):
        return [p.strip() for p in parts], value
    # YAML can also produce dates and the like; keep the text as the user typed it.
    return [p.strip() for p in parts], raw


def apply_overrides(config: dict, overrides: Iterable[str]) -> dict:
    """Set each override in `config` (in place); returns config. Unknown keys are caught by validation."""
    for text in overrides:
        path, value = parse_override(text)
        _set(config, path, value, text)
    return config


def _set(node, path: List[str], value, text: str) -> None:
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        where = ".".join(path[: depth + 1])
        if isinstance(node, list):
            if not part.lstrip("-").isdigit():
                raise PclsError(f"bad override {short_repr(text)}: {'.'.join(path[:depth]) or 'the config'} is a list; "
                                f"use an index like {'.'.join(path[:depth])}.0")
            index = int(part)
            if not -len(node) <= index < len(node):
                raise PclsError(f"bad override {short_repr(text)}: index {index} is out of range for {where} "
                                f"(the list has {len(node)} items)")
            if last:
                node[index] = value
            else:
                node = node[index]
            continue
        if not isinstance(node, dict):
            raise PclsError(f"bad override {short_repr(text)}: {'.'.join(path[:depth])} is a value, not a section")
        if last:
            node[part] = value
        else:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
