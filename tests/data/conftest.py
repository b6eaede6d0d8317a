"""Shared helpers for the data tests: a scripted RNG for golden tests, tiny generated images, and `pcls predict`
over a folder with its peak memory measured."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest


class ScriptedRng:
    """Stands in for numpy's Generator: each method returns the next scripted value for it."""

    def __init__(self, integers=(), random=(), uniform=()):
        self._integers, self._random, self._uniform = list(integers), list(random), list(uniform)

    def integers(self, low, high=None):
        value = self._integers.pop(0)
        lo, hi = (0, low) if high is None else (low, high)
        assert lo <= value < hi, f"scripted integer {value} outside [{lo}, {hi})"
        return value

    def random(self):
        return self._random.pop(0)

    def uniform(self, low, high):
        value = self._uniform.pop(0)
        assert low <= value <= high
        return value


@pytest.fixture
def jpeg_bytes():
    """Encode an HWC uint8 image (given in BGR, OpenCV's order) as PNG bytes (lossless, so values are exact)."""

    def encode(img, ext=".png"):
        ok, buf = cv2.imencode(ext, img)
        assert ok
        return buf.tobytes()

    return encode


def write_images(root, names, size=(24, 20), seed=0):
    """Small random JPEGs at root/<name>; returns their paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths


def predict_folder_peak(tmp_path, files: dict):
    """Export MobileNetV1_x0_25 (2 classes), write `files` ({name: bytes}) into a folder and run `pcls predict`
    on it in a fresh process. Returns (exit code, the --json output, the predict process's peak RSS in kB),
    measured by a fresh parent that has no other children."""
    model = tmp_path / "model"
    exported = subprocess.run([sys.executable, "-m", "pcls", "export", "MobileNetV1_x0_25", "--class-num", "2",
                               "--out", str(model)], capture_output=True, text=True, timeout=600)
    assert exported.returncode == 0, exported.stderr[-2000:]
    images = tmp_path / "images"
    images.mkdir()
    for name, data in files.items():
        (images / name).write_bytes(data)
    measure = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "sys.stderr.write(done.stdout + done.stderr)")
    run = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "pcls", "predict", str(images),
                          "--model", str(model), "--json"], capture_output=True, text=True, timeout=600)
    rc, peak_kb = map(int, run.stdout.split())
    output = json.loads(run.stderr[run.stderr.index("{"):run.stderr.rindex("}") + 1]) if "{" in run.stderr else None
    assert output is not None, run.stderr[-2000:]
    return rc, output, peak_kb
