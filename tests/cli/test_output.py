"""What the user reads: piped output keeps whole paths and numbers, brackets print as typed, command-line
mistakes are one red line like any other error, a recipe without its data names the command that makes it."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pcls.cli import app
from pcls.utils.console import PIPED_WIDTH, PipeConsole

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
LONG = "a-rather-long-folder-name/" * 6  # ~160 characters: twice what Rich assumes for a pipe


def errors_of(result):
    return [line for line in result.output.splitlines() if line.strip()]


# --- piped output ------------------------------------------------------------------------------------------------
def test_a_console_on_a_pipe_is_as_wide_as_its_content_even_with_columns_set(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    piped = PipeConsole(file=io.StringIO())
    assert piped.width == PIPED_WIDTH
    assert PipeConsole(file=io.StringIO(), width=50).width == 50  # an explicit width still wins


def test_a_console_on_a_terminal_keeps_the_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "93")
    assert PipeConsole(file=io.StringIO(), force_terminal=True).width == 93


def test_piped_tables_and_progress_keep_every_path_and_number_whole(tmp_path):
    """A real process with stdout and stderr redirected: `pcls data demo` prints a table of paths on stdout and
    `pcls data check` a progress bar on stderr."""
    target = tmp_path / LONG / "demo"
    args = [sys.executable, "-m", "pcls", "data", "demo", str(target), "--size", "16", "--train-per-class", "1",
            "--val-per-class", "1"]
    made = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert made.returncode == 0, made.stderr
    assert str(target / "train_list.txt") in made.stdout and "…" not in made.stdout
    assert all(len(line) < 400 for line in made.stdout.splitlines())  # as wide as needed, no wider
    checked = subprocess.run([sys.executable, "-m", "pcls", "data", "check", str(target / "train_list.txt"), "--root",
                              str(target)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert checked.returncode == 0, checked.stderr
    assert "…" not in checked.stdout + checked.stderr
    assert str(target / "train_list.txt") in checked.stdout


@pytest.fixture()
def console_to_sink():
    """The stderr console writing into a StringIO (a pipe) for one test, then back to following sys.stderr."""
    from pcls.cli.common import console

    sink = io.StringIO()
    console.file = sink
    yield sink
    console.file = None  # Rich: no fixed file, so sys.stderr at the time of each print


def test_a_piped_progress_bar_ends_as_one_whole_line(console_to_sink):
    from pcls.cli.common import progress

    sink = console_to_sink
    info = f"loss 2.3026 top1 0.125 lr 1.00e-02 saved {'/very/long/run/directory' * 5}"
    with progress() as bar:
        task = bar.add_task("epoch 1/3", total=789, rate="123 img/s", info=info)
        bar.update(task, completed=78)
    [line] = [line for line in sink.getvalue().splitlines() if line.strip()]
    assert "78/789" in line and "123 img/s" in line and line.rstrip().endswith(info)
    assert "…" not in line and "ETA" in line
    with progress(transient=True) as bar:  # a transient bar (predict) leaves nothing, not even an empty line
        bar.advance(bar.add_task("predict", total=3, rate="", info=""))
    assert sink.getvalue().count("\n") == 1


# --- brackets are text -------------------------------------------------------------------------------------------
def test_brackets_in_tables_and_messages_print_as_typed():
    from pcls.cli.common import console, out, table

    with out.capture() as captured:
        out.print(table("runs in out/[plot]", ["path"], [["data/[bold]x[/bold].jpg"]]))
        out.print("pip install 'pcls[plot]'")
    text = captured.get()
    assert "out/[plot]" in text and "data/[bold]x[/bold].jpg" in text and "pcls[plot]" in text
    with console.capture() as captured:
        console.print("[red]not a style[/red]")
    assert "[red]not a style[/red]" in captured.get()


def test_an_error_message_with_brackets_is_printed_whole():
    result = runner.invoke(app, ["recipes", "show", "demo[plot]"])
    assert result.exit_code == 2
    [line] = errors_of(result)
    assert "'demo[plot]'" in line


# --- command-line errors: one line, exit 2 -----------------------------------------------------------------------
@pytest.mark.parametrize("args, fragment", [
    ("predict x.jpg --topk 0", "Invalid value for '--topk'"),
    ("train --recipe demo --nproc 0", "Invalid value for '--nproc'"),
    ("--no-such-option", "No such option: --no-such-option"),
    ("train --no-such-option", "No such option: --no-such-option"),
    ("recipes show", "Missing argument"),
    ("eval --model X --data l.txt --image-size 4", "Invalid value for '--image-size'"),
])
def test_command_line_mistakes_are_one_error_line_and_exit_2(args, fragment):
    result = runner.invoke(app, args.split())
    assert result.exit_code == 2, result.output
    [line] = errors_of(result)
    assert line.startswith("error: ") and fragment in line and "--help'" in line, line


def test_a_group_alone_still_shows_its_help():
    result = runner.invoke(app, ["zoo"])
    assert "Usage:" in result.output and "error:" not in result.output


# --- eval --image-size -------------------------------------------------------------------------------------------
def test_eval_image_size_scales_resize_and_crop_by_the_zoo_ratio(tmp_path):
    from pcls.engine.evaluator import eval_config as _eval_config  # the library builds it (pcls.evaluate(model=, data=))
    from pcls.zoo.catalog import preprocess_for

    (tmp_path / "l.txt").write_text("a.jpg 0\nb.jpg 1\n")
    pre = preprocess_for("ResNet50_vd")
    cfg = _eval_config("ResNet50_vd", str(tmp_path / "l.txt"), str(tmp_path), None, None, 4, image_size=112)
    ops = {name: params for op in cfg["DataLoader"]["Eval"]["dataset"]["transform_ops"] for name, params in op.items()}
    assert ops["CropImage"]["size"] == 112
    assert ops["ResizeImage"]["resize_short"] == round(112 * pre["resize_short"] / pre["input_size"])
    default = _eval_config("ResNet50_vd", str(tmp_path / "l.txt"), str(tmp_path), None, None, 4)
    crop = [op["CropImage"] for op in default["DataLoader"]["Eval"]["dataset"]["transform_ops"] if "CropImage" in op]
    assert crop == [{"size": pre["input_size"]}]


def test_eval_image_size_with_a_recipe_is_refused():
    result = runner.invoke(app, ["eval", "--recipe", "demo", "--weights", "w", "--image-size", "32"])
    assert result.exit_code == 2
    [line] = errors_of(result)
    assert "--image-size is for --model NAME" in line


# --- a recipe without its data -----------------------------------------------------------------------------------
def test_every_recipe_says_how_to_make_its_data():
    from pcls.config import list_recipes, load_config
    from pcls.data.sources import how_to_make

    for name in list_recipes():
        cfg = load_config(name, is_recipe=True)
        dataset = (cfg.get("Reference") or {}).get("dataset")
        root = cfg["DataLoader"]["Train"]["dataset"]["image_root"]
        assert how_to_make(dataset, root), f"recipe {name}: no instructions for dataset {dataset!r}"


@pytest.mark.parametrize("command", [["train", "--recipe", "flowers102-finetune"],
                                     ["eval", "--recipe", "flowers102-finetune", "--weights", "w"]])
def test_missing_recipe_data_names_the_command_that_makes_it(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    [line] = [line for line in errors_of(result) if line.startswith("error:")]
    assert "does not exist; make it with: pcls data flowers102 --root dataset/flowers102" in line


def test_the_named_command_makes_the_missing_list(tmp_path, monkeypatch):
    from tests.data.flowers102_fixture import Server, mini_flowers

    monkeypatch.chdir(tmp_path)
    line = errors_of(runner.invoke(app, ["train", "--recipe", "flowers102-finetune"]))[-1]
    suggested = line.split("make it with: pcls ", 1)[1].split()
    server = Server(mini_flowers())
    try:
        made = runner.invoke(app, suggested + ["--url-base", server.url])
    finally:
        server.close()
    assert made.exit_code == 0, made.output
    assert (tmp_path / "dataset/flowers102/train_list.txt").is_file()


# --- the curves message ------------------------------------------------------------------------------------------
def test_no_matplotlib_message_when_no_epoch_finished(tmp_path, caplog):
    pytest.importorskip("matplotlib")
    from pcls.engine.runlog import RunLog

    with caplog.at_level("INFO", logger="pcls"):
        assert RunLog(tmp_path).finish([]) == {}
    assert "matplotlib" not in caplog.text
    row = {"epoch": 1, "train_loss": 1.0, "val_loss": 1.2, "train_top1": 0.5, "val_top1": 0.4, "lr": 0.1}
    assert Path(RunLog(tmp_path).finish([row])["curves"]).is_file()


# --- quiet logs --------------------------------------------------------------------------------------------------
def test_a_command_that_imports_paddle_prints_only_its_own_line(tmp_path):
    """Paddle's import-time warnings (ccache) are not the user's business: the error is the only stderr line."""
    # `pcls eval` of a missing list fails after paddle is imported (`pcls train` now checks before importing it)
    code = ("import sys\nfrom pcls.cli import main\ntry:\n    main(['eval', '--model', 'ResNet18', '--data', 'nope.txt'])\n"
            "except SystemExit as exit:\n    print(exit.code, 'paddle' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k != "PCLS_DEBUG"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.stdout.split() == ["2", "True"], done.stdout + done.stderr  # failed after importing paddle
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr


def test_other_python_warnings_are_one_console_line(monkeypatch):
    import warnings

    from pcls.cli.common import console, setup_logging

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the test
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        setup_logging(debug=False)
        with console.capture() as captured:
            warnings.warn("a library says [something]")
            warnings.warn("No ccache found. Please be aware ...")
    assert captured.get().splitlines() == ["UserWarning: a library says [something]"]


def test_a_resume_that_does_not_fit_is_one_error_line(tmp_path):
    """Resuming a checkpoint into another model: one line naming the mismatch, not a warning per tensor."""
    done = runner.invoke(app, ["train", "--recipe", "demo", "--smoke", "--keep-checkpoints", "-o",
                               f"Global.output_dir={tmp_path}", "--json"])
    assert done.exit_code == 0, done.output[-2000:]
    run_dir = json.loads(done.stdout)["run_dir"]
    result = runner.invoke(app, ["train", "--resume", run_dir, "-o", "Arch.class_num=12"])
    assert result.exit_code == 2, result.output[-2000:]
    assert "Skip loading" not in result.output
    [error] = [line for line in errors_of(result) if line.startswith("error:")]
    assert "10 classes" in error and "12" in error, error
    assert len(errors_of(result)) <= 3, result.output[-3000:]  # the error and at most a line or two of context
