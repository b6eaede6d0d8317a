"""What `pcls train` and `pcls eval` do is a Python call too (#26): evaluate(model=, data=), train(recipe=,
smoke=True), train(resume=RUN) with the run's own config; and training leaves the caller's warning filters
as they were."""

import warnings
from pathlib import Path

from pcls.config import load_config
from tests.engine.conftest import tiny_config, write_config


def test_evaluate_a_model_on_a_list_without_a_config(tmp_path, colour_data, tinynet):
    import pcls

    cfg = load_config(str(write_config(tiny_config(colour_data, tmp_path / "out", epochs=1), tmp_path / "c.yaml")))
    filters = list(warnings.filters)
    summary = pcls.train(cfg)
    assert warnings.filters == filters  # the BatchNorm notice is silenced only while training
    result = pcls.evaluate(model="TinyNet", data=colour_data["val"], root=colour_data["root"], image_size=16,
                           weights=summary["run_dir"], out_dir=tmp_path / "eval")
    assert result["class_num"] == 4 and result["samples"] == 24  # 4 classes from the list, 6 images each
    assert Path(result["files"]["confusion_json"]).is_file()
    # the same numbers as the run's own evaluation of its best weights (same preprocessing at 16 px)
    assert abs(result["top1"] - summary["best"]["value"]) < 1e-6


def test_train_resumes_a_run_from_its_directory_alone(tmp_path, colour_data, tinynet):
    import pcls

    cfg = load_config(str(write_config(tiny_config(colour_data, tmp_path / "out", epochs=1), tmp_path / "c.yaml")))
    first = pcls.train(cfg)
    again = pcls.train(resume=first["run_dir"])  # config.yaml of the run: nothing left to train
    assert again["run_dir"] == first["run_dir"] and again["epochs_done"] == 1


def test_train_a_recipe_smoke_run_from_python(tmp_path, monkeypatch):
    import pcls

    monkeypatch.chdir(tmp_path)  # the demo recipe writes under ./output
    summary = pcls.train(recipe="demo", smoke=True)
    assert summary["status"] == "done"
    assert Path(summary["run_dir"]).parts[-2:] == ("smoke", "demo")  # named after the recipe, beside real runs
    assert summary["recipe_result"]["smoke"] is True and summary["recipe_result"]["recipe"] == "demo"
