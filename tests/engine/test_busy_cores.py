"""`pcls train` on cores other work keeps busy says once that it will be slower and what helps (issue #24 item 7)."""

import logging

import pytest

from pcls.engine import cpu

pytest.importorskip("paddle")


@pytest.mark.parametrize("load, threads, warned", [(9.5, 2, True), (0.3, 2, False), (9.5, 1, False)])
def test_a_busy_machine_gets_one_line_naming_pcls_num_threads(monkeypatch, caplog, load, threads, warned):
    monkeypatch.setattr(cpu.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(cpu, "usable_cores", lambda: 2)
    monkeypatch.setenv("PCLS_NUM_THREADS", str(threads))
    with caplog.at_level(logging.INFO, logger="pcls"):
        cpu.configure_threads(1, 0)
    lines = [r.getMessage() for r in caplog.records if "busy" in r.getMessage()]
    assert len(lines) == int(warned)
    if warned:
        assert "PCLS_NUM_THREADS=1" in lines[0] and "slower" in lines[0]
