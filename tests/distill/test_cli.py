"""`pcls distill` and distillation configs through the CLI: a PaddleClas distillation config unchanged, the
flag-built run whose student loads into `pcls eval` / `pcls export`, the distillation recipe through
`pcls train`, and bad input as one line with exit 2."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pcls.cli import app
from tests.distill.conftest import CLASS_NUM, distill_config

runner = CliRunner()
PADDLECLAS_CONFIG = Path(__file__).parents[1] / "config" / "configs" / "R50_vd_distill_MV3_large_x1_0.yaml"


def _invoke(args):
    return runner.invoke(app, [str(a) for a in args])


def _error_lines(result):
    assert "Traceback" not in result.output
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def _save_weights(model_name, path, class_num=CLASS_NUM):
    from pcls.arch.registry import create_model
    from pcls.utils.state_files import save_state_file

    return save_state_file(create_model(model_name, class_num=class_num).state_dict(), path)


def test_paddleclas_distillation_config_prints_unchanged():
    result = _invoke(["distill", "-c", PADDLECLAS_CONFIG, "--print-config"])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load(result.stdout)
    assert cfg["Arch"]["name"] == "DistillationModel"
    assert [list(m) for m in cfg["Arch"]["models"]] == [["Teacher"], ["Student"]]
    assert cfg["Arch"]["freeze_params_list"] == [True, False]
    assert cfg["Loss"]["Train"][0]["DistillationCELoss"]["model_name_pairs"] == [["Student", "Teacher"]]


def test_cache_teacher_flag_builds_a_deterministic_pipeline(tmp_path, scarce_data):
    base = ["distill", "--teacher", "ResNet50_vd", "--student", "MobileNetV3_small_x0_35", "--data",
            scarce_data["labelled"], "--root", scarce_data["root"], "--output", tmp_path, "--print-config"]
    augmented = yaml.safe_load(_invoke(base).stdout)["DataLoader"]["Train"]["dataset"]["transform_ops"]
    cached = yaml.safe_load(_invoke(base + ["--cache-teacher"]).stdout)["DataLoader"]["Train"]["dataset"]
    from pcls.distill.cache import random_ops

    assert random_ops({"dataset": {"transform_ops": augmented}}) == ["RandCropImage", "RandFlipImage"]
    assert random_ops({"dataset": cached}) == []


def test_flag_run_writes_a_plain_student_for_eval_and_export(tmp_path, scarce_data, trained_teacher):
    result = _invoke(["distill", "--teacher", f"TinyNet:{trained_teacher['weights']}", "--student", "MobileNetV1_x0_25",
                      "--data", scarce_data["labelled"], "--extra", scarce_data["unlabeled"],
                      "--val", scarce_data["val"], "--root", scarce_data["root"], "--image-size", "32",
                      "--epochs", "1", "--batch-size", "26", "--output", tmp_path / "out", "--seed", "3",
                      "--loss", "kd", "--temperature", "2", "-o", "DataLoader.Train.loader.num_workers=0",
                      "-o", "DataLoader.Eval.loader.num_workers=0", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["student_model"] == "MobileNetV1_x0_25"
    student = Path(summary["student_weights"])
    assert student == tmp_path / "out/distill_TinyNet_to_MobileNetV1_x0_25/student/best_model.pdparams"
    run_cfg = yaml.safe_load((student.parents[1] / "config.yaml").read_text())
    assert [list(e)[0] for e in run_cfg["Loss"]["Train"]] == ["DistillationKLDivLoss", "DistillationGTCELoss"]
    merged = Path(run_cfg["DataLoader"]["Train"]["dataset"]["cls_label_path"]).read_text().splitlines()
    assert len(merged) == 208 and sum(len(line.split()) == 1 for line in merged) == 200

    result = _invoke(["eval", "--model", "MobileNetV1_x0_25", "--weights", student, "--data", scarce_data["val"],
                      "--root", scarce_data["root"], "--class-num", CLASS_NUM, "--out", tmp_path / "eval", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["samples"] == 160
    result = _invoke(["export", "MobileNetV1_x0_25", "--weights", student, "--out", tmp_path / "inference", "--json"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "inference" / "inference.pdiparams").exists()


def test_distillation_recipe_runs_through_pcls_train(tmp_path, scarce_data):
    from pcls.arch.registry import create_model
    from pcls.utils.state_files import load_state_file

    overrides = [f"Arch.class_num={CLASS_NUM}", f"Arch.models.0.Teacher.class_num={CLASS_NUM}",
                 f"Arch.models.1.Student.class_num={CLASS_NUM}", "Arch.models.0.Teacher.pretrained=False",
                 "Arch.models.1.Student.pretrained=False", f"Global.output_dir={tmp_path}", "Global.device=cpu",
                 "Global.epochs=1", "Global.max_iters=2"]
    for split, list_file in (("Train", scarce_data["labelled_unlabeled"]), ("Eval", scarce_data["val"])):
        overrides += [f"DataLoader.{split}.dataset.image_root={scarce_data['root']}",
                      f"DataLoader.{split}.dataset.cls_label_path={list_file}",
                      f"DataLoader.{split}.loader.num_workers=0", f"DataLoader.{split}.sampler.batch_size=8"]
    overrides += ["DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=32",
                  "DataLoader.Eval.dataset.transform_ops.1.ResizeImage.resize_short=36",
                  "DataLoader.Eval.dataset.transform_ops.2.CropImage.size=32"]
    flags = [x for override in overrides for x in ("-o", override)]
    result = _invoke(["train", "--recipe", "flowers102-distill-mv3", "--json"] + flags)
    assert result.exit_code == 0, result.output
    run = Path(json.loads(result.stdout)["run_dir"])
    student = load_state_file(run / "student" / "latest.pdparams")
    assert set(student) == set(create_model("MobileNetV3_large_x1_0", class_num=CLASS_NUM).state_dict())
    assert not any(key.startswith(("Teacher.", "Student.")) for key in student)


@pytest.mark.parametrize("case, fragments", [
    ("class_num", ["same class_num", "Teacher 10", "Student 8"]),
    ("architecture", ["Teacher: weights", "do not fit TinyNet", "missing"]),
    ("head", ["frozen teacher cannot learn a new head"]),
    ("missing", ["not found"]),
])
def test_bad_input_is_one_line_exit_2(tmp_path, scarce_data, tinynet, case, fragments):
    if case == "class_num":
        cfg = distill_config(scarce_data, scarce_data["labelled_unlabeled"], tmp_path / "out", False)
        cfg["Arch"]["models"][0]["Teacher"]["class_num"] = 10
        path = tmp_path / "distill.yaml"
        path.write_text(yaml.safe_dump(cfg))
        args = ["distill", "-c", path]
    else:
        weights = {"architecture": lambda: _save_weights("PPLCNet_x0_25", tmp_path / "lcnet.pdparams"),
                   "head": lambda: _save_weights("TinyNet", tmp_path / "tiny10.pdparams", class_num=10),
                   "missing": lambda: tmp_path / "nowhere/teacher.pdparams"}[case]()
        args = ["distill", "--teacher", f"TinyNet:{weights}", "--student", "TinyNet", "--data",
                scarce_data["labelled"], "--batch-size", "4", "--root", scarce_data["root"],
                "--output", tmp_path / "out"]
    result = _invoke(args)
    assert result.exit_code == 2, result.output
    lines = _error_lines(result)
    text = " ".join(result.output.split())
    assert len(lines) == 1 and all(fragment in text for fragment in fragments), result.output
    assert not list((tmp_path / "out").rglob("*.pdparams"))
