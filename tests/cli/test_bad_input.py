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
    ("eval --model ResNet18 --data nope.txt", "list file nope.txt does not exist"),
    ("distill --teacher X --student Y --data nope.txt", "nope.txt does not exist"),
    ("distill --teacher :w --student Y --data list.txt", "--teacher needs a model name"),
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
