"""Data files that must never kill a run or a machine: decompression bombs are refused from their header
(loader, data check, predict), list and labels files that are not UTF-8 are one line naming file and line,
and list paths that leave the image root are warnings with file:line."""

import json
import struct
import zlib

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from pcls.cli import app
from pcls.data.datasets import ListDataset, read_list_file
from pcls.data.decode import DEFAULT_MAX_IMAGE_PIXELS, ImageTooLarge, decode_image, header_size
from pcls.data.transforms import build_transforms
from pcls.errors import PclsError
from tests.data.conftest import predict_folder_peak

runner = CliRunner()
BOMB_SIDE = 30000  # 900 M pixels: 2.7 GB once decoded to BGR


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = BOMB_SIDE, height: int = BOMB_SIDE, complete: bool = False) -> bytes:
    """A grayscale PNG declaring width x height. complete=True makes its pixel data real (all zeros, < 1 MB):
    the same compressed block of 1000 zero rows repeated, so building it needs no 900 MB buffer."""
    header = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    if not complete:
        return header + _chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1))) + _chunk(b"IEND", b"")
    row = b"\x00" * (width + 1)
    blocks, rest = divmod(height, 1000)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: blocks can be concatenated after a full flush
    block = deflate.compress(row * 1000) + deflate.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = last.compress(row * rest) + last.flush()
    checksum = 1
    for _ in range(height):
        checksum = zlib.adler32(row, checksum)
    stream = b"\x78\xda" + block * blocks + tail + struct.pack(">I", checksum)
    return header + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


def _png(side: int) -> bytes:
    ok, buf = cv2.imencode(".png", np.full((side, side, 3), 90, np.uint8))
    assert ok
    return buf.tobytes()


# -- decompression bombs ------------------------------------------------------------------------------------
def test_bomb_is_refused_from_its_header_without_decoding(monkeypatch):
    def no_decode(*args, **kwargs):
        raise AssertionError("cv2.imdecode called on an image above the pixel limit")

    monkeypatch.setattr(cv2, "imdecode", no_decode)
    decode = build_transforms([{"DecodeImage": {"to_rgb": True}}])
    with pytest.raises(ImageTooLarge) as err:
        decode(png_bomb(), np.random.default_rng(0))
    assert "30000x30000" in str(err.value) and f"{DEFAULT_MAX_IMAGE_PIXELS:,}" in str(err.value)
    assert "PCLS_MAX_IMAGE_PIXELS" in str(err.value)


def test_the_limit_follows_pcls_max_image_pixels(monkeypatch):
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    monkeypatch.setenv("PCLS_MAX_IMAGE_PIXELS", "100")
    assert decode_image(_png(10)).shape == (10, 10, 3)
    with pytest.raises(ImageTooLarge, match="11x11 = 121 pixels is above the limit of 100"):
        decode_image(_png(11))
    monkeypatch.setenv("PCLS_MAX_IMAGE_PIXELS", "2_000_000_000")  # above Pillow's own refusal threshold
    assert header_size(png_bomb(), 2_000_000_000) == (BOMB_SIDE, BOMB_SIDE)
    monkeypatch.setenv("PCLS_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(PclsError, match="PCLS_MAX_IMAGE_PIXELS must be a positive number of pixels, got 'lots'"):
        decode_image(_png(10))


def test_training_loader_skips_and_counts_a_bomb(tmp_path, caplog):
    (tmp_path / "bomb.png").write_bytes(png_bomb())
    (tmp_path / "ok.png").write_bytes(_png(8))
    (tmp_path / "list.txt").write_text("bomb.png 0\nok.png 1\n")
    dataset = ListDataset(tmp_path, tmp_path / "list.txt", build_transforms([{"DecodeImage": {}}]))
    with caplog.at_level("WARNING"):
        image, label, failed = dataset.load(0, np.random.default_rng(0))
    assert failed and set(failed) == {0} and label == 1 and image.shape == (8, 8, 3)
    assert "bomb.png: 30000x30000" in caplog.text  # the reason, per file


def test_data_check_reports_a_bomb_per_file(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_bomb())
    (tmp_path / "ok.png").write_bytes(_png(8))
    (tmp_path / "list.txt").write_text("ok.png 0\nbomb.png 1\n")
    result = runner.invoke(app, ["data", "check", str(tmp_path / "list.txt"), "--root", str(tmp_path), "--json"])
    assert result.exit_code == 1, result.output
    problems = json.loads(result.stdout)["problems"]
    assert [(p["line"], p["path"]) for p in problems] == [(2, "bomb.png")]
    assert "30000x30000" in problems[0]["problem"] and "above the limit" in problems[0]["problem"]


@pytest.mark.slow  # an export and a predict in fresh processes
def test_predict_over_a_folder_with_a_bomb_stays_under_2_gb(tmp_path):
    rc, output, peak_kb = predict_folder_peak(tmp_path, {"bomb.png": png_bomb(complete=True), "ok.png": _png(64)})
    assert rc == 1, output  # one input failed
    assert [f["file"].rsplit("/", 1)[-1] for f in output["failures"]] == ["bomb.png"]
    assert "above the limit" in output["failures"][0]["error"] and len(output["results"]) == 1
    assert peak_kb < 2 * 1024 * 1024, f"predict peaked at {peak_kb / 1024:.0f} MB"


# -- list and labels files ----------------------------------------------------------------------------------
def test_non_utf8_list_file_names_file_line_and_encoding(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes("a.jpg 0\nb\u00e9.jpg 1\n".encode("latin-1"))
    with pytest.raises(PclsError, match=r"list.txt:2: byte 0xe9 at column 2 is not UTF-8; a list file must be UTF-8"):
        read_list_file(path)
    result = runner.invoke(app, ["data", "check", str(path), "--root", str(tmp_path)])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "list.txt:2" in errors[0], result.output


def test_non_utf8_labels_file_names_file_and_line(tmp_path):
    (tmp_path / "a.png").write_bytes(_png(8))
    (tmp_path / "list.txt").write_text("a.png 0\n")
    (tmp_path / "labels.txt").write_bytes("0 cat\n1 \u00e7hat\n".encode("cp1252"))
    result = runner.invoke(app, ["data", "check", str(tmp_path / "list.txt"), "--root", str(tmp_path)])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert "labels.txt:2" in errors[0] and "labels file must be UTF-8" in errors[0]


def test_data_check_warns_about_paths_outside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ok.png").write_bytes(_png(8))
    (tmp_path / "outside.png").write_bytes(_png(8))
    lines = ["sub/ok.png 0", "../outside.png 0", f"{tmp_path / 'outside.png'} 1", "sub/../sub/ok.png 1"]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["data", "check", str(tmp_path / "list.txt"), "--root", str(root), "--json"])
    assert result.exit_code == 0, result.output  # warnings, not errors: the files exist and decode
    warnings = json.loads(result.stdout)["warnings"]
    assert [w["line"] for w in warnings] == [2, 3]
    assert "leaves the image root" in warnings[0]["warning"] and "absolute path" in warnings[1]["warning"]
    assert f"list.txt:2: ../outside.png: path leaves the image root" in result.stderr
