"""Small inputs that must not exhaust memory or hang (issue #25): thin images that explode on resize, data-loader
errors and signals, non-regular and oversized files. Bombs run in a subprocess under an address-space cap;
hangs run in a subprocess with a timeout."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import cv2
import numpy as np
import pytest

from pcls.data.datasets import ListDataset
from pcls.data.decode import ImageTooLarge
from pcls.data.transforms import build_transforms

CAP_BYTES = 1536 * 1024 * 1024  # the address space a capped child may use: imports need ~0.5 GB, a bomb 3+ GB
EVAL_OPS = [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"resize_short": 256}},
            {"CropImage": {"size": 224}}, {"NormalizeImage": {}}]


def run_capped(code: str, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python whose address space is capped at CAP_BYTES (a bomb fails there, not here)."""
    prelude = ("import resource; resource.setrlimit(resource.RLIMIT_AS, "
               f"({CAP_BYTES}, {CAP_BYTES}))\n")
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def thin_png(width: int, height: int) -> bytes:
    ok, buf = cv2.imencode(".png", np.full((height, width, 3), 90, np.uint8))
    assert ok
    return buf.tobytes()


def _png(side: int) -> bytes:
    return thin_png(side, side)


# -- item 5: a thin image explodes on resize ------------------------------------------------------------------
@pytest.mark.parametrize("width, height", [(16000, 1), (1, 100000)])
def test_thin_image_is_refused_before_the_resize_allocates(tmp_path, width, height):
    (tmp_path / "thin.png").write_bytes(thin_png(width, height))
    run = run_capped(f"""
        import numpy as np
        from pcls.data.decode import ImageTooLarge
        from pcls.data.transforms import build_transforms
        pipeline = build_transforms({EVAL_OPS!r}, to_chw=True)
        try:
            pipeline({str(tmp_path / "thin.png")!r}, np.random.default_rng(0))
        except ImageTooLarge as err:
            print("refused:", err)
    """)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("refused: resizing would turn a "), run.stdout
    assert f"{width}x{height} image (aspect ratio {max(width, height):,}:1)" in run.stdout
    assert "above the limit of 89,478,485 (PCLS_MAX_IMAGE_PIXELS raises it)" in run.stdout
    assert len(run.stdout.strip().splitlines()) == 1


def test_resize_limit_follows_pcls_max_image_pixels(monkeypatch):
    pipeline = build_transforms([{"DecodeImage": {}}, {"ResizeImage": {"size": [40, 30]}}])
    assert pipeline(_png(8), np.random.default_rng(0)).shape == (30, 40, 3)
    monkeypatch.setenv("PCLS_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ImageTooLarge, match="into 40x30 = 1,200 pixels, above the limit of 1,000"):
        pipeline(_png(8), np.random.default_rng(0))


@pytest.mark.parametrize("ops", [
    [{"DecodeImage": {}}, {"Pad": {"padding": [0, 20000]}}],
    [{"DecodeImage": {}}, {"RandomRotation": {"degrees": [45, 45], "expand": True}}],
    [{"DecodeImage": {}}, {"GridMask": {}}],
])
def test_every_growing_operator_checks_its_output_size(monkeypatch, ops):
    monkeypatch.setenv("PCLS_MAX_IMAGE_PIXELS", "40000")
    with pytest.raises(ImageTooLarge, match=r"would turn a 4000x8 image \(aspect ratio 500:1\)"):
        build_transforms(ops)(thin_png(4000, 8), np.random.default_rng(0))


def test_training_loader_skips_a_thin_image_with_one_line(tmp_path, caplog):
    (tmp_path / "thin.png").write_bytes(thin_png(16000, 1))
    (tmp_path / "ok.png").write_bytes(_png(300))
    (tmp_path / "list.txt").write_text("thin.png 0\nok.png 1\n")
    dataset = ListDataset(tmp_path, tmp_path / "list.txt", build_transforms(EVAL_OPS, to_chw=True))
    with caplog.at_level("WARNING"):
        image, label, failed = dataset.load(0, np.random.default_rng(0))
    assert failed == [0] and label == 1 and image.shape == (3, 224, 224)
    lines = [r.getMessage() for r in caplog.records if "thin.png" in r.getMessage()]
    assert len(lines) == 1 and "16000x1 image" in lines[0] and "above the limit" in lines[0]
