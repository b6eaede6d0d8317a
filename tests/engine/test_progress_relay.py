"""The progress bar of a launched job: rank 0 relays its progress events as log lines, the parent reads them back
and draws the same bar a single process draws (pcls/engine/progress_events.py, pcls/cli/progress.py)."""

import logging

import pytest

from pcls.cli.progress import ProgressBar
from pcls.config import load_config
from pcls.engine.callbacks import Callback
from pcls.engine.launch import _echo, split_callbacks
from pcls.engine.progress_events import RELAY_PREFIX, ProgressEvents, ProgressRelay, parse_progress_line
from pcls.errors import PclsError
from tests.engine.conftest import TINYNET, tiny_config, write_config
from tests.engine.test_launch import PortableMarker


class RecordedBar(ProgressBar):
    """The CLI's bar, keeping what each epoch's bar showed when it stopped."""

    def __init__(self):
        super().__init__()
        self.shown = []

    def _stop(self):
        if self.bar is not None:
            task = self.bar.tasks[0]
            self.shown.append((task.description, task.completed, task.total, dict(task.fields)))
        super()._stop()


class EventLog(Callback):
    """A parent-side callback: the relayed events, in order."""

    runs_in_parent = True

    def __init__(self):
        self.events = []

    def on_progress(self, event):
        self.events.append(event)


def test_relayed_lines_draw_the_bar_the_trainer_draws(tmp_path, colour_data, tinynet, capsys, monkeypatch):
    """One run with both the bar and the relay: the relay's lines, parsed and fed to another bar, give that bar
    exactly what the trainer-fed bar showed."""
    from pcls.engine.trainer import train

    monkeypatch.setattr(ProgressEvents, "INTERVAL_S", 0.0)  # every batch: the comparison covers each event
    direct = RecordedBar()
    cfg = load_config(str(write_config(tiny_config(colour_data, tmp_path / "out", epochs=2), tmp_path / "c.yaml")))
    summary = train(cfg, callbacks=[direct, ProgressRelay()], log=lambda message: None)
    assert summary["status"] == "done"
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith(RELAY_PREFIX)]
    relayed = RecordedBar()
    for line in lines:
        relayed.on_progress(parse_progress_line(line))

    assert relayed.shown == direct.shown
    assert [shown[0] for shown in direct.shown] == ["epoch 1/2", "epoch 2/2"]
    assert all(completed == total for _, completed, total, _ in direct.shown)
    assert all("img/s" in fields["rate"] and "loss " in fields["info"] for *_, fields in direct.shown)
    events = [parse_progress_line(line)["event"] for line in lines]
    batches = summary["epochs_done"] * direct.shown[0][2]
    assert events.count("batch") == batches and events[-1] == "train_end"


def test_batch_events_are_throttled_but_each_epoch_ends_on_its_last_batch(tmp_path, colour_data, tinynet):
    from pcls.engine.trainer import train

    class Events(ProgressEvents):
        INTERVAL_S = 3600.0

        def __init__(self):
            self.events = []

        def on_progress(self, event):
            self.events.append(event)

    source = Events()
    cfg = load_config(str(write_config(tiny_config(colour_data, tmp_path / "out", epochs=2), tmp_path / "c.yaml")))
    train(cfg, callbacks=[source], log=lambda message: None)
    starts = [e for e in source.events if e["event"] == "epoch_start"]
    batches = [e for e in source.events if e["event"] == "batch"]
    assert len(starts) == 2 and starts[0]["total"] > 2
    # the first batch of the run, then only each epoch's last
    assert [e["batch"] for e in batches] == [1, starts[0]["total"], starts[1]["total"]]


def test_the_echo_hands_relay_lines_to_the_listeners_and_logs_the_rest(caplog):
    listener = EventLog()
    lines = [RELAY_PREFIX + '{"event":"epoch_start","epoch":1,"epochs":2,"total":8,"completed":0}',
             "epoch 1/2  train_loss 1.2",
             RELAY_PREFIX + '{"event":"batch","bat',  # cut short: neither an event nor log text
             "I1207 10:00:00.000 launch.cc] gloo",  # launcher chatter
             RELAY_PREFIX + '{"event":"epoch_end"}']
    with caplog.at_level(logging.INFO, logger="pcls.engine.launch"):
        for line in lines:
            _echo(line, listeners=[listener])
    assert [e["event"] for e in listener.events] == ["epoch_start", "epoch_end"]
    assert listener.events[0]["total"] == 8
    assert [r.getMessage() for r in caplog.records] == ["epoch 1/2  train_loss 1.2"]


def test_parent_side_callbacks_stay_and_rank_0_relays_only_for_them(tmp_path):
    bar, marker = ProgressBar(), PortableMarker(str(tmp_path))
    in_parent, sent = split_callbacks([bar, marker])
    assert in_parent == [bar]
    assert [spec["class"] for spec in sent] == ["tests.engine.test_launch:PortableMarker",
                                                "pcls.engine.progress_events:ProgressRelay"]
    in_parent, sent = split_callbacks([marker])  # --json: no bar, so no relay lines either
    assert in_parent == [] and [spec["class"] for spec in sent] == ["tests.engine.test_launch:PortableMarker"]

    class Deaf(Callback):
        runs_in_parent = True

    with pytest.raises(PclsError, match="Deaf has runs_in_parent = True but no on_progress"):
        split_callbacks([Deaf()])


def test_progress_bar_for_every_run_but_json():
    from pcls.cli.runs import progress_callbacks

    assert [type(c) for c in progress_callbacks(False)] == [ProgressBar]
    assert progress_callbacks(True) == []


def test_a_two_process_run_relays_its_progress_to_the_parent(tmp_path, colour_data, tinynet, monkeypatch):
    """`pcls.train(..., nproc=2)`: a parent-side callback receives rank 0's epochs and batches; none of the relay
    lines reach the caller's log."""
    import pcls
    import pcls.engine.model as model_module

    monkeypatch.setattr(model_module, "_plugins_loaded", True)  # TinyNet is imported here already
    monkeypatch.setenv("PCLS_PLUGINS", str(TINYNET))  # ... and loaded by the workers from the file
    cfg = tiny_config(colour_data, tmp_path / "out", epochs=2)
    cfg["DataLoader"]["Train"]["sampler"]["batch_size"] = 4  # per process
    listener, lines = EventLog(), []
    summary = pcls.train(str(write_config(cfg, tmp_path / "c.yaml")), nproc=2, log=lines.append,
                         callbacks=[listener])
    assert summary["status"] == "done"
    events = listener.events
    starts = [i for i, e in enumerate(events) if e["event"] == "epoch_start"]
    ends = [i for i, e in enumerate(events) if e["event"] == "epoch_end"]
    assert [(events[i]["epoch"], events[i]["epochs"]) for i in starts] == [(1, 2), (2, 2)]
    for start, end in zip(starts, ends, strict=True):
        epoch = events[start + 1:end]
        assert epoch and all(e["event"] == "batch" and e["images_per_s"] > 0 for e in epoch)
        assert epoch[-1]["batch"] == events[start]["total"]  # its last batch always arrives
    assert [e["event"] for e in events[-2:]] == ["train_end", "job_end"]
    assert any(line.startswith("epoch 2/2") for line in lines)  # rank 0's other lines are still echoed
    assert not any(RELAY_PREFIX.strip() in line for line in lines)
    assert RELAY_PREFIX in (tmp_path / "out/TinyNet/log/workerlog.0").read_text()
    assert RELAY_PREFIX not in (tmp_path / "out/TinyNet/log/workerlog.1").read_text()


@pytest.mark.parametrize("line", ["pcls-progress", "pcls-progress [1, 2]", " pcls-progress {}"])
def test_lines_that_are_not_events_parse_to_no_event(line):
    assert not parse_progress_line(line)
