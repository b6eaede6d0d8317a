"""Run directories (#13): a new run never writes into another run's directory; --exist-ok removes only that
run's own files; the directory reported everywhere is the one used; --smoke runs go to output/smoke/<name>."""

import contextlib
import json
import shutil
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


# -- #25.1: a forged ledger never removes anything --------------------------------------------------------
def _finished_run(folder: Path) -> Path:
    from pcls.utils.io import atomic_write_text, start_ledger

    folder.mkdir(parents=True)
    start_ledger(folder)
    atomic_write_text(folder / "latest.json", "{}")
    return folder


@pytest.mark.parametrize("forged", ["../../v/victim.txt", "{victim}", "../../v/log/", "log/../../../v/victim.txt",
                                    "ln.txt", "lndir/victim.txt", "sub", "sub/", "log/x/", ".", "n" * 300,
                                    ".pcls-lock", ".pcls-written", "log/.pcls-written"])
def test_a_forged_ledger_entry_refuses_the_whole_clear(tmp_path, forged):
    victims = tmp_path / "v"
    (victims / "log").mkdir(parents=True)
    (victims / "victim.txt").write_text("precious")
    (victims / "log" / "workerlog.0").write_text("precious")
    run = _finished_run(tmp_path / "out" / "run")
    (run / "ln.txt").symlink_to(victims / "victim.txt")
    (run / "lndir").symlink_to(victims)
    (run / "sub").mkdir()
    (run / "sub" / "mine.txt").write_text("mine")
    with open(run / ".pcls-written", "a") as fh:
        fh.write(forged.format(victim=victims / "victim.txt") + "\n")
    with pytest.raises(PclsError, match="refusing to clear .* the ledger was edited or forged") as err:
        allocate_run_dir(run, exist_ok=True)
    assert "\n" not in str(err.value)
    assert (victims / "victim.txt").read_text() == "precious" and (victims / "log" / "workerlog.0").exists()
    assert (run / "latest.json").exists() and (run / "sub" / "mine.txt").exists()  # nothing at all was removed


def test_a_log_folder_entry_that_is_a_link_is_refused(tmp_path):
    victims = tmp_path / "v"
    victims.mkdir()
    (victims / "workerlog.0").write_text("precious")
    run = _finished_run(tmp_path / "run")
    (run / "log").symlink_to(victims)
    with open(run / ".pcls-written", "a") as fh:
        fh.write("log/\n")
    with pytest.raises(PclsError, match="'log/' goes through a symbolic link"):
        clear_run(run)
    assert (victims / "workerlog.0").read_text() == "precious"


@pytest.mark.parametrize("swapped", ["student", "log", "student/latest.pdparams", "."])
def test_a_folder_swapped_for_a_link_after_the_check_is_never_followed(tmp_path, monkeypatch, swapped):
    """The time-of-check/time-of-use gap: the ledger's entries pass the check, then a folder on their way (or the
    file itself, or the run folder) becomes a link to someone else's files before the removal; removal works through
    descriptors opened without following links, so the other folder keeps every file."""
    import pcls.engine.rundir as rundir
    from pcls.utils.io import atomic_write_text, record_written

    victims = tmp_path / "v"
    victims.mkdir()
    for name in ("latest.pdparams", "workerlog.0"):
        (victims / name).write_text("precious")
    run = _finished_run(tmp_path / "run")
    atomic_write_text(run / "student" / "latest.pdparams", "x")
    (run / "log").mkdir()
    record_written(run / "log", folder=True)
    (run / "log" / "workerlog.0").write_text("x")
    checked = rundir._checked_entries

    link = run.with_name("run-link") if swapped == "." else run / swapped
    victim = victims / "latest.pdparams" if swapped.endswith(".pdparams") else victims

    def check_then_swap(path, entries):
        targets = checked(path, entries)
        if swapped == ".":  # the run folder itself: moved away, a link to the victims in its place
            run.rename(link)
            run.symlink_to(victims)
        else:
            shutil.rmtree(link) if link.is_dir() else link.unlink()
            link.symlink_to(victim)
        return targets

    monkeypatch.setattr(rundir, "_checked_entries", check_then_swap)
    if swapped == ".":
        with pytest.raises(PclsError, match="cannot be opened as a folder without following a link"):
            clear_run(run)
        assert (link / "latest.json").exists() and (link / "student" / "latest.pdparams").exists()
    else:
        removed = clear_run(run)
        assert link.is_symlink() and run / "latest.json" in removed and link not in removed
    assert sorted(p.name for p in victims.iterdir()) == ["latest.pdparams", "workerlog.0"]
    assert all((victims / name).read_text() == "precious" for name in ("latest.pdparams", "workerlog.0"))


# -- #25.2: no write follows a symbolic link -------------------------------------------------------------
def test_a_symlinked_ledger_is_refused_and_its_target_untouched(tmp_path):
    from pcls.utils.io import atomic_write_text, record_written

    important = tmp_path / "important.txt"
    important.write_text("keep me\n")
    run = tmp_path / "out" / "f"
    run.mkdir(parents=True)
    (run / ".pcls-written").symlink_to(important)
    with pytest.raises(PclsError, match="it is a symbolic link"):
        allocate_run_dir(run)
    with pytest.raises(PclsError, match="it is a symbolic link"):
        atomic_write_text(run / "summary.json", "{}")  # records itself in the ledger
    with pytest.raises(PclsError, match="it is a symbolic link"):
        record_written(run / "x.txt")
    assert important.read_text() == "keep me\n"


@pytest.mark.parametrize("name", ["summary.json", "latest.pdparams", "curves.png"])
def test_a_symlinked_target_file_is_refused_not_written_through(tmp_path, name):
    import numpy as np

    from pcls.engine.checkpoint import save_checkpoint
    from pcls.utils.io import atomic_write_text

    important = tmp_path / "important.txt"
    important.write_text("keep me")
    run = tmp_path / "run"
    run.mkdir()
    (run / name).symlink_to(important)
    with pytest.raises(PclsError, match=f"refusing to write .*{name}: it is a symbolic link"):
        if name.endswith(".pdparams"):
            save_checkpoint(run / "latest", {"w": np.zeros(2, "float32")})
        else:
            atomic_write_text(run / name, "x")
    assert important.read_text() == "keep me" and (run / name).is_symlink()


def test_a_fifo_as_ledger_is_refused_without_blocking(tmp_path):
    import os

    from pcls.utils.io import record_written

    os.mkfifo(tmp_path / ".pcls-written")
    with pytest.raises(PclsError, match="not a regular file"):
        record_written(tmp_path / "x.txt")


# -- #25.4: two runs started at once with one name get two folders ---------------------------------------
_CLAIM = """
import sys, time
from pathlib import Path
from pcls.engine.rundir import allocate_run_dir
go, done = Path(sys.argv[2]), Path(sys.argv[3])
deadline = time.time() + 60
while not go.exists() and time.time() < deadline:
    time.sleep(0.01)
print(allocate_run_dir(Path(sys.argv[1])), flush=True)
while not done.exists() and time.time() < deadline:  # hold the claim, as a run does, until all have claimed
    time.sleep(0.01)
"""


def test_runs_started_together_with_one_name_claim_distinct_folders(tmp_path):
    import subprocess
    import sys

    go, done = tmp_path / "go", tmp_path / "done"
    procs = [subprocess.Popen([sys.executable, "-c", _CLAIM, tmp_path / "out" / "race", go, done],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        go.touch()
        claimed = [proc.stdout.readline().strip() for proc in procs]
    finally:
        done.touch()
        for proc in procs:
            proc.wait(timeout=60)
    assert sorted(claimed) == [str(tmp_path / "out" / n) for n in ("race", "race-2", "race-3", "race-4")]


@contextlib.contextmanager
def _held_by_another_process(folder):
    """Another process claims `folder` (as a running `pcls train` does) until the block ends; yields its pid."""
    import subprocess
    import sys

    go, done = folder.with_name(folder.name + ".go"), folder.with_name(folder.name + ".done")
    go.touch()
    holder = subprocess.Popen([sys.executable, "-c", _CLAIM, folder, go, done], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == str(folder)
        yield holder.pid
    finally:
        done.touch()
        holder.wait(timeout=60)


def test_exist_ok_refuses_a_folder_a_live_run_holds(tmp_path):
    with _held_by_another_process(tmp_path / "race") as pid:
        with pytest.raises(PclsError, match=f"in use by a run that is still going \\(process {pid}\\)"):
            allocate_run_dir(tmp_path / "race", exist_ok=True)
        assert allocate_run_dir(tmp_path / "race") == tmp_path / "race-2"
    assert allocate_run_dir(tmp_path / "race", exist_ok=True) == tmp_path / "race"  # free once the holder ended


def test_resuming_a_run_that_is_still_going_is_refused(tmp_path):
    from pcls.engine.rundir import claim_for_resume

    with _held_by_another_process(tmp_path / "run") as pid:
        with pytest.raises(PclsError, match=f"in use by a run that is still going \\(process {pid}\\)"):
            claim_for_resume(tmp_path / "run")
    assert claim_for_resume(tmp_path / "run") == tmp_path / "run"


def test_a_resume_through_run_directory_claims_the_run(tmp_path):
    """pcls.train(resume=RUN) and a launched resume both take their folder from run_directory: it claims it."""
    from pcls.engine.run_config import RunOptions, run_directory

    with _held_by_another_process(tmp_path / "run") as pid:
        (tmp_path / "run" / "latest.json").write_text("{}")
        options = RunOptions(resume=str(tmp_path / "run"))
        with pytest.raises(PclsError, match=f"in use by a run that is still going \\(process {pid}\\)"):
            run_directory({}, options)
        assert run_directory({}, options, is_main=False) == tmp_path / "run"  # a worker: its launcher claimed it
    assert run_directory({}, options) == tmp_path / "run"


# -- #25.12: names too long for the file system ----------------------------------------------------------
def test_a_300_character_name_or_path_is_one_line(tmp_path):
    cfg = {"Global": {"output_dir": str(tmp_path)}, "Arch": {"name": "TinyNet"}}
    with pytest.raises(PclsError, match="has a part of 300 characters; file names hold at most 255 bytes"):
        run_dir_of(cfg, "n" * 300)
    for wanted in (tmp_path / ("d" * 300) / "run", tmp_path / ("d" * 300)):
        with pytest.raises(PclsError, match="File name too long") as err:
            allocate_run_dir(wanted)
        assert "\n" not in str(err.value)


def test_a_full_disk_while_drawing_curves_still_writes_the_summary(tmp_path, colour_data, tinynet, monkeypatch):
    """#25.12: ENOSPC is simulated by patching matplotlib's savefig (a tmpfs small enough to fail on the PNG but
    not on the summary would depend on the PNG's size)."""
    import errno

    import matplotlib.figure

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", disk_full)
    cfg = write_config(tiny_config(colour_data, tmp_path / "out", epochs=1), tmp_path / "c.yaml")
    result = _train(["-c", cfg, "--json"])
    summary = json.loads(result.stdout)
    run = Path(summary["run_dir"])
    assert summary["status"] == "done" and "curves" not in summary["files"]
    assert json.loads((run / "summary.json").read_text())["status"] == "done"
    assert not (run / "curves.png").exists() and not list(run.glob(".curves.png.*"))  # no temp file left


@pytest.mark.slow
def test_two_pcls_train_with_one_name_at_once_write_two_folders(tmp_path, colour_data):
    """#25.4 end to end: two `pcls train --name race` started together both succeed, each in its own folder."""
    import subprocess
    import sys

    from tests.engine.conftest import pcls_env

    cfg = write_config(tiny_config(colour_data, tmp_path / "out", epochs=1), tmp_path / "c.yaml")
    cmd = [sys.executable, "-m", "pcls", "train", "-c", str(cfg), "--name", "race", "--json"]
    runs = [subprocess.Popen(cmd, env=pcls_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err[-2000:] for _, err in outputs]
    folders = sorted(json.loads(out)["run_dir"] for out, _ in outputs)
    assert folders == [str(tmp_path / "out" / "race"), str(tmp_path / "out" / "race-2")]
    for folder in map(Path, folders):  # each folder holds its own run's results
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["status"] == "done" and summary["run_dir"] == str(folder)
