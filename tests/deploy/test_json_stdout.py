"""Every deploy command with --json prints only JSON on stdout, in a real process: third-party libraries write
from C++ to file descriptor 1 (paddle2onnx's progress, Paddle's PIR notices), which an in-process runner
would not see. Also: `pcls bench` leaves no temp folder behind."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

pytest.importorskip("paddle")
pytest.importorskip("onnxruntime")

MODEL = "MobileNetV1_x0_25"


def run_json(args, env, cwd):
    done = subprocess.run([sys.executable, "-m", "pcls", *map(str, args), "--json"], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)  # fails on any stray line


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("json")
    tmp = root / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PCLS_HOME": str(root / "home"), "PCLS_OFFLINE": "1", "TMPDIR": str(tmp)}
    env.pop("PCLS_DEBUG", None)
    images = root / "images"
    images.mkdir()
    for i in range(4):
        cv2.imwrite(str(images / f"{i}.jpg"), np.full((50, 60, 3), 40 * i, np.uint8))
    exported = run_json(["export", MODEL, "--class-num", "3", "--image-size", "32", "--format", "onnx", "--out",
                         root / "m"], env, root)
    return {"root": root, "env": env, "images": images, "tmp": tmp, "export": exported}


def test_export_onnx_json(setting):
    assert "inference.onnx" in setting["export"]["files"]


def test_predict_json(setting):
    data = run_json(["predict", setting["images"], "--model", setting["root"] / "m"], setting["env"], setting["root"])
    assert len(data["results"]) == 4


def test_bench_compare_json(setting):
    data = run_json(["bench", setting["root"] / "m", "--compare", "--batch-sizes", "1", "--iters", "2", "--warmup", "1",
                     "--no-e2e"], setting["env"], setting["root"])
    assert {r["runtime"] for r in data["rows"]} == {"paddle", "onnx"}


@pytest.mark.slow
def test_bench_compare_json_on_a_zoo_name_leaves_no_temp_folder(setting):
    data = run_json(["bench", MODEL, "--compare", "--batch-sizes", "1", "--iters", "2", "--warmup", "1",
                     "--images", setting["images"]], setting["env"], setting["root"])
    assert {r["runtime"] for r in data["rows"]} == {"paddle", "onnx"}
    assert not [p for p in setting["tmp"].iterdir() if p.name.startswith("pcls-bench-")]


def test_bench_formats_json(setting):
    data = run_json(["bench", setting["root"] / "m", "--formats", "--iters", "2", "--warmup", "1", "--threads", "1",
                     "--images", setting["images"]], setting["env"], setting["root"])
    assert [(r["format"], r["precision"]) for r in data["rows"]] == [("paddle", "fp32"), ("onnx", "fp32")]
    assert not [p for p in setting["tmp"].iterdir() if p.name.startswith("pcls-bench-")]
