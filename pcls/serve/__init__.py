"""`pcls serve`: an exported model behind HTTP (FastAPI + uvicorn, the `serve` extra), with concurrent requests
batched into one predictor call, request limits, Prometheus metrics and a page to try it (`pcls.serve.app`)."""

import os

# Paddle's OpenMP threads spin 200 ms after each parallel region by default, taking the cores the decoding and
# HTTP threads need between model calls; a server's calls are not back to back (measured: server CPU per image
# 24 -> 13 ms at 1 client, 19 -> 15 ms at 16, PPLCNet_x1_0). A KMP_BLOCKTIME in the environment wins.
OPENMP_BLOCKTIME_MS = "0"


def set_openmp_blocktime() -> None:
    """Before paddle loads OpenMP: the server's spin time, unless the environment sets one."""
    os.environ.setdefault("KMP_BLOCKTIME", OPENMP_BLOCKTIME_MS)
