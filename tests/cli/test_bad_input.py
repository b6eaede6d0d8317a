"""Bad input on every command: exit code 2 and one line that names the problem — never a traceback."""

import pytest
from typer.testing import CliRunner

from pcls.cli import app

runner = CliRunner()


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("garbage: [\n")
    (tmp_path / "list.txt").write_text("a.jpg 0\nb.jpg\n")
    monkeypatch.setenv("PCLS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PCLS_OFFLINE", "1")
    return tmp_path


CASES = [
    ("train -c nope.yaml", "config file not found"),
    ("train -c bad.yaml", "not valid YAML"),
    ("train --recipe demo -o Global.epochs=x", "Global.epochs: expected an integer"),
    ("train --recipe demo -o Arch.name=Nope", "unknown backbone 'Nope'"),
    ("train --recipe demo --resume nowhere", "no checkpoint at nowhere"),
    # run directories (#13.7): nonsense names, an output path under a regular file, an unwritable place
    ("train --recipe demo --name .", "run name '.' has no name of its own"),
    ("train --recipe demo --name ..", "run name '..' has no name of its own"),
    ("train --recipe demo -o Global.output_dir=list.txt", "list.txt is a file, not a folder"),
    ("train --recipe demo -o Global.output_dir=/proc/pcls-out", "cannot write the run directory /proc/pcls-out/demo"),
    ("eval --model ResNet18 --data nope.txt", "list file nope.txt does not exist"),
    ("distill --teacher X --student Y --data nope.txt", "nope.txt does not exist"),
    ("distill --teacher :w --student Y --data list.txt", "--teacher needs a model name"),
    ("distill --resume nowhere", "no checkpoint at nowhere"),
    ("export NoNet", "unknown backbone 'NoNet'"),
    ("export ResNet18 --weights nope.pdparams", "nope.pdparams not found"),
    ("export ResNet18 --format tflite", "unknown export format 'tflite'"),
    ("predict nope.jpg", "input not found: nope.jpg"),
    ("predict list.txt --model ./nowhere", "model folder ./nowhere not found"),
    ("predict list.txt --model ResNet999", "unknown model 'ResNet999'"),
    ("bench ./nowhere", "model folder ./nowhere not found"),
    ("bench ResNet18 --batch-sizes 0", "--batch-sizes takes positive integers"),
    ("bench data -c nope.yaml", "config file not found"),
    ("zoo info ResNet5O", "did you mean ResNet50"),
    ("zoo download ResNet50_vd", "PCLS_OFFLINE"),
    ("data check nope.txt --root .", "nope.txt not found"),
    ("data index nowhere", "nowhere is not a directory"),
    ("recipes show nope", "unknown recipe 'nope'"),
]


@pytest.mark.parametrize("args, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(workdir, args, fragment):
    result = runner.invoke(app, args.split())
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], result.output


VALUE_CASES = [  # values that mean nothing: refused by the schema or the option, before any work
    ("train --recipe demo -o Global.epochs=0", "Global.epochs: must be at least 1, got 0"),
    ("train --recipe demo -o Arch.class_num=0", "Arch.class_num: must be at least 1, got 0"),
    ("train --recipe demo -o Global.class_num=-3", "Global.class_num: must be at least 1, got -3"),
    ("train --recipe demo -o DataLoader.Train.sampler.batch_size=0", "batch_size: must be at least 1, got 0"),
    ("train --recipe demo -o DataLoader.Eval.sampler.batch_size=-1", "batch_size: must be at least 1, got -1"),
]


@pytest.mark.parametrize("args, fragment", VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_meaningless_config_values_are_refused(workdir, args, fragment):
    test_bad_input_is_one_line_and_exit_2(workdir, args, fragment)


@pytest.mark.parametrize("args", ["predict list.txt --topk 0", "export ResNet18 --topk -1",
                                  "train --recipe demo --nproc 0", "distill --teacher X --student Y --nproc 0"])
def test_non_positive_counts_are_refused_by_the_cli(workdir, args):
    result = runner.invoke(app, args.split())
    option = [word for word in args.split() if word.startswith("--")][-1]
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output  # one line, like any other bad input
    assert lines[0].startswith("error: ") and f"Invalid value for '{option}'" in lines[0], result.output


@pytest.fixture()
def seven_class_weights(workdir):
    """Weights of a 7-class MobileNetV1_x0_25 and a two-image list whose labels imply 10 classes."""
    import cv2
    import numpy as np

    import pcls
    from pcls.utils.state_files import save_state_file

    save_state_file(pcls.create_model("MobileNetV1_x0_25", class_num=7).state_dict(), workdir / "w7.pdparams")
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(workdir / name), np.full((40, 40, 3), 120, np.uint8))
    (workdir / "ten.txt").write_text("a.png 0\nb.png 9\n")
    return workdir / "w7.pdparams"


@pytest.mark.parametrize("args", [
    "eval --model MobileNetV1_x0_25 --weights w7.pdparams --data ten.txt --root .",
    "export MobileNetV1_x0_25 --weights w7.pdparams --class-num 10 --out exported",
])
def test_weights_with_another_class_count_are_an_error(seven_class_weights, args):
    result = runner.invoke(app, args.split())
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert "have 7 classes but the MobileNetV1_x0_25 model is built for 10" in errors[0]
    assert not (seven_class_weights.parent / "exported").exists()


@pytest.mark.parametrize("args", ["eval --model MobileNetV1_x0_25 --weights w7.pdparams --data ten.txt --root . "
                                  "--labels gbk.txt",
                                  "export MobileNetV1_x0_25 --weights w7.pdparams --labels gbk.txt --out exported"])
def test_labels_file_that_is_not_utf8_is_one_line(seven_class_weights, args):
    (seven_class_weights.parent / "gbk.txt").write_bytes("0 cat\n1 \u4e2d\n".encode("gbk"))
    result = runner.invoke(app, args.split())
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert "gbk.txt:2: byte 0xd6 at column 3 is not UTF-8" in errors[0] and "must be UTF-8" in errors[0]


def _has_cuda():
    import paddle

    return paddle.is_compiled_with_cuda()


GPUS_LINE = "--gpus needs a CUDA build of Paddle and this one has none: drop --gpus (and --ips); for several CPU " \
    "processes use --nproc N"


@pytest.mark.skipif("_has_cuda()", reason="the check is for Paddle builds without CUDA")
@pytest.mark.parametrize("command, line", [
    ("train --recipe demo --gpus 0", GPUS_LINE),
    ("train --recipe demo --gpus 0 --device cpu", GPUS_LINE),  # the line names the flag to drop, not --device
    ("train --recipe demo --device gpu", "device gpu requested but this Paddle build has no CUDA; use --device cpu"),
    ("distill --teacher ResNet18 --student ResNet18 --data list.txt --gpus 0,1", GPUS_LINE),
])
def test_gpus_without_cuda_is_refused_before_launching_with_a_line_naming_what_to_drop(workdir, command, line):
    test_bad_input_is_one_line_and_exit_2(workdir, command, line)
    assert not (workdir / "output").exists()  # refused before any run directory or launcher


def test_flowers102_offline_names_the_data_mirror_and_leaves_no_empty_folder(workdir):
    result = runner.invoke(app, ["data", "flowers102", "--root", "flowers"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "PCLS_DATA_MIRROR" in result.output and "--url-base" in result.output
    assert "PCLS_ZOO_MIRROR" not in result.output and not (workdir / "flowers").exists()
