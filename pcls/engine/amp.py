"""Mixed precision from a config's `AMP` section: O1 (auto_cast) or O2 (pure half precision, via
paddle.amp.decorate), a loss scaler (`scale_loss`, `use_dynamic_loss_scaling`). fp16 on GPU; on CPU
Paddle 3.x has no bf16 convolution kernels, so AMP is reported and switched off there.

The contracts followed are those of Paddle 3.3's paddle/amp/auto_cast.py and amp_lists.py:
- O2's auto_cast keeps only EXTRA_BLACK_LIST ops in float32 (O1 also keeps softmax / cross-entropy there),
  so the loss is computed outside auto_cast on the outputs cast to float32 (`float32_outputs`);
- `decorate(level="O2")` casts the weights to half precision; with `save_dtype="float32"` its
  StateDictHook makes `state_dict()` return float32 copies, so checkpoints are float32 as PaddleClas's are;
- an O2 model holds half-precision weights, so it is evaluated under auto_cast too (PaddleClas forces
  `use_fp16_test` with O2): float32 inputs into float16 weights fail otherwise.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass


@dataclass
class AmpSettings:
    enabled: bool = False
    level: str = "O1"
    dtype: str = "float16"
    scale_loss: float = 1.0
    dynamic: bool = False
    eval_fp16: bool = False  # AMP.use_fp16_test (forced on with O2): evaluate under auto_cast too
    use_promote: bool = False  # AMP.use_promote: ops with a float32 input run in float32 (paddle's promotion)
    note: str = ""

    @classmethod
    def from_config(cls, amp_cfg, device: str) -> "AmpSettings":
        """Read AMP once (the schema resolved `level`, from `use_pure_fp16` when not set); absent or
        `use_amp: False` -> off."""
        if not amp_cfg or not amp_cfg["use_amp"]:
            return cls()
        level = amp_cfg["level"]
        settings = cls(
            enabled=True,
            level=level,
            scale_loss=float(amp_cfg["scale_loss"]),
            dynamic=bool(amp_cfg["use_dynamic_loss_scaling"]),
            eval_fp16=bool(amp_cfg["use_fp16_test"]) or level == "O2",
            use_promote=bool(amp_cfg["use_promote"]),
        )
        if device.startswith("gpu"):
            settings.dtype = "float16"
        else:
            settings.enabled = False
            settings.note = (f"AMP {level} requested but this run is on {device}: Paddle has no half-precision "
                             f"convolution kernels on CPU, training in float32")
        return settings

    @property
    def pure(self) -> bool:
        """O2 in effect: the model's weights are half precision."""
        return self.enabled and self.level == "O2"

    def prepare(self, model, optimizer):
        """O2: cast the model to half precision with float32 master weights; its state_dict stays float32."""
        if self.pure:
            import paddle

            model, optimizer = paddle.amp.decorate(models=model, optimizers=optimizer, level="O2",
                                                   dtype=self.dtype, master_weight=True, save_dtype="float32")
        return model, optimizer

    def scaler(self):
        if not self.enabled:
            return None
        import paddle

        return paddle.amp.GradScaler(init_loss_scaling=self.scale_loss,
                                     use_dynamic_loss_scaling=self.dynamic)

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        import paddle

        return paddle.amp.auto_cast(enable=True, level=self.level, dtype=self.dtype, use_promote=self.use_promote)

    @property
    def eval_autocast(self):
        """What evaluation runs under: auto_cast with AMP.use_fp16_test or O2, else float32 (None)."""
        return self.autocast if self.enabled and self.eval_fp16 else None

    def float32_outputs(self, output):
        """The model's outputs (a tensor, or a dict / list of them) with half-precision tensors cast to
        float32, for the loss (a no-op without AMP)."""
        if not self.enabled:
            return output
        return float32_tree(output)


def float32_tree(output):
    if isinstance(output, dict):
        return {k: float32_tree(v) for k, v in output.items()}
    if isinstance(output, (list, tuple)):
        return type(output)(float32_tree(v) for v in output)
    import paddle

    if isinstance(output, paddle.Tensor) and output.dtype in (paddle.float16, paddle.bfloat16):
        return output.astype("float32")
    return output
