"""The cache root, the zoo mirror rewrite, the manifest and the offline switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcls.errors import PclsError
from pcls.zoo import cache


def test_pcls_home_defaults_to_the_user_cache(monkeypatch):
    monkeypatch.delenv("PCLS_HOME", raising=False)
    assert cache.pcls_home() == Path.home() / ".cache" / "pcls"
    monkeypatch.setenv("PCLS_HOME", "/data/pcls")
    assert cache.weights_path("ResNet50") == Path("/data/pcls/weights/ResNet50.pdparams")
    assert cache.static_dir("AlexNet") == Path("/data/pcls/static/AlexNet")


def test_mirror_replaces_scheme_and_host(monkeypatch):
    url = "https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/ResNet50_pretrained.pdparams"
    monkeypatch.delenv("PCLS_ZOO_MIRROR", raising=False)
    assert cache.mirrored(url) == url
    monkeypatch.setenv("PCLS_ZOO_MIRROR", "http://127.0.0.1:8080/zoo/")
    assert cache.mirrored(url) == "http://127.0.0.1:8080/zoo/dygraph/ResNet50_pretrained.pdparams"
    monkeypatch.setenv("PCLS_ZOO_MIRROR", "mirror.local/zoo")
    with pytest.raises(PclsError, match="PCLS_ZOO_MIRROR='mirror.local/zoo' is not a URL"):
        cache.mirrored(url)


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_offline_switch(monkeypatch, value, expected):
    monkeypatch.setenv("PCLS_OFFLINE", value)
    assert cache.offline() is expected


def test_a_file_without_a_record_is_recorded_on_first_use_then_verified(tmp_path):
    weights = tmp_path / "copied.pdparams"
    weights.write_bytes(b"abc")
    record = cache.verify_cached(weights)
    assert record["size"] == 3
    assert record["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    weights.write_bytes(b"abd")
    with pytest.raises(PclsError, match="changed since it was downloaded"):
        cache.verify_cached(weights)


def test_unreadable_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(PclsError, match="manifest .* is unreadable"):
        cache.read_record(tmp_path / "x.pdparams")


@pytest.mark.parametrize("manifest, problem", [
    ("[]", "it holds a list"),
    ('{"AlexNet.pdparams": "x"}', "is a str, not an object"),
    ('{"AlexNet.pdparams": {"size": "5", "sha256": "ab"}}', "has size '5', not an integer"),
    ('{"AlexNet.pdparams": {"size": 5, "sha256": 7}}', "has sha256 '7', not a string"),
    ('{"AlexNet.pdparams": {"size": true, "sha256": "ab"}}', "has size 'True', not an integer"),
    ('{"AlexNet.pdparams": {"sha256": "ab"}}', "has no size"),
])
def test_a_manifest_with_wrong_types_is_one_line(tmp_path, monkeypatch, manifest, problem):
    """#25.12: `zoo info`, `zoo download` and every cached use read the manifest; wrong types are one line."""
    from typer.testing import CliRunner

    from pcls.cli import app

    monkeypatch.setenv("PCLS_HOME", str(tmp_path))
    monkeypatch.setenv("PCLS_OFFLINE", "1")
    weights = cache.weights_path("AlexNet")
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"12345")
    (weights.parent / "manifest.json").write_text(manifest)
    with pytest.raises(PclsError, match=f"manifest .* is malformed: .*{problem}"):
        cache.verify_cached(weights)
    for command in (["zoo", "info", "AlexNet"], ["zoo", "download", "AlexNet"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2 and "is malformed" in result.output, result.output
        assert result.output.count("error:") == 1 and "Traceback" not in result.output
