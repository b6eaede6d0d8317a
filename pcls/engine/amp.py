"""Mixed precision from a config's `AMP` section: O1 (auto_cast) or O2 (pure half precision, via
paddle.amp.decorate), a loss scaler (`scale_loss`, `use_dynamic_loss_scaling`). fp16 on GPU; on CPU
Paddle 3.x has no bf16 convolution kernels, so AMP is reported and switched off there."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from pcls.errors import PclsError


@dataclass
class AmpSettings:
    enabled: bool = False
    level: str = "O1"
    dtype: str = "float16"
    scale_loss: float = 1.0
    dynamic: bool = False
    eval_fp16: bool = False  # AMP.use_fp16_test: evaluate under auto_cast too (PaddleClas: fp32 eval by default)
    use_promote: bool = False  # AMP.use_promote: ops with a float32 input run in float32 (paddle's promotion)
    note: str = ""

    @classmethod
    def from_config(cls, amp_cfg, device: str) -> "AmpSettings":
        """Read AMP once: absent or `use_amp: False` -> off; `use_pure_fp16` (old configs) means O2."""
        if not amp_cfg or amp_cfg.get("use_amp") is False:
            return cls()
        level = str(amp_cfg.get("level") or ("O2" if amp_cfg.get("use_pure_fp16") else "O1")).upper()
        if level not in ("O1", "O2"):
            raise PclsError(f"AMP.level must be O1 or O2, got '{level}'")
        settings = cls(
            enabled=True,
            level=level,
            scale_loss=float(amp_cfg.get("scale_loss", 1.0)),
            dynamic=bool(amp_cfg.get("use_dynamic_loss_scaling", False)),
            eval_fp16=bool(amp_cfg.get("use_fp16_test")),
            use_promote=bool(amp_cfg.get("use_promote")),
        )
        if device.startswith("gpu"):
            settings.dtype = "float16"
        else:
            settings.enabled = False
            settings.note = (f"AMP {level} requested but this run is on {device}: Paddle has no half-precision "
                             f"convolution kernels on CPU, training in float32")
        return settings

    def prepare(self, model, optimizer):
        """O2: cast the model to half precision with float32 master weights."""
        if self.enabled and self.level == "O2":
            import paddle

            model, optimizer = paddle.amp.decorate(models=model, optimizers=optimizer, level="O2",
                                                   dtype=self.dtype, master_weight=True)
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
        """What evaluation runs under: auto_cast only with AMP.use_fp16_test, else float32 (None)."""
        return self.autocast if self.enabled and self.eval_fp16 else None
