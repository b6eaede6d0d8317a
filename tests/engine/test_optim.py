"""Optimizers: PaddleClas L2Decay semantics, no-decay groups, per-stage lr multipliers, one update by hand."""

import numpy as np
import paddle
import paddle.nn as nn
import pytest

from pcls.errors import PclsError
from pcls.optim import apply_lr_mult, build_optimizer, stage_layers
from pcls.optim.optimizer import no_decay_names


class _Net(nn.Layer):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1D(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.bn(self.stem(x)))


def _one_step(opt_cfg, lr=0.1, mult=None):
    paddle.seed(1)
    net = _Net()
    for p in net.parameters():  # nonzero biases so that decay on them would show
        p.set_value(p + 0.3)
    if mult:
        for p in net.fc.parameters():
            p.optimize_attr["learning_rate"] = mult
    trainable = [(n, p) for n, p in net.named_parameters() if not p.stop_gradient]  # BN stats are params too
    before = {n: p.numpy().copy() for n, p in trainable}
    opt = build_optimizer(opt_cfg, list(net.named_parameters()), lr)
    net.train()
    loss = net(paddle.to_tensor(np.arange(6, dtype="float32").reshape(2, 3))).square().mean()
    loss.backward()
    grads = {n: p.grad.numpy().copy() for n, p in trainable}
    opt.step()
    after = {n: p.numpy() for n, p in trainable}
    return before, grads, after


def test_momentum_l2_applies_to_every_param_by_default():
    cfg = {"name": "Momentum", "momentum": 0.9, "regularizer": {"name": "L2", "coeff": 0.01}}
    before, grads, after = _one_step(cfg)
    for name in before:  # first step: velocity = g + c*w, w -= lr * velocity
        np.testing.assert_allclose(after[name], before[name] - 0.1 * (grads[name] + 0.01 * before[name]),
                                   rtol=1e-5, atol=1e-7)


def test_one_dim_params_skip_decay_when_configured():
    cfg = {"name": "Momentum", "momentum": 0.9, "regularizer": {"name": "L2", "coeff": 0.01},
           "one_dim_param_no_weight_decay": True}
    before, grads, after = _one_step(cfg)
    for name in before:
        coeff = 0.0 if before[name].ndim == 1 else 0.01
        np.testing.assert_allclose(after[name], before[name] - 0.1 * (grads[name] + coeff * before[name]),
                                   rtol=1e-5, atol=1e-7)


def test_no_weight_decay_name_fragments():
    net = _Net()
    trainable = [(n, p) for n, p in net.named_parameters() if not p.stop_gradient]
    from pcls.config.schema import validate_part

    names = no_decay_names(trainable, validate_part("Optimizer", {"no_weight_decay_name": "bn fc.bias"}))
    assert names == {"bn.weight", "bn.bias", "fc.bias"}


def test_lr_multiplier_scales_the_update():
    cfg = {"name": "SGD"}
    before, grads, after = _one_step(cfg, mult=0.5)
    np.testing.assert_allclose(after["fc.weight"], before["fc.weight"] - 0.05 * grads["fc.weight"], rtol=1e-5)
    np.testing.assert_allclose(after["bn.weight"], before["bn.weight"] - 0.1 * grads["bn.weight"], rtol=1e-5)


def test_adamw_decay_is_decoupled():
    before, grads, after = _one_step({"name": "AdamW", "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.999,
                                      "epsilon": 1e-8})
    w, g = before["fc.weight"], grads["fc.weight"]
    # first Adam step: m_hat = g, v_hat = g^2 -> update lr * g / (|g| + eps); decay lr * wd * w
    expected = w * (1 - 0.1 * 0.1) - 0.1 * g / (np.abs(g) + 1e-8)
    np.testing.assert_allclose(after["fc.weight"], expected, rtol=1e-4, atol=1e-6)


def test_every_paddleclas_optimizer_builds():
    for name in ("Momentum", "SGD", "RMSProp", "Adam", "AdamW"):
        _one_step({"name": name, "use_nesterov": True} if name == "Momentum" else {"name": name})


def test_unknown_optimizer():
    with pytest.raises(PclsError, match="did you mean Momentum"):
        build_optimizer({"name": "Momentun"}, list(_Net().named_parameters()), 0.1)


class _Staged(nn.Layer):
    classifier_names = ("fc",)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2D(3, 4, 3)
        self.blocks = nn.Sequential(nn.Conv2D(4, 4, 1), nn.Conv2D(4, 4, 1))
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Linear(4, 2)


def test_lr_mult_list_maps_stages_in_order():
    model = _Staged()
    assert [n for n, _ in stage_layers(model)] == ["conv1", "blocks.0", "blocks.1"]
    applied = apply_lr_mult(model, [0.1, 0.2, 0.3])
    assert applied == [("conv1", 0.1), ("blocks.0", 0.2), ("blocks.1", 0.3)]
    assert model.blocks[1].weight.optimize_attr["learning_rate"] == 0.3
    assert model.fc.weight.optimize_attr["learning_rate"] == 1.0


def test_lr_mult_zero_freezes_and_wrong_length_is_explained():
    model = _Staged()
    apply_lr_mult(model, [0, 1, 1])
    assert model.conv1.weight.stop_gradient and not model.blocks[0].weight.stop_gradient
    with pytest.raises(PclsError, match="has 2 values but .* has 3 stages"):
        apply_lr_mult(_Staged(), [0.1, 0.2])


def test_lr_mult_list_reaches_the_optimizer_for_a_real_and_a_generic_backbone(tinynet):
    from pcls.engine.model import build_model
    from pcls.optim.optimizer import param_groups

    model = build_model({"name": "PPLCNet_x0_25", "class_num": 5, "lr_mult_list": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]},
                        log=lambda m: None)
    from pcls.config.schema import validate_part

    groups, _ = param_groups(list(model.named_parameters()), validate_part("Optimizer", {"regularizer": {"coeff": 1e-5}}))
    rate = {id(p): g["learning_rate"] for g in groups for p in g["params"]}
    assert rate[id(model.conv1.conv.weight)] == pytest.approx(0.1)
    assert rate[id(model.fc.weight)] == 1.0
    lines = []
    tiny = build_model({"name": "TinyNet", "class_num": 4, "lr_mult_list": [0.5, 0.25]}, log=lines.append)
    assert tiny.stage1.weight.optimize_attr["learning_rate"] == 0.25 and "stem x0.5" in lines[0]


def test_clip_norm_bounds_the_global_gradient_norm():
    lin = nn.Linear(4, 1, bias_attr=False)
    before = lin.weight.numpy().copy()
    opt = build_optimizer({"name": "SGD", "clip_norm": 0.5}, list(lin.named_parameters()), 1.0)
    (lin(paddle.full([2, 4], 100.0)).sum()).backward()
    opt.step()
    assert np.linalg.norm(lin.weight.numpy() - before) == pytest.approx(0.5, rel=1e-4)
