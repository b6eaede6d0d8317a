"""The facts `pcls doctor` reads: TensorRT's libraries as the loader would find them, the first error line of a
failed child, and a Paddle that is too old or crashes on import reported as a row (stand-ins: standin.py)."""

import json

from pcls.doctor.probe import first_error_line, tensorrt_facts
from tests.doctor.standin import make_paddle, run_python


def test_tensorrt_plugin_must_be_findable_by_its_unversioned_name(tmp_path, monkeypatch):
    # paddle/tensorrt/converter.py does ctypes.CDLL('libnvinfer_plugin.so'); pip's TensorRT ships only .so.10
    for name in ("libnvinfer.so.10", "libnvinfer_plugin.so.10"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path))
    facts = tensorrt_facts()
    assert facts["libraries"]["libnvinfer_plugin.so.10"] == str(tmp_path / "libnvinfer_plugin.so.10")
    assert facts["plugin_loadable"] is False
    (tmp_path / "libnvinfer_plugin.so").symlink_to(tmp_path / "libnvinfer_plugin.so.10")
    assert tensorrt_facts()["plugin_loadable"] is True


def test_first_error_line():
    traceback = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
                 "OSError: libcudnn.so.9: cannot open shared object file\n")
    assert first_error_line(traceback) == "OSError: libcudnn.so.9: cannot open shared object file"
    assert first_error_line("loading\nerror: --device gpu needs CUDA\n") == "error: --device gpu needs CUDA"
    assert first_error_line("W1207 paddle warning\nsomething else\n") == "something else"
    assert first_error_line("") == ""
    paddle_crash = ("C++ Traceback (most recent call last):\n0   paddle::framework::Run\n----------------------\n"
                    "Error Message Summary:\n----------------------\n"
                    "FatalError: `Segmentation fault` is detected by the operating system.\n"
                    "  [TimeInfo: *** Aborted at 1765090000 (unix time) try \"date -d @1765090000\" if you are "
                    "using GNU date ***]\n  [SignalInfo: *** SIGSEGV (@0x0) received by PID 42 ***]\n")
    assert first_error_line(paddle_crash).startswith("FatalError: `Segmentation fault`")


def doctor_json(folder):
    done = run_python(folder, "-m", "pcls", "doctor", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    return report, {row["key"]: row for row in report["capabilities"]}


def test_doctor_reports_an_old_paddle_without_importing_it(tmp_path):
    make_paddle(tmp_path, "2.6.2", init="raise RuntimeError('the stand-in Paddle 2.6 init ran')", cuda="11.8")
    report, rows = doctor_json(tmp_path)
    assert report["environment"]["paddle"]["cuda"] == "11.8"
    assert report["environment"]["paddle"]["runtime"] == {}  # no child imported it
    assert not rows["paddle"]["ok"] and "2.6.2 is older than 3.0" in rows["paddle"]["reason"]
    assert "PaddlePaddle's index" in rows["paddle"]["fix"]  # a CUDA build: the GPU install


def test_doctor_survives_a_paddle_that_aborts_on_import(tmp_path):
    make_paddle(tmp_path, "3.0.0", init="import os, sys\nsys.stderr.write('F1207 cuda.cc] CUDA driver mismatch\\n')\n"
                "sys.stderr.flush()\nos.abort()")
    report, rows = doctor_json(tmp_path)
    reason = rows["paddle"]["reason"]
    assert not rows["paddle"]["ok"] and "killed by SIGABRT" in reason and "CUDA driver mismatch" in reason
    assert not rows["train_gpu"]["ok"] and rows["int8_cpu"]["key"] == "int8_cpu"


def test_doctor_itself_imports_neither_paddle_nor_onnxruntime(tmp_path):
    code = ("import sys\nfrom pcls.cli import main\ntry:\n    main(['doctor', '--json'])\nexcept SystemExit:\n"
            "    pass\nsys.stderr.write('IMPORTED ' + ' '.join(m for m in ('paddle', 'onnxruntime', 'tensorrt')"
            " if m in sys.modules))")
    done = run_python(tmp_path, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith("IMPORTED"), done.stderr[-500:]
    assert json.loads(done.stdout)["environment"]["paddle"]["runtime"]["version"]  # the child did import it


def test_a_fact_reader_that_raises_becomes_its_row(monkeypatch):
    from pcls.cli.doctor import environment_rows
    from pcls.doctor import probe
    from pcls.doctor.capabilities import assess

    def broken():
        raise PermissionError("/proc/cpuinfo: permission denied")

    monkeypatch.setattr(probe, "cpu_facts", broken)
    facts = probe.collect(probe=False)
    assert facts["cpu"] == {"error": "PermissionError: /proc/cpuinfo: permission denied"}
    assert ("CPU", None, "PermissionError: /proc/cpuinfo: permission denied") in environment_rows(facts)
    assert {row.key for row in assess(facts)} >= {"paddle", "int8_cpu"}


def test_onnxruntime_and_openvino_are_asked_in_children(tmp_path):
    # stand-ins with the calls the child makes: onnxruntime.get_available_providers()/get_device(),
    # openvino.get_version() and Core().available_devices (a property)
    (tmp_path / "onnxruntime").mkdir()
    (tmp_path / "onnxruntime" / "__init__.py").write_text(
        "__version__ = '1.20.1'\ndef get_available_providers():\n"
        "    return ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']\n"
        "def get_device():\n    return 'GPU'\n")
    (tmp_path / "openvino").mkdir()
    (tmp_path / "openvino" / "__init__.py").write_text(
        "def get_version():\n    return '2025.1.0-18503'\nclass Core:\n    @property\n"
        "    def available_devices(self):\n        return ['CPU', 'GPU']\n")
    report, rows = doctor_json(tmp_path)
    ort, ov = report["environment"]["onnxruntime"], report["environment"]["openvino"]
    assert ort["version"] == "1.20.1" and ort["providers"][:2] == ["TensorrtExecutionProvider",
                                                                   "CUDAExecutionProvider"]
    assert ov["version"] == "2025.1.0-18503" and ov["devices"] == ["CPU", "GPU"]
