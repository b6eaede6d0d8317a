"""Exponential moving average of the model's weights (`EMA.decay`), kept beside the model and swapped in
for evaluation: ema = decay * ema + (1 - decay) * weights after every optimizer update.

The average is kept in float32 whatever the model's dtype: under AMP O2 the model holds float16 weights,
and with decay 0.9999 one update moves the average by less than float16 can represent near 1, so a
float16 average would never change (PaddleClas keeps its EMA copy in float32 too). Owned by the `Ema`
callback (pcls/engine/callbacks.py)."""

from __future__ import annotations

import contextlib

import paddle


def _as_fp32(value):
    value = value.detach()
    if paddle.is_floating_point(value) and value.dtype != paddle.float32:
        return value.astype("float32")
    return value.clone()


class ModelEMA:
    def __init__(self, model, decay: float):  # EMA.decay; its default is the schema's
        if not 0 < decay < 1:
            from pcls.errors import PclsError

            raise PclsError(f"EMA.decay must be between 0 and 1, got {decay}")
        self.decay = float(decay)
        self.shadow = {k: _as_fp32(v) for k, v in model.state_dict().items()}

    @paddle.no_grad()
    def update(self, model) -> None:
        for key, value in model.state_dict(use_hook=False).items():
            avg = self.shadow[key]
            if paddle.is_floating_point(value):
                avg.set_value(avg * self.decay + value.detach().astype(avg.dtype) * (1.0 - self.decay))
            else:  # counters and int buffers follow the model
                avg.set_value(value.detach())

    def state_dict(self) -> dict:
        return self.shadow

    def set_state_dict(self, state) -> None:
        for key, value in state.items():
            if key in self.shadow:
                self.shadow[key].set_value(paddle.to_tensor(value).astype(self.shadow[key].dtype))

    @contextlib.contextmanager
    def applied_to(self, model):
        """Temporarily load the averaged weights into `model` (in the model's own dtypes), then restore."""
        current = model.state_dict(use_hook=False)  # as held (O2's save_dtype hook would cast them)
        backup = {k: v.detach().clone() for k, v in current.items()}
        model.set_state_dict({k: v.astype(current[k].dtype) if k in current else v for k, v in self.shadow.items()})
        try:
            yield model
        finally:
            model.set_state_dict(backup)
