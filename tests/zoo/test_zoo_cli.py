"""`pcls zoo list | info | download | path | convert` through Typer's CliRunner, against the reference catalog
and a local file server standing in for the zoo's mirror."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from urllib.parse import urlsplit

import numpy as np
import pytest
from typer.testing import CliRunner

from pcls.cli import app
from tests.reference import REFERENCE_DIR

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["zoo", *args])


def _reference_catalog() -> list:
    """The seeds' models and the PaddleClas 2.x ones: every published ImageNet model."""
    from tests.zoo.test_catalog import CATALOG_2X

    return json.loads((REFERENCE_DIR / "zoo_catalog.json").read_text()) + json.loads(CATALOG_2X.read_text())


def test_list_shows_every_catalog_model(pcls_home):
    names = [row["name"] for row in _reference_catalog()]
    result = invoke("list")
    assert result.exit_code == 0, result.output
    listed = {line.split("│")[1].strip() for line in result.stdout.splitlines() if line.startswith("│")}
    assert listed == set(names)

    rows = json.loads(invoke("list", "--json").stdout)
    assert sorted(r["name"] for r in rows) == sorted(names)


def test_list_filters_and_sorts(pcls_home):
    reference = {r["name"]: r for r in _reference_catalog()}
    rows = json.loads(invoke("list", "ResNet50*", "--sort", "top1", "--json").stdout)
    expected = sorted((r for n, r in reference.items() if n.lower().startswith("resnet50")), key=lambda r: -r["top1"])
    assert [r["name"] for r in rows] == [r["name"] for r in expected]

    rows = json.loads(invoke("list", "--family", "mobilenetv3", "--sort", "params", "--json").stdout)
    family = [r for r in reference.values() if r["family"] == "MobileNetV3"]
    assert {r["name"] for r in rows} == {r["name"] for r in family}
    sizes = [r["params_m"] for r in rows if r["params_m"] is not None]
    assert sizes == sorted(sizes) and rows[-1]["params_m"] is None  # unknown sizes last

    result = invoke("list", "--family", "MobileNetV3s")
    assert result.exit_code == 2 and "did you mean MobileNetV3" in result.output


def _one_model_per_family() -> list:
    chosen = {}
    for row in _reference_catalog():
        if row["family"] and row["top1"] is not None:
            chosen.setdefault(row["family"], row)
    return list(chosen.values())


@pytest.mark.parametrize("row", _one_model_per_family(), ids=lambda r: r["family"])
def test_info_shows_the_metrics_of_each_family(pcls_home, row):
    data = json.loads(invoke("info", row["name"], "--json").stdout)
    for key in ("top1", "top5", "params_m", "flops_g", "input_size", "resize_short", "pretrained_url", "latency_ms"):
        assert data[key] == row[key]
    assert data["paper"]
    assert data["cache"]["present"] is False

    table = invoke("info", row["name"]).stdout
    assert f"{row['top1'] * 100:.2f}%" in table  # people read percentages; --json keeps the fraction
    if row["params_m"] is not None:
        assert f"{row['params_m']:.3f}" in table
    assert "not downloaded" in table


def test_info_shows_paddleclas_eval_preprocessing(pcls_home):
    table = " ".join(invoke("info", "CvT_13_384").stdout.split())
    assert "the whole image to 384 x 384 (aspect not kept, no crop)" in table
    assert "bicubic (pil)" in table and "ppcls/configs/ImageNet/CvT/CvT_13_384.yaml" in table
    assert "BGR" in invoke("info", "MobileViT_XXS").stdout
    assert "SSLD weights under its plain name" in " ".join(invoke("info", "PPHGNetV2_B0").stdout.split())


def test_info_unknown_name_suggests_close_names(pcls_home):
    result = invoke("info", "ResNet50vd")
    assert result.exit_code == 2
    assert "unknown model 'ResNet50vd'" in result.output and "ResNet50_vd" in result.output


def test_info_measure_puts_measured_beside_catalog_figures(pcls_home):
    row = next(r for r in _reference_catalog() if r["name"] == "ResNet18")
    result = invoke("info", "ResNet18", "--measure", "--json")
    assert result.exit_code == 0, result.output
    measured = json.loads(result.stdout)["measured"]
    assert measured["flops"] == 2 * measured["macs"]
    assert measured["params"] / 1e6 == pytest.approx(row["params_m"], rel=0.01)
    assert measured["flops"] / 1e9 == pytest.approx(row["flops_g"], rel=0.02)  # the seeds' FLOPs = 2 x MACs
    table = invoke("info", "ResNet18", "--measure").stdout
    assert "Measured MACs (G)" in table and f"{measured['macs'] / 1e9:.3f}" in table


def _serve(file_server, monkeypatch, url: str, body: bytes) -> None:
    file_server.files["/mirror" + urlsplit(url).path] = body
    monkeypatch.setenv("PCLS_ZOO_MIRROR", file_server.url("/mirror"))


def _weights_bytes(tmp_path) -> bytes:
    from pcls.utils.state_files import save_state_file

    state = {"conv.weight": np.arange(24, dtype="float32").reshape(2, 3, 2, 2), "fc.bias": np.ones(5, "float32")}
    return save_state_file(state, tmp_path / "served.pdparams").read_bytes()


def test_download_then_path_then_info(file_server, pcls_home, monkeypatch, tmp_path):
    body = _weights_bytes(tmp_path)
    row = next(r for r in _reference_catalog() if r["name"] == "ResNet50_vd_ssld")
    _serve(file_server, monkeypatch, row["pretrained_url"], body)

    result = invoke("download", "ResNet50_vd_ssld", "--json")
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    cached = pcls_home / "weights" / "ResNet50_vd_ssld.pdparams"
    assert entry == {"name": "ResNet50_vd_ssld", "path": str(cached), "size": len(body),
                     "sha256": hashlib.sha256(body).hexdigest()}
    assert cached.read_bytes() == body

    assert invoke("path", "ResNet50_vd_ssld").stdout.strip() == str(cached)
    info = json.loads(invoke("info", "ResNet50_vd_ssld", "--json").stdout)
    assert info["cache"]["present"] and info["cache"]["sha256"] == hashlib.sha256(body).hexdigest()
    listed = json.loads(invoke("list", "ResNet50_vd_ssld", "--json").stdout)
    assert [r["cached"] for r in listed if r["name"] == "ResNet50_vd_ssld"] == [True]


def test_download_into_a_folder_and_failures(file_server, pcls_home, monkeypatch, tmp_path):
    row = next(r for r in _reference_catalog() if r["name"] == "AlexNet")
    weights = _weights_bytes(tmp_path)
    _serve(file_server, monkeypatch, row["pretrained_url"], weights)
    result = invoke("download", "AlexNet", "VGG11", "--dir", str(tmp_path / "mine"))
    assert result.exit_code == 2
    assert (tmp_path / "mine" / "AlexNet.pdparams").read_bytes() == weights  # the good one is kept
    assert "1 of 2 downloads failed: VGG11" in result.output and "HTTP 404" in result.output
    assert not (tmp_path / "mine" / "VGG11.pdparams").exists()


def test_offline_download_is_a_clear_error(pcls_home, monkeypatch):
    monkeypatch.setenv("PCLS_OFFLINE", "1")
    result = invoke("download", "AlexNet")
    assert result.exit_code == 2 and "PCLS_OFFLINE=1 forbids downloading" in result.output


def test_legacy_static_archive_is_extracted_and_explained(file_server, pcls_home, monkeypatch):
    name = "MobileNetV3_large_x1_0_ssld_int8"  # the one model with only a static-graph archive
    row = next(r for r in _reference_catalog() if r["name"] == name)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(f"{name}_pretrained/conv1_weights")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"\x00\x01\x02\x03"))
    _serve(file_server, monkeypatch, row["static_tar_url"], buffer.getvalue())

    result = invoke("download", name)
    assert result.exit_code == 0, result.output
    folder = pcls_home / "static" / name
    assert (folder / f"{name}_pretrained" / "conv1_weights").read_bytes() == b"\x00\x01\x02\x03"
    assert "not loadable as a dygraph state dict" in result.stderr
    assert invoke("path", name).stdout.strip() == str(folder)


def test_convert_to_safetensors_and_back(pcls_home, tmp_path):
    pytest.importorskip("safetensors")
    from pcls.utils.state_files import load_state_file

    source = tmp_path / "w.pdparams"
    source.write_bytes(_weights_bytes(tmp_path))
    result = invoke("convert", str(source), "--to", "safetensors")
    assert result.exit_code == 0, result.output
    converted = tmp_path / "w.safetensors"
    assert result.stdout.strip() == str(converted)
    back = invoke("convert", str(converted), "--to", "pdparams", "-o", str(tmp_path / "back.pdparams"))
    assert back.exit_code == 0, back.output
    original, round_trip = load_state_file(source), load_state_file(tmp_path / "back.pdparams")
    assert set(original) == set(round_trip) and all(np.array_equal(original[k], round_trip[k]) for k in original)


def complete(words: str):
    """What bash completion offers for the last word of `words` (a fresh process, as the shell runs it), and
    whether that process imported paddle."""
    import os
    import subprocess
    import sys

    from tests.reference import REPO

    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1),
           "_PCLS_COMPLETE": "complete_bash"}
    code = ("import atexit, runpy, sys; atexit.register(lambda: sys.stderr.write("
            "'PADDLE IMPORTED' if 'paddle' in sys.modules else '')); runpy.run_module('pcls', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=120)
    return result.stdout.split(), "PADDLE IMPORTED" in result.stderr


@pytest.mark.parametrize(("words", "offered"), [
    ("pcls zoo info PPHGNetV2_B0", ["PPHGNetV2_B0", "PPHGNetV2_B0_ssld", "PPHGNetV2_B0_ssld_stage1"]),
    ("pcls zoo download ResNet50_vd ConvNeXt_t", ["ConvNeXt_tiny"]),
    ("pcls zoo list --family MobileViT", ["MobileViT", "MobileViTV2", "MobileViTV3"]),
    ("pcls zoo convert ./no-such-", []),  # nothing from the zoo: the shell falls back to file names
])
def test_completion_offers_zoo_names_without_paddle(words, offered):
    names, imported_paddle = complete(words)
    assert names == offered
    assert not imported_paddle


@pytest.mark.parametrize("args", [["convert", "w" * 300 + ".pdparams"], ["download", "AlexNet", "--dir", "d" * 300]])
def test_a_path_too_long_for_the_file_system_is_one_line(pcls_home, monkeypatch, tmp_path, args):
    """#25.12: ENAMETOOLONG (or any file-system error on a path) reaching the CLI is one line naming the path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PCLS_OFFLINE", "1")
    result = invoke(*args)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert "File name too long" in errors[0] and "characters)" in errors[0] and "Traceback" not in result.output
