"""`import pcls` in Python hides the warnings nobody can act on, as the CLI does (issue #24 item 8)."""

import os
import subprocess
import sys

from tests.reference import REPO


def _stderr_of(code: str, **env) -> str:
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    environ.pop("PCLS_DEBUG", None)
    environ.update(env)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_import_pcls_then_paddle_prints_no_ccache_warning():
    assert "ccache" in _stderr_of("import paddle")  # the warning is real: this test can fail
    assert "ccache" not in _stderr_of("import pcls, paddle")
