"""Running a PCLS_PLUGINS file: its code runs in the pcls process (that is what a plugin is: trust it as you
trust the code you run), and whatever goes wrong while it loads is one line naming the file and the line."""

from __future__ import annotations

import importlib.util
import traceback
from pathlib import Path

from pcls.errors import PclsError


def run_plugin(path, module_name: str):
    """Import the Python file `path` as module `module_name`; a PclsError naming the file if it fails to load."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PclsError(f"plugin {path} (PCLS_PLUGINS) is not a Python file")
    module = importlib.util.module_from_spec(spec)
    fix = "fix it, or remove it from PCLS_PLUGINS"
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise PclsError(f"plugin {path} (PCLS_PLUGINS) has a syntax error at line {err.lineno}: {err.msg}; {fix}") \
            from None
    except SystemExit as err:
        raise PclsError(f"plugin {path} (PCLS_PLUGINS) called sys.exit({err.code!r}) while loading; a plugin "
                        f"registers models and must not end the program: {fix}") from None
    except PclsError as err:
        raise PclsError(f"plugin {path} (PCLS_PLUGINS): {err.message}") from None
    except Exception as err:  # noqa: BLE001 - anything a user's file raises is reported the same way
        line = _line_in(err, path)
        detail = str(err).splitlines()[0][:200] if str(err) else ""
        raise PclsError(f"plugin {path} (PCLS_PLUGINS) raised {type(err).__name__}{': ' + detail if detail else ''}"
                        f"{f' at line {line}' if line else ''} while loading; {fix}") from None
    return module


def _line_in(err: BaseException, path: Path):
    """The last line of `path` in `err`'s traceback (where the plugin itself failed), or None."""
    lines = [frame.lineno for frame in traceback.extract_tb(err.__traceback__) if Path(frame.filename) == path]
    return lines[-1] if lines else None
