"""Described machines for the doctor's decisions: the facts dict `pcls.doctor.probe.collect` returns, with the
values a real probe of that machine gives (field names as in paddle/version/__init__.py and the child probes)."""

import copy


def gpu(index, name, cc, memory=16.0):
    major, minor = cc.split(".")
    return {"id": index, "name": name, "memory_gb": memory, "compute_capability": cc,
            "fp16": int(major) >= 6, "bf16": int(major) >= 8}


def cpu_only():
    return {
        "python": {"version": "3.11.7", "executable": "/usr/bin/python3"},
        "paddle": {"installed": True, "version": "3.3.1", "distributions": ["paddlepaddle"], "location": "/x/paddle",
                   "cuda": None, "cudnn": None, "nccl": None, "tensorrt": None, "cuda_archs": [],
                   "has_tensorrt_module": False, "too_old": None,
                   "runtime": {"version": "3.3.1", "cuda_build": False, "gpus": [], "pir": True}},
        "gpus": [],
        "tensorrt": {"python": None, "libraries": {}, "plugin_loadable": False},
        "onnxruntime": {"version": "1.20.0", "providers": ["CPUExecutionProvider"], "device": "CPU"},
        "paddle2onnx": "2.1.0", "openvino": None, "opencv": "4.10.0", "numpy": "2.3.5",
        "cpu": {"model": "AMD EPYC", "features": {"AVX2": True, "AVX-512": False, "VNNI": False,
                                                  "AVX-512 BF16": False, "AMX": False},
                "usable_cores": 2, "online_cores": 2},
        "threads": {"train": 2, "train_source": "every usable core", "predict": 2},
    }


def gpu_box(gpus=(("NVIDIA A100-SXM4-40GB", "8.0"), ("NVIDIA A100-SXM4-40GB", "8.0"))):
    """A CUDA 12.6 build with TensorRT 10, pip's tensorrt with the unversioned plugin on the loader path,
    onnxruntime-gpu."""
    facts = cpu_only()
    devices = [gpu(i, name, cc) for i, (name, cc) in enumerate(gpus)]
    facts["paddle"].update(cuda="12.6", cudnn="9.5.1", nccl="2.21.5", tensorrt="10.5.0.18",
                           cuda_archs=[61, 70, 75, 80, 86, 89, 90], has_tensorrt_module=True)
    facts["paddle"]["runtime"] = {"version": "3.3.1", "cuda_build": True, "gpus": devices, "pir": True,
                                  "nccl": True, "tensorrt_compiled": "10.5.0", "tensorrt_runtime": "10.5.0",
                                  "paddle_tensorrt": "ok"}
    facts["gpus"] = devices
    facts["tensorrt"] = {"python": "10.5.0", "plugin_loadable": True, "libraries": {
        "libnvinfer.so.10": "/opt/trt/libnvinfer.so.10", "libnvinfer_plugin.so.10": "/opt/trt/libnvinfer_plugin.so.10",
        "libnvinfer_plugin.so": "/opt/trt/libnvinfer_plugin.so"}}
    facts["onnxruntime"] = {"version": "1.20.0", "device": "GPU", "providers": [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]}
    return copy.deepcopy(facts)
