"""`pcls export` writes only its own files; filesystem and class-count problems are one line and exit 2."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

paddle = pytest.importorskip("paddle")

import pcls  # noqa: E402
from pcls.cli import app  # noqa: E402
from pcls.utils.state_files import save_state_file  # noqa: E402

MODEL = "MobileNetV1_x0_25"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def export_args(out, *extra):
    return ["export", MODEL, "--class-num", "4", "--image-size", "32", "--out", out, *extra]


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_training_run_folder_is_refused_and_left_untouched(in_tmp):
    run = in_tmp / "output" / "demo_copy"
    run.mkdir(parents=True)
    files = {"latest.pdparams": b"weights", "metrics.jsonl": b"{}\n", "keep.txt": b"mine"}
    for name, data in files.items():
        (run / name).write_bytes(data)
    error = one_error(invoke(*export_args("output/demo_copy")))
    assert "output/demo_copy" in error and "new folder" in error
    assert {p.name: p.read_bytes() for p in run.iterdir()} == files


def test_force_writes_beside_foreign_files_and_deletes_none(in_tmp):
    folder = in_tmp / "shared"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert invoke(*export_args("shared", "--force")).exit_code == 0
    assert (folder / "keep.txt").read_text() == "mine" and (folder / "inference.yml").exists()


def test_a_previous_export_is_replaced_but_files_pcls_did_not_write_survive(in_tmp):
    assert invoke(*export_args("inf", "--format", "onnx")).exit_code == 0
    (in_tmp / "inf" / "notes.md").write_text("my notes")
    (in_tmp / "inf" / "trt_fp16").mkdir()  # a conversion pcls made later: stale after a re-export
    (in_tmp / "inf" / "trt_notes.txt").write_text("mine")  # only the names pcls writes are pcls's
    result = invoke(*export_args("inf"))
    assert result.exit_code == 0, result.output
    names = {p.name for p in (in_tmp / "inf").iterdir()}
    assert "notes.md" in names and "inference.onnx" not in names and "trt_fp16" not in names
    assert (in_tmp / "inf" / "trt_notes.txt").read_text() == "mine"
    spec = yaml.safe_load((in_tmp / "inf" / "inference.yml").read_text())
    assert spec["Global"]["pcls_export"] == 1 and "inference.json" in spec["Global"]["files"]
    assert not [p for p in in_tmp.iterdir() if p.name.startswith(".")]


def test_new_folder_gets_the_umask_mode(in_tmp):
    old = os.umask(0o022)
    try:
        assert invoke(*export_args("fresh")).exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((in_tmp / "fresh").stat().st_mode) == 0o755


@pytest.mark.parametrize("out, fragment", [
    ("a_file/sub", "is a file, not a folder"),
    ("a_file", "is a file, not a folder"),
    (".", "is the current folder"),
])
def test_bad_output_paths(in_tmp, out, fragment):
    (in_tmp / "a_file").write_text("x")
    assert fragment in one_error(invoke(*export_args(out)))


def test_unwritable_output_folder_is_one_line(in_tmp, monkeypatch):
    import pcls.deploy.export.placement as export_module

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(in_tmp))

    monkeypatch.setattr(export_module.tempfile, "mkdtemp", refuse)
    error = one_error(invoke(*export_args("ro/out")))
    assert "cannot write the export to ro/out" in error and "Permission denied" in error


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_parent_folder(in_tmp):
    (in_tmp / "ro").mkdir()
    (in_tmp / "ro").chmod(0o555)
    try:
        assert "cannot write the export" in one_error(invoke(*export_args("ro/out")))
    finally:
        (in_tmp / "ro").chmod(0o755)


def test_weights_with_another_class_count_are_refused(in_tmp):
    model = pcls.create_model(MODEL, class_num=10)
    save_state_file({k: v.numpy() for k, v in model.state_dict().items()}, in_tmp / "w.pdparams")
    error = one_error(invoke(*export_args("out", "--weights", "w.pdparams")))
    assert "10 classes" in error and "4" in error
    assert not (in_tmp / "out").exists()


def test_image_size_follows_the_zoo_resize_ratio(in_tmp):
    assert invoke("export", MODEL, "--image-size", "48", "--out", "s48").exit_code == 0
    spec = yaml.safe_load((in_tmp / "s48" / "inference.yml").read_text())
    ops = {next(iter(op)): next(iter(op.values())) for op in spec["PreProcess"]["transform_ops"]}
    assert spec["Global"]["input_size"] == 48 and ops["CropImage"]["size"] == 48
    assert ops["ResizeImage"]["resize_short"] == round(48 * 256 / 224)


@pytest.fixture()
def exported(in_tmp):
    assert invoke(*export_args("m")).exit_code == 0
    image = in_tmp / "img.jpg"
    import cv2

    cv2.imwrite(str(image), np.full((40, 40, 3), 128, np.uint8))
    return in_tmp / "m", image


@pytest.mark.parametrize("csv, fragment", [
    ("img.jpg/out.csv", "is a file, not a folder"),
    ("missing/out.csv", "does not exist"),
    (".", "is a folder"),
])
def test_predict_checks_the_csv_path_before_predicting(exported, monkeypatch, csv, fragment):
    import pcls.deploy.predictor as predictor_module

    def never(*args, **kwargs):
        raise AssertionError("predicted before checking --csv")

    monkeypatch.setattr(predictor_module, "Predictor", never)
    model_dir, image = exported
    assert fragment in one_error(invoke("predict", image, "--model", model_dir, "--csv", csv))


def test_predict_refuses_an_export_whose_labels_do_not_fit(exported):
    model_dir, image = exported
    (model_dir / "labels.txt").write_text("0 a\n1 b\n")
    spec_path = model_dir / "inference.yml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["PostProcess"]["class_id_map_file"] = "labels.txt"
    spec_path.write_text(yaml.safe_dump(spec))
    assert "2 names but the model has 4 classes" in one_error(invoke("predict", image, "--model", model_dir))


def test_a_sibling_backup_folder_pcls_did_not_create_is_never_deleted(in_tmp):
    """Item 3 of #25: replacing an export used to rmtree `.<out>.old/` whatever it held."""
    (in_tmp / ".inf.old").mkdir()
    (in_tmp / ".inf.old" / "keep.txt").write_text("mine")
    assert invoke(*export_args("inf")).exit_code == 0
    assert invoke(*export_args("inf")).exit_code == 0  # a replacement: the previous export goes to a backup
    assert (in_tmp / ".inf.old" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in in_tmp.iterdir() if p.name.startswith(".")) == [".inf.old"]


def test_out_given_as_a_symlink_exports_into_the_folder_it_names(in_tmp):
    (in_tmp / "real").mkdir()
    (in_tmp / "link").symlink_to(in_tmp / "real")
    for _ in range(2):  # a new export, then a replacement
        result = invoke(*export_args("link"))
        assert result.exit_code == 0, result.output
    assert (in_tmp / "link").is_symlink() and (in_tmp / "real" / "inference.yml").is_file()
    assert not [p for p in in_tmp.iterdir() if p.name.startswith(".")]


def test_a_hand_edited_file_list_never_makes_a_user_file_replaceable(in_tmp):
    assert invoke(*export_args("inf")).exit_code == 0
    (in_tmp / "inf" / "thesis.txt").write_text("years of work")
    spec_path = in_tmp / "inf" / "inference.yml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["Global"]["files"].append("thesis.txt")
    spec_path.write_text(yaml.safe_dump(spec))
    assert invoke(*export_args("inf")).exit_code == 0
    assert (in_tmp / "inf" / "thesis.txt").read_text() == "years of work"


def test_an_inference_yml_with_wrongly_typed_fields_is_one_line(in_tmp):
    assert invoke(*export_args("inf")).exit_code == 0
    import cv2

    cv2.imwrite(str(in_tmp / "x.jpg"), np.full((40, 40, 3), 128, np.uint8))
    spec_path = in_tmp / "inf" / "inference.yml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["Global"]["files"] = 5
    spec_path.write_text(yaml.safe_dump(spec))
    assert "Global.files must be a list" in one_error(invoke(*export_args("inf")))
    assert "Global.files must be a list" in one_error(invoke("predict", "x.jpg", "--model", "inf"))
    spec["Global"]["files"] = []
    post = spec["PostProcess"]
    (post["Topk"] if "Topk" in post else post)["topk"] = "five"  # PaddleX's form or pcls's
    spec_path.write_text(yaml.safe_dump(spec))
    assert "PostProcess.topk must be an integer" in one_error(invoke("predict", "x.jpg", "--model", "inf"))


def test_nan_weights_are_named_at_export(in_tmp):
    model = pcls.create_model(MODEL, class_num=4)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    name = next(k for k in state if k.endswith("weight") and state[k].ndim == 4)
    state[name][0, 0, 0, 0] = np.nan
    save_state_file(state, in_tmp / "w.pdparams")
    error = one_error(invoke(*export_args("out", "--weights", "w.pdparams")))
    assert "NaN or Inf" in error and name in error and "differs by" not in error
    assert not (in_tmp / "out").exists()


def test_a_full_disk_is_one_line_no_space_left(in_tmp, monkeypatch):
    import shutil as real_shutil

    import pcls.deploy.export.placement as placement

    usage = real_shutil.disk_usage(in_tmp)
    monkeypatch.setattr(placement.shutil, "disk_usage", lambda path: usage._replace(free=1000))
    error = one_error(invoke(*export_args("out")))
    assert "no space left on device" in error and "verification" not in error
    assert not (in_tmp / "out").exists() and not [p for p in in_tmp.iterdir() if p.name.startswith(".")]


def test_a_disk_that_fills_mid_export_is_one_line_no_space_left(in_tmp, monkeypatch):
    import errno

    import pcls.deploy.export.pipeline as pipeline

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "write_spec", full)
    assert "no space left on device" in one_error(invoke(*export_args("out")))
    assert not (in_tmp / "out").exists() and not [p for p in in_tmp.iterdir() if p.name.startswith(".")]


def test_sigterm_during_export_leaves_no_temp_folder(in_tmp):
    import signal

    from pcls.deploy.export import ExportRequest, export
    from pcls.errors import PclsError

    def terminate_at(stage):
        if stage == "saving the inference graph":
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(PclsError, match="interrupted"):
        export(ExportRequest(model_name=MODEL, out_dir=in_tmp / "out", class_num=4, input_size=32),
               progress=terminate_at)
    assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back
    assert not (in_tmp / "out").exists() and not [p for p in in_tmp.iterdir() if p.name.startswith(".")]


def _previous_export(folder: Path, **foreign) -> Path:
    """An export folder as move_into_place finds it: pcls's inference.yml beside `foreign` user files."""
    folder.mkdir()
    (folder / "inference.yml").write_text("old")
    for name, text in foreign.items():
        (folder / name).write_text(text)
    return folder


def test_a_linked_conversion_folder_in_a_replaced_export_is_unlinked_not_emptied(tmp_path):
    from pcls.deploy.export.placement import move_into_place

    out = _previous_export(tmp_path / "inf")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "engine_1_1.trt").write_text("user data")
    (out / "trt_fp16").symlink_to(elsewhere)
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "inference.yml").write_text("new")
    move_into_place(staging, out, {"inference.yml", "trt_fp16"})
    assert sorted(p.name for p in out.iterdir()) == ["inference.yml"] and (out / "inference.yml").read_text() == "new"
    assert (elsewhere / "engine_1_1.trt").read_text() == "user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "inf"]


def test_a_user_file_that_cannot_be_moved_back_is_kept_not_deleted_with_the_staging_folder(tmp_path, monkeypatch):
    """The swap fails after the user's files were moved into staging, and one of them cannot go back: it is
    kept in pcls's backup folder (named in the error), never left in staging, which the export removes."""
    import shutil

    from pcls.deploy.export.placement import move_into_place
    from pcls.errors import PclsError

    out = _previous_export(tmp_path / "inf", **{"notes.md": "mine", "keep.txt": "also mine"})
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "inference.yml").write_text("new")
    real_rename = Path.rename

    def rename(self, target):
        if Path(target) in (out, out / "notes.md") and self.parent == staging or self == staging:
            raise OSError(5, "Input/output error")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(PclsError, match="notes.md could not be moved back") as err:
        move_into_place(staging, out, {"inference.yml"})
    shutil.rmtree(staging)  # what the export does next
    kept = Path(str(err.value).rsplit("they are in ", 1)[1])
    assert (kept / "notes.md").read_text() == "mine" and kept.parent.parent == tmp_path
    assert {p.name: p.read_text() for p in out.iterdir()} == {"inference.yml": "old", "keep.txt": "also mine"}
