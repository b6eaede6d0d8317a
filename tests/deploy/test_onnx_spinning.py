"""ONNX Runtime sessions on CPU let their threads sleep between operators (`session.intra_op.allow_spinning` 0),
as Paddle's OpenMP threads do while predicting: spinning threads take the cores from the decoding threads."""

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from pcls.deploy import runtimes  # noqa: E402
from pcls.deploy.runtimes import SPINNING_ENTRY, RuntimeSettings, onnx_runner, onnx_session_options  # noqa: E402
from pcls.deploy.spec import ONNX_FILE  # noqa: E402


def test_cpu_sessions_do_not_spin_and_use_the_asked_threads():
    options = onnx_session_options(RuntimeSettings(runtime="onnx", threads=3))
    assert options.intra_op_num_threads == 3
    assert options.get_session_config_entry(SPINNING_ENTRY) == "0"


def test_gpu_sessions_keep_onnx_runtime_s_default():
    options = onnx_session_options(RuntimeSettings(runtime="onnx", device="gpu"))
    with pytest.raises(RuntimeError, match="does not have configuration"):  # no entry: ONNX Runtime's default
        options.get_session_config_entry(SPINNING_ENTRY)


def test_the_predictor_s_onnx_runner_builds_its_session_with_them(tmp_path, monkeypatch):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / ONNX_FILE))
    seen = []
    real = ort.InferenceSession

    def recording(path, sess_options=None, **kwargs):
        seen.append(sess_options.get_session_config_entry(SPINNING_ENTRY))
        return real(path, sess_options=sess_options, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", recording)
    run = onnx_runner(tmp_path, RuntimeSettings(runtime="onnx", threads=1), 4)
    batch = np.random.default_rng(0).random((2, 3, 4, 4), dtype=np.float32)
    np.testing.assert_array_equal(run(batch), batch)
    assert seen == ["0"]
    assert runtimes.SPINNING_ENTRY == "session.intra_op.allow_spinning"  # ONNX Runtime's name for the switch
