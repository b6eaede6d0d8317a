"""Optimizers by PaddleClas name (`Optimizer.name`), with the parameter groups PaddleClas configs describe.

Weight decay follows PaddleClas: `regularizer: {name: L2, coeff: c}` is paddle's L2Decay (grad += c * w)
on every trainable parameter; `weight_decay` (AdamW) is decoupled decay. Parameters matched by
`no_weight_decay_name` (space-separated name fragments) or, with `one_dim_param_no_weight_decay`, every
1-D parameter (BN scale/shift, biases) get no decay. A parameter's `optimize_attr['learning_rate']`
(set by `lr_mult_list`, see pcls.optim.param_groups) scales the global rate for it.
"""

from __future__ import annotations

from pcls.errors import PclsError
from pcls.utils.registry import Registry

OPTIMIZERS = Registry("optimizer", where="Optimizer.name")

# config keys that are not optimizer constructor arguments
_GROUPING_KEYS = ("no_weight_decay_name", "one_dim_param_no_weight_decay", "regularizer", "weight_decay",
                  "clip_norm", "clip_grad", "lr", "name")


def register_optimizer(name):
    """Register a builder `fn(lr, params, decay, grad_clip, **params) -> paddle optimizer`."""
    return OPTIMIZERS.register(name)


def list_optimizers():
    return OPTIMIZERS.names()


@register_optimizer("Momentum")
def _momentum(lr, params, decay, grad_clip, momentum, use_nesterov, multi_precision, **_):
    import paddle

    return paddle.optimizer.Momentum(learning_rate=lr, momentum=momentum, use_nesterov=use_nesterov,
                                     parameters=params, weight_decay=decay, grad_clip=grad_clip,
                                     multi_precision=multi_precision)


@register_optimizer("SGD")
def _sgd(lr, params, decay, grad_clip, multi_precision, **_):
    import paddle

    return paddle.optimizer.SGD(learning_rate=lr, parameters=params, weight_decay=decay, grad_clip=grad_clip,
                                multi_precision=multi_precision)


@register_optimizer("RMSProp")
def _rmsprop(lr, params, decay, grad_clip, momentum, rho, epsilon, centered, **_):
    import paddle

    return paddle.optimizer.RMSProp(learning_rate=lr, rho=rho, epsilon=epsilon, momentum=momentum,
                                    centered=centered, parameters=params, weight_decay=decay, grad_clip=grad_clip)


@register_optimizer("Adam")
def _adam(lr, params, decay, grad_clip, beta1, beta2, epsilon, multi_precision, **_):
    import paddle

    return paddle.optimizer.Adam(learning_rate=lr, beta1=beta1, beta2=beta2, epsilon=epsilon,
                                 parameters=params, weight_decay=decay, grad_clip=grad_clip,
                                 multi_precision=multi_precision)


@register_optimizer("AdamW")
def _adamw(lr, params, decay, grad_clip, beta1, beta2, epsilon, multi_precision, **_):
    import paddle

    # AdamW's decay is decoupled: a float per group, never an L2Decay regulariser
    if decay is not None and not isinstance(decay, (int, float)):
        raise PclsError("AdamW decays weights through Optimizer.weight_decay (decoupled); remove "
                        "Optimizer.regularizer or set its coeff to 0")
    return paddle.optimizer.AdamW(learning_rate=lr, beta1=beta1, beta2=beta2, epsilon=epsilon,
                                  parameters=params, weight_decay=decay or 0.0, grad_clip=grad_clip,
                                  multi_precision=multi_precision)


def decay_setting(opt_cfg):
    """(kind, coeff): ("l2", c) for `regularizer: {name: L2, coeff: c}`, ("decoupled", w) for
    `weight_decay: w`, (None, 0.0) for none."""
    reg = opt_cfg.get("regularizer")  # a section the schema does not create when absent
    if reg:
        name = str(reg["name"])
        if name.upper() not in ("L2", "L2DECAY"):
            raise PclsError(f"Optimizer.regularizer.name: only L2 is supported, got '{name}'")
        if float(reg["coeff"]) > 0 or not opt_cfg["weight_decay"]:
            return "l2", float(reg["coeff"])
    if opt_cfg["weight_decay"]:
        return "decoupled", float(opt_cfg["weight_decay"])
    return None, 0.0


def no_decay_names(named_params, opt_cfg) -> set:
    """Names of the parameters that take no weight decay under this config."""
    fragments = str(opt_cfg["no_weight_decay_name"] or "").split()
    one_dim = bool(opt_cfg["one_dim_param_no_weight_decay"])
    return {
        name
        for name, param in named_params
        if any(frag in name for frag in fragments) or (one_dim and len(param.shape) == 1)
    }


def param_groups(named_params, opt_cfg):
    """Trainable params grouped by (decay or not, lr multiplier): [{"params", "weight_decay",
    "learning_rate"}]. paddle resets each parameter's rate multiplier from its group, so the
    multipliers set by lr_mult_list must travel in the groups."""
    import paddle

    kind, coeff = decay_setting(opt_cfg)
    trainable = [(n, p) for n, p in named_params if not p.stop_gradient]
    if not trainable:
        raise PclsError("no trainable parameters: every parameter is frozen (check lr_mult_list / freeze settings)")
    skip = no_decay_names(trainable, opt_cfg)
    if kind == "l2":
        decay = paddle.regularizer.L2Decay(coeff)
    else:
        decay = coeff if kind == "decoupled" else None
    groups = {}
    for name, param in trainable:
        mult = float(param.optimize_attr.get("learning_rate", 1.0))
        key = (name in skip, mult)
        if key not in groups:
            groups[key] = {"params": [], "weight_decay": 0.0 if name in skip or decay is None else decay, "learning_rate": mult}
        groups[key]["params"].append(param)
    return list(groups.values()), decay


def grad_clip_from(opt_cfg):
    """Global-norm clipping from `clip_norm` (or PaddleClas 2.6's `clip_grad`), else value clipping."""
    import paddle

    norm = opt_cfg["clip_norm"] or opt_cfg["clip_grad"]
    if norm:
        return paddle.nn.ClipGradByGlobalNorm(float(norm))
    return None


def build_optimizer(opt_cfg, named_params, lr_scheduler):
    """The optimizer `opt_cfg` (a config's Optimizer section; a partial one gets the schema's defaults for
    that optimizer) names, over `named_params` [(name, Parameter)], driven by `lr_scheduler` (a paddle
    LRScheduler or a float)."""
    from pcls.config.schema import validate_part

    opt_cfg = validate_part("Optimizer", opt_cfg or {})
    name = opt_cfg["name"]
    builder = OPTIMIZERS.get(name)
    groups, decay = param_groups(list(named_params), opt_cfg)
    kwargs = {k: v for k, v in opt_cfg.items() if k not in _GROUPING_KEYS}
    try:
        return builder(lr_scheduler, groups, decay, grad_clip_from(opt_cfg), **kwargs)
    except TypeError as err:
        raise PclsError(f"Optimizer: bad parameter for {name} ({err})") from err
