"""DistillationModel: the frozen teacher stays unchanged (weights and BatchNorm statistics) through training
steps and has no optimizer state; DML trains both models; the builder refuses models that cannot work."""

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from pcls.errors import PclsError  # noqa: E402
from tests.distill.conftest import CLASS_NUM, distill_config, quiet  # noqa: E402

RESIZE_32 = {"ResizeImage": {"size": 32}}


def _resized(cfg):
    """MobileNetV1 / PPLCNet need at least 32 px; the generated images are 16 px."""
    for split in ("Train", "Eval"):
        ops = cfg["DataLoader"][split]["dataset"]["transform_ops"]
        ops.insert(1, dict(RESIZE_32))
    return cfg


def _state(layer):
    return {k: v.numpy().copy() for k, v in layer.state_dict().items()}


def _save_weights(model_name, path, class_num=CLASS_NUM):
    from pcls.arch.registry import create_model
    from pcls.utils.state_files import save_state_file

    paddle.seed(1)
    return save_state_file(create_model(model_name, class_num=class_num).state_dict(), path)


def test_frozen_teacher_unchanged_and_without_optimizer_state(tmp_path, scarce_data):
    from pcls.engine.checkpoint import optimizer_state
    from pcls.engine.trainer import Trainer

    teacher_file = _save_weights("MobileNetV1_x0_25", tmp_path / "teacher.pdparams")
    cfg = _resized(distill_config(scarce_data, scarce_data["labelled_unlabeled"], tmp_path / "out", str(teacher_file),
                                  teacher="MobileNetV1_x0_25", student="PPLCNet_x0_25", epochs=1, lr=0.1))
    trainer = Trainer(cfg, log=quiet)
    net = trainer.net
    teacher_before, student_before = _state(net.Teacher), _state(net.Student)
    assert any("_mean" in k for k in teacher_before)  # BatchNorm statistics are part of the check
    trainer.fit()
    assert trainer.global_step > 0
    for key, value in _state(net.Teacher).items():
        np.testing.assert_array_equal(value, teacher_before[key], err_msg=key)
    changed = [k for k, v in _state(net.Student).items() if not np.array_equal(v, student_before[k])]
    assert len(changed) > len(student_before) // 2
    assert all(p.stop_gradient for p in net.Teacher.parameters())
    assert not net.Teacher.training and net.Student.training
    state_keys = [k for k in optimizer_state(trainer.optimizer, net) if k != "LR_Scheduler"]
    assert state_keys and not any(k.startswith("Teacher.") for k in state_keys)
    assert any(k.startswith("Student.") for k in state_keys)
    # the checkpoint keeps the teacher; the student file is the plain PPLCNet_x0_25 state dict
    from pcls.arch.registry import create_model
    from pcls.utils.state_files import load_state_file

    student = load_state_file(trainer.run_dir / "student" / "latest.pdparams")
    plain = create_model("PPLCNet_x0_25", class_num=CLASS_NUM).state_dict()
    assert set(student) == set(plain)
    for key, value in _state(net.Student).items():
        np.testing.assert_array_equal(student[key], value)


def test_dml_trains_both_models(tmp_path, scarce_data, tinynet):
    from pcls.engine.trainer import Trainer

    cfg = distill_config(scarce_data, scarce_data["labelled"], tmp_path / "out", False, epochs=1, batch_size=4,
                         soft_loss="DistillationDMLLoss")
    cfg["Arch"]["models"][0]["Teacher"]["freeze_params"] = False
    cfg["Loss"]["Train"][1]["DistillationGTCELoss"]["model_names"] = ["Student", "Teacher"]
    trainer = Trainer(cfg, log=quiet)
    before = {name: _state(getattr(trainer.net, name)) for name in ("Teacher", "Student")}
    trainer.fit()
    for name in ("Teacher", "Student"):
        after = _state(getattr(trainer.net, name))
        assert any(not np.array_equal(after[k], before[name][k]) for k in after), name


def test_teacher_to_half_casts_only_the_frozen_model():
    from pcls.arch.registry import create_model
    from pcls.distill.model import DistillationModel

    net = DistillationModel({"Teacher": create_model("MobileNetV1_x0_25", class_num=4),
                             "Student": create_model("PPLCNet_x0_25", class_num=4)}, frozen=["Teacher"],
                            infer_model_name="Student")
    net.teacher_to_half("float16")
    dtypes = {k: str(p.dtype) for k, p in net.Teacher.named_parameters()}
    norm_keys = [k for k in dtypes if "bn" in k.lower() or "norm" in k.lower()]
    assert norm_keys and all(dtypes[k] == "paddle.float32" for k in norm_keys)
    assert all(v == "paddle.float16" for k, v in dtypes.items() if k not in norm_keys)
    assert all(p.stop_gradient for p in net.Teacher.parameters())
    assert {str(p.dtype) for p in net.Student.parameters()} == {"paddle.float32"}
    assert net.teacher_dtype == "float16"
    assert {str(v.dtype) for v in net.student_state_dict().values()} == {"float32"}


def test_different_class_num_is_refused(tmp_path, scarce_data, tinynet):
    from pcls.engine.model import build_model

    cfg = distill_config(scarce_data, scarce_data["labelled"], tmp_path, False)
    cfg["Arch"]["models"][0]["Teacher"]["class_num"] = 10
    with pytest.raises(PclsError, match="same class_num .*Teacher 10, Student 8"):
        build_model(cfg["Arch"], cfg["Global"], log=quiet)


def test_frozen_teacher_with_a_foreign_head_is_refused(tmp_path, tinynet):
    from pcls.engine.model import build_model

    weights = _save_weights("TinyNet", tmp_path / "t10.pdparams", class_num=10)
    arch = {"name": "DistillationModel", "class_num": CLASS_NUM,
            "models": [{"Teacher": {"name": "TinyNet", "pretrained": str(weights), "freeze_params": True}},
                       {"Student": {"name": "TinyNet"}}]}
    with pytest.raises(PclsError, match="Teacher weights .* frozen teacher cannot learn a new head"):
        build_model(arch, {}, log=quiet)


def test_teacher_weights_of_another_architecture_name_the_teacher(tmp_path, tinynet):
    from pcls.engine.model import build_model

    weights = _save_weights("PPLCNet_x0_25", tmp_path / "lcnet.pdparams")
    arch = {"name": "DistillationModel", "class_num": CLASS_NUM,
            "models": [{"Teacher": {"name": "TinyNet", "pretrained": str(weights), "freeze_params": True}},
                       {"Student": {"name": "TinyNet"}}]}
    with pytest.raises(PclsError, match=r"^Teacher: weights .*lcnet.pdparams do not fit TinyNet"):
        build_model(arch, {}, log=quiet)


def test_pretrained_list_gives_each_model_its_weights(tmp_path, tinynet):
    from pcls.engine.model import build_model

    weights = _save_weights("TinyNet", tmp_path / "t.pdparams")
    arch = {"name": "DistillationModel", "class_num": CLASS_NUM, "pretrained_list": [str(weights), None],
            "freeze_params_list": [True, False],
            "models": [{"Teacher": {"name": "TinyNet"}}, {"Student": {"name": "TinyNet"}}]}
    net = build_model(arch, {}, log=quiet)
    from pcls.utils.state_files import load_state_file

    expected = load_state_file(weights)
    for key, value in net.Teacher.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), expected[key])
    assert not np.array_equal(net.Student.state_dict()["fc.weight"].numpy(), expected["fc.weight"])
    arch["pretrained_list"] = [str(weights)]
    with pytest.raises(PclsError, match="pretrained_list lists 1 weights for 2 models"):
        build_model(arch, {}, log=quiet)


@pytest.mark.filterwarnings("ignore:AmpScaler can only be enabled")
def test_trainer_puts_the_teacher_in_half_precision_under_amp(tmp_path, scarce_data, tinynet, monkeypatch):
    """Only the set-up is checked here: a half-precision forward needs a GPU (see the AMP note in the report)."""
    from pcls.engine.amp import AmpSettings
    from pcls.engine.trainer import Trainer

    monkeypatch.setattr(AmpSettings, "from_config", classmethod(lambda cls, cfg, device: cls(enabled=True)))
    cfg = distill_config(scarce_data, scarce_data["labelled_unlabeled"], tmp_path / "out", False, epochs=1)
    cfg["AMP"] = {"use_amp": True, "level": "O1"}
    trainer = Trainer(cfg, log=quiet)
    assert trainer.net.teacher_dtype == "float16"
    assert {str(p.dtype) for p in trainer.net.Teacher.parameters()} == {"paddle.float16"}
    assert {str(p.dtype) for p in trainer.net.Student.parameters()} == {"paddle.float32"}
