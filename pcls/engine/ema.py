"""Exponential moving average of the model's weights (`EMA.decay`), kept beside the model and swapped in
for evaluation: ema = decay * ema + (1 - decay) * weights after every optimizer update."""

from __future__ import annotations

import contextlib

import paddle


class ModelEMA:
    def __init__(self, model, decay: float):  # EMA.decay; its default is the schema's
        if not 0 < decay < 1:
            from pcls.errors import PclsError

            raise PclsError(f"EMA.decay must be between 0 and 1, got {decay}")
        self.decay = float(decay)
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @paddle.no_grad()
    def update(self, model) -> None:
        for key, value in model.state_dict().items():
            avg = self.shadow[key]
            if paddle.is_floating_point(value):
                avg.set_value(avg * self.decay + value.detach() * (1.0 - self.decay))
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
        """Temporarily load the averaged weights into `model` (for evaluation), then restore."""
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.set_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.set_state_dict(backup)
