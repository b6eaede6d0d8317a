"""A tiny export (MobileNetV1_x0_25, 10 classes, 64 px, deterministic weights), images, and a served app."""

import asyncio
import base64
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

MODEL = "MobileNetV1_x0_25"
CLASSES = 10
LABELS = [f"class_{i}" for i in range(CLASSES)]
REPO = Path(__file__).resolve().parents[2]


def jpeg_bytes(seed: int, size=(90, 120)) -> bytes:
    rng = np.random.default_rng(seed)
    img = np.zeros((*size, 3), np.uint8)
    img[:] = rng.integers(0, 255, 3)
    cv2.circle(img, (int(rng.integers(20, 100)), 45), int(rng.integers(10, 40)),
               tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    return cv2.imencode(".jpg", img)[1].tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    import pcls
    from pcls.deploy.export import ExportRequest, export
    from pcls.utils.state_files import save_state_file
    from tests.reference import fill_weights

    root = tmp_path_factory.mktemp("serve")
    model = pcls.create_model(MODEL, class_num=CLASSES)
    fill_weights(model)
    weights = root / "weights.pdparams"
    save_state_file({k: v.numpy() for k, v in model.state_dict().items()}, weights)
    request = ExportRequest(model_name=MODEL, out_dir=root / "export", weights=str(weights), labels=LABELS)
    request.input_size = 64
    export(request)
    return root / "export"


@pytest.fixture(scope="session")
def reference(export_dir):
    """The library predictor on the same export: what every route must agree with."""
    from pcls.deploy.predictor import Predictor

    return Predictor(export_dir, runtime="paddle", threads=1, topk=CLASSES)


@contextlib.asynccontextmanager
async def served(export_dir, patch=None, workers=1, **settings):
    """An httpx client on the app, its lifespan run (warm-up, batching workers) as uvicorn would."""
    import httpx

    from pcls.serve.app import ServeSettings, create_app, load_predictors

    predictors = load_predictors(export_dir, workers=workers, max_batch=settings.get("max_batch", 8),
                                 runtime="paddle", threads=1)
    app = create_app(predictors, ServeSettings(**settings))
    if patch:
        patch(app.state.service)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
            yield client


def run(coroutine):
    return asyncio.run(coroutine)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server_process(export_dir, *args, startup_s: float = 120):
    """`pcls serve` in a real subprocess on a loopback port; yields (process, base_url) once /health is ready."""
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "pcls", "serve", str(export_dir), "--port", str(port),
                                "--runtime", "paddle", "--threads", "1", *args],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                raise AssertionError(f"pcls serve exited with {process.returncode}: {process.stderr.read()}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("pcls serve was not ready in time")
            time.sleep(0.2)
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
