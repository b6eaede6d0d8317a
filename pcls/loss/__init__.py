"""Training losses by PaddleClas name (`Loss.Train` / `Loss.Eval` in a config).

    loss_fn = build_loss(cfg["Loss"]["Train"])      # a weighted sum of the listed losses
    parts = loss_fn(model_output, target)           # {"loss": total, "CELoss": ..., ...}
"""

from pcls.loss.registry import CombinedLoss, build_loss, list_losses, register_loss

__all__ = ["CombinedLoss", "build_loss", "list_losses", "register_loss"]
