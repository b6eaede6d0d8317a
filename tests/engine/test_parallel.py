"""Data-parallel CPU training by default (#29): the auto rule (pcls.engine.parallel.choose_processes) condition by
condition, how a run's options are resolved (given count, Global.cpu_processes, resumed run), and an auto run in
two processes that equals an explicit `--nproc 2` run on half batches, also across an interruption."""

import dataclasses
import json

import numpy as np
import pytest

from pcls.config import load_config
from pcls.config.schema import validate
from pcls.engine import parallel
from pcls.engine.callbacks import Callback
from pcls.engine.parallel import MIN_WORK_IMAGES_224, RunFacts, choose_processes, plan_processes
from pcls.engine.run_config import RunOptions, process_count
from pcls.errors import PclsError
from pcls.utils.state_files import load_state_file
from tests.engine.conftest import TINYNET, pcls_env, tiny_config, write_config

# a run the rule splits: CPU, 2 cores, batch 64, 5,000 images at 224 px
WORTH_IT = RunFacts(device="cpu", cores=2, batch=64, images=5000, pixels=224 * 224)


def test_a_long_cpu_run_is_split_over_the_cores_with_the_global_batch_kept():
    assert choose_processes(WORTH_IT) == (2, "2 cores, batch 64 = 2 x 32")


@pytest.mark.parametrize("change, words", [
    ({"smoke": True}, "smoke run"),
    ({"in_worker": True}, "launched job"),
    ({"device": "gpu"}, "on gpu"),
    ({"local_callbacks": ("MyCallback",)}, "callback MyCallback passed to pcls.train"),
    ({"cores": 1}, "1 core to use"),
    ({"sampler": "MultiScaleSampler"}, "MultiScaleSampler sets its own batch sizes"),
    ({"images": MIN_WORK_IMAGES_224 - 1}, "less work than 2,000 at 224x224"),
    ({"pixels": 112 * 112, "images": MIN_WORK_IMAGES_224 * 2}, "less work"),  # a quarter of the pixels each
    ({"batch": 24}, "batch 24 does not split"),  # 2 x 12: too few images per process for BatchNorm
    ({"batch": 33}, "batch 33 does not split"),  # odd
])
def test_each_condition_alone_keeps_one_process_and_says_why(change, words):
    processes, reason = choose_processes(dataclasses.replace(WORTH_IT, **change))
    assert processes == 1 and words in reason, reason


def test_the_work_threshold_counts_images_times_pixels():
    at_224 = dataclasses.replace(WORTH_IT, images=MIN_WORK_IMAGES_224)
    assert choose_processes(at_224)[0] == 2
    assert choose_processes(dataclasses.replace(at_224, pixels=112 * 112, images=MIN_WORK_IMAGES_224 * 4))[0] == 2


@pytest.mark.parametrize("cores, batch, expected", [(4, 64, 4), (4, 48, 3), (3, 64, 2), (8, 32, 2), (4, 32, 2)])
def test_the_most_cores_that_split_the_batch_into_shares_of_16_or_more(cores, batch, expected):
    processes, reason = choose_processes(dataclasses.replace(WORTH_IT, cores=cores, batch=batch))
    assert processes == expected and f"batch {batch} = {expected} x {batch // expected}" in reason


def test_too_little_work_per_exchanged_gradient_keeps_one_process():
    """ResNet18_vd (11.7M parameters) at 32 px on batch 32 trained 0.83x in 2 processes; at 64 px 1.15x."""
    resnet18 = dataclasses.replace(WORTH_IT, batch=32, images=10 ** 6, parameters=11_700_000)
    processes, reason = choose_processes(dataclasses.replace(resnet18, pixels=32 * 32))
    assert processes == 1 and "11.7M gradients" in reason, reason
    assert choose_processes(dataclasses.replace(resnet18, pixels=64 * 64))[0] == 2
    # accumulating 2 steps per update halves the exchanges per step
    assert choose_processes(dataclasses.replace(resnet18, pixels=32 * 32, update_freq=2))[0] == 2
    assert choose_processes(dataclasses.replace(resnet18, pixels=32 * 32, parameters=None))[0] == 2  # unknown


def test_trainable_parameters_come_from_the_catalog_and_skip_frozen_teachers():
    from pcls.zoo.catalog import load_catalog

    published = {row["arch"]: row["params_m"] for row in load_catalog().values()}
    student, teacher = published["MobileNetV3_large_x1_0"], published["ResNet50_vd"]
    assert parallel.trainable_parameters({"name": "ResNet50_vd"}) == int(teacher * 1e6)
    assert parallel.trainable_parameters({"name": "NotInTheZoo"}) is None
    models = [{"Teacher": {"name": "ResNet50_vd", "freeze_params": True}},
              {"Student": {"name": "MobileNetV3_large_x1_0", "freeze_params": False}}]
    distill = {"name": "DistillationModel", "models": models}
    assert parallel.trainable_parameters(distill) == int(student * 1e6)
    models[0]["Teacher"]["freeze_params"] = False  # DML: both learn
    assert parallel.trainable_parameters(distill) == int(student * 1e6) + int(teacher * 1e6)


# -- resolving a run's options -------------------------------------------------------------------------------------
@pytest.fixture
def tiny_cfg(tmp_path, colour_data, tinynet):
    return validate(tiny_config(colour_data, tmp_path / "out", epochs=1))


@pytest.fixture
def two_cores(monkeypatch):
    """The rule sees 2 usable cores and no thread budget below them, whatever machine runs the test."""
    monkeypatch.setattr("pcls.engine.cpu.usable_cores", lambda: 2)
    monkeypatch.delenv("PCLS_NUM_THREADS", raising=False)


def _plan(cfg, callbacks=(), **options):
    return plan_processes(cfg, RunOptions.build(cfg, **options), callbacks)


def test_test_sized_runs_stay_in_one_process(tiny_cfg, two_cores):
    planned = _plan(tiny_cfg)
    assert planned.nproc == 1 and planned.process_batch is None
    assert "64 images to train of 256 pixels each is less work" in planned.processes_reason  # Global.image_shape


def test_auto_splits_a_long_run_and_only_parent_side_callbacks_allow_it(tiny_cfg, two_cores, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_WORK_IMAGES_224", 0)
    tiny_cfg["DataLoader"]["Train"]["sampler"]["batch_size"] = 32

    class InParent(Callback):
        runs_in_parent = True

    planned = _plan(tiny_cfg, callbacks=[InParent()])
    assert (planned.nproc, planned.process_batch, planned.distributed) == (2, 16, True)
    planned = _plan(tiny_cfg, callbacks=[InParent(), Callback()])
    assert planned.nproc == 1 and "callback Callback passed to pcls.train" in planned.processes_reason
    assert _plan(tiny_cfg, smoke=True).nproc == 1


def test_a_given_count_is_used_as_given_with_the_batch_per_process(tiny_cfg, two_cores, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_WORK_IMAGES_224", 0)
    tiny_cfg["DataLoader"]["Train"]["sampler"]["batch_size"] = 32
    planned = _plan(tiny_cfg, nproc=3)
    assert (planned.nproc, planned.process_batch) == (3, None)
    planned = _plan(tiny_cfg, nproc=1)
    assert planned.nproc == 1 and planned.processes_reason == "1 process was asked for"
    tiny_cfg["Global"]["cpu_processes"] = 1
    assert _plan(tiny_cfg).processes_reason == "Global.cpu_processes is 1"
    assert _plan(tiny_cfg, nproc="auto").nproc == 2  # --nproc auto over the config's count
    tiny_cfg["Global"]["cpu_processes"] = 2
    assert (_plan(tiny_cfg).nproc, _plan(tiny_cfg).process_batch) == (2, None)
    assert _plan(tiny_cfg, smoke=True).nproc == 1
    assert _plan(tiny_cfg, gpus="0,1").nproc is None  # a GPU job: its count is its GPUs


def test_a_resumed_run_keeps_the_processes_and_batch_it_was_trained_with(tiny_cfg, two_cores, tmp_path):
    run = tmp_path / "run"
    run.mkdir()

    def checkpoint(world, process_batch, config_batch=8):
        state = {"world_size": world, "process_batch": process_batch,
                 "config": {"DataLoader": {"Train": {"sampler": {"batch_size": config_batch}}}}}
        (run / "latest.json").write_text(json.dumps(state))

    checkpoint(2, 4)  # an auto run: batch 8 = 2 x 4, although the rule would now keep test data in one process
    planned = _plan(tiny_cfg, resume=str(run))
    assert (planned.nproc, planned.process_batch) == (2, 4)
    assert _plan(tiny_cfg, resume=str(run), nproc=1).nproc == 1  # a given count wins
    checkpoint(2, 8)  # --nproc 2: the batch was per process
    assert (_plan(tiny_cfg, resume=str(run)).nproc, _plan(tiny_cfg, resume=str(run)).process_batch) == (2, None)
    checkpoint(1, 8)
    assert "trained in 1 process" in _plan(tiny_cfg, resume=str(run)).processes_reason
    checkpoint(2, 4)
    tiny_cfg["DataLoader"]["Train"]["sampler"]["batch_size"] = 7
    with pytest.raises(PclsError, match="batch_size 7 does not split over the 2 processes"):
        _plan(tiny_cfg, resume=str(run))


@pytest.mark.parametrize("value, ok", [("auto", True), (3, True), (1, True), ("x", False), (0, False),
                                       ("2", False), (True, False)])
def test_global_cpu_processes_is_auto_or_a_count(value, ok):
    cfg = {"Global": {"cpu_processes": value}, "Arch": {"name": "ResNet18"}}
    if ok:
        assert validate(cfg)["Global"]["cpu_processes"] == value
    else:
        with pytest.raises(PclsError, match="Global.cpu_processes"):
            validate(cfg)


def test_nproc_is_auto_or_a_count():
    assert [process_count(v) for v in (None, "auto", "2", 3)] == [None, "auto", 2, 3]
    for bad in ("0", "two", -1, 1.5):
        with pytest.raises(PclsError, match="not a process count"):
            process_count(bad)


# -- end to end: the workers are subprocesses, the parent decides ----------------------------------------------------
@pytest.fixture
def auto_splits_tiny_runs(monkeypatch, two_cores):
    """The rule splits the 64-image TinyNet runs here: no work threshold, shares of 4 allowed."""
    import pcls.engine.model as model_module

    monkeypatch.setattr(parallel, "MIN_WORK_IMAGES_224", 0)
    monkeypatch.setattr(parallel, "MIN_PROCESS_BATCH", 4)
    monkeypatch.setattr(model_module, "_plugins_loaded", True)  # TinyNet is imported here already
    monkeypatch.setenv("PCLS_PLUGINS", str(TINYNET))  # ... and loaded by the workers from the file
    monkeypatch.setenv("PCLS_NUM_THREADS", "2")  # 1 math thread in each of the 2 processes, in both runs


def _same_run(a, b):
    wa, wb = load_state_file(a / "latest.pdparams"), load_state_file(b / "latest.pdparams")
    assert set(wa) == set(wb)
    for key in wa:
        np.testing.assert_array_equal(wb[key], wa[key], err_msg=key)

    def rows(run):
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k not in ("images_per_s", "seconds")} for line in lines]

    assert rows(a) == rows(b)


def test_auto_trains_in_two_processes_on_half_batches_exactly_as_nproc_2_does(tmp_path, colour_data, tinynet,
                                                                               auto_splits_tiny_runs):
    import subprocess
    import sys

    from pcls.engine.trainer import train

    auto = tiny_config(colour_data, tmp_path / "out", epochs=1)
    lines = []
    summary = train(load_config(str(write_config(auto, tmp_path / "auto.yaml"))), run_name="auto", log=lines.append)
    assert summary["status"] == "done" and summary["processes"] == 2 and "processes_reason" not in summary
    assert "training in 2 CPU processes (data parallel, batch 8 = 2 x 4); --nproc 1 keeps one process" in lines
    run = tmp_path / "out/auto"
    assert (run / "log/workerlog.1").is_file()
    assert json.loads((run / "launch.json").read_text())["options"]["process_batch"] == 4
    assert load_config(str(run / "config.yaml"))["DataLoader"]["Train"]["sampler"]["batch_size"] == 8  # B kept
    assert json.loads((run / "latest.json").read_text())["process_batch"] == 4

    explicit = tiny_config(colour_data, tmp_path / "out", epochs=1)
    result = subprocess.run([sys.executable, "-m", "pcls", "train", "-c", str(write_config(explicit, tmp_path / "e.yaml")),
                             "--nproc", "2", "-o", "DataLoader.Train.sampler.batch_size=4", "--name", "explicit"],
                            cwd=tmp_path, env=pcls_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    _same_run(run, tmp_path / "out/explicit")


@pytest.mark.slow
def test_an_interrupted_auto_run_resumes_in_its_processes_to_the_same_weights(tmp_path, colour_data, tinynet,
                                                                              auto_splits_tiny_runs, monkeypatch):
    from pcls.engine.trainer import train

    cfg = load_config(str(write_config(tiny_config(colour_data, tmp_path / "out", epochs=2), tmp_path / "c.yaml")))
    assert train(cfg, run_name="full", log=lambda m: None)["processes"] == 2
    monkeypatch.setenv("TINYNET_SIGNAL_AT", "INT:5")  # each worker gets Ctrl-C in its 5th update, saves, exits
    assert train(cfg, run_name="cut", log=lambda m: None)["status"] == "interrupted"
    run = tmp_path / "out/cut"
    assert json.loads((run / "latest.json").read_text())["global_step"] == 5
    monkeypatch.delenv("TINYNET_SIGNAL_AT")
    monkeypatch.setattr(parallel, "MIN_WORK_IMAGES_224", MIN_WORK_IMAGES_224)  # the rule alone: one process now
    summary = train(resume=str(run), log=lambda m: None)
    assert summary["status"] == "done" and summary["processes"] == 2
    _same_run(tmp_path / "out/full", run)


def test_auto_device_reads_the_build_before_importing_paddle(monkeypatch):
    """A CPU build (Paddle's version file: cuda_version False) is the CPU without importing paddle; a CUDA build
    asks paddle itself, as select_device does (stand-ins follow python/paddle/device/cuda/__init__.py's
    device_count and paddle.is_compiled_with_cuda)."""
    import subprocess
    import sys

    from pcls.doctor import probe
    from pcls.engine import env

    code = ("import sys\nfrom pcls.engine.env import cuda_available\n"
            "print(cuda_available(), 'paddle' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "False"], done.stdout + done.stderr[-2000:]

    import paddle

    monkeypatch.setattr(probe, "paddle_build", lambda: {"installed": True, "cuda": "12.6"})
    monkeypatch.setattr(paddle, "is_compiled_with_cuda", lambda: True)
    monkeypatch.setattr(paddle.device.cuda, "device_count", lambda: 1)
    assert env.cuda_available() and parallel._device("auto") == "gpu"
    monkeypatch.setattr(paddle.device.cuda, "device_count", lambda: 0)  # a CUDA build on a machine without GPU
    assert not env.cuda_available() and parallel._device("auto") == "cpu"
