"""`pcls doctor --run`: the CPU rows run for real here, every GPU row is skipped with its capability's reason;
the GPU rows' commands are checked against the command line they will meet on a GPU machine."""

import json
import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from pcls.doctor import selfcheck
from pcls.doctor.capabilities import Capability, assess
from pcls.doctor.probe import collect, pcls_env
from pcls.doctor.selfcheck import STEPS, CheckFailed, Step, Workspace, run_checks
from pcls.errors import PclsError
from tests.doctor.machines import gpu_box

CPU_STEPS = [s.name for s in STEPS if not set(s.needs) & {"train_gpu", "amp_fp16", "multi_gpu", "trt_fp16",
                                                          "trt_int8", "ort_cuda", "ort_trt"}]


class RecordingWorkspace(Workspace):
    """Records every command instead of running it, answering as the real commands' --json do; an export with
    --trt leaves a converted folder, and `rebuild_on_predict` makes the next TensorRT predict rewrite it."""

    def __init__(self, root, rebuild_on_predict=False):
        super().__init__(root)
        self.commands = []
        self.rebuild_on_predict = rebuild_on_predict

    def _run(self, argv):
        self.commands.append(argv)
        args = argv[3:] if argv[1:3] == ["-m", "pcls"] else []
        if args[:1] == ["train"]:
            return {"status": "done", "epochs_done": 2 if "--resume" in args else 1,
                    "final": {"val_top1": 0.5, "train_loss": 1.25}}
        if args[:1] == ["export"] and "--trt" in args:
            folder = selfcheck.Path(args[args.index("--out") + 1]) / "trt_fp16"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "engine_0.trt").write_bytes(b"engine")
        if args[:1] == ["predict"]:
            if self.rebuild_on_predict and "--trt" in args:
                (selfcheck.Path(args[args.index("--model") + 1]) / "trt_fp16" / "engine_0.trt").write_bytes(b"new")
            return {"results": [{}] * (selfcheck.CLASSES * selfcheck.VAL_PER_CLASS)}
        if args[:1] == ["bench"]:
            return {"rows": [{"runtime": "paddle", "p50_ms": 1.0}]}
        return {}


def everything_ok():
    return assess(gpu_box())


def test_every_gpu_command_parses_against_the_cli(tmp_path):
    ws = RecordingWorkspace(tmp_path)
    report = run_checks(everything_ok(), workspace=ws)
    assert [c["status"] for c in report["checks"]] == ["pass"] * len(STEPS), report["checks"]
    from pcls.cli import app

    group = typer.main.get_command(app)
    pcls_commands = [argv[3:] for argv in ws.commands if argv[1:3] == ["-m", "pcls"]]
    for name, *rest in pcls_commands:
        group.commands[name].make_context(name, list(rest))  # a renamed or retyped option raises UsageError
    flat = [" ".join(args) for args in pcls_commands]
    assert any("--gpus 0,1" in c and "--resume" in c for c in flat)  # multi-GPU resumes once too
    assert any("AMP.level=O2" in c for c in flat) and any("AMP.level=O1" in c for c in flat)
    assert any(c.startswith("bench") and "--trt --fp16" in c for c in flat)
    providers = [argv[4] for argv in ws.commands if argv[1] == "-c" and len(argv) > 3]
    assert providers == ["CUDAExecutionProvider", "TensorrtExecutionProvider"]


def test_a_rebuilt_tensorrt_engine_fails_the_cache_row(tmp_path):
    report = run_checks(everything_ok(), workspace=RecordingWorkspace(tmp_path, rebuild_on_predict=True))
    row = next(c for c in report["checks"] if c["name"] == "PIR-TRT cached engine reused")
    assert row["status"] == "fail" and "rebuilt the TensorRT engine" in row["detail"]
    assert report["passed"] is False


def test_a_failure_skips_what_depends_on_it_and_keeps_the_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(selfcheck.tempfile, "mkdtemp", lambda prefix: str(tmp_path / "work"))
    monkeypatch.setattr(selfcheck, "make_data", lambda ws: None)

    def broken(ws):
        raise CheckFailed("error: something went wrong")

    steps = [Step("first", (), (), broken), Step("second", (), ("first",), lambda ws: "ran"),
             Step("gpu", ("train_gpu",), (), lambda ws: "ran"), Step("other", (), (), lambda ws: "ran")]
    rows = [Capability("train_gpu", "train on GPU", False, "this Paddle is a CPU build")]
    report = run_checks(rows, steps=steps)
    assert [(c["status"], c["detail"]) for c in report["checks"]] == [
        ("fail", "error: something went wrong"), ("skip", "needs 'first', which failed"),
        ("skip", "train on GPU ✗: this Paddle is a CPU build"), ("pass", "ran")]
    assert report["passed"] is False and report["workdir"] == str(tmp_path / "work")
    assert (tmp_path / "work").is_dir()


def test_cli_exit_code_is_1_on_a_failure(monkeypatch):
    def broken(ws):
        raise CheckFailed("OSError: libcudnn.so.9: cannot open shared object file")

    monkeypatch.setattr("pcls.doctor.probe.collect", lambda: gpu_box())
    monkeypatch.setattr(selfcheck, "STEPS", [Step("broken", (), (), broken)])
    monkeypatch.setattr(selfcheck, "make_data", lambda ws: None)
    from pcls.cli import app

    result = CliRunner().invoke(app, ["doctor", "--run", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["passed"] is False and report["checks"][0]["detail"].startswith("OSError: libcudnn.so.9")
    selfcheck.shutil.rmtree(report["workdir"])


def test_cpu_training_runs_and_gpu_rows_are_skipped_with_their_reason(tmp_path):
    """The real thing on this machine: 20 CPU training steps with a resume; every GPU row skipped because its
    capability row is ✗, with that row's reason."""
    capabilities = assess(collect())
    rows = {row.key: row for row in capabilities}
    assert rows["paddle"].ok and rows["train_cpu"].ok, (rows["paddle"], rows["train_cpu"])  # pcls's own settings read
    steps = [s for s in STEPS if s.name == "train fp32, CPU" or not set(s.needs) <= {"train_cpu", "paddle",
                                                                                  "int8_cpu"}]
    report = run_checks(capabilities, tmp_path / "work", steps=steps)
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["train fp32, CPU"]["status"] == "pass", by_name["train fp32, CPU"]
    assert "20 steps (resumed at step 10)" in by_name["train fp32, CPU"]["detail"]
    for step in steps[1:]:
        failing = [rows[key] for key in step.needs if not rows[key].ok]
        if failing:  # this machine cannot run it: skipped with the capability's own words
            assert by_name[step.name] == {**by_name[step.name], "status": "skip",
                                          "detail": f"{failing[0].name} ✗: {failing[0].reason}"}
        else:
            assert by_name[step.name]["status"] != "fail", by_name[step.name]


@pytest.mark.slow
def test_doctor_run_on_this_machine(tmp_path):
    """`pcls doctor --run --json` end to end: every row it can run passes, the others are skipped."""
    done = subprocess.run([sys.executable, "-m", "pcls", "doctor", "--run", "--json", "--workdir",
                           str(tmp_path / "work")], capture_output=True, text=True, env=pcls_env(), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert all(statuses[name] == "pass" for name in CPU_STEPS), statuses
    ok = {row["key"] for row in report["capabilities"] if row["ok"]}
    for step in STEPS:
        assert statuses[step.name] == ("pass" if set(step.needs) <= ok else "skip"), step.name


def test_workdir_must_be_new_empty_or_an_earlier_check(tmp_path):
    theirs = tmp_path / "theirs"
    (theirs / "data" / "images").mkdir(parents=True)
    (theirs / "data" / "images" / "keep.jpg").write_bytes(b"mine")
    with pytest.raises(PclsError, match="is not empty and was not made by 'pcls doctor --run'"):
        run_checks(everything_ok(), theirs, steps=[])
    assert (theirs / "data" / "images" / "keep.jpg").read_bytes() == b"mine"
    again = tmp_path / "again"
    for _ in range(2):  # an earlier check's folder is reused
        assert run_checks(everything_ok(), again, steps=[])["passed"] is True
