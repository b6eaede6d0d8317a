"""`pcls train --model M --data DIR`: your own class folders in one command (issue #24 item 4)."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from pcls.cli import app
from pcls.data.class_folders import index_class_folders
from pcls.errors import PclsError

runner = CliRunner()
COLOURS = [(220, 40, 40), (40, 220, 40), (40, 40, 220)]


def make_tree(root: Path, per_class: int = 10, split: bool = False) -> Path:
    """Three classes of noisy single-colour JPEGs (40x48), plus a file that is not an image."""
    import cv2

    rng = np.random.default_rng(0)
    for label, colour in enumerate(COLOURS):
        for part, count in ((("train", per_class), ("val", 3)) if split else ((".", per_class),)):
            folder = root / part / f"class_{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = np.clip(rng.normal(0, 25, (40, 48, 3)) + np.array(colour), 0, 255).astype(np.uint8)
                cv2.imwrite(str(folder / f"{i}.jpg"), image)
    (root / ("train" if split else ".") / "class_0" / "notes.txt").write_text("not an image")
    return root


def test_class_folders_split_per_class_with_a_fixed_seed(tmp_path):
    tree = make_tree(tmp_path / "photos")
    first = index_class_folders(tree, val_split=0.2, seed=0)
    again = index_class_folders(tree, val_split=0.2, seed=0)
    other = index_class_folders(tree, val_split=0.2, seed=1)
    assert first.texts == again.texts and first.texts["val"] != other.texts["val"]
    assert first.classes == 3 and first.counts == {"train": 24, "val": 6}
    val_labels = [line.split()[1] for line in first.texts["val"].splitlines()]
    assert sorted(val_labels) == ["0", "0", "1", "1", "2", "2"]
    assert not list(tree.glob("*.txt")), "indexing must not write into the user's folder"


def test_train_and_val_folders_are_used_as_they_are(tmp_path):
    tree = make_tree(tmp_path / "photos", per_class=4, split=True)
    index = index_class_folders(tree, val_split=0.5)
    assert index.counts == {"train": 12, "val": 9} and index.layout == "train/ and val/"
    assert all(line.startswith("val/") for line in index.texts["val"].splitlines())


@pytest.mark.parametrize("layout, message", [
    ("one-class", "one class folder"),
    ("singletons", "nothing to validate"),
    ("missing", "no such folder"),
])
def test_a_tree_that_cannot_train_is_one_line(tmp_path, layout, message):
    root = tmp_path / "photos"
    if layout != "missing":
        for name in (["only"] if layout == "one-class" else ["a", "b"]):
            make_tree(tmp_path / "src", per_class=1)
            (root / name).mkdir(parents=True)
            (tmp_path / "src" / "class_0" / "0.jpg").rename(root / name / "0.jpg")
    with pytest.raises(PclsError, match=message):
        index_class_folders(root, val_split=0.2)


def test_train_on_class_folders_trains_evaluates_and_writes_a_rerunnable_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_tree(tmp_path / "photos")
    args = ["train", "--model", "PPLCNet_x0_25", "--data", "photos", "--no-pretrained", "--image-size", "32",
            "-o", "Global.epochs=2", "-o", "DataLoader.Train.sampler.batch_size=8", "-o", "Global.device=cpu",
            "-o", "DataLoader.Train.loader.num_workers=0", "-o", "DataLoader.Eval.loader.num_workers=0", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    run_dir = Path(summary["run_dir"])
    assert run_dir == Path("output/photos-PPLCNet_x0_25") and summary["epochs_done"] == 2
    assert 0.0 <= summary["final"]["val_top1"] <= 1.0  # evaluated on the held-out part
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2] and all("val_top1" in row for row in rows)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["Arch"] == {**config["Arch"], "name": "PPLCNet_x0_25", "class_num": 3}
    train_list = Path(config["DataLoader"]["Train"]["dataset"]["cls_label_path"])
    assert train_list.parent == run_dir and len(train_list.read_text().splitlines()) == 24
    assert (run_dir / "labels.txt").read_text().splitlines() == ["0 class_0", "1 class_1", "2 class_2"]
    ops = [next(iter(op)) for op in config["DataLoader"]["Eval"]["dataset"]["transform_ops"]]
    assert ops == ["DecodeImage", "ResizeImage", "CropImage", "NormalizeImage", "ToCHWImage"]
    printed = runner.invoke(app, ["train", "-c", str(run_dir / "config.yaml"), "--print-config"])
    assert printed.exit_code == 0, printed.output
    assert yaml.safe_load(printed.stdout)["Global"]["run_name"] == "photos-PPLCNet_x0_25"


def test_offline_pretrained_weights_are_one_line_naming_the_mirror_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PCLS_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PCLS_OFFLINE", "1")
    make_tree(tmp_path / "photos", per_class=2)
    result = runner.invoke(app, ["train", "--model", "PPLCNet_x0_25", "--data", "photos"])
    assert result.exit_code == 2
    assert "PCLS_ZOO_MIRROR" in result.output and "--no-pretrained" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "output").exists()


@pytest.mark.parametrize("args, message", [
    (["--data", "photos"], "--model is missing"),
    (["--model", "PPLCNet_x0_25", "--data", "photos", "--recipe", "demo"], "drop -c/--recipe"),
    (["--model", "PPLCNet_x0_2", "--data", "photos", "--no-pretrained"], "did you mean PPLCNet_x0_25"),
    (["--recipe", "demo", "--image-size", "32"], "--image-size is for --model/--data"),
])
def test_folder_options_that_cannot_work_are_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    make_tree(tmp_path / "photos", per_class=2)
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "output").exists()


def test_the_folder_config_names_the_run_folder_it_chose(tmp_path):
    """prepare_folder_run returns the config alone: its Global.run_name is the folder it took, the next free one
    when the wanted name holds a run, and the lists it wrote are in that folder."""
    from pcls.recipes.own_data import prepare_folder_run

    tree = make_tree(tmp_path / "photos")
    overrides = [f"Global.output_dir={tmp_path / 'out'}"]
    (tmp_path / "out" / "mine").mkdir(parents=True)
    (tmp_path / "out" / "mine" / "summary.json").write_text("{}")  # a run is there already
    cfg = prepare_folder_run("PPLCNet_x0_25", tree, pretrained=False, run_name="mine", overrides=overrides)
    assert cfg["Global"]["run_name"] == "mine-2"
    train_list = Path(cfg["DataLoader"]["Train"]["dataset"]["cls_label_path"])
    assert train_list.parent == tmp_path / "out" / "mine-2" and train_list.is_file()
