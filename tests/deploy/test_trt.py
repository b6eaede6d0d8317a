"""TensorRT and GPU inference the Paddle 3.3 way, checked without a GPU.

CPU wheels ship no `paddle.tensorrt`, so `PaddleTensorRT` below stands in for it. It follows Paddle's own code,
file by file, wherever the contract involves files or flags:
- python/paddle/tensorrt/export.py: `Input` (its ValueError rules), `PrecisionMode`, `TensorRTConfig` (the
  constructor sets FLAGS_trt_min_group_size from `min_subgraph_size`; attributes set later change nothing),
  `convert` (refuses save_model_dir == model_path; always CUDAPlace(0); saves `<save_model_dir>.json/.pdiparams`);
- python/paddle/tensorrt/util.py `get_cache_path(save_model_dir)`: makes save_model_dir as a FOLDER;
- python/paddle/tensorrt/converter.py: writes `<save_model_dir>/engine_<hash>_<n>.trt` and stores that path, as
  given, in the engine op's `engine_serialized_data` attribute;
- the predictor (`pd_op.tensorrt_engine` at program load) opens the file named by `engine_serialized_data`:
  `open_engines` below. A conversion renamed after the fact (what pcls once did) fails there.
"""

import hashlib
import json
import os
import shutil
import sys
import types
from enum import Enum
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pcls.cli import app
from pcls.deploy import gpu
from pcls.deploy.converters import trt
from pcls.deploy.gpu import no_cuda_message, parse_device, tensorrt_problem, visible_devices_for
from pcls.deploy.runtimes import PRECISIONS, RuntimeSettings, apply_plan, onnx_providers, paddle_config_plan
from pcls.deploy.converters.trt import (
    KEY_FILE,
    TRT_INT8_REFUSED,
    convert_trt,
    engine_paths,
    is_current,
    plan_trt_conversion,
    shape_range,
)
from pcls.errors import PclsError
from pcls.utils.logs import forward_logs

VERSIONS = {"tensorrt": "10.1.0", "paddle": "3.3.1+abcdef"}
runner = CliRunner()


def fake_export(folder: Path, suffix: str = ".json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"inference{suffix}").write_text("{}")
    (folder / "inference.pdiparams").write_bytes(b"\0")
    return folder


class PaddleTensorRT(types.ModuleType):
    """paddle.tensorrt as Paddle 3.3's sources behave (see the module docstring for which file each part follows)."""

    def __init__(self):
        super().__init__("paddle.tensorrt")
        self.calls = []
        self.flags = {}  # paddle.framework.set_flags as TensorRTConfig.__init__ calls it
        module = self

        class Input:  # export.py
            def __init__(self, warmup_data=None, min_input_shape=None, max_input_shape=None,
                         optim_input_shape=None, input_data_type="float32", input_range=None, name=None):
                if warmup_data is not None and (min_input_shape or max_input_shape or optim_input_shape):
                    raise ValueError("warmup data provided; min/max/optim shapes are ignored.")
                if warmup_data is None and None in (min_input_shape, max_input_shape, optim_input_shape):
                    raise ValueError("When warm_data is None, min/max/optim shapes must be specified.")
                self.warmup_data, self.name = warmup_data, name
                self.min_input_shape, self.optim_input_shape, self.max_input_shape = (
                    min_input_shape, optim_input_shape, max_input_shape)

        class PrecisionMode(Enum):  # export.py
            FP32, FP16, BF16, INT8 = "FP32", "FP16", "BF16", "INT8"

        class TensorRTConfig:  # export.py: the flag is set in the constructor only
            def __init__(self, inputs, min_subgraph_size=3, save_model_dir=None, disable_ops=None,
                         precision_mode=PrecisionMode.FP32, ops_run_float=None, optimization_level=3,
                         disable_passes=[], workspace_size=1 << 30, refit_params_path=None):  # noqa: B006
                self.inputs, self.min_subgraph_size, self.save_model_dir = inputs, min_subgraph_size, save_model_dir
                self.precision_mode, self.workspace_size = precision_mode, workspace_size
                module.flags["FLAGS_trt_min_group_size"] = min_subgraph_size

        def convert(model_path, config):  # export.py convert -> converter.py -> util.get_cache_path
            if os.path.abspath(config.save_model_dir) == os.path.abspath(model_path):
                raise ValueError("The `config.save_model_dir` and `model_path` cannot be the same.")
            source = Path(model_path).read_text()
            os.makedirs(config.save_model_dir, exist_ok=True)  # get_cache_path(save_model_dir)
            name = int(hashlib.sha256(source.encode()).hexdigest(), 16) % 10**8
            engine = f"{config.save_model_dir}/engine_{name}_1.trt"  # stored as given: absolute only if given so
            Path(engine).write_bytes(b"serialized engine")
            Path(f"{config.save_model_dir}/engine_{name}_1.pir").write_text("group")
            program = {"program": {"regions": [{"blocks": [{"ops": [{"#": "p", "N": "pd_op.tensorrt_engine", "A": [
                {"N": "engine_serialized_data", "AT": {"D": engine}},
                {"N": "min_group_size", "AT": {"D": module.flags["FLAGS_trt_min_group_size"]}}]}]}]}]}}
            Path(config.save_model_dir + ".json").write_text(json.dumps(program))
            Path(config.save_model_dir + ".pdiparams").write_bytes(b"\0")
            # convert() uses CUDAPlace(0): the first GPU this process sees
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
            module.calls.append({"model_path": model_path, "config": config, "physical_gpu": visible})

        self.Input, self.PrecisionMode, self.TensorRTConfig, self.convert = Input, PrecisionMode, TensorRTConfig, convert


def open_engines(program_json: Path) -> list:
    """What loading the converted program does: each tensorrt_engine op opens its engine_serialized_data file."""
    return [Path(path).read_bytes() for path in engine_paths(program_json)]


@pytest.fixture
def tensorrt(monkeypatch):
    module = PaddleTensorRT()
    monkeypatch.setitem(sys.modules, "paddle.tensorrt", module)
    monkeypatch.setattr(trt, "require_cuda", lambda *a, **k: None)
    monkeypatch.setattr(trt, "require_tensorrt", lambda: None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return module


def test_fp16_plan_for_batch_sizes_1_8_32(tmp_path):
    export_dir = fake_export(tmp_path / "export")
    plan = plan_trt_conversion(export_dir, 224, "fp16", (1, 8, 32), VERSIONS)
    assert plan.min_input_shape == (1, 3, 224, 224)
    assert plan.optim_input_shape == (8, 3, 224, 224)
    assert plan.max_input_shape == (32, 3, 224, 224)
    assert plan.precision_mode == "FP16" and plan.input_name == "x"
    assert plan.model_path == str(export_dir / "inference.json")
    # save_model_dir is absolute (the engine paths recorded in the program are built from it)
    assert Path(plan.save_model_dir) == export_dir / "trt_fp16" / "inference" and Path(plan.save_model_dir).is_absolute()
    assert plan.key["precision"] == "fp16" and plan.key["opt"] == [8, 3, 224, 224]


def test_a_relative_export_folder_still_gives_an_absolute_save_model_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_export(tmp_path / "rel")
    assert Path(plan_trt_conversion("rel", 64, "fp16", (1, 4), VERSIONS).save_model_dir).is_absolute()


def test_cache_key_changes_with_every_input(tmp_path):
    export_dir = fake_export(tmp_path / "export")
    base = plan_trt_conversion(export_dir, 224, "fp16", (1, 8, 32), VERSIONS).digest
    variants = [plan_trt_conversion(export_dir, 224, "fp32", (1, 8, 32), VERSIONS),
                plan_trt_conversion(export_dir, 224, "fp16", (1, 8, 16), VERSIONS),
                plan_trt_conversion(export_dir, 192, "fp16", (1, 8, 32), VERSIONS),
                plan_trt_conversion(export_dir, 224, "fp16", (1, 8, 32), VERSIONS, min_subgraph_size=5),
                plan_trt_conversion(export_dir, 224, "fp16", (1, 8, 32), {**VERSIONS, "tensorrt": "8.6.1"}),
                plan_trt_conversion(export_dir, 224, "fp16", (1, 8, 32), {**VERSIONS, "paddle": "3.0.0"})]
    digests = {v.digest for v in variants}
    assert base not in digests and len(digests) == len(variants)


def test_optimum_is_the_middle_batch_size_not_the_most_frequent():
    assert shape_range([32, 1, 8]) == (1, 8, 32)
    assert shape_range([1, 1, 1, 1, 4, 16]) == (1, 4, 16)
    assert shape_range([4]) == (4, 4, 4)
    with pytest.raises(PclsError):
        shape_range([0, 4])


def test_legacy_export_and_tensorrt_int8_on_pir_are_refused_in_one_line(tmp_path):
    with pytest.raises(PclsError, match="legacy"):
        plan_trt_conversion(fake_export(tmp_path / "old", ".pdmodel"), 224, "fp16", (1, 8), VERSIONS)
    with pytest.raises(PclsError) as refused:
        plan_trt_conversion(fake_export(tmp_path / "new"), 224, "int8", (1, 8), VERSIONS)
    assert str(refused.value) == TRT_INT8_REFUSED and "\n" not in TRT_INT8_REFUSED
    assert "--runtime onnx" in TRT_INT8_REFUSED and "--int8 --calib" in TRT_INT8_REFUSED


def test_conversion_lands_in_the_final_folder_and_its_engines_open_there(tmp_path, tensorrt):
    export_dir = fake_export(tmp_path / "export")
    plan = plan_trt_conversion(export_dir, 64, "fp16", (1, 8, 32), VERSIONS)
    messages = []
    with forward_logs(messages.append):  # the library logs; whoever runs it decides where the lines go
        folder = convert_trt(plan)
    assert folder == export_dir / "trt_fp16" and is_current(plan)
    call = tensorrt.calls[0]
    assert call["model_path"] == str(export_dir / "inference.json")
    assert call["config"].precision_mode is tensorrt.PrecisionMode.FP16
    spec = call["config"].inputs[0]
    assert (spec.min_input_shape, spec.optim_input_shape, spec.max_input_shape, spec.name) == (
        (1, 3, 64, 64), (8, 3, 64, 64), (32, 3, 64, 64), "x")
    assert open_engines(folder / "inference.json") == [b"serialized engine"]  # the predictor's load succeeds
    assert json.loads((folder / KEY_FILE).read_text()) == plan.key
    assert any("first run" in m for m in messages) and any("built in" in m for m in messages)

    with forward_logs(messages.append):
        convert_trt(plan)
    assert len(tensorrt.calls) == 1 and len(messages) == 2  # reused, silently
    stale = plan_trt_conversion(export_dir, 64, "fp16", (1, 8, 32), {**VERSIONS, "tensorrt": "10.2.0"})
    assert not is_current(stale)
    convert_trt(stale)
    assert len(tensorrt.calls) == 2 and is_current(stale)
    assert len(list((folder / "inference").glob("*.trt"))) == 1  # the stale engine was removed, not left beside
    assert not [p for p in export_dir.iterdir() if p.name.startswith(".")]  # no staging, backup or lock left


def test_a_moved_conversion_is_stale_because_its_program_names_the_old_engine_paths(tmp_path, tensorrt):
    first = fake_export(tmp_path / "first")
    convert_trt(plan_trt_conversion(first, 64, "fp16", (1, 4), VERSIONS))
    moved = tmp_path / "moved"
    shutil.move(str(first), str(moved))
    with pytest.raises(FileNotFoundError):
        open_engines(moved / "trt_fp16" / "inference.json")  # what renaming after conversion did to users
    plan = plan_trt_conversion(moved, 64, "fp16", (1, 4), VERSIONS)
    assert not is_current(plan)
    convert_trt(plan)
    assert open_engines(moved / "trt_fp16" / "inference.json")


def test_an_interrupted_conversion_has_no_completion_marker_and_is_redone(tmp_path, tensorrt, monkeypatch):
    export_dir = fake_export(tmp_path / "export")
    plan = plan_trt_conversion(export_dir, 64, "fp16", (1, 4), VERSIONS)
    original = tensorrt.convert

    def dies_after_writing(model_path, config):
        original(model_path, config)
        raise KeyboardInterrupt

    monkeypatch.setattr(tensorrt, "convert", dies_after_writing)
    with pytest.raises(KeyboardInterrupt):
        convert_trt(plan)
    assert not (plan.folder / KEY_FILE).exists() and not is_current(plan)
    monkeypatch.setattr(tensorrt, "convert", original)
    convert_trt(plan)
    assert is_current(plan)


def test_min_subgraph_size_reaches_paddle_through_the_constructor(tmp_path, tensorrt):
    plan = plan_trt_conversion(fake_export(tmp_path / "e"), 32, "fp32", (1, 2), VERSIONS, min_subgraph_size=7)
    convert_trt(plan)
    assert tensorrt.flags["FLAGS_trt_min_group_size"] == 7
    assert tensorrt.calls[0]["config"].min_subgraph_size == 7


def test_gpu_n_converts_in_a_subprocess_that_sees_only_that_gpu(tmp_path, tensorrt, monkeypatch):
    plan = plan_trt_conversion(fake_export(tmp_path / "e"), 32, "fp16", (1, 2), VERSIONS)
    launched = []

    def run(argv, env, **kwargs):  # run the child's entry point here, in the environment it would get
        launched.append((argv, env["CUDA_VISIBLE_DEVICES"]))
        with monkeypatch.context() as child:
            child.setenv("CUDA_VISIBLE_DEVICES", env["CUDA_VISIBLE_DEVICES"])
            trt._main(argv[3:])
        return types.SimpleNamespace(returncode=0, stderr="")

    monkeypatch.setattr(trt.subprocess, "run", run)
    convert_trt(plan, gpu_id=1)
    argv, visible = launched[0]
    assert argv[1:3] == ["-m", "pcls.deploy.converters.trt"] and visible == "1"
    assert tensorrt.calls[0]["physical_gpu"] == "1" and is_current(plan)


def test_visible_devices_map_through_an_existing_cuda_visible_devices():
    assert visible_devices_for(1, {}) == "1"
    assert visible_devices_for(1, {"CUDA_VISIBLE_DEVICES": "2,3"}) == "3"
    with pytest.raises(PclsError, match="only 2 GPU"):
        visible_devices_for(2, {"CUDA_VISIBLE_DEVICES": "2,3"})
    assert parse_device("gpu:1") == ("gpu", 1) and parse_device("cpu") == ("cpu", 0)
    with pytest.raises(PclsError, match="gpu:N"):
        parse_device("gpu:x")


def test_fp16_on_gpu_without_tensorrt_passes_the_precision_to_enable_use_gpu():
    """Paddle 3.3: enable_use_gpu(memory_pool_init_size_mb, device_id=0, precision_mode=Float32), the binding in
    paddle/fluid/pybind/inference_api.cc (Config stands in for it; no GPU predictor is created here)."""
    import paddle.inference as pi

    assert "precision_mode" in pi.Config.enable_use_gpu.__doc__  # the installed binding's signature

    class Config:
        def enable_use_gpu(self, memory_pool_init_size_mb, device_id=0, precision_mode=pi.PrecisionType.Float32):
            self.gpu = (memory_pool_init_size_mb, device_id, precision_mode)

        def __getattr__(self, name):
            return lambda *args: None

    config = Config()
    apply_plan(config, paddle_config_plan(RuntimeSettings(device="gpu", gpu_id=1, precision="fp16"), 224))
    assert config.gpu == (500, 1, pi.PrecisionType.Half)
    config = Config()
    apply_plan(config, paddle_config_plan(RuntimeSettings(device="gpu", trt=True, precision="fp16"), 224, "pir"))
    assert config.gpu[2] == pi.PrecisionType.Float32  # the converted engine carries the precision
    assert PRECISIONS["fp16"] == "Half"


def test_tensorrt_import_problems_are_one_line_each(monkeypatch):
    import ctypes
    import importlib.util

    real_find_spec = importlib.util.find_spec
    present = {"paddle.tensorrt": object(), "tensorrt": object()}
    monkeypatch.setattr(gpu.importlib.util, "find_spec", lambda name: present.get(name) or real_find_spec(name))

    def no_library(name):
        assert name == "libnvinfer_plugin.so"  # converter.py opens it by this exact name
        raise OSError(name)

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    assert "LD_LIBRARY_PATH" in tensorrt_problem()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())
    assert tensorrt_problem() is None
    present.pop("tensorrt")
    monkeypatch.setattr(gpu.importlib.util, "find_spec", lambda name: present.get(name))
    assert "pip install tensorrt" in tensorrt_problem()
    present.pop("paddle.tensorrt")
    assert "GPU build of Paddle 3" in tensorrt_problem()


def test_onnx_runtime_tensorrt_provider_caches_its_engine_in_the_export(tmp_path):
    """The provider options of onnxruntime's TensorRT execution provider (its trt_* option names); only the
    options are checked: no ONNX Runtime GPU session is created here."""
    providers = onnx_providers(RuntimeSettings(device="gpu", trt=True, precision="fp16"), tmp_path)
    name, options = providers[0]
    assert name == "TensorrtExecutionProvider"
    assert options["trt_engine_cache_enable"] is True and options["trt_fp16_enable"] is True
    assert Path(options["trt_engine_cache_path"]).parent == tmp_path
    assert providers[-1][0] == "CUDAExecutionProvider"


@pytest.mark.parametrize("args, drop", [
    ("export MobileNetV1_x0_25 --trt --fp16 --out {tmp}/never", "--trt"),
    ("predict {tmp}/nothing.jpg --model {tmp}/nowhere --trt --device gpu", "--trt --device gpu"),
    ("predict {tmp}/nothing.jpg --model {tmp}/nowhere --device gpu:1", "--device gpu:1"),
    ("bench {tmp}/nowhere --trt --device gpu --fp16", "--trt --fp16 --device gpu"),
    ("bench {tmp}/nowhere --trt", "--trt"),
])
def test_gpu_paths_refuse_on_a_cpu_build_naming_the_flags_to_drop(tmp_path, args, drop):
    paddle = pytest.importorskip("paddle")
    if paddle.is_compiled_with_cuda():
        pytest.skip("this Paddle build has CUDA")
    result = runner.invoke(app, args.format(tmp=tmp_path).split())
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"drop {drop} to run on the CPU" in errors[0]
    assert not (tmp_path / "never").exists()


def test_no_cuda_message_names_each_flag_once():
    assert "drop --trt --device gpu to run" in no_cuda_message("gpu", ["--trt"])
    assert "drop --trt to run" in no_cuda_message("cpu", ["--trt"])


@pytest.mark.parametrize("args, fragment", [
    ("export MobileNetV1_x0_25 --trt --int8 --calib c.txt --out {tmp}/never", "TensorRT INT8 on a Paddle 3 export"),
    ("export MobileNetV1_x0_25 --fp16 --out {tmp}/never", "--fp16 cannot convert a Paddle 3 (PIR) export"),
])
def test_refused_conversions_are_one_line_before_any_work(tmp_path, args, fragment):
    pytest.importorskip("paddle")
    result = runner.invoke(app, args.format(tmp=tmp_path).split())
    assert result.exit_code == 2 and fragment in result.output, result.output
    assert not (tmp_path / "never").exists()


def test_predict_reuses_the_shape_range_the_export_converted_with():
    from pcls.deploy.runtimes import trt_batch_sizes

    recorded = {"batch_sizes": [1, 8, 32]}
    settings = RuntimeSettings(device="gpu", trt=True, precision="fp16", max_batch_size=8)
    assert trt_batch_sizes(settings, recorded) == (1, 8, 32)  # same key: the export's conversion is reused
    assert trt_batch_sizes(RuntimeSettings(device="gpu", trt=True, max_batch_size=64), recorded) == (1, 64)
    assert trt_batch_sizes(RuntimeSettings(device="gpu", trt=True, trt_batch_sizes=(2, 4)), recorded) == (2, 4)
    assert trt_batch_sizes(settings, {}) == (1, 8)


def test_export_converts_inside_the_placed_export_and_never_moves_it(tmp_path, tensorrt, monkeypatch):
    pytest.importorskip("paddle")
    from pcls.deploy.export import pipeline as export_module
    from pcls.deploy.export import ExportRequest, export

    monkeypatch.setattr(export_module, "require_cuda", lambda *a, **k: None)
    monkeypatch.setattr(export_module, "require_tensorrt", lambda: None)
    monkeypatch.setattr(export_module, "tensorrt_versions", lambda: VERSIONS)
    out = tmp_path / "inference"
    report = export(ExportRequest(model_name="MobileNetV1_x0_25", out_dir=out, input_size=32, trt="fp16",
                                  trt_batch_sizes=(1, 2, 4)))
    assert open_engines(out / "trt_fp16" / "inference.json")  # the engine paths recorded at conversion still hold
    assert tensorrt.calls[0]["config"].save_model_dir == str(out / "trt_fp16" / "inference")
    assert any("trt_fp16/" in note for note in report.notes)
    import yaml

    recorded = yaml.safe_load((out / "inference.yml").read_text())["Global"]["trt"]["fp16"]
    plan = plan_trt_conversion(out, 32, "fp16", recorded["batch_sizes"], VERSIONS)
    assert recorded["key"] == plan.digest and is_current(plan)  # predict reuses it


@pytest.mark.parametrize("link", ["trt_fp16", "trt_fp16/inference"])
def test_a_symlinked_conversion_folder_is_refused_and_its_target_untouched(tmp_path, tensorrt, link):
    """Neither the conversion folder nor the converter's engine folder may be a link: the stale-file cleanup
    (marker, converted program, engine_*.trt/.pir) would otherwise delete files in the folder it points to."""
    export_dir = fake_export(tmp_path / "e")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    kept = {name: f"user {name}" for name in (KEY_FILE, "inference.json", "inference.pdiparams",
                                              "engine_1_1.trt", "engine_1_1.pir")}
    for name, text in kept.items():
        (elsewhere / name).write_text(text)
    (export_dir / link).parent.mkdir(exist_ok=True)
    (export_dir / link).symlink_to(elsewhere)
    with pytest.raises(PclsError, match="symbolic link"):
        convert_trt(plan_trt_conversion(export_dir, 32, "fp16", (1, 2), VERSIONS))
    assert not tensorrt.calls
    assert {p.name: p.read_text() for p in elsewhere.iterdir()} == kept
