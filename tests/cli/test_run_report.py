"""The closing report of `pcls train` / `pcls distill` (pcls.cli.runs.report_run) says how many processes trained
and, for one, why auto did not split the run."""

from pcls.cli.common import out
from pcls.cli.runs import report_run


def _summary(tmp_path, **extra):
    return {"status": "done", "run_dir": str(tmp_path), "epochs_done": 2, "seconds": 12.0, "best": {}, "final": {},
            "files": {}, **extra}


def _printed(summary) -> str:
    with out.capture() as captured:
        report_run(summary, json_out=False, title="training run")
    return captured.get()


def test_the_report_names_the_processes_and_why_one(tmp_path):
    row = next(line for line in _printed(_summary(tmp_path, processes=2)).splitlines() if "processes" in line)
    assert row.split("│")[2].strip() == "2"
    one = _printed(_summary(tmp_path, processes=1, processes_reason="a smoke run is one process"))
    assert "1 (a smoke run is one process)" in one


def test_a_summary_without_processes_has_no_such_row(tmp_path):
    assert "processes" not in _printed(_summary(tmp_path))
