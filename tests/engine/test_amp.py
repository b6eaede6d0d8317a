"""AMP by Paddle 3.3's own contracts (#23). AMP does nothing on CPU, so the half-precision parts use
stand-ins that do what Paddle's code does:
- `decorate(level="O2", save_dtype=...)`: paddle/amp/auto_cast.py casts the weights (Layer._to_impl) and
  registers `StateDictHook(save_dtype)` on every sublayer, so `state_dict()` returns float32 copies;
- O2's auto_cast keeps only EXTRA_BLACK_LIST ops in float32 (paddle/amp/amp_lists.py): the loss must get
  float32 logits.
"""

import numpy as np
import paddle
import pytest

from pcls.config.schema import validate
from pcls.engine.amp import AmpSettings, float32_tree
from pcls.errors import PclsError


def _amp(section: dict) -> dict:
    return validate({"Arch": {"name": "ResNet18"}, "AMP": section})["AMP"]


def test_use_pure_fp16_means_o2_and_an_explicit_level_wins():
    assert _amp({"use_pure_fp16": True})["level"] == "O2"
    assert _amp({})["level"] == "O1"
    assert _amp({"use_pure_fp16": True, "level": "O1"})["level"] == "O1"
    assert _amp({"level": "o2"})["level"] == "O2"  # PaddleClas upper-cases it too
    with pytest.raises(PclsError, match="AMP.level: 'O3' is not one of"):
        _amp({"level": "O3"})


def test_settings_on_gpu_and_cpu(monkeypatch):
    on_gpu = AmpSettings.from_config(_amp({"use_pure_fp16": True, "scale_loss": 128.0,
                                           "use_dynamic_loss_scaling": True}), "gpu:0")
    assert (on_gpu.enabled, on_gpu.level, on_gpu.dtype, on_gpu.scale_loss, on_gpu.dynamic) == \
        (True, "O2", "float16", 128.0, True)
    assert on_gpu.eval_autocast is not None  # O2 evaluates under auto_cast (PaddleClas forces use_fp16_test)
    o1 = AmpSettings.from_config(_amp({}), "gpu")
    assert o1.eval_autocast is None and not o1.pure  # O1: float32 evaluation unless use_fp16_test
    assert AmpSettings.from_config(_amp({"use_fp16_test": True}), "gpu").eval_autocast is not None
    on_cpu = AmpSettings.from_config(_amp({"level": "O1"}), "cpu")
    assert not on_cpu.enabled and "float32" in on_cpu.note and on_cpu.scaler() is None
    assert not AmpSettings.from_config(None, "gpu").enabled
    assert not AmpSettings.from_config(_amp({"use_amp": False}), "gpu").enabled
    built = {}  # paddle's GradScaler switches itself off on CPU, so check what it would be built with
    monkeypatch.setattr(paddle.amp, "GradScaler", lambda **kw: built.update(kw) or "scaler")
    assert on_gpu.scaler() == "scaler"
    assert built == {"init_loss_scaling": 128.0, "use_dynamic_loss_scaling": True}


def test_o2_decorates_with_float32_master_weights_and_float32_saves(monkeypatch):
    seen = {}
    monkeypatch.setattr(paddle.amp, "decorate", lambda **kw: seen.update(kw) or (kw["models"], kw["optimizers"]))
    settings = AmpSettings(enabled=True, level="O2")
    assert settings.prepare("net", "opt") == ("net", "opt")
    assert seen["level"] == "O2" and seen["master_weight"] is True and seen["save_dtype"] == "float32"


def _o2_stand_in(layer):
    """What decorate(level="O2", save_dtype="float32") does to a model (paddle/amp/auto_cast.py)."""
    from paddle.amp.auto_cast import StateDictHook

    layer._to_impl(dtype="float16", include_sublayers=True, floating_only=True)
    for sub in layer.sublayers(include_self=True):
        sub.register_state_dict_hook(StateDictHook("float32"))
    return layer


def test_the_loss_gets_float32_outputs():
    half = paddle.to_tensor([[1.0, 2.0]], dtype="float16")
    out = float32_tree({"Student": half, "Teacher": [half]})
    assert out["Student"].dtype == paddle.float32 and out["Teacher"][0].dtype == paddle.float32
    assert AmpSettings().float32_outputs(half) is half  # no AMP: untouched


def test_updater_computes_the_loss_on_float32_outputs():
    from pcls.engine.updater import Updater

    weight = paddle.create_parameter([2], "float32")
    optimizer = paddle.optimizer.SGD(learning_rate=0.1, parameters=[weight])
    amp = AmpSettings(enabled=True, level="O2")
    amp.autocast = lambda: paddle.amp.auto_cast(enable=False)  # CPU: no auto_cast; the cast is what is tested
    amp.scaler = lambda: None
    scheduler = paddle.optimizer.lr.StepDecay(learning_rate=0.1, step_size=10)
    updater = Updater(None, optimizer, scheduler, amp)
    dtypes = []

    def loss_of(output):
        dtypes.append(output.dtype)
        return output.sum()

    updater.update(lambda: (weight * 2).astype("float16"), loss_of, boundary=True)
    assert dtypes == [paddle.float32] and updater.global_step == 1


def test_ema_of_a_half_precision_model_is_float32_and_moves():
    from pcls.engine.ema import ModelEMA

    net = _o2_stand_in(paddle.nn.Linear(4, 4))
    assert net.weight.dtype == paddle.float16
    # weights in [0.5, 1), where float16's spacing (2**-11) is over twice one update's step (1e-4 * 1.5)
    net.weight.set_value(np.random.default_rng(0).uniform(0.5, 1.0, (4, 4)).astype(np.float16))
    ema = ModelEMA(net, 0.9999)
    assert all(v.dtype == paddle.float32 for v in ema.shadow.values())
    before = ema.shadow["weight"].numpy().copy()
    net.weight.set_value((net.weight.astype("float32") + 0.5).astype("float16"))
    ema.update(net)
    moved = ema.shadow["weight"].numpy() - before
    np.testing.assert_allclose(moved, 0.5 * 1e-4, rtol=0.05)
    # the same update in float16 is lost: 0.9999 * w + 1e-4 * (w + 0.5) rounds back to w
    w16 = before.astype(np.float16)  # (numpy: paddle has no float16 add on CPU)
    assert (w16 * np.float16(0.9999) + (w16 + np.float16(0.5)) * np.float16(1e-4) == w16).all()
    with ema.applied_to(net):  # swapped in, in the model's own dtype
        assert net.weight.dtype == paddle.float16
        np.testing.assert_allclose(net.weight.astype("float32").numpy(), ema.shadow["weight"].numpy(), atol=1e-3)
    np.testing.assert_allclose(net.weight.astype("float32").numpy(), before + 0.5, atol=1e-2)


def test_an_o2_checkpoint_is_float32_and_loads_back_into_the_half_model():
    from pcls.zoo.weights import apply_state

    net = _o2_stand_in(paddle.nn.Linear(4, 4))
    saved = {k: v.numpy() for k, v in net.state_dict().items()}
    assert all(a.dtype == np.float32 for a in saved.values())  # save_dtype="float32"
    apply_state(net, saved, "latest", verbose=False)
    assert net.weight.dtype == paddle.float16
