"""Checkpoints: round trip, optimizer state independent of layer-creation order, corruption detected."""

import json
import random

import numpy as np
import paddle
import paddle.nn as nn
import pytest

from pcls.engine.checkpoint import (
    checkpoint_prefix,
    load_checkpoint,
    load_optimizer_state,
    optimizer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pcls.errors import PclsError


def _trained(seed=0):
    paddle.seed(seed)
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    opt = paddle.optimizer.Momentum(0.1, momentum=0.9, parameters=net.parameters())
    net(paddle.ones([2, 3])).sum().backward()
    opt.step()
    return net, opt


def test_round_trip_with_optimizer_renamed_to_structured_keys(tmp_path):
    net, opt = _trained()
    state = optimizer_state(opt, net)
    assert any(k.startswith("0.weight_") for k in state), state.keys()  # structured, not linear_N.w_0
    save_checkpoint(tmp_path / "latest", net.state_dict(), state, {"epoch": 3, "global_step": 7})
    _ = nn.Linear(5, 5)  # shift paddle's generated parameter names in this process
    fresh, fresh_opt = _trained(seed=1)
    loaded = load_checkpoint(tmp_path)  # a run directory resolves to its latest
    assert loaded["state"]["epoch"] == 3
    fresh.set_state_dict(loaded["model"])
    load_optimizer_state(fresh_opt, fresh, loaded["optimizer"])
    # compared by structured name: sorting paddle's generated names (linear_9 vs linear_10) depends on what
    # else the process built before
    before, after = optimizer_state(opt, net), optimizer_state(fresh_opt, fresh)
    assert before.keys() == after.keys()
    for key, value in before.items():
        if hasattr(value, "numpy"):
            np.testing.assert_array_equal(value.numpy(), after[key].numpy(), err_msg=key)
    for a, b in zip(net.parameters(), fresh.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_corrupt_or_partial_checkpoint_is_a_clear_error(tmp_path):
    net, opt = _trained()
    save_checkpoint(tmp_path / "latest", net.state_dict(), optimizer_state(opt, net), {"epoch": 1})
    weights = tmp_path / "latest.pdparams"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(PclsError, match="latest.pdparams is missing or does not match"):
        load_checkpoint(tmp_path / "latest")
    (tmp_path / "latest.json").write_text("{not json")
    with pytest.raises(PclsError, match="unreadable"):
        load_checkpoint(tmp_path / "latest.pdparams")
    with pytest.raises(PclsError, match="no checkpoint at"):
        checkpoint_prefix(tmp_path / "nothing")


def test_weights_only_file_explains_pretrained_model(tmp_path):
    net, _ = _trained()
    paddle.save(net.state_dict(), str(tmp_path / "w.pdparams"))
    with pytest.raises(PclsError, match="Global.pretrained_model"):
        checkpoint_prefix(tmp_path / "w")


def test_no_temp_files_left_and_state_is_json(tmp_path):
    net, opt = _trained()
    save_checkpoint(tmp_path / "epoch_1", net.state_dict(), None, {"epoch": 1}, extra_files={"_ema.pdparams": net.state_dict()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_1.json", "epoch_1.pdparams", "epoch_1_ema.pdparams"]
    files = json.loads((tmp_path / "epoch_1.json").read_text())["files"]
    assert set(files) == {"epoch_1.pdparams", "epoch_1_ema.pdparams"}


def test_rng_state_round_trip():
    random.seed(1)
    np.random.seed(1)
    paddle.seed(1)
    state = json.loads(json.dumps(rng_state()))
    first = (random.random(), np.random.rand(), float(paddle.rand([1])))
    set_rng_state(state)
    assert (random.random(), np.random.rand(), float(paddle.rand([1]))) == first
