"""A thread count above the usable cores is capped with a note (issue #25 item 12): PCLS_NUM_THREADS=99999 made
OpenMP abort the process."""

import logging
import pytest

from pcls.engine import cpu


@pytest.mark.parametrize("name", ["PCLS_NUM_THREADS", "OMP_NUM_THREADS"])
def test_more_threads_than_cores_are_capped_with_a_note(name, caplog):
    with caplog.at_level(logging.WARNING, logger="pcls.engine.cpu"):
        assert cpu.compute_threads(1, {name: "99999"}, cores=2) == 2
        assert cpu.compute_threads(2, {name: "99999"}, cores=2) == 1
    notes = [r.getMessage() for r in caplog.records]
    assert notes[0] == f"CPU: {name}=99999 asks for more than the 2 core(s) this process may use; using 2"


def test_paddle_is_never_asked_for_more_threads_than_cores(monkeypatch):
    import paddle

    calls = []
    monkeypatch.setattr(paddle.base.core, "set_num_threads", calls.append)
    monkeypatch.setenv("PCLS_NUM_THREADS", "99999")
    assert cpu.configure_threads(world=1) == cpu.usable_cores() and calls == [cpu.usable_cores()]
