"""Package layering (#26): config imports neither engine nor distillation, and engine does not import
distillation (which registers itself as a model kind), so there is no package-level cycle among the three.
Lazy (function-level) imports count too."""

import ast
from pathlib import Path

import pcls

PACKAGE = Path(pcls.__file__).parent
WATCHED = ("config", "engine", "distill")


def _package_imports() -> dict:
    edges = {name: set() for name in WATCHED}
    for name in WATCHED:
        for path in (PACKAGE / name).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                modules = []
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules = [node.module]
                for module in modules:
                    parts = module.split(".")
                    if parts[0] == "pcls" and len(parts) > 1 and parts[1] in WATCHED and parts[1] != name:
                        edges[name].add(parts[1])
    return edges


def test_no_package_cycle_between_config_engine_and_distill():
    edges = _package_imports()
    assert edges["config"] == set(), edges
    assert "distill" not in edges["engine"], edges
    assert edges["distill"] <= {"config", "engine"}


def test_the_layering_check_sees_lazy_imports():
    edges = _package_imports()
    assert "engine" in edges["distill"]  # kind.py and strategy.py import the engine, at module and function level
