"""`pcls doctor --run`: every path pcls offers, the GPU ones above all, run end to end on generated data through the
public command line (`python -m pcls ...`, one process per command, so a crash in one CUDA library is one failed
row, not the end of the check), with a pass/fail/skip row each.

A step whose capability row (pcls.doctor.capabilities) is ✗ is skipped with that row's reason; a step whose
prerequisite failed or was skipped is skipped naming it. Data: 4 classes of the built-in demo shapes at 32 px, 40
training images, batch 4, so 10 steps per epoch: one epoch, then a resume to the second (20 steps), each followed
by an evaluation.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from pcls.doctor.probe import describe_exit, first_error_line, pcls_env
from pcls.errors import PclsError

MARKER_FILE = ".pcls-doctor"  # a folder --run made: the only non-empty --workdir it writes into again
COMMAND_TIMEOUT_S = 900  # a first TensorRT engine build of even a small model can take minutes
MODEL = "PPLCNet_x0_25"
SIZE, CLASSES, TRAIN_PER_CLASS, VAL_PER_CLASS, BATCH = 32, 4, 10, 4, 4
TRT_BATCHES = "1,2,4"


class CheckFailed(Exception):
    """A step's first error line."""


@dataclass
class Outcome:
    name: str
    status: str  # pass | fail | skip
    seconds: float
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


class Workspace:
    """The check's folder (data, runs, exports) and the one way steps run pcls: a child `python -m pcls`."""

    def __init__(self, root: Path, timeout: float = COMMAND_TIMEOUT_S):
        self.root = Path(root)
        self.data = self.root / "data"
        self.runs = self.root / "runs"
        self.exports = self.root / "exports"
        self.timeout = timeout

    def pcls(self, *args: str):
        """Run `pcls ARGS --json`-style; the parsed stdout JSON when there is some. Raises CheckFailed."""
        return self._run([sys.executable, "-m", "pcls", *args])

    def python(self, code: str, *args: str):
        return self._run([sys.executable, "-c", code, *args])

    def _run(self, argv: List[str]):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=self.timeout,
                                  env=pcls_env(), cwd=self.root, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"timed out after {self.timeout:.0f} s") from None
        if done.returncode != 0:
            raise CheckFailed(first_error_line(done.stderr) or first_error_line(done.stdout)
                              or describe_exit(done.returncode))
        try:
            return json.loads(done.stdout) if done.stdout.strip() else None
        except ValueError:
            return None

    # -- what steps share ------------------------------------------------------------------------------------
    def train_overrides(self) -> List[str]:
        d = self.data
        values = {
            "Global.output_dir": str(self.runs), "Global.image_shape": f"[3,{SIZE},{SIZE}]", "Global.epochs": 1,
            "Global.eval_interval": 1, "Global.save_interval": 1, "Arch.name": MODEL, "Arch.class_num": CLASSES,
            "DataLoader.Train.sampler.batch_size": BATCH, "DataLoader.Eval.sampler.batch_size": BATCH * 2,
            "Infer.PostProcess.class_id_map_file": str(d / "labels.txt"),
        }
        for split, name in (("Train", "train_list.txt"), ("Eval", "val_list.txt")):
            values[f"DataLoader.{split}.dataset.image_root"] = str(d)
            values[f"DataLoader.{split}.dataset.cls_label_path"] = str(d / name)
        return [arg for key, value in values.items() for arg in ("-o", f"{key}={value}")]

    def run_dir(self, name: str) -> Path:
        return self.runs / name

    def val_images(self) -> str:
        return str(self.data / "images" / "val")


# -- the steps ----------------------------------------------------------------------------------------------------
@dataclass
class Step:
    name: str
    needs: Tuple[str, ...]  # capability keys (pcls.doctor.capabilities) that must be ✔
    after: Tuple[str, ...]  # steps that must have passed
    run: Callable[[Workspace], str]  # returns the detail shown for a pass


def _train(run_name: str, device_args: Sequence[str], amp: Optional[str] = None):
    def run(ws: Workspace) -> str:
        amp_args = ["-o", "AMP.use_amp=True", "-o", f"AMP.level={amp}"] if amp else []
        first = ws.pcls("train", "--recipe", "demo", *ws.train_overrides(), *amp_args, *device_args,
                        "--name", run_name, "--exist-ok", "--json")
        _check_summary(first, 1)
        second = ws.pcls("train", "--resume", str(ws.run_dir(run_name)), "-o", "Global.epochs=2", *device_args,
                         "--json")
        final = _check_summary(second, 2)
        per_epoch = CLASSES * TRAIN_PER_CLASS // (BATCH * (2 if "--gpus" in device_args else 1))
        return (f"{2 * per_epoch} steps (resumed at step {per_epoch}), val top-1 {final['val_top1']:.2f}, "
                f"loss {final['train_loss']:.3f}")

    return run


def _check_summary(summary, epochs: int) -> dict:
    if not isinstance(summary, dict) or summary.get("status") != "done":
        raise CheckFailed(f"training did not finish: {summary and summary.get('status')}")
    final = summary.get("final") or {}
    if summary.get("epochs_done") != epochs:
        raise CheckFailed(f"expected {epochs} epoch(s) done, the summary says {summary.get('epochs_done')}")
    if "val_top1" not in final:
        raise CheckFailed("no evaluation after the epoch (val_top1 missing)")
    if not math.isfinite(float(final.get("train_loss", float("nan")))):
        raise CheckFailed(f"training loss is {final.get('train_loss')} (overflow or divergence)")
    return final


def _export(out: str, *extra: str):
    def run(ws: Workspace) -> str:
        run_dir = ws.run_dir("cpu-fp32")
        result = ws.pcls("export", "-c", str(run_dir / "config.yaml"), "--weights", str(run_dir / "best_model"),
                         "--out", str(ws.exports / out), *extra, "--json") or {}
        diffs = result.get("max_relative_diff") or {}
        return f"{', '.join(result.get('files') or [])}; max relative diff {diffs}" if diffs else "exported"

    return run


def _predict(export: str, *runtime_args: str):
    def run(ws: Workspace) -> str:
        result = ws.pcls("predict", ws.val_images(), "--model", str(ws.exports / export), "--batch-size",
                         str(BATCH), *runtime_args, "--json") or {}
        results = result.get("results") or []
        if len(results) != CLASSES * VAL_PER_CLASS:
            raise CheckFailed(f"{len(results)} results for {CLASSES * VAL_PER_CLASS} images")
        return f"{len(results)} images classified"

    return run


def _bench(export: str, *args: str, batch_sizes: str = "1"):
    def run(ws: Workspace) -> str:
        result = ws.pcls("bench", str(ws.exports / export), "--batch-sizes", batch_sizes, "--iters", "3",
                         "--warmup", "1", "--no-e2e", "--threads", "1", *args, "--json") or {}
        rows = result.get("rows") or []
        if not rows:
            raise CheckFailed("bench measured nothing")
        return ", ".join(f"{row.get('runtime')} {row.get('p50_ms', 0):.2f} ms p50" for row in rows)

    return run


def _trt_files(folder: Path) -> Dict[str, tuple]:
    """Every file of the export's TensorRT conversions (trt_*/), with what would change if it were rebuilt."""
    from pcls.deploy.spec import TRT_DIR_PREFIX

    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns, path.stat().st_ino)
            for sub in folder.glob(f"{TRT_DIR_PREFIX}*") for path in sub.rglob("*") if path.is_file()}


def _trt_cache_reused(ws: Workspace) -> str:
    folder = ws.exports / "trt-fp16"
    before = _trt_files(folder)
    if not before:
        raise CheckFailed(f"'pcls export --trt --fp16' left no trt_* folder in {folder}")
    _predict("trt-fp16", "--device", "gpu", "--trt", "--precision", "fp16")(ws)
    after = _trt_files(folder)
    if after != before:
        changed = sorted(set(before) ^ set(after) | {k for k in before if after.get(k) != before[k]})
        raise CheckFailed(f"the second call rebuilt the TensorRT engine (changed: {', '.join(changed[:3])})")
    return f"second call reused the cached engine ({len(before)} file(s) unchanged)"


# Run in a child: the session's providers must start with the one asked for; ONNX Runtime silently appends the
# CPU provider and falls back to it when a GPU provider's libraries do not load.
_ORT_CHECK = """
import sys, numpy as np, onnxruntime as ort
path, provider, cache = sys.argv[1:4]
options = {"device_id": 0}
if provider == "TensorrtExecutionProvider":
    options.update(trt_engine_cache_enable=True, trt_engine_cache_path=cache)
session = ort.InferenceSession(path, providers=[(provider, options)])
used = session.get_providers()
if used[0] != provider:
    sys.exit(f"error: asked for {provider}, the session runs on {used[0]} (providers {used})")
shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
session.run(None, {session.get_inputs()[0].name: np.zeros(shape, np.float32)})
"""


def _ort_gpu(provider: str, *predict_args: str):
    def run(ws: Workspace) -> str:
        folder = ws.exports / "onnx-int8"
        ws.python(_ORT_CHECK, str(folder / "inference.onnx"), provider, str(ws.root / "ort_trt_cache"))
        _predict("onnx-int8", "--runtime", "onnx", "--device", "gpu", *predict_args)(ws)
        return f"get_providers() starts with {provider}; pcls predict --runtime onnx ran"

    return run


def _trt_int8(ws: Workspace) -> str:
    # Paddle's TensorRT path has no INT8 calibrator (pcls refuses `export --trt --int8`): TensorRT int8 runs the
    # calibrated int8 ONNX export on ONNX Runtime's TensorRT provider
    return _predict("onnx-int8", "--runtime", "onnx", "--device", "gpu", "--trt", "--precision", "int8")(ws)


def _import_paddle(ws: Workspace) -> str:
    ws.python("import pcls, paddle")  # through pcls: a Paddle < 3.0 fails with pcls's one line
    return "ok"


def _paddle_run_check(ws: Workspace) -> str:
    # Paddle's own installation check (a small GPU training, and a multi-GPU one when several are visible): a
    # failure here is the Paddle install's, not pcls's
    ws.python("import paddle; paddle.utils.run_check()")
    return "paddle.utils.run_check() passed"


CPU, GPU = ("--device", "cpu"), ("--device", "gpu")
STEPS: List[Step] = [
    Step("import paddle", (), (), _import_paddle),
    Step("Paddle's own GPU check", ("train_gpu",), ("import paddle",), _paddle_run_check),
    Step("train fp32, CPU", ("train_cpu",), (), _train("cpu-fp32", CPU)),
    Step("export (Paddle)", ("paddle",), ("train fp32, CPU",), _export("paddle")),
    Step("predict, CPU", ("paddle",), ("export (Paddle)",), _predict("paddle", *CPU, "--runtime", "paddle")),
    Step("bench, CPU", ("paddle",), ("export (Paddle)",), _bench("paddle", *CPU)),
    Step("export ONNX + int8", ("int8_cpu",), ("train fp32, CPU",),
         lambda ws: _export("onnx-int8", "--format", "onnx", "--int8", "--calib", str(ws.data / "val_list.txt"),
                            "--root", str(ws.data))(ws)),
    Step("predict ONNX Runtime, CPU", ("int8_cpu",), ("export ONNX + int8",),
         _predict("onnx-int8", *CPU, "--runtime", "onnx", "--precision", "fp32")),
    Step("predict int8, CPU", ("int8_cpu",), ("export ONNX + int8",),
         _predict("onnx-int8", *CPU, "--runtime", "onnx", "--precision", "int8")),
    Step("train fp32, GPU", ("train_gpu",), (), _train("gpu-fp32", GPU)),
    Step("train AMP O1 fp16", ("amp_fp16",), (), _train("gpu-amp-o1", GPU, amp="O1")),
    Step("train AMP O2 fp16", ("amp_fp16",), (), _train("gpu-amp-o2", GPU, amp="O2")),
    Step("train --gpus 0,1", ("multi_gpu",), (), _train("gpus-2", ("--gpus", "0,1"))),
    Step("predict, GPU fp32", ("train_gpu",), ("export (Paddle)",),
         _predict("paddle", *GPU, "--runtime", "paddle", "--precision", "fp32")),
    Step("predict, GPU fp16", ("amp_fp16",), ("export (Paddle)",),
         _predict("paddle", *GPU, "--runtime", "paddle", "--precision", "fp16")),
    Step("PIR-TRT fp16 conversion", ("trt_fp16",), ("train fp32, CPU",),
         _export("trt-fp16", "--trt", "--fp16", "--batch-sizes", TRT_BATCHES)),
    Step("PIR-TRT cached engine reused", ("trt_fp16",), ("PIR-TRT fp16 conversion",), _trt_cache_reused),
    Step("bench --trt --fp16", ("trt_fp16",), ("PIR-TRT fp16 conversion",),
         _bench("trt-fp16", *GPU, "--trt", "--fp16", batch_sizes=TRT_BATCHES)),  # the converted range: reused
    Step("TensorRT int8 (ONNX)", ("trt_int8", "ort_trt"), ("export ONNX + int8",), _trt_int8),
    Step("ORT CUDA provider", ("ort_cuda", "train_gpu"), ("export ONNX + int8",),
         _ort_gpu("CUDAExecutionProvider")),
    Step("ORT TensorRT provider", ("ort_trt", "train_gpu"), ("export ONNX + int8",),
         _ort_gpu("TensorrtExecutionProvider", "--trt")),
]


def make_data(ws: Workspace) -> None:
    from pcls.data.demo import make_demo_dataset

    make_demo_dataset(ws.data, train_per_class=TRAIN_PER_CLASS, val_per_class=VAL_PER_CLASS, size=SIZE,
                      num_classes=CLASSES)


def run_checks(capabilities, workdir: Optional[Path] = None, steps: Sequence[Step] = STEPS,
               on_step: Optional[Callable[[str], None]] = None,
               on_done: Optional[Callable[[Outcome], None]] = None, workspace: Optional[Workspace] = None) -> dict:
    """Run `steps` in order; {"checks": [Outcome...], "passed": bool, "workdir": str or None}.

    `workdir` None: a temp folder, removed when every step passed and kept (its path returned) otherwise.
    """
    rows = {row.key: row for row in capabilities}
    own_dir = workdir is None and workspace is None
    ws = workspace or Workspace(Path(tempfile.mkdtemp(prefix="pcls-doctor-")) if own_dir else Path(workdir))
    _claim(ws.root)
    outcomes: Dict[str, Outcome] = {}
    data_ready = False
    for step in steps:
        if on_step:
            on_step(step.name)
        reason = _skip_reason(step, rows, outcomes)
        start = time.perf_counter()
        if reason:
            outcome = Outcome(step.name, "skip", 0.0, reason)
        else:
            try:
                if not data_ready:  # made (or an earlier check's reused) by the first step that runs
                    make_data(ws)
                    data_ready = True
                outcome = Outcome(step.name, "pass", 0.0, step.run(ws))
            except CheckFailed as err:
                outcome = Outcome(step.name, "fail", 0.0, str(err))
            except Exception as err:  # noqa: BLE001 - a bug in a step is that step's failure, not the end
                outcome = Outcome(step.name, "fail", 0.0, f"{type(err).__name__}: {err}")
            outcome.seconds = round(time.perf_counter() - start, 1)
        outcomes[step.name] = outcome
        if on_done:
            on_done(outcome)
    passed = all(o.status != "fail" for o in outcomes.values())
    kept = str(ws.root)
    if own_dir and passed:
        shutil.rmtree(ws.root, ignore_errors=True)
        kept = None
    return {"checks": [o.to_dict() for o in outcomes.values()], "passed": passed, "workdir": kept}


def _claim(root: Path) -> None:
    """Make `root` the check's folder: new, empty, or one an earlier --run made (its files are pcls's own)."""
    try:
        if root.exists() and any(root.iterdir()) and not (root / MARKER_FILE).exists():
            raise PclsError(f"--workdir {root} is not empty and was not made by 'pcls doctor --run'; give a new "
                            "or empty folder (nothing in it is ever deleted)")
        root.mkdir(parents=True, exist_ok=True)
        (root / MARKER_FILE).touch()
    except OSError as err:
        raise PclsError(f"cannot use --workdir {root}: {err.strerror or err}") from None


def _skip_reason(step: Step, rows: dict, outcomes: Dict[str, Outcome]) -> Optional[str]:
    for key in step.needs:
        row = rows.get(key)
        if row is not None and not row.ok:
            return f"{row.name} ✗: {row.reason}"
    for name in step.after:
        earlier = outcomes.get(name)
        if earlier is None or earlier.status != "pass":
            return f"needs '{name}', which {'failed' if earlier and earlier.status == 'fail' else 'did not run'}"
    return None
