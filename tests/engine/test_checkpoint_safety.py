"""Checkpoints never run code and never lose the previous one: a crafted `.pdopt` (with its recorded digest
updated, so only the unpickler stands in the way) or RNG field is refused or ignored without running, the
optimizer and scheduler states come back through the restricted loader, and a write that fails half-way
(disk full) is one error line with the previous checkpoint intact."""

import errno
import hashlib
import json
import pickle

import numpy as np
import paddle
import paddle.nn as nn
import pytest

from pcls.engine.checkpoint import (
    load_checkpoint,
    load_optimizer_state,
    optimizer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pcls.errors import PclsError
from tests.engine.conftest import run_pcls, tiny_config, write_config


class _RunsCode:
    """Unpickling this calls exec(), which creates the marker file if the loader lets it run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def _trained(optimizer="AdamW"):
    paddle.seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    sched = paddle.optimizer.lr.LinearWarmup(paddle.optimizer.lr.CosineAnnealingDecay(0.1, 10), 2, 0.0, 0.1)
    opt = getattr(paddle.optimizer, optimizer)(learning_rate=sched, parameters=net.parameters())
    for _ in range(2):
        net(paddle.ones([2, 3])).sum().backward()
        opt.step()
        opt.clear_grad()
        sched.step()
    return net, opt, sched


def _plant(checkpoint_file, payload: bytes) -> None:
    """Replace a checkpoint file and update the size/sha1 its JSON records, as an attacker would."""
    checkpoint_file.write_bytes(payload)
    json_path = checkpoint_file.with_name(checkpoint_file.name.split(".")[0] + ".json")
    state = json.loads(json_path.read_text())
    state["files"][checkpoint_file.name] = {"size": len(payload), "sha1": hashlib.sha1(payload).hexdigest()}
    json_path.write_text(json.dumps(state))


def test_optimizer_and_scheduler_state_round_trip_through_the_restricted_loader(tmp_path):
    net, opt, sched = _trained()
    save_checkpoint(tmp_path / "latest", net.state_dict(), optimizer_state(opt, net), {"epoch": 1})
    loaded = load_checkpoint(tmp_path)
    assert isinstance(loaded["optimizer"]["LR_Scheduler"], dict)  # nested dicts of numbers survive

    paddle.seed(1)
    fresh = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    fresh_sched = paddle.optimizer.lr.LinearWarmup(paddle.optimizer.lr.CosineAnnealingDecay(0.1, 10), 2, 0.0, 0.1)
    fresh_opt = paddle.optimizer.AdamW(learning_rate=fresh_sched, parameters=fresh.parameters())
    fresh.set_state_dict(loaded["model"])
    load_optimizer_state(fresh_opt, fresh, loaded["optimizer"])
    assert fresh_sched.last_epoch == sched.last_epoch and fresh_sched() == sched()
    for model, optim in ((net, opt), (fresh, fresh_opt)):  # the restored moments act exactly as the originals
        model(paddle.full([2, 3], 0.5)).sum().backward()
        optim.step()
    for a, b in zip(net.parameters(), fresh.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_malicious_pdopt_is_refused_in_one_line_and_never_runs(tmp_path):
    net, opt, _ = _trained("Momentum")
    save_checkpoint(tmp_path / "latest", net.state_dict(), optimizer_state(opt, net), {"epoch": 1})
    marker = tmp_path / "marker"
    _plant(tmp_path / "latest.pdopt", pickle.dumps({"fc.weight_velocity_0": _RunsCode(marker)}, protocol=4))
    with pytest.raises(PclsError) as err:
        load_checkpoint(tmp_path)
    assert "latest.pdopt" in str(err.value) and "'builtins.exec'" in str(err.value)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_optimizer_state_holds_only_plain_values(tmp_path):
    net, opt, _ = _trained("Momentum")
    save_checkpoint(tmp_path / "latest", net.state_dict(), optimizer_state(opt, net), {"epoch": 1})
    # an allowed global used to build something that is not an array, number, string, list or dict
    crafted = {"LR_Scheduler": {"last_lr": np.dtype("float32")}}
    _plant(tmp_path / "latest.pdopt", pickle.dumps(crafted, protocol=4))
    only_plain = r"latest.pdopt: entry 'LR_Scheduler.last_lr' is a \w*DType; a state file holds only arrays"
    with pytest.raises(PclsError, match=only_plain):
        load_checkpoint(tmp_path)


@pytest.mark.slow  # one real training run (~20 s)
def test_resume_from_a_malicious_checkpoint_is_one_line_exit_2(tmp_path, colour_data):
    cfg = write_config(tiny_config(colour_data, tmp_path / "out", epochs=1), tmp_path / "c.yaml")
    first = run_pcls(["train", "-c", cfg, "--name", "run"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    run = tmp_path / "out" / "run"
    marker = tmp_path / "marker"
    _plant(run / "latest.pdopt", pickle.dumps({"x": _RunsCode(marker)}, protocol=4))
    resumed = run_pcls(["train", "--resume", run], cwd=tmp_path)
    assert resumed.returncode == 2, resumed.stderr[-2000:]
    errors = [line for line in resumed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "refusing to load" in errors[0] and "Traceback" not in resumed.stderr
    assert not marker.exists()


def test_rng_state_is_plain_json_and_a_pickled_field_is_never_unpickled(tmp_path, caplog):
    paddle.seed(3)
    state = rng_state()
    text = json.dumps(state)
    assert all(isinstance(g["engine"], str) for g in state["paddle"])
    first = float(paddle.rand([1]))
    set_rng_state(json.loads(text))
    assert float(paddle.rand([1])) == first  # paddle's stream restored from the JSON values alone

    marker = tmp_path / "marker"
    import base64

    legacy = dict(state, paddle=base64.b64encode(pickle.dumps(_RunsCode(marker))).decode("ascii"))
    with caplog.at_level("WARNING"):
        set_rng_state(legacy)
    assert not marker.exists() and "old pickled form" in caplog.text
    with pytest.raises(PclsError, match="RNG state is malformed \\(paddle"):
        set_rng_state(dict(state, paddle=[{"device": -1, "seed": "os.system", "offset": 0, "engine": "1 2"}]))
    with pytest.raises(PclsError, match="RNG state is malformed \\((ValueError|IndexError)"):
        set_rng_state(dict(state, numpy=["MT19937", [1, 2], 0, 0, 0.0]))


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    net, opt, _ = _trained("Momentum")
    save_checkpoint(tmp_path / "latest", net.state_dict(), optimizer_state(opt, net), {"epoch": 1})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    import pcls.utils.state_files as weights

    real_save = weights.dump_pickle  # the one pickle writer checkpoints go through
    calls = []

    def save_then_fill_the_disk(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # the .pdopt: half written, then the disk is full
            with open(path, "wb") as fh:
                fh.write(b"\x80\x04partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(weights, "dump_pickle", save_then_fill_the_disk)
    net(paddle.ones([2, 3])).sum().backward()
    opt.step()
    with pytest.raises(PclsError) as err:
        save_checkpoint(tmp_path / "latest", net.state_dict(), optimizer_state(opt, net), {"epoch": 2})
    message = str(err.value)
    assert "disk is full" in message and "previous checkpoint" in message and "\n" not in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # same files, same bytes, no temp
    assert load_checkpoint(tmp_path)["state"]["epoch"] == 1
