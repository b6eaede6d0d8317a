"""The optimizer update, owned by one object (the shape of mmengine's OptimWrapper): the loop says
"update", the `Updater` knows how.

    output, loss = updater.update(lambda: model(images), lambda out: loss_fn(out, labels)["loss"], boundary)

It runs the forward under auto_cast and the loss on float32 outputs (pcls/engine/amp.py), scales the loss
for gradient accumulation (`Global.update_freq`) and for the AMP loss scaler, and skips the gradient
all-reduce of a multi-process run on the batches that are not an update's last (DataParallel.no_sync). On
an update boundary it steps: the scaler unscales the gradients, the optimizer clips them (its `grad_clip`,
from Optimizer.clip_norm / clip_grad / Global.clip_grad_norm: paddle applies it inside `step`, after the
unscale and on the float32 master gradients under O2) and updates the weights; then the gradients are
cleared, the schedule advances and the update counter grows. `state_dict()` holds the counter and the
scaler's state, saved with every checkpoint.
"""

from __future__ import annotations

import contextlib


class Updater:
    def __init__(self, model, optimizer, scheduler, amp, *, update_freq: int = 1, world: int = 1):
        self.model, self.optimizer, self.scheduler, self.amp = model, optimizer, scheduler, amp
        self.update_freq, self.world = update_freq, world
        self.scaler = amp.scaler()
        self.global_step = 0
        self.lr = optimizer.get_lr()  # the rate of the latest update (before any: the first update's)

    def update(self, forward, loss_of, boundary: bool):
        """forward() -> model output; loss_of(output) -> scalar loss. Backward always; the optimizer step
        when `boundary` (the last batch of an update). Returns (output, loss)."""
        # accumulating across ranks: all-reduce gradients only on the update's last batch
        sync = self.model.no_sync() if self.world > 1 and not boundary else contextlib.nullcontext()
        with sync:
            with self.amp.autocast():
                output = forward()
            loss = loss_of(self.amp.float32_outputs(output))
            scaled = loss / self.update_freq if self.update_freq > 1 else loss
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        if boundary:
            self.step()
        return output, loss

    def step(self) -> None:
        """Apply the accumulated gradients: one optimizer update."""
        self.lr = self.optimizer.get_lr()  # the rate this update uses
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # unscales first; skips the update on inf/nan gradients
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.clear_grad()
        self.scheduler.step()
        self.global_step += 1

    def state_dict(self) -> dict:
        """Plain values (the checkpoint's JSON): the update counter and the loss scaler's state."""
        state = {"global_step": self.global_step}
        if self.scaler is not None:
            state["scaler"] = {k: float(v.numpy()) if hasattr(v, "numpy") else v
                               for k, v in self.scaler.state_dict().items()}
        return state

    def load_state_dict(self, state: dict) -> None:
        """The counter (the schedule was built at that position) and the scaler's state, when both runs
        use one (an fp32 checkpoint resumed under AMP starts the scaler afresh)."""
        self.global_step = int(state["global_step"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
