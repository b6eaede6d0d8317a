"""A stand-in `paddle` package on disk, laid out as Paddle's wheels are: `paddle/__init__.py` and the
`paddle/version/__init__.py` that Paddle's setup.py generates (module-level literals, then functions)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION_FILE = """# THIS FILE IS GENERATED FROM PADDLEPADDLE SETUP.PY
#
import inspect

full_version     = '{version}'
major            = '{major}'
cuda_version     = '{cuda}'
cudnn_version    = '{cudnn}'
nccl_version     = '0'
tensorrt_version = 'None'
commit           = '7688495538f4d6c1893f084dd238a402e8f68ab6'
compiled_cuda_archs     = []

def show() -> None:
    full_version = 'not a build fact'
"""


def make_paddle(folder: Path, version: str, init: str = "", cuda: str = "False", cudnn: str = "False") -> Path:
    """Write the stand-in under `folder` (put it first on PYTHONPATH); `init` is its __init__.py body."""
    package = folder / "paddle"
    (package / "version").mkdir(parents=True)
    (package / "__init__.py").write_text(f"__version__ = '{version}'\n{init}\n")
    (package / "version" / "__init__.py").write_text(
        VERSION_FILE.format(version=version, major=version.split(".")[0], cuda=cuda, cudnn=cudnn))
    return folder


def run_python(folder: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python ARGS` with the stand-in in front of the real Paddle and this worktree's pcls."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}
    env.pop("PCLS_DEBUG", None)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=folder,
                          timeout=timeout)
