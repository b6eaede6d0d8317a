"""The capability rows decided from described machines (tests/doctor/machines.py): each ✗ names its reason and
a fix, each ✔ what it found."""

from pcls.doctor.capabilities import assess
from tests.doctor.machines import cpu_only, gpu_box

GPU_KEYS = ("train_gpu", "amp_fp16", "amp_bf16", "multi_gpu", "trt_fp16", "trt_int8")


def rows(facts):
    return {row.key: row for row in assess(facts)}


def test_every_row_of_a_two_gpu_ampere_machine_is_ok():
    found = rows(gpu_box())
    assert [key for key, row in found.items() if not row.ok] == []
    assert "2 GPUs" in found["multi_gpu"].reason and "TensorRT 10.5.0" in found["trt_fp16"].reason


def test_cpu_build_fails_every_gpu_row_with_the_install_fix():
    found = rows(cpu_only())
    for key in GPU_KEYS:
        assert not found[key].ok and found[key].reason == "this Paddle is a CPU build"
        assert "PaddlePaddle's index" in found[key].fix
    assert found["train_cpu"].ok and found["int8_cpu"].ok and "no VNNI" in found["int8_cpu"].reason
    assert not found["ort_cuda"].ok and found["ort_cuda"].reason == "this Paddle is a CPU build"


def test_ort_gpu_needs_onnxruntime_gpu_and_a_cuda_paddle():
    facts = gpu_box()
    facts["onnxruntime"]["providers"] = ["CPUExecutionProvider"]
    found = rows(facts)
    assert not found["ort_cuda"].ok and "has no CUDAExecutionProvider" in found["ort_cuda"].reason
    assert "onnxruntime-gpu" in found["ort_cuda"].fix
    facts = cpu_only()  # onnxruntime-gpu beside a CPU Paddle: pcls's --device gpu refuses before ORT runs
    facts["onnxruntime"]["providers"] = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert rows(facts)["ort_cuda"].reason == "this Paddle is a CPU build"


def test_one_turing_gpu():
    found = rows(gpu_box(gpus=(("Tesla T4", "7.5"),)))
    assert found["train_gpu"].ok and found["amp_fp16"].ok and "tensor cores" in found["amp_fp16"].reason
    assert not found["amp_bf16"].ok and "sm_80" in found["amp_bf16"].reason
    assert not found["multi_gpu"].ok and "one GPU visible" in found["multi_gpu"].reason


def test_pascal_has_trt_int8_but_no_fast_fp16():
    found = rows(gpu_box(gpus=(("GeForce GTX 1080", "6.1"),)))
    assert not found["trt_fp16"].ok and "sm_70+" in found["trt_fp16"].reason
    assert found["trt_int8"].ok


def test_pip_tensorrt_without_the_unversioned_plugin_name():
    facts = gpu_box()
    del facts["tensorrt"]["libraries"]["libnvinfer_plugin.so"]
    facts["tensorrt"]["plugin_loadable"] = False
    found = rows(facts)
    assert not found["trt_fp16"].ok and "libnvinfer_plugin.so" in found["trt_fp16"].reason
    assert found["trt_fp16"].fix.startswith("ln -s /opt/trt/libnvinfer_plugin.so.10 ")


def test_no_tensorrt_python_package():
    facts = gpu_box()
    facts["tensorrt"]["python"] = None
    found = rows(facts)
    assert not found["trt_int8"].ok and "pip install tensorrt==10.5.0.18" in found["trt_int8"].fix


def test_driver_error_and_no_visible_gpu():
    facts = gpu_box()
    facts["gpus"] = facts["paddle"]["runtime"]["gpus"] = []
    facts["paddle"]["runtime"]["gpu_error"] = "cudaErrorInsufficientDriver: CUDA driver version is insufficient"
    found = rows(facts)
    assert all(not found[key].ok and "insufficient" in found[key].reason for key in GPU_KEYS)
    del facts["paddle"]["runtime"]["gpu_error"]
    assert rows(facts)["train_gpu"].reason == "this CUDA build of Paddle sees no GPU"


def test_gpu_newer_than_the_builds_archs_is_noted():
    found = rows(gpu_box(gpus=(("NVIDIA RTX PRO 6000", "12.0"),)))
    assert found["train_gpu"].ok and "sm_120 is not among" in found["train_gpu"].reason


def test_paddle_too_old_missing_or_crashing_is_a_row_not_an_error():
    facts = cpu_only()
    facts["paddle"].update(version="2.6.2", too_old="pcls needs PaddlePaddle >= 3.0 ...", runtime={})
    found = rows(facts)
    assert not found["paddle"].ok and "older than 3.0" in found["paddle"].reason
    assert "pip uninstall paddlepaddle" in found["paddle"].fix
    assert not found["train_cpu"].ok and not found["train_gpu"].ok

    facts = cpu_only()
    facts["paddle"] = {"installed": False}
    assert rows(facts)["paddle"].reason == "PaddlePaddle is not installed"

    facts = gpu_box()
    facts["paddle"]["runtime"] = {"error": "'import paddle' failed (killed by SIGABRT): libcudnn.so.9: not found"}
    facts["gpus"] = []
    found = rows(facts)
    assert not found["paddle"].ok and "SIGABRT" in found["paddle"].reason
    assert "SIGABRT" in found["trt_fp16"].reason


def test_ort_gpu_providers_listed_but_tensorrt_missing():
    facts = gpu_box()
    facts["tensorrt"]["libraries"] = {}
    found = rows(facts)
    assert found["ort_cuda"].ok and "listed is not loaded" in found["ort_cuda"].reason
    assert not found["ort_trt"].ok and "no libnvinfer" in found["ort_trt"].reason


def test_int8_on_cpu_needs_the_onnx_extra():
    facts = cpu_only()
    facts["onnxruntime"] = None
    found = rows(facts)
    assert not found["int8_cpu"].ok and found["int8_cpu"].fix == "pip install 'pcls[onnx]'"
    facts = cpu_only()
    facts["cpu"]["features"]["VNNI"] = True
    assert "VNNI" in rows(facts)["int8_cpu"].reason and "fast" in rows(facts)["int8_cpu"].reason
