"""One row per thing pcls can do on a machine -- ✔ or ✗, the one-line reason, and the fix -- decided from the facts
`pcls.doctor.probe.collect` gathered. Pure functions of those facts: tests feed them a described machine."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List, Optional

from pcls.doctor.probe import TRT_PLUGIN

GPU_INSTALL = "install paddlepaddle-gpu 3.x from PaddlePaddle's index for your CUDA (README 'GPU')"
CPU_INSTALL = "pip install 'paddlepaddle>=3.0' (or a GPU build: README 'GPU')"
ORT_GPU_INSTALL = "pip uninstall onnxruntime && pip install onnxruntime-gpu (the two packages must not coexist)"
RUN_CHECK = "pcls doctor --run runs it for real"
FAST_FP16_CC = (7, 0)  # tensor cores (Volta): where fp16 AMP and TensorRT fp16 pay off
TRT_INT8_CC = (6, 1)  # TensorRT INT8 needs dp4a (Pascal GP10x and later)


@dataclass
class Capability:
    key: str
    name: str
    ok: bool
    reason: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _cc(gpu: dict) -> tuple:
    major, _, minor = str(gpu.get("compute_capability", "0.0")).partition(".")
    return int(major or 0), int(minor or 0)


def _gpu_label(gpu: dict) -> str:
    return f"GPU {gpu['id']} {gpu['name']} (sm_{''.join(map(str, _cc(gpu)))})"


class _Machine:
    """The facts, with the questions every row asks answered once."""

    def __init__(self, facts: dict):
        self.facts = facts
        self.paddle = facts.get("paddle") or {}
        self.runtime = self.paddle.get("runtime") or {}
        self.gpus = facts.get("gpus") or []
        self.gpu = self.gpus[0] if self.gpus else None

    def paddle_problem(self) -> Optional[Capability]:
        """Why Paddle itself cannot be used (every row depends on it), or None."""
        p = self.paddle
        if not p.get("installed"):
            return Capability("paddle", "Paddle", False, "PaddlePaddle is not installed", CPU_INSTALL)
        if p.get("too_old"):
            return Capability("paddle", "Paddle", False, f"Paddle {p.get('version')} is older than 3.0",
                              f"pip uninstall {' '.join(p.get('distributions') or ['paddlepaddle'])}, then "
                              f"{GPU_INSTALL if p.get('cuda') else CPU_INSTALL}")
        if self.runtime.get("error"):
            return Capability("paddle", "Paddle", False, self.runtime["error"],
                              "reinstall Paddle for this Python; a GPU build must match the driver's CUDA "
                              "(nvidia-smi shows the highest CUDA it supports)")
        return None

    def gpu_problem(self) -> Optional[str]:
        """Why no GPU can be used, or None."""
        if not self.paddle.get("cuda") and not self.runtime.get("cuda_build"):
            return "this Paddle is a CPU build"
        if self.runtime.get("gpu_error"):
            return f"Paddle cannot query the GPUs: {self.runtime['gpu_error']}"
        if not self.gpus:
            return "this CUDA build of Paddle sees no GPU"
        return None


def assess(facts: dict) -> List[Capability]:
    """Every capability row for this machine, in the order the table shows them."""
    m = _Machine(facts)
    rows: List[Capability] = []
    broken = m.paddle_problem()
    p = m.paddle
    if broken:
        rows.append(broken)
    else:
        build = f"CUDA {p['cuda']}, cuDNN {p.get('cudnn')}" if p.get("cuda") else "CPU build"
        pir = {True: "PIR on", False: "PIR off", None: "PIR unknown"}[m.runtime.get("pir")]
        rows.append(Capability("paddle", "Paddle", True, f"{p.get('version')} ({build}, {pir})"))
    rows.append(_train_cpu(m, broken))
    rows.extend(_gpu_rows(m, broken))
    rows.extend(_onnx_rows(m))
    return rows


def _train_cpu(m: _Machine, broken) -> Capability:
    threads = m.facts.get("threads") or {}
    if broken:
        return Capability("train_cpu", "train on CPU", False, f"needs Paddle: {broken.reason}", broken.fix)
    if threads.get("error"):
        return Capability("train_cpu", "train on CPU", False, threads["error"], "fix or unset the variable")
    return Capability("train_cpu", "train on CPU", True,
                      f"{threads.get('train')} math thread(s) per process ({threads.get('train_source')})")


def _gpu_rows(m: _Machine, broken) -> List[Capability]:
    names = {"train_gpu": "train on GPU", "amp_fp16": "AMP O1/O2 fp16", "amp_bf16": "bf16 on GPU",
             "multi_gpu": "multi-GPU (NCCL)", "trt_fp16": "PIR-TRT fp16", "trt_int8": "TensorRT int8 (ONNX)"}
    problem = f"needs Paddle: {broken.reason}" if broken else m.gpu_problem()
    if problem:
        fix = broken.fix if broken else (GPU_INSTALL if "CPU build" in problem else
                                         "check nvidia-smi, the driver and CUDA_VISIBLE_DEVICES")
        return [Capability(key, name, False, problem, fix) for key, name in names.items()]
    gpu, label = m.gpu, _gpu_label(m.gpu)
    rows = [Capability("train_gpu", names["train_gpu"], True, f"{len(m.gpus)} GPU(s): {label}, "
                       f"{gpu['memory_gb']} GB{_arch_note(m)}")]
    fast_fp16 = _cc(gpu) >= FAST_FP16_CC
    if not gpu.get("fp16"):
        rows.append(Capability("amp_fp16", names["amp_fp16"], False, f"Paddle reports no fp16 on {label}",
                               "train in fp32 (remove the AMP section)"))
    else:
        rows.append(Capability("amp_fp16", names["amp_fp16"], True, f"{label}: " + (
            "fp16 tensor cores" if fast_fp16 else "fp16 runs, but without tensor cores it is barely faster")))
    rows.append(Capability("amp_bf16", names["amp_bf16"], bool(gpu.get("bf16")),
                           f"{label} {'supports' if gpu.get('bf16') else 'has no'} bf16 (needs sm_80+)",
                           "" if gpu.get("bf16") else "use fp16"))
    if not m.runtime.get("nccl"):
        rows.append(Capability("multi_gpu", names["multi_gpu"], False, "this Paddle build has no NCCL",
                               GPU_INSTALL))
    elif len(m.gpus) < 2:
        rows.append(Capability("multi_gpu", names["multi_gpu"], False, f"one GPU visible ({label})",
                               "--gpus needs two or more GPUs (check CUDA_VISIBLE_DEVICES)"))
    else:
        rows.append(Capability("multi_gpu", names["multi_gpu"], True,
                               f"{len(m.gpus)} GPUs, NCCL {m.paddle.get('nccl') or 'built in'}"))
    trt_problem, trt_fix = _trt_problem(m)
    for key, needed, what in (("trt_fp16", FAST_FP16_CC, "fast fp16"), ("trt_int8", TRT_INT8_CC, "INT8")):
        if trt_problem:
            rows.append(Capability(key, names[key], False, trt_problem, trt_fix))
        elif _cc(gpu) < needed:
            rows.append(Capability(key, names[key], False, f"{label} has no TensorRT {what} (needs sm_"
                                   f"{needed[0]}{needed[1]}+)", "use fp32" if key == "trt_fp16" else "use fp16"))
        else:
            # int8 runs as the calibrated int8 ONNX on ONNX Runtime's TensorRT provider: pcls refuses
            # `export --trt --int8` because paddle.tensorrt's warm-up data collects shapes, not INT8 scales
            note = "" if key == "trt_fp16" else " (int8 ONNX on ONNX Runtime's TensorRT provider)"
            rows.append(Capability(key, names[key], True, f"TensorRT {_trt_version(m)} on {label}{note}"))
    return rows


def _arch_note(m: _Machine) -> str:
    archs = [int(a) for a in m.paddle.get("cuda_archs") or [] if str(a).isdigit()]
    major, minor = _cc(m.gpu)
    if archs and major * 10 + minor not in archs:
        return f"; sm_{major}{minor} is not among this build's archs {archs}: kernels are JIT-compiled from PTX " \
               f"(slow first start) or missing"
    return ""


def _trt_version(m: _Machine) -> str:
    return m.runtime.get("tensorrt_runtime") or m.paddle.get("tensorrt") or "?"


def _trt_problem(m: _Machine):
    """(reason, fix) why Paddle's TensorRT path (paddle.tensorrt, PIR) cannot run here, or (None, None)."""
    p, trt = m.paddle, m.facts.get("tensorrt") or {}
    if not p.get("tensorrt") and not m.runtime.get("tensorrt_compiled"):
        return "this Paddle build has no TensorRT", "install a Paddle GPU build with TensorRT (README 'GPU')"
    if not p.get("has_tensorrt_module"):
        return "this Paddle has no paddle.tensorrt (PIR-TRT) module", GPU_INSTALL
    if not trt.get("python"):
        return ("the tensorrt Python package is not installed",
                f"pip install tensorrt=={p.get('tensorrt') or '<the version Paddle was built with>'}")
    if not trt.get("plugin_loadable"):
        versioned = sorted(name for name in trt.get("libraries", {}) if name.startswith("libnvinfer_plugin.so."))
        target = trt["libraries"][versioned[-1]] if versioned else "libnvinfer_plugin.so.N"
        return (f"paddle.tensorrt loads '{TRT_PLUGIN}' by that exact name and the loader cannot find it",
                f"ln -s {target} <a folder on LD_LIBRARY_PATH>/{TRT_PLUGIN}")
    imported = m.runtime.get("paddle_tensorrt")
    if imported and imported != "ok":
        return f"import paddle.tensorrt fails: {imported}", "install the tensorrt version Paddle was built with"
    return None, None


def _onnx_rows(m: _Machine) -> List[Capability]:
    ort = m.facts.get("onnxruntime")
    rows = []
    providers = (ort or {}).get("providers") or []
    broken = m.paddle_problem()
    # `pcls predict --device gpu` checks for a CUDA build of Paddle first, whichever runtime runs the model
    gpu_problem = f"needs Paddle: {broken.reason}" if broken else m.gpu_problem()
    for key, name, provider in (("ort_cuda", "ORT CUDA", "CUDAExecutionProvider"),
                                ("ort_trt", "ORT TensorRT", "TensorrtExecutionProvider")):
        if gpu_problem:
            rows.append(Capability(key, name, False, gpu_problem, broken.fix if broken else GPU_INSTALL))
        elif not ort:
            rows.append(Capability(key, name, False, "onnxruntime is not installed",
                                   "pip install 'pcls[onnx]' then " + ORT_GPU_INSTALL))
        elif ort.get("error"):
            rows.append(Capability(key, name, False, ort["error"], "reinstall onnxruntime-gpu"))
        elif provider not in providers:
            rows.append(Capability(key, name, False, f"onnxruntime {ort.get('version')} has no {provider} "
                                   f"(providers: {', '.join(providers) or 'none'})", ORT_GPU_INSTALL))
        elif key == "ort_trt" and not (m.facts.get("tensorrt") or {}).get("libraries"):
            rows.append(Capability(key, name, False, f"{provider} is built in but no libnvinfer is installed",
                                   "pip install tensorrt (the version onnxruntime-gpu's release notes name)"))
        else:
            rows.append(Capability(key, name, True, f"onnxruntime {ort.get('version')} lists {provider} "
                                   f"(listed is not loaded: {RUN_CHECK})"))
    rows.append(_int8_cpu(m, ort))
    return rows


def _int8_cpu(m: _Machine, ort) -> Capability:
    missing = [name for name, present in (("onnxruntime", ort), ("paddle2onnx", m.facts.get("paddle2onnx")))
               if not present]
    if missing:
        return Capability("int8_cpu", "int8 on CPU", False, f"{' and '.join(missing)} not installed",
                          "pip install 'pcls[onnx]'")
    features = (m.facts.get("cpu") or {}).get("features") or {}
    if features.get("AMX") or features.get("VNNI"):
        speed = "the CPU has VNNI" + (" and AMX" if features.get("AMX") else "") + ": int8 kernels are fast"
    elif features:
        speed = "no VNNI on this CPU: the int8 model is 4x smaller but may be no faster than fp32"
    else:
        speed = "CPU features unknown"
    return Capability("int8_cpu", "int8 on CPU", True, f"ONNX Runtime static int8; {speed}")
