"""TensorRT the Paddle 3 way, checked without a GPU: the conversion plan as data, its cache key, the converter
calls made through a stand-in `paddle.tensorrt`, ONNX Runtime's engine cache, and the one-line refusal on a build
without CUDA before any work is done."""

import json
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pcls.cli import app
from pcls.deploy.gpu import no_cuda_message
from pcls.deploy import trt
from pcls.deploy.predictor import RuntimeSettings, onnx_providers
from pcls.deploy.trt import KEY_FILE, convert_trt, is_current, plan_trt_conversion, shape_range
from pcls.errors import PclsError
from pcls.utils.logs import forward_logs

VERSIONS = {"tensorrt": "10.1.0", "paddle": "3.3.1+abcdef"}
runner = CliRunner()


def fake_export(folder: Path, suffix: str = ".json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"inference{suffix}").write_text("{}")
    (folder / "inference.pdiparams").write_bytes(b"\0")
    return folder


def test_fp16_plan_for_batch_sizes_1_8_32(tmp_path):
    export_dir = fake_export(tmp_path / "export")
    plan = plan_trt_conversion(export_dir, 224, "fp16", (1, 8, 32), VERSIONS)
    assert plan.min_input_shape == (1, 3, 224, 224)
    assert plan.optim_input_shape == (8, 3, 224, 224)
    assert plan.max_input_shape == (32, 3, 224, 224)
    assert plan.precision_mode == "FP16" and plan.input_name == "x"
    assert plan.model_path == str(export_dir / "inference.json")
    # TensorRTConfig.save_model_dir is a path prefix: <export>/trt_fp16/inference(.json|.pdiparams)
    assert Path(plan.save_model_dir) == export_dir / "trt_fp16" / "inference"
    assert plan.key == {"precision": "fp16", "min": [1, 3, 224, 224], "opt": [8, 3, 224, 224],
                        "max": [32, 3, 224, 224], "tensorrt": "10.1.0", "paddle": "3.3.1+abcdef", "calibration": None}


def test_cache_key_changes_with_every_input(tmp_path):
    export_dir = fake_export(tmp_path / "export")
    base = plan_trt_conversion(export_dir, 224, "fp16", (1, 8, 32), VERSIONS).digest
    variants = [plan_trt_conversion(export_dir, 224, "fp32", (1, 8, 32), VERSIONS),
                plan_trt_conversion(export_dir, 224, "fp16", (1, 8, 16), VERSIONS),
                plan_trt_conversion(export_dir, 192, "fp16", (1, 8, 32), VERSIONS),
                plan_trt_conversion(export_dir, 224, "fp16", (1, 8, 32), {**VERSIONS, "tensorrt": "8.6.1"}),
                plan_trt_conversion(export_dir, 224, "fp16", (1, 8, 32), {**VERSIONS, "paddle": "3.0.0"})]
    digests = {v.digest for v in variants}
    assert base not in digests and len(digests) == len(variants)


def test_shape_range_takes_the_middle_size_as_optimum():
    assert shape_range([32, 1, 8]) == (1, 8, 32)
    assert shape_range([4]) == (4, 4, 4)
    with pytest.raises(PclsError):
        shape_range([0, 4])


def test_legacy_export_and_uncalibrated_int8_are_refused(tmp_path):
    with pytest.raises(PclsError, match="legacy"):
        plan_trt_conversion(fake_export(tmp_path / "old", ".pdmodel"), 224, "fp16", (1, 8), VERSIONS)
    with pytest.raises(PclsError, match="--calib"):
        plan_trt_conversion(fake_export(tmp_path / "new"), 224, "int8", (1, 8), VERSIONS)


class FakeTensorRT(types.ModuleType):
    """Stands in for paddle.tensorrt (absent from CPU wheels): records the calls, writes a converted model."""

    def __init__(self):
        super().__init__("paddle.tensorrt")
        self.calls = []
        fake = self

        class Input:
            def __init__(self, **kwargs):
                self.kwargs = kwargs

        class TensorRTConfig:
            def __init__(self, inputs):
                self.inputs = inputs

        class PrecisionMode:
            FP32, FP16, INT8 = "FP32", "FP16", "INT8"

        def convert(model_path, config):
            fake.calls.append((model_path, config))
            Path(config.save_model_dir + ".json").write_text("{}")
            Path(config.save_model_dir + ".pdiparams").write_bytes(b"\0")

        self.Input, self.TensorRTConfig, self.PrecisionMode, self.convert = Input, TensorRTConfig, PrecisionMode, convert


def test_conversion_is_built_once_and_reused_while_its_key_holds(tmp_path, monkeypatch):
    fake = FakeTensorRT()
    monkeypatch.setitem(sys.modules, "paddle.tensorrt", fake)
    monkeypatch.setattr(trt, "require_cuda", lambda device="gpu": None)
    export_dir = fake_export(tmp_path / "export")
    plan = plan_trt_conversion(export_dir, 64, "fp16", (1, 8, 32), VERSIONS)
    messages = []
    with forward_logs(messages.append):  # the library logs; whoever runs it decides where the lines go
        folder = convert_trt(plan)
    assert folder == export_dir / "trt_fp16" and is_current(plan)
    model_path, config = fake.calls[0]
    assert model_path == str(export_dir / "inference.json") and config.precision_mode == "FP16"
    assert config.inputs[0].kwargs == {"min_input_shape": (1, 3, 64, 64), "optim_input_shape": (8, 3, 64, 64),
                                       "max_input_shape": (32, 3, 64, 64), "name": "x"}
    assert json.loads((folder / KEY_FILE).read_text()) == plan.key
    assert any("first run" in m for m in messages) and any("built in" in m for m in messages)

    with forward_logs(messages.append):
        convert_trt(plan)
    assert len(fake.calls) == 1 and len(messages) == 2  # reused, silently
    stale = plan_trt_conversion(export_dir, 64, "fp16", (1, 8, 32), {**VERSIONS, "tensorrt": "10.2.0"})
    assert not is_current(stale)
    convert_trt(stale)
    assert len(fake.calls) == 2 and is_current(stale)
    assert not [p for p in export_dir.iterdir() if p.name.startswith(".")]  # no staging or backup left


def test_int8_conversion_feeds_calibration_batches_as_warmup_data(tmp_path, monkeypatch):
    import numpy as np

    fake = FakeTensorRT()
    monkeypatch.setitem(sys.modules, "paddle.tensorrt", fake)
    monkeypatch.setattr(trt, "require_cuda", lambda device="gpu": None)
    plan = plan_trt_conversion(fake_export(tmp_path / "e"), 32, "int8", (1, 4), VERSIONS, calibration="calib.txt:8")
    with pytest.raises(PclsError, match="--calib"):
        convert_trt(plan, calib_batches=None)
    batches = [np.zeros((1, 3, 32, 32), "float32"), np.zeros((4, 3, 32, 32), "float32")]
    convert_trt(plan, calib_batches=batches)
    _, config = fake.calls[0]
    assert config.precision_mode == "INT8" and config.inputs[0].kwargs["warmup_data"] == tuple(batches)


def test_onnx_runtime_tensorrt_provider_caches_its_engine_in_the_export(tmp_path):
    providers = onnx_providers(RuntimeSettings(device="gpu", trt=True, precision="fp16"), tmp_path)
    name, options = providers[0]
    assert name == "TensorrtExecutionProvider"
    assert options["trt_engine_cache_enable"] is True and options["trt_fp16_enable"] is True
    assert Path(options["trt_engine_cache_path"]).parent == tmp_path
    assert providers[-1][0] == "CUDAExecutionProvider"


@pytest.mark.parametrize("args", [
    "export MobileNetV1_x0_25 --trt --fp16 --out {tmp}/never",
    "export MobileNetV1_x0_25 --trt --int8 --out {tmp}/never",
    "predict {tmp}/nothing.jpg --model {tmp}/nowhere --trt --device gpu",
    "predict {tmp}/nothing.jpg --model {tmp}/nowhere --device gpu",
    "bench {tmp}/nowhere --trt --device gpu --fp16",
])
def test_gpu_paths_refuse_on_a_cpu_build_with_one_line_before_any_work(tmp_path, args):
    paddle = pytest.importorskip("paddle")
    if paddle.is_compiled_with_cuda():
        pytest.skip("this Paddle build has CUDA")
    result = runner.invoke(app, args.format(tmp=tmp_path).split())
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {no_cuda_message()}"]
    assert not (tmp_path / "never").exists()


def test_predict_reuses_the_shape_range_the_export_converted_with():
    from pcls.deploy.predictor import trt_batch_sizes

    recorded = {"batch_sizes": [1, 8, 32], "calibration": None}
    settings = RuntimeSettings(device="gpu", trt=True, precision="fp16", max_batch_size=8)
    assert trt_batch_sizes(settings, recorded) == (1, 8, 32)  # same key: the export's conversion is reused
    assert trt_batch_sizes(RuntimeSettings(device="gpu", trt=True, max_batch_size=64), recorded) == (1, 64)
    assert trt_batch_sizes(RuntimeSettings(device="gpu", trt=True, trt_batch_sizes=(2, 4)), recorded) == (2, 4)
    assert trt_batch_sizes(settings, {}) == (1, 8)
