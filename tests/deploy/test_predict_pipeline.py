"""The predictor's pipeline: workers (processes for Paddle Inference, which holds the GIL while the model runs;
threads otherwise) decode and pre-process the next batches while the model runs the current one; results stay in
input order, a bad image is that image's error, a worker's failure is one line, and an interrupt stops the
workers."""

import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

import pcls  # noqa: E402
from pcls.deploy.export import ExportRequest, export  # noqa: E402
from pcls.deploy import prepare  # noqa: E402
from pcls.deploy.predictor import PROCESS_MIN_BATCHES, Predictor  # noqa: E402
from pcls.errors import PclsError  # noqa: E402
from pcls.utils.state_files import save_state_file  # noqa: E402
from tests.reference import fill_weights  # noqa: E402

MODEL = "MobileNetV1_x0_25"
BATCH = 3


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    model = pcls.create_model(MODEL, class_num=10)
    fill_weights(model)
    weights = root / "weights.pdparams"
    save_state_file({k: v.numpy() for k, v in model.state_dict().items()}, weights)
    out = root / "export"
    export(ExportRequest(model_name=MODEL, out_dir=out, weights=str(weights), input_size=64,
                         measure=lambda *_: {"paddle": 0.0, "onnx": 0.0}))
    return out


def make_images(folder: Path, count: int) -> list:
    """Images that differ from each other (colour and a disc at a different place), so their scores differ."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        img = np.full((90, 120, 3), (20 * i % 256, 255 - 15 * i % 256, 40 + 7 * i % 200), np.uint8)
        cv2.circle(img, (20 + 8 * i % 80, 45), 15 + i % 20, (255 - 20 * i % 256, 30 * i % 256, 90), -1)
        path = folder / f"img_{i:02d}.jpg"
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths


def one_at_a_time(predictor, paths) -> list:
    return [predictor.postprocess(predictor.infer(predictor.preprocess_one(p)[None]))[0] for p in paths]


def assert_same_result(got: dict, expected: dict) -> None:
    assert got["class_ids"] == expected["class_ids"]
    np.testing.assert_allclose(got["scores"], expected["scores"], rtol=1e-4, atol=1e-6)


needs_fork = pytest.mark.skipif(not prepare.processes_available(), reason="worker processes need fork (Linux)")
MAKERS = [pytest.param(False, id="threads"), pytest.param(True, id="processes", marks=needs_fork)]


@needs_fork
def test_processes_make_the_batches_when_the_model_leaves_cores_free(export_dir, monkeypatch):
    from pcls.deploy import predictor as predictor_module

    monkeypatch.setattr(predictor_module, "cpu_threads", lambda cap=None: 4)

    def maker_kind(batches, **options):
        maker = Predictor(export_dir, runtime="paddle", batch_size=BATCH, **options)._batch_maker(batches, ahead=3)
        maker.close()
        return type(maker)

    many = PROCESS_MIN_BATCHES + 1
    assert maker_kind(many, threads=2) is prepare.ProcessBatches
    assert maker_kind(many, threads=4) is prepare.ThreadBatches  # the model takes every core
    assert maker_kind(PROCESS_MIN_BATCHES, threads=2) is prepare.ThreadBatches  # too short to pay for starting them
    assert maker_kind(2, threads=4, processes=True) is prepare.ProcessBatches
    assert maker_kind(many, threads=2, processes=False) is prepare.ThreadBatches


def test_processes_asked_for_without_fork_are_one_line(export_dir, monkeypatch):
    asked = Predictor(export_dir, runtime="paddle", batch_size=BATCH, processes=True)
    monkeypatch.setattr(prepare.sys, "platform", "win32")
    with pytest.raises(PclsError, match=r"^worker processes need fork \(Linux\); use the default worker threads$"):
        asked._batch_maker(3, ahead=3)


@pytest.mark.parametrize("processes", MAKERS)
def test_results_keep_input_order_across_batches(export_dir, tmp_path, processes):
    paths = make_images(tmp_path, 3 * BATCH + 2)  # a partial last batch
    predictor = Predictor(export_dir, runtime="paddle", batch_size=BATCH, topk=10, workers=3, processes=processes)
    streamed = list(predictor.predict_stream(paths))
    assert [item for item, _ in streamed] == paths
    for (_, got), expected in zip(streamed, one_at_a_time(predictor, paths)):
        assert_same_result(got, expected)


@pytest.mark.parametrize("processes", MAKERS)
def test_a_bad_image_in_the_middle_is_reported_for_itself(export_dir, tmp_path, processes):
    paths = make_images(tmp_path, 2 * BATCH)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    items = paths[:BATCH + 1] + [broken] + paths[BATCH + 1:]
    predictor = Predictor(export_dir, runtime="paddle", batch_size=BATCH, topk=10, processes=processes)
    streamed = list(predictor.predict_stream(items))
    assert [item for item, _ in streamed] == items
    error = streamed[BATCH + 1][1]
    assert isinstance(error, Exception) and str(broken) in str(error) and "\n" not in str(error)
    good = [outcome for _, outcome in streamed if not isinstance(outcome, Exception)]
    for got, expected in zip(good, one_at_a_time(predictor, paths)):
        assert_same_result(got, expected)
    with pytest.raises(PclsError, match="broken.jpg"):
        predictor.predict(items)


class Counting:
    """The predictor's pre-processing, counting the images it has finished (from any thread)."""

    def __init__(self, preprocess):
        self.preprocess, self.done, self.lock = preprocess, 0, threading.Lock()

    def __call__(self, item, rng):
        result = self.preprocess(item, rng)
        with self.lock:
            self.done += 1
        return result


def test_the_next_batch_is_decoded_while_the_model_runs(export_dir, tmp_path):
    paths = make_images(tmp_path, 4 * BATCH)
    predictor = Predictor(export_dir, runtime="paddle", batch_size=BATCH, processes=False)
    counting = predictor.preprocess = Counting(predictor.preprocess)
    model, calls, overlapped = predictor.run_batch, [], []

    def stand_in(batch):  # the model "runs" until the next batch is ready, or gives up after a while
        calls.append(len(batch))
        wanted = min(len(paths), (len(calls) + 1) * BATCH)
        deadline = time.monotonic() + 20
        while counting.done < wanted and time.monotonic() < deadline:
            time.sleep(0.005)
        overlapped.append(counting.done >= wanted)
        return model(batch)

    predictor.run_batch = stand_in
    assert len(list(predictor.predict_stream(paths))) == len(paths)
    assert calls == [BATCH] * 4
    assert all(overlapped), overlapped  # a serial loop would decode nothing while the model runs


@pytest.mark.parametrize("processes", MAKERS)
def test_a_worker_failure_is_one_line(export_dir, tmp_path, monkeypatch, processes):
    paths = make_images(tmp_path, 3 * BATCH)
    predictor = Predictor(export_dir, runtime="paddle", batch_size=BATCH, processes=processes)
    real = predictor.preprocess

    def flaky(item, rng):
        if str(item).endswith("img_04.jpg"):
            raise RuntimeError("operator exploded")
        return real(item, rng)

    predictor.preprocess = flaky
    outcomes = dict(predictor.predict_stream(paths))
    assert str(outcomes[paths[4]]) == f"{paths[4]}: operator exploded"
    assert sum(isinstance(o, Exception) for o in outcomes.values()) == 1
    with pytest.raises(PclsError, match=r"img_04\.jpg: operator exploded$"):
        predictor.predict(paths)

    def broken_batch(*args):  # a failure outside any one image's pre-processing
        raise MemoryError("no room for the batch\nsecond line")

    monkeypatch.setattr(prepare, "prepare_each", broken_batch)  # the threads' batch loop
    monkeypatch.setattr(Predictor, "_safe_preprocess", lambda self, item: broken_batch())  # the processes' loop
    with pytest.raises(PclsError) as caught:
        list(predictor.predict_stream(paths))
    assert str(caught.value).startswith("preparing a batch of images failed: MemoryError: no room for the batch")
    assert "\n" not in str(caught.value)


@needs_fork
def test_worker_processes_run_opencv_in_one_thread_and_the_parent_keeps_its_own(export_dir, tmp_path):
    paths = make_images(tmp_path, 2 * BATCH)
    predictor = Predictor(export_dir, runtime="paddle", batch_size=BATCH, processes=True)
    real = predictor.preprocess
    seen = multiprocessing.get_context("fork").Array("i", len(paths))

    def recording(item, rng):
        seen[[str(p) for p in paths].index(str(item))] = cv2.getNumThreads()
        return real(item, rng)

    predictor.preprocess = recording
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        outcomes = [outcome for _, outcome in predictor.predict_stream(paths)]
        assert len(outcomes) == len(paths) and not any(isinstance(o, Exception) for o in outcomes), outcomes
        assert list(seen) == [1] * len(paths)
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)


@needs_fork
def test_a_worker_process_that_dies_is_one_line(export_dir, tmp_path):
    paths = make_images(tmp_path, 3 * BATCH)
    predictor = Predictor(export_dir, runtime="paddle", batch_size=BATCH, processes=True)
    real = predictor.preprocess
    predictor.preprocess = lambda item, rng: os._exit(3) if str(item).endswith("img_05.jpg") else real(item, rng)
    with pytest.raises(PclsError, match=r"worker process ended \(exit code 3\)") as caught:
        list(predictor.predict_stream(paths))
    assert "\n" not in str(caught.value)
    assert not [p for p in multiprocessing.active_children() if p.name == "pcls-predict-prepare"]


class SharedCounting:
    """The predictor's pre-processing, counting finished images in shared memory (seen across forked workers)."""

    def __init__(self, preprocess):
        self.preprocess, self.count = preprocess, multiprocessing.get_context("fork").Value("i", 0)

    def __call__(self, item, rng):
        result = self.preprocess(item, rng)
        with self.count.get_lock():
            self.count.value += 1
        return result

    @property
    def done(self):
        return self.count.value


@needs_fork
def test_worker_processes_prepare_images_while_the_model_holds_the_gil(export_dir, tmp_path):
    paths = make_images(tmp_path, 4 * BATCH)
    predictor = Predictor(export_dir, runtime="paddle", batch_size=BATCH, workers=1, processes=True)
    real = predictor.preprocess
    counting = predictor.preprocess = SharedCounting(lambda item, rng: time.sleep(0.05) or real(item, rng))
    model, progressed = predictor.run_batch, []

    def holding_the_gil(batch):  # as Paddle Inference's run(): no other thread of this process runs meanwhile
        before, interval = counting.done, sys.getswitchinterval()
        if before == len(paths):
            return model(batch)
        sys.setswitchinterval(100.0)
        try:
            deadline = time.monotonic() + 20
            while counting.done == before and time.monotonic() < deadline:
                pass
        finally:
            sys.setswitchinterval(interval)
        progressed.append(counting.done > before)
        return model(batch)

    predictor.run_batch = holding_the_gil
    assert len(list(predictor.predict_stream(paths))) == len(paths)
    assert progressed and all(progressed), progressed  # a worker thread could not finish an image meanwhile


@pytest.mark.parametrize("processes", MAKERS)
def test_an_interrupt_stops_the_workers(export_dir, tmp_path, processes):
    paths = make_images(tmp_path, 12 * BATCH)
    predictor = Predictor(export_dir, runtime="paddle", batch_size=BATCH, workers=2, processes=processes)
    counting = predictor.preprocess = SharedCounting(predictor.preprocess)
    model, calls = predictor.run_batch, []

    def interrupted(batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return model(batch)

    predictor.run_batch = interrupted
    with pytest.raises(KeyboardInterrupt):
        list(predictor.predict_stream(paths))
    for thread in threading.enumerate():
        if thread.name.startswith("pcls-predict-decode"):
            thread.join(timeout=30)
            assert not thread.is_alive()
    assert not [p for p in multiprocessing.active_children() if p.name == "pcls-predict-prepare"]
    assert counting.done < len(paths)  # the batches queued behind the interrupt were never decoded


def test_ctrl_c_in_pcls_predict_is_one_line_and_exit_130(export_dir, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pcls.cli import app

    make_images(tmp_path / "imgs", 4 * BATCH)

    def interrupted(self, batch):
        raise KeyboardInterrupt

    monkeypatch.setattr(Predictor, "infer", interrupted)
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "imgs"), "--model", str(export_dir),
                                      "--batch-size", str(BATCH)])
    assert result.exit_code == 130
    assert "interrupted" in result.stderr and "Traceback" not in result.output


def test_openmp_threads_sleep_between_model_runs_while_predicting(export_dir, tmp_path, monkeypatch):
    from pcls.deploy import runtimes

    library = runtimes._iomp()
    if library is None:
        pytest.skip("this Paddle build has no libiomp5")
    monkeypatch.delenv(runtimes.BLOCKTIME_ENV, raising=False)
    before = library.kmp_get_blocktime()
    assert before != 0  # Intel OpenMP's default: spin 200 ms after each parallel region
    predictor = Predictor(export_dir, runtime="paddle", batch_size=BATCH)
    model, seen = predictor.run_batch, []
    predictor.run_batch = lambda batch: seen.append(library.kmp_get_blocktime()) or model(batch)
    assert len(list(predictor.predict_stream(make_images(tmp_path, 2 * BATCH)))) == 2 * BATCH
    assert seen == [0, 0] and library.kmp_get_blocktime() == before  # restored afterwards
    monkeypatch.setenv(runtimes.BLOCKTIME_ENV, "50")  # the user's own setting is left alone
    seen.clear()
    list(predictor.predict_stream(make_images(tmp_path, BATCH)))
    assert seen == [before]
