"""Learning-rate schedules by PaddleClas name (`Optimizer.lr.name`), stepped once per optimizer update.

Each schedule is a plain function of the update index (0-based), so its values can be checked against
the formula and a resumed run gets the same rate from the step count alone. A linear warm-up
(`warmup_epoch`, from `warmup_start_lr`) precedes the decay; the decay then counts steps from the end
of the warm-up, as PaddleClas does.
"""

from __future__ import annotations

import bisect
import math
from typing import Callable

from pcls.errors import PclsError
from pcls.utils.registry import Registry

SCHEDULES = Registry("schedule", where="Optimizer.lr.name")


def register_schedule(*names):
    """Register a decay function `fn(learning_rate, decay_steps, steps_per_epoch, **params) -> lr(t)`."""
    return SCHEDULES.register(*names)


def list_schedules():
    return SCHEDULES.names()


class Schedule:
    """lr(step) = linear warm-up for `warmup_steps`, then `decay(step - warmup_steps)`."""

    def __init__(self, name: str, base_lr: float, decay: Callable[[int], float], warmup_steps: int = 0,
                 warmup_start_lr: float = 0.0):
        self.name = name
        self.base_lr = base_lr
        self.decay = decay
        self.warmup_steps = warmup_steps
        self.warmup_start_lr = warmup_start_lr

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_start_lr + (self.base_lr - self.warmup_start_lr) * step / self.warmup_steps
        return self.decay(step - self.warmup_steps)


@register_schedule("Constant")
def _constant(learning_rate, **_):
    return lambda t: learning_rate


@register_schedule("Cosine", "CosineWarmup")
def _cosine(learning_rate, decay_steps, eta_min, **_):
    if decay_steps <= 0:
        return lambda t: learning_rate
    return lambda t: eta_min + 0.5 * (learning_rate - eta_min) * (1 + math.cos(math.pi * min(t, decay_steps) / decay_steps))


@register_schedule("Linear", "Polynomial")
def _polynomial(learning_rate, decay_steps, end_lr, power, **_):
    if decay_steps <= 0:
        return lambda t: learning_rate
    return lambda t: (learning_rate - end_lr) * (1 - min(t, decay_steps) / decay_steps) ** power + end_lr


@register_schedule("Piecewise")
def _piecewise(values, decay_epochs, steps_per_epoch, **_):
    if len(values) not in (len(decay_epochs), len(decay_epochs) + 1):
        raise PclsError(
            f"Optimizer.lr: Piecewise needs one more value than decay_epochs (or as many: the last value then "
            f"stays), got values {values} "
            f"and decay_epochs {decay_epochs}"
        )
    boundaries = [int(e * steps_per_epoch) for e in decay_epochs]
    # as many values as boundaries (PaddleClas's StrongBaselineAttr): paddle's PiecewiseDecay keeps the last
    # value after the last boundary
    return lambda t: values[min(bisect.bisect_right(boundaries, t), len(values) - 1)]


@register_schedule("Step")
def _step(learning_rate, step_size, steps_per_epoch, gamma, **_):
    # step_size is in epochs and may be a fraction (2.4 in the MobileNetV3 configs): the period in updates
    # stays fractional, as in PaddleClas (paddle's StepDecay floor-divides by it)
    size = float(step_size) * steps_per_epoch
    if size <= 0:
        raise PclsError(f"Optimizer.lr.step_size must be > 0, got {step_size}")
    return lambda t: learning_rate * gamma ** math.floor(t / size)


@register_schedule("MultiStepDecay")
def _multistep(learning_rate, milestones, steps_per_epoch, gamma, **_):
    if list(milestones) != sorted(milestones):
        raise PclsError(f"Optimizer.lr.milestones must increase, got {milestones}")
    bounds = [m * steps_per_epoch for m in milestones]  # epochs -> updates
    return lambda t: learning_rate * gamma ** bisect.bisect_right(bounds, t)


@register_schedule("Exponential")
def _exponential(learning_rate, steps_per_epoch, gamma, decay_rate, decay_epochs, **_):
    # gamma (2.x) or decay_rate (1.x) per `decay_epochs` epochs, applied in whole steps of that period
    factor = gamma if gamma is not None else decay_rate
    if factor is None:
        raise PclsError("Optimizer.lr: Exponential needs 'gamma' (decay factor per epoch)")
    period = max(1, int(round(decay_epochs * steps_per_epoch)))
    return lambda t: learning_rate * factor ** (t // period)


def build_schedule(lr_cfg, epochs: int, steps_per_epoch: int, lr_scale: float = 1.0) -> Schedule:
    """The schedule an `Optimizer.lr` section describes (a partial section gets the schema's defaults for
    its schedule), for `epochs` x `steps_per_epoch` updates. A number is a constant rate.

    `lr_scale` multiplies every rate (the linear batch-size rule, when asked for).
    """
    from pcls.config.schema import validate_part

    if isinstance(lr_cfg, (int, float)):
        lr_cfg = {"name": "Constant", "learning_rate": float(lr_cfg)}
    params = validate_part("Optimizer.lr", lr_cfg or {})
    name = params.pop("name")
    schedule_fn = SCHEDULES.get(name)
    warmup_epoch = min(float(params.pop("warmup_epoch")), epochs)
    warmup_start_lr = float(params.pop("warmup_start_lr")) * lr_scale
    # by_epoch: the rate changes once per epoch (the schedule counted in epochs), as PaddleClas steps it
    by_epoch = bool(params.pop("by_epoch"))
    params.pop("last_epoch", None)  # refused by the schema unless -1: a resume positions the schedule
    if name == "Piecewise":  # its rates are `values`; learning_rate is the first of them
        params["values"] = [float(v) * lr_scale for v in params["values"]]
        params["learning_rate"] = params["values"][0]
    else:
        params["learning_rate"] = float(params["learning_rate"]) * lr_scale
    for key in ("eta_min", "end_lr"):
        if key in params:
            params[key] = float(params[key]) * lr_scale
    unit = 1 if by_epoch else steps_per_epoch  # updates per schedule step
    warmup_steps = int(round(warmup_epoch * unit))
    decay_steps = int(round((epochs - warmup_epoch) * unit))
    try:
        decay = schedule_fn(decay_steps=decay_steps, steps_per_epoch=unit, **params)
    except TypeError as err:
        raise PclsError(f"Optimizer.lr: bad parameter for {name} ({err})") from err
    schedule = Schedule(name, params["learning_rate"], decay, warmup_steps, warmup_start_lr)
    if by_epoch:
        return Schedule(name, params["learning_rate"], lambda t: schedule(t // max(1, steps_per_epoch)))
    return schedule


def paddle_scheduler(schedule: Schedule, start_step: int = 0):
    """A paddle LRScheduler whose value at update k is `schedule(k)`; `.step()` once per update."""
    import paddle

    class _Scheduled(paddle.optimizer.lr.LRScheduler):
        def get_lr(self):
            return schedule(self.last_epoch)

    # paddle's constructor calls step() once, moving last_epoch from start-1 to start
    return _Scheduled(learning_rate=schedule.base_lr, last_epoch=start_step - 1)
