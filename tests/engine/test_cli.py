"""`pcls train` / `pcls eval` through the CLI: bad input is one line and exit 2 with nothing written;
eval writes per-class accuracy and a confusion matrix; --json gives the summary."""

import json

import pytest
from typer.testing import CliRunner

from pcls.cli import app
from tests.engine.conftest import tiny_config, write_config

runner = CliRunner()


def _invoke(args):
    return runner.invoke(app, [str(a) for a in args])


def _error_lines(result):
    text = result.output  # stdout and stderr, as the user sees them
    assert "Traceback" not in text
    return [line for line in text.splitlines() if line.startswith("error:")]


def _snapshot(root):
    return sorted((str(p), p.stat().st_mtime_ns) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("case, message", [
    ("backbone", "unknown backbone 'TinyNett' (did you mean TinyNet?)"),
    ("list", "list file"),
    ("batch", "larger than the training set"),
    ("pretrained", "not found"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, colour_data, tinynet, case, message):
    raw = tiny_config(colour_data, tmp_path / "out", epochs=1)
    if case == "backbone":
        raw["Arch"]["name"] = "TinyNett"
    elif case == "list":
        raw["DataLoader"]["Train"]["dataset"]["cls_label_path"] = str(tmp_path / "missing.txt")
    elif case == "batch":
        raw["DataLoader"]["Train"]["sampler"]["batch_size"] = 1000
    else:
        raw["Global"]["pretrained_model"] = str(tmp_path / "weights/none")
    result = _invoke(["train", "-c", write_config(raw, tmp_path / "c.yaml")])
    assert result.exit_code == 2
    lines = _error_lines(result)
    assert len(lines) == 1 and message in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_corrupt_checkpoint_is_refused_and_left_alone(tmp_path, colour_data, tinynet):
    cfg = write_config(tiny_config(colour_data, tmp_path / "out", epochs=1), tmp_path / "c.yaml")
    assert _invoke(["train", "-c", cfg, "--json"]).exit_code == 0
    run = tmp_path / "out/TinyNet"
    weights = run / "latest.pdparams"
    weights.write_bytes(weights.read_bytes()[: len(weights.read_bytes()) // 2])
    before = _snapshot(tmp_path / "out")
    result = _invoke(["train", "--resume", run])
    assert result.exit_code == 2 and len(_error_lines(result)) == 1
    assert "corrupt" in result.output
    assert _snapshot(tmp_path / "out") == before


def test_train_json_and_eval_reports(tmp_path, colour_data, tinynet):
    cfg = write_config(tiny_config(colour_data, tmp_path / "out", epochs=2), tmp_path / "c.yaml")
    result = _invoke(["train", "-c", cfg, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "done" and summary["epochs_done"] == 2
    assert summary["best"]["metric"] == "val_top1"
    run = tmp_path / "out/TinyNet"
    # with the training config: the same pre-processing, so the same top-1 as the best epoch's eval
    result = _invoke(["eval", "-c", cfg, "--weights", run, "--out", tmp_path / "eval_cfg", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["top1"] == pytest.approx(summary["best"]["value"])
    # without a config: the catalog's eval pipeline for the backbone
    result = _invoke(["eval", "--model", "TinyNet", "--weights", run / "best_model", "--data", colour_data["val"],
                      "--root", colour_data["root"], "--out", tmp_path / "eval", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["samples"] == 24 and report["class_num"] == 4
    matrix = json.loads((tmp_path / "eval/confusion_matrix.json").read_text())["matrix"]
    assert sum(map(sum, matrix)) == 24 and [sum(r) for r in matrix] == [6, 6, 6, 6]
    assert (tmp_path / "eval/per_class.csv").read_text().startswith("class_id,name,support,top1")


def test_eval_needs_weights_and_data(tmp_path):
    result = _invoke(["eval", "--model", "TinyNet"])
    assert result.exit_code == 2 and len(_error_lines(result)) == 1


def test_distributed_bad_batch_is_refused_before_launching(tmp_path, colour_data, tinynet):
    raw = tiny_config(colour_data, tmp_path / "out", epochs=1)
    raw["DataLoader"]["Train"]["sampler"]["batch_size"] = 40  # 2 x 40 > 64 training images
    result = _invoke(["train", "-c", write_config(raw, tmp_path / "c.yaml"), "--nproc", 2])
    assert result.exit_code == 2 and len(_error_lines(result)) == 1
    assert "40 x 2 process(es) is larger than the training set (64 lines" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()
