"""Paddle 2.x installed by mistake (`pip install paddlepaddle-gpu` from the public index stops at 2.6.2) must give one
clear line, not an AttributeError deep inside a command.

pcls has no single `import paddle`: some ninety modules import it at their top, and which one comes first depends
on the command. So `pcls/__init__.py` installs this import hook once; the first `import paddle` in the process
(whoever makes it) reads the version from `paddle/version/__init__.py` -- a file Paddle's setup.py generates, read
as text so a 2.x Paddle's own import code never runs -- and raises `PaddleTooOld` (a `PclsError` the CLI prints as
one line, and an `ImportError` for code that guards its imports) before executing Paddle. The hook then removes
itself: every later import costs nothing.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from pcls.errors import PclsError

MIN_MAJOR = 3
INSTALL_HINT = ("install Paddle 3: pip install 'paddlepaddle>=3.0' (CPU), or a GPU build from PaddlePaddle's own "
                "index (PyPI's paddlepaddle-gpu stops at 2.6), see README 'GPU'; then run 'pcls doctor'")
MISSING_MESSAGE = f"PaddlePaddle is not installed ('pcls[gpu]' does not bring it); {INSTALL_HINT}"
_ASSIGNMENT = re.compile(r"^(\w+)\s*=\s*(.+?)\s*$", re.MULTILINE)


class PaddleTooOld(PclsError, ImportError):
    """The Paddle about to be imported is older than 3.0."""


def read_version_file(package_dir) -> dict:
    """The module-level constants of `<paddle>/version/__init__.py` (full_version, cuda_version, cudnn_version,
    nccl_version, tensorrt_version, compiled_cuda_archs, ...), parsed as literals; {} when the file is unreadable."""
    import ast  # only when Paddle is imported: `import pcls` imports this module
    try:
        text = (Path(package_dir) / "version" / "__init__.py").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    fields = {}
    for name, value in _ASSIGNMENT.findall(text):
        try:
            fields[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):  # expressions (functions, imports) are not build facts
            continue
    return fields


def too_old_message(version: str) -> str | None:
    """The one line for a Paddle version pcls cannot use, or None. Development builds ("0.0.0") pass."""
    match = re.match(r"(\d+)", str(version))
    if match is None or int(match.group(1)) == 0 or int(match.group(1)) >= MIN_MAJOR:
        return None
    return f"pcls needs PaddlePaddle >= {MIN_MAJOR}.0 but {version} is installed; {INSTALL_HINT}"


# The two classes below follow the finder/loader protocols without subclassing `importlib.abc`: importing that
# (it pulls in importlib.resources, tempfile, ...) would cost ~12 ms on every `import pcls` and `pcls --help`.
class _CheckedLoader:
    """Paddle's own loader, with the version check run before Paddle's code."""

    def __init__(self, loader, package_dir: Path, guard: "_PaddleImportGuard"):
        self._loader = loader
        self._package_dir = package_dir
        self._guard = guard

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        version = read_version_file(self._package_dir).get("full_version")
        message = too_old_message(version) if version else None
        if message:
            raise PaddleTooOld(message)
        # Paddle sees its own loader, as without the hook
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        if not version:  # no generated version file (an unusual build): the imported module says it
            message = too_old_message(getattr(module, "__version__", "") or "")
            if message:
                raise PaddleTooOld(message)
        self._guard.remove()


class _PaddleImportGuard:
    def find_spec(self, name, path=None, target=None):
        if name != "paddle":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None  # not installed: Python's own ModuleNotFoundError
        if spec.loader is None or not spec.submodule_search_locations:
            return spec
        spec.loader = _CheckedLoader(spec.loader, Path(list(spec.submodule_search_locations)[0]), self)
        return spec

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def install() -> None:
    """Put the guard in front of the import system (once); a Paddle imported before pcls is checked at once."""
    loaded = sys.modules.get("paddle")
    if loaded is not None:
        message = too_old_message(getattr(loaded, "__version__", "") or "")
        if message:
            raise PaddleTooOld(message)
        return
    if not any(isinstance(finder, _PaddleImportGuard) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PaddleImportGuard())
