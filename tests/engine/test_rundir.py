"""Run directories (#13): a new run never writes into another run's directory; --exist-ok removes only that
run's own files; the directory reported everywhere is the one used; --smoke runs go to output/smoke/<name>."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pcls.cli import app
from pcls.engine.rundir import allocate_run_dir, clear_run, run_dir_of
from pcls.errors import PclsError
from tests.engine.conftest import tiny_config, write_config

runner = CliRunner()


def _train(args):
    result = runner.invoke(app, ["train", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def test_a_second_run_takes_the_next_free_name_and_reports_it(tmp_path, colour_data, tinynet):
    cfg = write_config(tiny_config(colour_data, tmp_path / "out", epochs=2, save_interval=1), tmp_path / "c.yaml")
    _train(["-c", cfg, "--json"])
    first = tmp_path / "out/TinyNet"
    before = {p.name: p.stat().st_mtime_ns for p in first.iterdir() if p.is_file()}
    cfg1 = write_config(tiny_config(colour_data, tmp_path / "out", epochs=1), tmp_path / "c1.yaml")
    summary = json.loads(_train(["-c", cfg1, "--json"]).stdout)
    second = tmp_path / "out/TinyNet-2"
    assert summary["run_dir"] == str(second)
    assert all(Path(p).parent in (second, second / "student") for p in summary["files"].values())
    assert json.loads((second / "summary.json").read_text())["run_dir"] == str(second)
    # the first run is untouched: its epoch_2 and its best model are still its own
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir() if p.is_file()} == before
    assert not (second / "epoch_2.pdparams").exists()
    result = runner.invoke(app, ["train", "-c", str(cfg1)])  # the table names the directory used
    assert "TinyNet-3" in " ".join(result.output.split())


def test_exist_ok_replaces_only_the_previous_runs_files(tmp_path, colour_data, tinynet):
    cfg = write_config(tiny_config(colour_data, tmp_path / "out", epochs=2, save_interval=1), tmp_path / "c.yaml")
    _train(["-c", cfg, "--json"])
    run = tmp_path / "out/TinyNet"
    (run / "notes.txt").write_text("mine")
    (run / "log").mkdir()
    (run / "log" / "my.log").write_text("mine too")
    cfg1 = write_config(tiny_config(colour_data, tmp_path / "out", epochs=1), tmp_path / "c1.yaml")
    summary = json.loads(_train(["-c", cfg1, "--json", "--exist-ok"]).stdout)
    assert summary["run_dir"] == str(run) and summary["epochs_done"] == 1
    assert not (run / "epoch_2.pdparams").exists()  # the old run's files are gone ...
    assert (run / "notes.txt").read_text() == "mine"  # ... files pcls did not write are not
    assert (run / "log" / "my.log").read_text() == "mine too"
    assert not (tmp_path / "out/TinyNet-2").exists()


def test_resume_continues_in_place(tmp_path, colour_data, tinynet):
    cfg = write_config(tiny_config(colour_data, tmp_path / "out", epochs=1), tmp_path / "c.yaml")
    _train(["-c", cfg, "--json"])
    summary = json.loads(_train(["--resume", tmp_path / "out/TinyNet", "-o", "Global.epochs=2", "--json"]).stdout)
    assert summary["run_dir"] == str(tmp_path / "out/TinyNet") and summary["epochs_done"] == 2
    assert not (tmp_path / "out/TinyNet-2").exists()


def test_allocation_rules(tmp_path):
    assert allocate_run_dir(tmp_path / "a") == tmp_path / "a" and (tmp_path / "a").is_dir()
    assert allocate_run_dir(tmp_path / "a") == tmp_path / "a"  # an empty folder holds no run
    (tmp_path / "a" / "latest.json").write_text("{}")
    (tmp_path / "a-2").mkdir()
    (tmp_path / "a-2" / "summary.json").write_text("{}")
    assert allocate_run_dir(tmp_path / "a") == tmp_path / "a-3"
    cfg = {"Global": {"output_dir": str(tmp_path)}, "Arch": {"name": "TinyNet"}}
    assert run_dir_of(cfg) == tmp_path / "TinyNet" and run_dir_of(cfg, "x") == tmp_path / "x"
    for nonsense in (".", "..", "", "a/../..", "/etc"):
        with pytest.raises(PclsError, match="has no name of its own"):
            run_dir_of(cfg, nonsense)
    (tmp_path / "file").write_text("x")
    with pytest.raises(PclsError, match="is a file, not a folder"):
        allocate_run_dir(tmp_path / "file" / "run")


def test_clear_run_removes_only_what_the_ledger_records(tmp_path):
    from pcls.utils.io import atomic_write_text, record_written, start_ledger

    start_ledger(tmp_path)
    ours = ["latest.pdparams", "latest.json", "epoch_3.pdparams", "best_model.pdparams", "metrics.jsonl",
            "summary.json", "config.yaml", "student/latest.pdparams"]
    for name in ours:
        atomic_write_text(tmp_path / name, "x")
    (tmp_path / "log").mkdir()
    record_written(tmp_path / "log", folder=True)
    for name in ("log/workerlog.0", "log/envlog.1"):  # written by the launcher pcls started
        (tmp_path / name).write_text("x")
    # the user's files, some with names pcls also uses (a PaddleClas checkpoint copied in by hand)
    for name in ("data.txt", "epoch_7.pdparams", "student/readme.md"):
        (tmp_path / name).write_text("x")
    removed = {p.relative_to(tmp_path).as_posix() for p in clear_run(tmp_path)}
    assert removed == set(ours) | {"log/workerlog.0", "log/envlog.1"}
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                  if p.is_file() and p.name != ".pcls-written") == ["data.txt", "epoch_7.pdparams", "student/readme.md"]
    assert not (tmp_path / "log").exists()


def test_exist_ok_refuses_a_run_pcls_did_not_write(tmp_path):
    for name in ("latest.pdparams", "latest.pdopt", "best_model.pdparams"):  # a PaddleClas run
        (tmp_path / "run" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "run" / name).write_text("x")
    with pytest.raises(PclsError, match="no record of writing"):
        allocate_run_dir(tmp_path / "run", exist_ok=True)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best_model.pdparams", "latest.pdopt",
                                                                   "latest.pdparams"]
    assert allocate_run_dir(tmp_path / "run") == tmp_path / "run-2"


def test_smoke_run_directory_is_not_doubled(tmp_path):
    result = runner.invoke(app, ["train", "--recipe", "demo", "--smoke", "-o", f"Global.output_dir={tmp_path}",
                                 "--json"])
    assert result.exit_code == 0, result.output[-2000:]
    summary = json.loads(result.stdout)
    assert summary["run_dir"] == str(tmp_path / "smoke" / "demo")
    assert json.loads((tmp_path / "smoke/demo/result.json").read_text())["smoke"] is True
