"""Small inputs that must not exhaust memory or hang (issue #25): thin images that explode on resize, data-loader
errors and signals, non-regular and oversized files. Bombs run in a subprocess under an address-space cap;
hangs run in a subprocess with a timeout."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from pcls.data.datasets import ListDataset
from pcls.data.decode import ImageTooLarge
from pcls.data.transforms import build_transforms
from pcls.errors import PclsError
from tests.data.conftest import predict_folder_peak

CAP_BYTES = 1536 * 1024 * 1024  # the address space a capped child may use: imports need ~0.5 GB, a bomb 3+ GB
EVAL_OPS = [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"resize_short": 256}},
            {"CropImage": {"size": 224}}, {"NormalizeImage": {}}]


def run_capped(code: str, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python whose address space is capped at CAP_BYTES (a bomb fails there, not here)."""
    prelude = ("import resource; resource.setrlimit(resource.RLIMIT_AS, "
               f"({CAP_BYTES}, {CAP_BYTES}))\n")
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def thin_png(width: int, height: int) -> bytes:
    ok, buf = cv2.imencode(".png", np.full((height, width, 3), 90, np.uint8))
    assert ok
    return buf.tobytes()


def _png(side: int) -> bytes:
    return thin_png(side, side)


# -- item 5: a thin image explodes on resize ------------------------------------------------------------------
@pytest.mark.parametrize("width, height", [(16000, 1), (1, 100000)])
def test_thin_image_is_refused_before_the_resize_allocates(tmp_path, width, height):
    (tmp_path / "thin.png").write_bytes(thin_png(width, height))
    run = run_capped(f"""
        import numpy as np
        from pcls.data.decode import ImageTooLarge
        from pcls.data.transforms import build_transforms
        pipeline = build_transforms({EVAL_OPS!r}, to_chw=True)
        try:
            pipeline({str(tmp_path / "thin.png")!r}, np.random.default_rng(0))
        except ImageTooLarge as err:
            print("refused:", err)
    """)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("refused: resizing would turn a "), run.stdout
    assert f"{width}x{height} image (aspect ratio {max(width, height):,}:1)" in run.stdout
    assert "above the limit of 89,478,485 (PCLS_MAX_IMAGE_PIXELS raises it)" in run.stdout
    assert len(run.stdout.strip().splitlines()) == 1


def test_resize_limit_follows_pcls_max_image_pixels(monkeypatch):
    pipeline = build_transforms([{"DecodeImage": {}}, {"ResizeImage": {"size": [40, 30]}}])
    assert pipeline(_png(8), np.random.default_rng(0)).shape == (30, 40, 3)
    monkeypatch.setenv("PCLS_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ImageTooLarge, match="into 40x30 = 1,200 pixels, above the limit of 1,000"):
        pipeline(_png(8), np.random.default_rng(0))


@pytest.mark.parametrize("ops", [
    [{"DecodeImage": {}}, {"Pad": {"padding": [0, 20000]}}],
    [{"DecodeImage": {}}, {"RandomRotation": {"degrees": [45, 45], "expand": True}}],
    [{"DecodeImage": {}}, {"GridMask": {}}],
])
def test_every_growing_operator_checks_its_output_size(monkeypatch, ops):
    monkeypatch.setenv("PCLS_MAX_IMAGE_PIXELS", "40000")
    with pytest.raises(ImageTooLarge, match=r"would turn a 4000x8 image \(aspect ratio 500:1\)"):
        build_transforms(ops)(thin_png(4000, 8), np.random.default_rng(0))


def test_training_loader_skips_a_thin_image_with_one_line(tmp_path, caplog):
    (tmp_path / "thin.png").write_bytes(thin_png(16000, 1))
    (tmp_path / "ok.png").write_bytes(_png(300))
    (tmp_path / "list.txt").write_text("thin.png 0\nok.png 1\n")
    dataset = ListDataset(tmp_path, tmp_path / "list.txt", build_transforms(EVAL_OPS, to_chw=True))
    with caplog.at_level("WARNING"):
        image, label, failed = dataset.load(0, np.random.default_rng(0))
    assert failed == [0] and label == 1 and image.shape == (3, 224, 224)
    lines = [r.getMessage() for r in caplog.records if "thin.png" in r.getMessage()]
    assert len(lines) == 1 and "16000x1 image" in lines[0] and "above the limit" in lines[0]


# -- item 6: a data-loader error or a stuck file never hangs the run; signals always end it ------------------
LOADER_SCRIPT = """
import os, sys, time
from pcls.data.loader import build_dataloader
from pcls.data.transforms.registry import Operator, register_op
from pcls.errors import PclsError
import pcls.data.loader

@register_op
class StuckOnThird(Operator):  # a worker that never returns (what a FIFO or a stalled mount does)
    def __init__(self):
        pass
    def __call__(self, img, rng):
        if img.shape[0] == 12:
            print("stuck", flush=True)
            time.sleep(600)
        return img

@register_op
class KillWorker(Operator):  # what the kernel's OOM killer does to a worker
    def __init__(self):
        pass
    def __call__(self, img, rng):
        if img.shape[0] == 12:
            os.kill(os.getpid(), 9)
        return img

pcls.data.loader.SIGNAL_GRACE_SECONDS = 1.0
if os.environ.get("TEST_HANDLER"):  # what the trainer installs: note the signal, finish the update, save
    import signal
    signal.signal(signal.SIGTERM, lambda *a: print("handler called", flush=True))
ops = [{"DecodeImage": {}}] + [{name: None} for name in sys.argv[3:]] + [{"NormalizeImage": {}}]
section = {"dataset": {"name": "ImageNetDataset", "image_root": sys.argv[1], "cls_label_path": sys.argv[1] + "/list.txt",
                       "transform_ops": ops},
           "sampler": {"name": "DistributedBatchSampler", "batch_size": 2, "shuffle": False},
           "loader": {"num_workers": int(sys.argv[2])}}
try:
    for images, labels in build_dataloader(section, train=True).loader:
        print("batch", images.shape, flush=True)
except PclsError as err:
    print("error:", err, file=sys.stderr)
    sys.exit(err.exit_code)
"""


@pytest.fixture
def mixed_sizes(tmp_path):
    """Two 8x8 images, then a 12x12 one: the first batch is fine, the second mixes sizes (no crop)."""
    for name, side in (("a.png", 8), ("b.png", 8), ("c.png", 8), ("d.png", 12)):
        (tmp_path / name).write_bytes(_png(side))
    (tmp_path / "list.txt").write_text("a.png 0\nb.png 1\nc.png 0\nd.png 1\n")
    return tmp_path


_started = []


@pytest.fixture(autouse=True)
def _kill_leftovers():
    yield
    while _started:  # a failed assertion must not leave a stuck child behind
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_loader(root, workers, *ops, env=None):
    env = {**os.environ, **(env or {})}
    proc = subprocess.Popen([sys.executable, "-c", LOADER_SCRIPT, str(root), str(workers), *ops],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _started.append(proc)
    return proc


def finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)  # a hang fails the test here instead of hanging it
    return proc.returncode, out, [line for line in err.splitlines() if line.startswith("error:")], err


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])  # workers: test_a_killed_worker
def test_a_worker_error_is_one_line_naming_the_files(mixed_sizes, workers):
    rc, out, errors, err = finish(start_loader(mixed_sizes, workers))
    assert rc == 2 and "Traceback" not in err, err[-2000:]
    assert len(errors) == 1 and "different sizes" in errors[0], err[-2000:]
    assert f"{mixed_sizes}/c.png is (3, 8, 8), {mixed_sizes}/d.png is (3, 12, 12)" in errors[0]


def test_a_killed_worker_is_one_line(mixed_sizes):
    rc, out, errors, err = finish(start_loader(mixed_sizes, 2, "KillWorker"))
    assert rc == 2 and len(errors) == 1 and "worker process died" in errors[0], err[-2000:]
    assert "c.png" in errors[0]


def test_a_stuck_batch_times_out_with_the_files(mixed_sizes):
    rc, out, errors, err = finish(start_loader(mixed_sizes, 0, "StuckOnThird", env={"PCLS_LOADER_TIMEOUT": "1"}))
    assert rc == 2 and len(errors) == 1, err[-2000:]
    assert "no batch after 1 s waiting for" in errors[0] and "d.png" in errors[0]
    assert "PCLS_LOADER_TIMEOUT" in errors[0]


@pytest.mark.parametrize("handler, workers", [
    ("", 0), ("trainer", 2),  # eval (no handler) in the thread, training in worker processes
    pytest.param("", 2, marks=pytest.mark.slow), pytest.param("trainer", 0, marks=pytest.mark.slow),
])
def test_sigterm_ends_a_run_stuck_on_a_batch(mixed_sizes, workers, handler):
    proc = start_loader(mixed_sizes, workers, "StuckOnThird", env={"TEST_HANDLER": handler})
    while "stuck" not in proc.stdout.readline():  # the second batch is stuck (the first may print before or after)
        pass
    proc.send_signal(signal.SIGTERM)
    rc, out, errors, err = finish(proc)
    assert rc == 128 + signal.SIGTERM and "FatalError" not in err and "Traceback" not in err, err[-2000:]
    assert len(errors) == 1 and errors[0].startswith("error: stopped by SIGTERM"), err[-2000:]
    assert ("handler called" in out) == bool(handler)  # the trainer still hears of the signal (it saves)
    if handler:  # the trainer's handler only notes the signal: the loader stops waiting after the grace period
        assert "still waiting for a batch of" in errors[0] and "d.png" in errors[0]


# -- item 7: non-regular and oversized files are refused before reading ---------------------------------------
@pytest.fixture
def hostile_files(tmp_path):
    """A list whose entries are a FIFO, /dev/zero, a 5 GB sparse .jpg and a real image."""
    os.mkfifo(tmp_path / "fifo.jpg")
    os.symlink("/dev/zero", tmp_path / "zero.jpg")
    with open(tmp_path / "sparse.jpg", "wb") as fh:
        fh.truncate(5 * 1024 ** 3)  # 5 GB of holes: no disk used, but read() would allocate it all
    (tmp_path / "ok.png").write_bytes(_png(8))
    (tmp_path / "list.txt").write_text("fifo.jpg 0\nzero.jpg 1\nsparse.jpg 0\nok.png 1\n")
    return tmp_path


def test_data_check_lists_fifo_device_and_huge_file_in_its_table(hostile_files):
    run = run_capped(f"""
        import sys
        from pcls.cli import main
        sys.argv = ["pcls", "data", "check", {str(hostile_files / "list.txt")!r}, "--root", {str(hostile_files)!r},
                    "--json"]
        main()
    """, timeout=120)
    assert run.returncode == 1, run.stderr[-2000:]
    import json

    problems = {p["path"]: p["problem"] for p in json.loads(run.stdout)["problems"]}
    assert problems == {
        "fifo.jpg": "not a regular file (a FIFO); not read",
        "zero.jpg": "not a regular file (a character device); not read",
        "sparse.jpg": "5,368,709,120 bytes is above the file size limit of 268,435,456 (PCLS_MAX_FILE_BYTES raises "
                      "it); not read",
    }


def test_loader_skips_fifo_device_and_huge_file_one_line_each(hostile_files):
    run = run_capped(f"""
        import logging, numpy as np
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        from pcls.data.datasets import ListDataset
        from pcls.data.transforms import build_transforms
        ds = ListDataset({str(hostile_files)!r}, {str(hostile_files / "list.txt")!r},
                         build_transforms([{{"DecodeImage": {{}}}}]))
        for index in range(3):
            image, label, failed = ds.load(index, np.random.default_rng(3))
            print(image.shape, failed[0])
    """, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split("\n")[:3] == ["(8, 8, 3) 0", "(8, 8, 3) 1", "(8, 8, 3) 2"], run.stdout
    for name in ("fifo.jpg", "zero.jpg", "sparse.jpg"):
        assert len([line for line in run.stderr.splitlines() if f"{name}: " in line]) >= 1, run.stderr


def test_the_file_limit_follows_pcls_max_file_bytes(tmp_path, monkeypatch):
    from pcls.data.decode import FileRefused, read_image_file

    (tmp_path / "a.png").write_bytes(_png(8))
    size = (tmp_path / "a.png").stat().st_size
    assert read_image_file(tmp_path / "a.png") == (tmp_path / "a.png").read_bytes()
    monkeypatch.setenv("PCLS_MAX_FILE_BYTES", str(size - 1))
    with pytest.raises(FileRefused, match=f"{size:,} bytes is above the file size limit of {size - 1:,}"):
        build_transforms([{"DecodeImage": {}}])(str(tmp_path / "a.png"), None)


# -- item 12: `data index` skips symbolic links that dangle or leave the root, and says so ---------------------
def test_data_index_skips_links_that_leave_the_root(tmp_path):
    from typer.testing import CliRunner

    from pcls.cli import app

    root, outside = tmp_path / "photos", tmp_path / "outside"
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    outside.mkdir()
    (root / "cat" / "a.png").write_bytes(_png(8))
    (root / "dog" / "b.png").write_bytes(_png(8))
    (outside / "c.png").write_bytes(_png(8))
    os.symlink("/etc/passwd", root / "cat" / "passwd.jpg")
    os.symlink(root / "cat" / "gone.png", root / "dog" / "dangling.jpg")
    os.symlink(root / "cat" / "a.png", root / "dog" / "same-root.png")  # inside the root: kept
    os.symlink(outside, root / "fox")  # a class folder that is somewhere else
    result = CliRunner().invoke(app, ["data", "index", str(root), "--json"])
    assert result.exit_code == 0, result.output
    import json

    listed = (root / "train_list.txt").read_text().split()
    assert listed == ["cat/a.png", "0", "dog/b.png", "1", "dog/same-root.png", "1"]
    assert (root / "labels.txt").read_text() == "0 cat\n1 dog\n"
    skipped = {Path(s["path"]).name: s["reason"] for s in json.loads(result.stdout)["skipped"]}
    assert skipped == {"fox": f"symbolic link to {outside.resolve()}, outside {root.resolve()}",
                       "passwd.jpg": f"symbolic link to /etc/passwd, outside {root.resolve()}",
                       "dangling.jpg": "dangling symbolic link"}
    assert result.stderr.count("skipped ") == 3 and "passwd.jpg: symbolic link to /etc/passwd" in result.stderr


@pytest.mark.slow  # an export and a predict in fresh processes
def test_predict_over_a_folder_with_a_thin_image_stays_small(tmp_path):
    rc, output, peak_kb = predict_folder_peak(tmp_path, {"thin.png": thin_png(16000, 1), "ok.png": _png(64)})
    assert rc == 1, output  # one input failed
    assert [f["file"].rsplit("/", 1)[-1] for f in output["failures"]] == ["thin.png"]
    assert "16000x1 image" in output["failures"][0]["error"] and len(output["results"]) == 1
    assert peak_kb < 2 * 1024 * 1024, f"predict peaked at {peak_kb / 1024:.0f} MB"


SIGTERM_IN_EVAL_PLUGIN = '''
import os, signal
from pcls.arch.registry import register
from tests.engine.tinynet import _TinyNet

class _SigTermInEval(_TinyNet):
    forwards = 0
    def forward_features(self, x):
        if not self.training:
            _SigTermInEval.forwards += 1
            # the run's supervisor stops it in the middle of an evaluation: in the dygraph loop at its second batch;
            # on the default Paddle Inference path the network's one Python forward is its tracing
            if _SigTermInEval.forwards == int(os.environ.get("SIGTERM_AT_FORWARD", "2")):
                os.kill(os.getpid(), signal.SIGTERM)
        return super().forward_features(x)

@register
def SigTermNet(class_num=1000, **kwargs):
    return _SigTermInEval(class_num, **kwargs)
'''


@pytest.mark.slow  # `pcls eval` in a fresh process (the loader-level check above is the fast one)
@pytest.mark.parametrize("path_env", [{"SIGTERM_AT_FORWARD": "1"}, {"PCLS_EVAL_INFERENCE": "0"}],
                         ids=["paddle-inference", "dygraph"])
def test_sigterm_during_pcls_eval_is_one_line(tmp_path, path_env):
    import paddle

    from pcls.arch.registry import create_model
    from tests.engine import tinynet  # noqa: F401  (registers TinyNet)
    from tests.engine.conftest import tiny_config, write_colour_dataset, write_config

    data = write_colour_dataset(tmp_path / "data", train_per_class=2, val_per_class=8)
    cfg = tiny_config(data, tmp_path / "out")
    cfg["Arch"]["name"] = "SigTermNet"
    write_config(cfg, tmp_path / "c.yaml")
    paddle.save(create_model("TinyNet", class_num=cfg["Arch"]["class_num"]).state_dict(),
                str(tmp_path / "w.pdparams"))
    (tmp_path / "sigterm_plugin.py").write_text(SIGTERM_IN_EVAL_PLUGIN)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PCLS_PLUGINS": str(tmp_path / "sigterm_plugin.py"), **path_env,
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "pcls", "eval", "-c", str(tmp_path / "c.yaml"), "--weights",
                          str(tmp_path / "w.pdparams")], capture_output=True, text=True, timeout=300, env=env)
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("error:")]
    assert run.returncode == 128 + signal.SIGTERM, run.stderr[-3000:]
    assert errors == ["error: stopped by SIGTERM"], run.stderr[-3000:]
    assert "FatalError" not in run.stderr and "Traceback" not in run.stderr


def test_custom_label_dataset_reads_through_the_image_file_checks(tmp_path, monkeypatch):
    """CustomLabelDataset (labels made by a transform) reads its files as every dataset does: a file above
    PCLS_MAX_FILE_BYTES is refused before it is read, and a FIFO never blocks the read."""
    from pcls.data.datasets import build_dataset
    from pcls.data.decode import FileRefused

    (tmp_path / "big.jpg").write_bytes(b"x" * 100)
    os.mkfifo(tmp_path / "fifo.jpg")
    (tmp_path / "images.txt").write_text("big.jpg\nfifo.jpg\n")
    ops = build_transforms([{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"RandomRot90": None}])
    dataset = build_dataset({"name": "CustomLabelDataset", "image_root": str(tmp_path),
                             "sample_list_path": str(tmp_path / "images.txt"),
                             "label_key": "random_rot90_orientation"}, transforms=ops)
    monkeypatch.setenv("PCLS_MAX_FILE_BYTES", "10")
    with pytest.raises(FileRefused, match="100"):
        dataset.read(0, None)
    with pytest.raises(FileRefused, match="FIFO"):
        dataset.read(1, None)


def test_custom_label_dataset_names_the_line_of_a_non_utf8_sample_list(tmp_path):
    from pcls.data.datasets import build_dataset

    (tmp_path / "images.txt").write_bytes(b"a.jpg\nb\xff.jpg\n")
    ops = build_transforms([{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"RandomRot90": None}])
    with pytest.raises(PclsError, match=r"images.txt:2: byte 0xff at column 2 is not UTF-8; a sample_list_path file"):
        build_dataset({"name": "CustomLabelDataset", "image_root": str(tmp_path),
                       "sample_list_path": str(tmp_path / "images.txt"),
                       "label_key": "random_rot90_orientation"}, transforms=ops)
    with pytest.raises(PclsError, match="cannot read sample_list_path file .*missing.txt"):
        build_dataset({"name": "CustomLabelDataset", "image_root": str(tmp_path),
                       "sample_list_path": str(tmp_path / "missing.txt"),
                       "label_key": "random_rot90_orientation"}, transforms=ops)
