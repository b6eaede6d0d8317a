"""Run a piece of hostile input in a fresh Python whose memory and time are bounded, so that a bomb or a hang
fails the test instead of the machine: the address space is capped with resource.setrlimit and the run is
killed after a wall-clock bound."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_capped(code: str, *args, memory_mb: int = 1024, timeout_s: float = 120, cwd=None, env=None):
    """subprocess.CompletedProcess of `python -c code *args` with at most `memory_mb` of address space;
    subprocess.TimeoutExpired (a failed test) when it runs past `timeout_s`."""
    limit = memory_mb << 20
    prelude = f"import resource\nresource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                   "PCLS_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-c", prelude + code, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout_s, cwd=cwd, env=environment)
