"""End-to-end training of TinyNet on a generated colour dataset, fine-tuning across class counts, AMP setup."""

import json

import numpy as np
import pytest

from pcls.config import load_config
from pcls.errors import PclsError
from tests.engine.conftest import tiny_config, write_config


def test_training_learns_and_leaves_every_output(tmp_path, colour_data, tinynet):
    from pcls.engine.trainer import train

    cfg = load_config(str(write_config(tiny_config(colour_data, tmp_path / "out", epochs=4), tmp_path / "c.yaml")))
    summary = train(cfg, log=lambda msg: None)
    history = summary["final"], [json.loads(x) for x in (tmp_path / "out/TinyNet/metrics.jsonl").read_text().splitlines()]
    rows = history[1]
    assert summary["status"] == "done" and len(rows) == 4
    assert rows[-1]["train_loss"] < 0.6 * rows[0]["train_loss"]
    assert rows[-1]["val_top1"] >= 0.75  # chance is 0.25
    run = tmp_path / "out/TinyNet"
    for name in ("latest.pdparams", "latest.pdopt", "latest.json", "best_model.pdparams", "epoch_4.pdparams",
                 "metrics.csv", "config.yaml", "curves.png", "summary.json"):
        assert (run / name).is_file(), name
    assert not list(run.glob(".*.tmp"))
    state = json.loads((run / "latest.json").read_text())
    assert state["epoch"] == 4 and state["global_step"] == 4 * 8 and state["config"]["Arch"]["name"] == "TinyNet"


def test_ema_and_grad_accumulation_run(tmp_path, colour_data, tinynet):
    from pcls.engine.trainer import train

    raw = tiny_config(colour_data, tmp_path / "out", epochs=1, update_freq=2, use_visualdl=True)
    raw["EMA"] = {"decay": 0.9}
    cfg = load_config(str(write_config(raw, tmp_path / "c.yaml")))
    lines = []
    summary = train(cfg, log=lines.append)
    try:
        import visualdl  # noqa: F401

        assert (tmp_path / "out/TinyNet/vdl").is_dir()
    except ImportError:
        assert any("visualdl is not installed" in line for line in lines)
    assert "ema_val_top1" in summary["final"]
    run = tmp_path / "out/TinyNet"
    assert (run / "latest_ema.pdparams").is_file() and (run / "best_model_ema.pdparams").is_file()
    assert json.loads((run / "latest.json").read_text())["global_step"] == 4  # 8 batches / update_freq 2


def test_finetune_loads_1000_class_weights_into_5_classes(tmp_path, tinynet):
    import pcls
    from pcls.engine.model import build_model
    from pcls.utils.state_files import save_state_file

    source = pcls.create_model("TinyNet", class_num=1000)
    save_state_file(source.state_dict(), tmp_path / "imagenet.pdparams")
    lines = []
    model = build_model({"name": "TinyNet", "class_num": 5}, {"pretrained_model": str(tmp_path / "imagenet")},
                        log=lines.append)
    assert model.fc.weight.shape == [16, 5]
    np.testing.assert_array_equal(model.stem.weight.numpy(), source.stem.weight.numpy())
    assert any("loaded 4/6 tensors" in line for line in lines)
    assert any("fc.weight, fc.bias: class_num 1000 -> 5" in line for line in lines)


def test_missing_pretrained_path_fails_before_building(tmp_path, tinynet):
    from pcls.engine.model import check_weights_source

    with pytest.raises(PclsError, match="not found"):
        check_weights_source(str(tmp_path / "nope/weights"))


def test_scale_lr_applies_the_linear_rule_only_when_asked(tmp_path, colour_data, tinynet):
    from pcls.engine.trainer import train

    raw = tiny_config(colour_data, tmp_path / "out", epochs=1)
    raw["Optimizer"]["lr"] = {"name": "Constant", "learning_rate": 0.05}
    cfg = load_config(str(write_config(raw, tmp_path / "c.yaml")))
    lines = []
    plain = train(cfg, run_name="plain", log=lines.append)
    scaled = train(cfg, run_name="scaled", scale_lr=True, ref_batch=32, log=lines.append)
    assert plain["final"]["lr"] == pytest.approx(0.05)
    assert scaled["final"]["lr"] == pytest.approx(0.05 * 8 / 32)  # global batch 8 (1 process x 8)
    assert any("x0.25" in line and "global batch 8" in line for line in lines)


def test_demo_recipe_generates_its_dataset_only_when_absent(tmp_path, monkeypatch):
    from pcls.engine.components import prepare_builtin_data

    cfg = load_config("demo", [f"DataLoader.Train.dataset.image_root={tmp_path}/demo",
                               f"DataLoader.Train.dataset.cls_label_path={tmp_path}/demo/train_list.txt"],
                      is_recipe=True)
    calls = []
    monkeypatch.setattr("pcls.data.demo.make_demo_dataset", lambda root: calls.append(str(root)))
    prepare_builtin_data(cfg)
    assert calls == [f"{tmp_path}/demo"]
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo/train_list.txt").write_text("a.jpg 0\n")
    prepare_builtin_data(cfg)
    assert len(calls) == 1
