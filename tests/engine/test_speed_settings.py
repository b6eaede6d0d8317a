"""The CPU thread count a training process uses: chosen from the environment on purpose (pcls/engine/cpu.py),
split across the processes of a job, applied by the Trainer, and a warning when the threads ask for more cores
than there are."""

import logging

import pytest

from pcls.config import load_config
from pcls.engine import cpu
from pcls.errors import PclsError
from tests.engine.conftest import tiny_config, write_config


@pytest.mark.parametrize("env, world, expected", [
    ({}, 1, 2),                                               # every core of the (2-core) machine
    ({}, 2, 1),                                               # ... split between the processes
    ({"OMP_NUM_THREADS": "1"}, 1, 2),                         # what Paddle writes when nothing is set
    ({"OMP_NUM_THREADS": "2"}, 1, 2),                         # a user's export is honoured (up to the cores)
    ({"OMP_NUM_THREADS": "2"}, 2, 1),                         # ... and split between the processes
    ({"PCLS_NUM_THREADS": "2"}, 1, 2),
    ({"PCLS_NUM_THREADS": "2", "OMP_NUM_THREADS": "8"}, 1, 2),  # pcls's own setting wins
    ({"PCLS_NUM_THREADS": "2"}, 4, 1),                        # never below one thread
])
def test_thread_count_comes_from_the_environment(env, world, expected):
    assert cpu.compute_threads(world, env, cores=2) == expected


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_thread_count_is_one_clear_error(value):
    with pytest.raises(PclsError, match=f"PCLS_NUM_THREADS={value!r}.*whole number"):
        cpu.compute_threads(1, {"PCLS_NUM_THREADS": value})


def test_oversubscription_is_warned_about(monkeypatch, caplog):
    calls = []
    import paddle

    monkeypatch.setattr(paddle.base.core, "set_num_threads", calls.append)
    monkeypatch.setattr(cpu, "usable_cores", lambda: 2)
    monkeypatch.setattr(cpu.os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # idle: no busy-cores line either
    monkeypatch.setenv("PCLS_NUM_THREADS", "2")
    with caplog.at_level(logging.INFO, logger="pcls.engine.cpu"):
        assert cpu.configure_threads(world=1, num_workers=0) == 2
    assert calls == [2] and not [r for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()
    monkeypatch.setenv("PCLS_NUM_THREADS", "3")
    with caplog.at_level(logging.INFO, logger="pcls.engine.cpu"):
        cpu.configure_threads(world=1, num_workers=0)
    assert any(r.levelno == logging.WARNING and "more than the 2 core" in r.getMessage() for r in caplog.records)


def test_trainer_sets_the_thread_count_on_cpu(tmp_path, colour_data, tinynet, monkeypatch):
    import paddle

    from pcls.engine.trainer import Trainer

    calls = []
    monkeypatch.setattr(paddle.base.core, "set_num_threads", calls.append)
    monkeypatch.setenv("PCLS_NUM_THREADS", "2")
    cfg = load_config(str(write_config(tiny_config(colour_data, tmp_path / "out", epochs=1), tmp_path / "c.yaml")))
    trainer = Trainer(cfg)
    assert trainer.cpu_threads == 2 and calls == [2]


def test_the_training_progress_bar_runs_no_refresh_thread(tmp_path, colour_data, tinynet):
    """Rich's 10 Hz refresh thread beside the training thread cost ~15% of an epoch: the bar is drawn from
    the loop instead (pcls/cli/progress.py)."""
    import threading

    from rich.live import _RefreshThread

    from pcls.cli.progress import ProgressBar
    from pcls.engine.callbacks import Callback
    from pcls.engine.trainer import train

    seen = []

    class Watch(Callback):
        def on_batch_end(self, trainer, step, batch, outputs):
            seen.append(any(isinstance(t, _RefreshThread) for t in threading.enumerate()))

    bar = ProgressBar()
    cfg = load_config(str(write_config(tiny_config(colour_data, tmp_path / "out", epochs=1), tmp_path / "c.yaml")))
    summary = train(cfg, callbacks=[bar, Watch()], log=lambda msg: None)
    assert summary["status"] == "done" and seen and not any(seen)
    assert bar.bar is None  # stopped at the end of the epoch


@pytest.mark.parametrize("to_static", [False, True])
def test_cpu_training_computes_small_dense_convs_as_one_batched_product(tmp_path, colour_data, tinynet, to_static):
    """On CPU the trainer switches the model's dense convs to the batched path (pcls/arch/layers/gemm_conv.py);
    a traced (to_static) program keeps Paddle's kernel."""
    import paddle

    from pcls.arch.layers.gemm_conv import BatchedGemmConv2D
    from pcls.engine.trainer import Trainer

    cfg = load_config(str(write_config(tiny_config(colour_data, tmp_path / "out", epochs=1, to_static=to_static),
                                       tmp_path / "c.yaml")))
    trainer = Trainer(cfg)
    convs = [layer for layer in trainer.parts.net.sublayers() if isinstance(layer, paddle.nn.Conv2D)]
    assert convs and all(isinstance(layer, BatchedGemmConv2D) != to_static for layer in convs)



def test_cpu_eval_uses_the_batched_convs_and_gives_the_same_metrics(tmp_path, colour_data, tinynet, monkeypatch):
    from pcls.arch.layers import gemm_conv as gc
    from pcls.engine.evaluator import evaluate
    from pcls.engine.trainer import train

    cfg = tiny_config(colour_data, tmp_path / "out", epochs=1)
    summary = train(cfg, log=lambda msg: None)
    weights = summary["files"]["best_model"] if "best_model" in summary["files"] else summary["files"]["latest"]
    switched = []
    real = gc.gemm_conv
    monkeypatch.setattr(gc, "gemm_conv", lambda model: switched.append(real(model)) or switched[-1])
    monkeypatch.setenv("PCLS_EVAL_INFERENCE", "0")  # dygraph evaluation, where the batched convs apply
    results = {}
    for setting in ("0", "1"):
        monkeypatch.setenv(gc.SWITCH_ENV, setting)
        results[setting] = evaluate(tiny_config(colour_data, tmp_path / "out"), weights=weights,
                                    out_dir=tmp_path / f"eval{setting}")
    assert switched == [0, 2]  # TinyNet's two convs, on the second evaluation only
    assert results["0"]["top1"] == results["1"]["top1"] and results["0"]["samples"] == results["1"]["samples"]
    assert abs(results["0"]["loss"] - results["1"]["loss"]) < 1e-5
