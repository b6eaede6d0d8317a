"""Every schedule's value at chosen updates against its formula (worked out by hand here)."""

import math

import pytest

from pcls.errors import PclsError
from pcls.optim.lr import build_schedule, paddle_scheduler

STEPS = 10  # updates per epoch in these tests


def lrs(cfg, epochs=10, scale=1.0):
    sched = build_schedule(cfg, epochs, STEPS, scale)
    return sched


def test_cosine_no_warmup():
    s = lrs({"name": "Cosine", "learning_rate": 0.1})
    assert s(0) == pytest.approx(0.1)
    assert s(50) == pytest.approx(0.05)  # half way: 0.1 * (1 + cos(pi/2)) / 2
    assert s(25) == pytest.approx(0.05 * (1 + math.cos(math.pi / 4)))
    assert s(100) == pytest.approx(0.0, abs=1e-12)


def test_cosine_with_warmup_and_eta_min():
    s = lrs({"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 2, "warmup_start_lr": 0.02, "eta_min": 0.01})
    assert s(0) == pytest.approx(0.02)
    assert s(10) == pytest.approx(0.02 + 0.08 * 10 / 20)  # linear warm-up over 20 updates
    assert s(20) == pytest.approx(0.1)  # decay starts at the end of warm-up
    # decay over (10 - 2) epochs = 80 updates: at 40 updates in, half way
    assert s(60) == pytest.approx(0.01 + 0.5 * 0.09 * (1 + math.cos(math.pi * 40 / 80)))


def test_cosine_warmup_defaults_to_five_epochs():
    s = lrs({"name": "CosineWarmup", "learning_rate": 0.4})
    assert s(25) == pytest.approx(0.4 * 25 / 50)
    assert s(50) == pytest.approx(0.4)


def test_piecewise():
    s = lrs({"name": "Piecewise", "decay_epochs": [3, 6], "values": [0.1, 0.01, 0.001]})
    assert [s(0), s(29), s(30), s(59), s(60), s(99)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_piecewise_value_count_checked():
    with pytest.raises(PclsError, match="one more value"):
        lrs({"name": "Piecewise", "decay_epochs": [3, 6], "values": [0.1]})
    # as many values as boundaries (PaddleClas's StrongBaselineAttr): paddle keeps the last value after the last one
    s = lrs({"name": "Piecewise", "decay_epochs": [3, 6], "values": [0.1, 0.01]})
    assert [s(29), s(30), s(60), s(99)] == pytest.approx([0.1, 0.01, 0.01, 0.01])


def test_linear_and_polynomial():
    s = lrs({"name": "Linear", "learning_rate": 0.1, "end_lr": 0.0})
    assert s(0) == pytest.approx(0.1)
    assert s(25) == pytest.approx(0.075)
    assert s(100) == pytest.approx(0.0)
    p = lrs({"name": "Polynomial", "learning_rate": 0.1, "end_lr": 0.01, "power": 2.0})
    assert p(50) == pytest.approx(0.09 * 0.25 + 0.01)


def test_exponential_steps_once_per_epoch():
    s = lrs({"name": "Exponential", "learning_rate": 0.1, "gamma": 0.5})
    assert [s(0), s(9), s(10), s(25)] == pytest.approx([0.1, 0.1, 0.05, 0.025])
    s = lrs({"name": "Exponential", "learning_rate": 0.1, "decay_rate": 0.97, "decay_epochs": 2.4})
    assert s(23) == pytest.approx(0.1) and s(24) == pytest.approx(0.097) and s(48) == pytest.approx(0.1 * 0.97**2)


def test_step_and_constant():
    s = lrs({"name": "Step", "learning_rate": 0.1, "step_size": 3, "gamma": 0.1})
    assert [s(29), s(30), s(60)] == pytest.approx([0.1, 0.01, 0.001])
    c = lrs({"name": "Constant", "learning_rate": 0.3})
    assert c(0) == c(99) == 0.3


def test_scale_multiplies_every_rate():
    s = lrs({"name": "Piecewise", "decay_epochs": [5], "values": [0.1, 0.01]}, scale=0.25)
    assert s(0) == pytest.approx(0.025) and s(60) == pytest.approx(0.0025)


def test_unknown_schedule_names_the_choices():
    with pytest.raises(PclsError, match="did you mean Cosine"):
        lrs({"name": "Cosin", "learning_rate": 0.1})


def test_paddle_scheduler_follows_the_schedule_and_resumes():
    s = lrs({"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 1})
    sched = paddle_scheduler(s)
    seen = [sched()]
    for _ in range(14):
        sched.step()
        seen.append(sched())
    assert seen == pytest.approx([s(k) for k in range(15)])
    resumed = paddle_scheduler(s, start_step=14)
    assert resumed() == pytest.approx(s(14))
