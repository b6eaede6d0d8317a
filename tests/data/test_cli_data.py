"""`pcls data index|check|demo` through Typer's CliRunner, the demo set, and the data bench."""

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from pcls.cli import app
from pcls.data.demo import make_demo_dataset
from pcls.data.lists import stratified_split
from tests.data.conftest import write_images

runner = CliRunner()


def run(*args):
    return runner.invoke(app, ["data", *args])


@pytest.mark.parametrize("command", [[], ["flowers102"], ["index"], ["check"], ["demo"]])
def test_help(command):
    result = run(*command, "--help")
    assert result.exit_code == 0 and "Example: pcls data" in result.output


def test_demo_is_deterministic_and_reused(tmp_path):
    a = make_demo_dataset(tmp_path / "a", train_per_class=3, val_per_class=1, size=32, seed=3)
    b = make_demo_dataset(tmp_path / "b", train_per_class=3, val_per_class=1, size=32, seed=3)
    lines = a["train_list"].read_text().splitlines()
    assert len(lines) == 30 and len(a["val_list"].read_text().splitlines()) == 10
    assert sorted({int(line.rsplit(" ", 1)[1]) for line in lines}) == list(range(10))
    assert lines == b["train_list"].read_text().splitlines()
    rel = lines[7].rsplit(" ", 1)[0]
    assert (a["image_root"] / rel).read_bytes() == (b["image_root"] / rel).read_bytes()
    img = cv2.imread(str(a["image_root"] / rel))
    assert img.shape == (32, 32, 3) and img.std() > 5  # textured, not blank
    assert a["labels"].read_text().splitlines()[0] == "0 circle"
    mtime = (a["image_root"] / rel).stat().st_mtime_ns
    make_demo_dataset(tmp_path / "a", train_per_class=3, val_per_class=1, size=32, seed=3)
    assert (a["image_root"] / rel).stat().st_mtime_ns == mtime  # reused, not regenerated
    c = make_demo_dataset(tmp_path / "c", train_per_class=3, val_per_class=1, size=32, seed=4)
    assert (c["image_root"] / rel).read_bytes() != (a["image_root"] / rel).read_bytes()


def test_demo_command_json(tmp_path):
    result = run("demo", str(tmp_path), "--size", "24", "--train-per-class", "2", "--val-per-class", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["train_images"] == 20 and (tmp_path / "train_list.txt").is_file()


def test_index_with_stratified_split(tmp_path):
    names = [f"{cls}/{i}.jpg" for cls in ("cat", "dog") for i in range(10)] + ["owl/0.jpg"]
    write_images(tmp_path, names, size=(8, 8))
    result = run("index", str(tmp_path), "--val-split", "0.2", "--seed", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["classes"] == 3 and data["counts"] == {"train": 17, "val": 4}
    assert (tmp_path / "labels.txt").read_text() == "0 cat\n1 dog\n2 owl\n"
    val = (tmp_path / "val_list.txt").read_text().splitlines()
    assert sorted(line.split()[1] for line in val) == ["0", "0", "1", "1"]  # 2 per class, the single owl stays in train
    assert all(line.startswith(("cat/", "dog/")) for line in val)


def test_index_train_val_folders(tmp_path):
    write_images(tmp_path, ["train/a/1.jpg", "train/b/1.jpg", "val/b/2.jpg"], size=(8, 8))
    result = run("index", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "train_list.txt").read_text() == "train/a/1.jpg 0\ntrain/b/1.jpg 1\n"
    assert (tmp_path / "val_list.txt").read_text() == "val/b/2.jpg 1\n"


def test_stratified_split_is_seeded_and_per_class():
    labels = [0] * 10 + [1] * 20
    train, val = stratified_split(labels, 0.1, seed=0)
    assert sorted(train + val) == list(range(30))
    assert sum(labels[i] == 0 for i in val) == 1 and sum(labels[i] == 1 for i in val) == 2
    assert stratified_split(labels, 0.1, seed=0) == (train, val)
    assert stratified_split(labels, 0.1, seed=1) != (train, val)


def test_check_reports_bad_lines_with_numbers(tmp_path):
    write_images(tmp_path, ["a.jpg", "b.jpg"], size=(8, 8))
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    (tmp_path / "labels.txt").write_text("0 x\n1 y\n")
    (tmp_path / "list.txt").write_text("a.jpg 0\nb.jpg 1\nbad.jpg 0\nnope.jpg 1\nb.jpg 2\nc.jpg\n")
    result = run("check", str(tmp_path / "list.txt"), "--root", str(tmp_path), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["samples"] == 2 and data["class_num"] == 2
    assert [(p["line"], p["problem"]) for p in data["problems"]] == [
        (3, "does not decode as an image"),
        (4, "missing file"),
        (5, "label 2 >= class_num 2"),
        (6, "no label: expected 'path label'"),
    ]
    table = run("check", str(tmp_path / "list.txt"), "--root", str(tmp_path))
    assert table.exit_code == 1 and "missing file" in table.stdout and "bad lines" in table.stdout
    (tmp_path / "good.txt").write_text("a.jpg 0\nb.jpg 1\n")
    assert run("check", str(tmp_path / "good.txt"), "--root", str(tmp_path)).exit_code == 0


def test_check_missing_list_is_one_line_error(tmp_path):
    result = run("check", str(tmp_path / "nothing.txt"), "--root", str(tmp_path))
    assert result.exit_code == 2 and "not found" in result.output and "Traceback" not in result.output


def test_data_bench_reports_figures(tmp_path):
    from pcls.data.bench import imagenet_bench_config, make_bench_images, run_data_bench

    list_path = make_bench_images(tmp_path, n=8, size=(64, 48))
    cfg = imagenet_bench_config(tmp_path, list_path, num_workers=0, batch_size=4)
    result = run_data_bench(cfg, max_images=8)
    train, evaluation = result["sections"]
    assert train["section"] == "Train" and evaluation["section"] == "Eval" and train["images"] == 8
    for key in ("decode_ips_per_worker", "pipeline_ips_per_worker", "loader_ips_total"):
        assert train[key] > 0 and np.isfinite(train[key])
    assert train["pipeline_cost_vs_decode"] == pytest.approx(
        train["decode_ips_per_worker"] / train["pipeline_ips_per_worker"])
    assert train["ops"] == ["DecodeImage", "RandCropImage", "RandFlipImage", "NormalizeImage"]
