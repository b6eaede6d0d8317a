"""The one YAML reader for configs and `-o` values: safe tags only, and bounded before anything is built.

YAML aliases share nodes, so 403 bytes of nested aliases describe billions of values; nothing in the parsed
document shows it until code walks it as a tree (a merge, a message's repr) and runs out of memory. The
composed node graph is measured first (memoised, so a bomb costs what its text costs): a document that
expands beyond MAX_YAML_VALUES values, nests deeper than MAX_YAML_DEPTH, or aliases itself is refused in one
line. Duplicate keys, which YAML silently resolves to the last one, are a warning naming both lines.
"""

from __future__ import annotations

import logging

import yaml

from pcls.errors import PclsError, clip, short_repr

log = logging.getLogger(__name__)
MAX_YAML_VALUES = 100_000  # expanded values (aliases counted each time they are used); configs have < 2,000
MAX_YAML_DEPTH = 64  # nesting levels; configs nest < 10
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when libyaml is there


def load_yaml_text(text: str, source: str, measure: bool = True):
    """The Python value of one YAML document (None when empty); `source` names it in messages ("file.yaml",
    "-o Global.x=..."). Raises PclsError for invalid YAML and for a document beyond the limits above
    (`measure=False` skips that walk: for the files pcls itself ships)."""
    loader = _LOADER(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise PclsError(f"{_where(err, source)}: not valid YAML ({clip(problem)})") from None
        except RecursionError:  # the pure-Python composer recurses per level
            raise PclsError(f"{source}: YAML nested too deep (more than {MAX_YAML_DEPTH} levels)") from None
        if node is None:
            return None
        if measure:
            _measure(node, source)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as err:
            raise PclsError(f"{_where(err, source)}: {clip(getattr(err, 'problem', None) or err)}") from None
    finally:
        loader.dispose()


def _where(err, source: str) -> str:
    """`source:line` of a YAML error (just `source` when it has no position)."""
    mark = getattr(err, "problem_mark", None)
    return f"{source}:{mark.line + 1}" if mark is not None else source


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _line(node) -> str:
    mark = getattr(node, "start_mark", None)
    return f":{mark.line + 1}" if mark is not None else ""


def _measure(root, source: str) -> None:
    """Refuse a node graph that expands beyond the limits; warn about duplicate keys. Iterative and memoised:
    each distinct node is visited once however often it is aliased, and deep nesting uses no Python stack."""
    totals = {}  # id(node) -> (expanded values, depth)
    open_nodes = set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if not children_done:
            if key in totals:
                continue
            if key in open_nodes:
                raise PclsError(f"{source}{_line(node)}: a YAML alias refers to the value that contains it")
            open_nodes.add(key)
            stack.append((node, True))
            if isinstance(node, yaml.MappingNode):
                _warn_duplicate_keys(node, source)
            stack.extend((child, False) for child in _children(node) if id(child) not in totals)
            continue
        open_nodes.discard(key)
        children = [totals[id(child)] for child in _children(node)]
        values = 1 + sum(count for count, _ in children)
        depth = 1 + max((d for _, d in children), default=0)
        if values > MAX_YAML_VALUES:
            raise PclsError(f"{source}{_line(node)}: YAML aliases expand this value to more than {MAX_YAML_VALUES:,} "
                            "values (an alias bomb?); a config needs far fewer: write the values out")
        if depth > MAX_YAML_DEPTH:
            raise PclsError(f"{source}{_line(node)}: YAML nested more than {MAX_YAML_DEPTH} levels deep; "
                            "a config needs far fewer")
        totals[key] = (values, depth)


def _warn_duplicate_keys(node, source: str) -> None:
    """YAML keeps the last of two equal keys and says nothing; name both lines (merge keys `<<` excepted)."""
    seen = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        first = seen.setdefault(key_node.value, key_node)
        if first is not key_node:
            log.warning("%s%s: key %s is repeated on line %s; YAML keeps the later value", source, _line(first),
                        short_repr(key_node.value), _line(key_node).lstrip(":") or "?")
