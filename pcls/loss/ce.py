"""Cross-entropy for hard labels, label smoothing (`epsilon`) and soft targets (Mixup/Cutmix batches)."""

from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.loss.registry import register_loss


def logits_of(output, key: str = "logits"):
    """The classifier logits in a model output: the tensor itself, `output[key]` for dict outputs, or the
    main head of a multi-head training output ([main, aux1, aux2] from GoogLeNet). A DistillationModel's
    output without `key` gives its Student's (PaddleClas's rule for eval losses such as CELoss), and a member
    that also returns feature maps ({"logits": ..., <pattern>: ...}) gives its logits."""
    if isinstance(output, dict):
        if key not in output and "Student" in output:
            key = "Student"
        output = output[key]
        if isinstance(output, dict):
            output = output["logits"]
    if isinstance(output, (list, tuple)):
        return output[0]
    return output


def soft_cross_entropy(logits, soft_target):
    """mean over the batch of -sum_c target_c * log_softmax(logits)_c."""
    return -(soft_target * F.log_softmax(logits, axis=-1)).sum(axis=-1).mean()


@register_loss
class CELoss(nn.Layer):
    """PaddleClas CELoss. Hard labels [N] / [N,1] (int) or soft targets [N,C] (float).

    With `epsilon`, targets become (1 - epsilon) * target + epsilon / C (PaddleClas label_smooth).
    """

    def __init__(self, epsilon=None):
        super().__init__()
        if epsilon is not None and not 0 <= float(epsilon) < 1:
            from pcls.errors import PclsError

            raise PclsError(f"Loss.CELoss.epsilon must be in [0, 1), got {epsilon}")
        self.epsilon = float(epsilon) if epsilon else 0.0

    def forward(self, output, target):
        logits = logits_of(output)
        class_num = logits.shape[-1]
        if target.dtype in (paddle.int64, paddle.int32):
            target = target.reshape([-1])
            if not self.epsilon:
                return F.cross_entropy(logits, target, reduction="mean")
            target = F.one_hot(target, class_num)
        target = target.astype(logits.dtype)
        if self.epsilon:
            target = target * (1.0 - self.epsilon) + self.epsilon / class_num
        return soft_cross_entropy(logits, target)


@register_loss
class MixCELoss(CELoss):
    """PaddleClas 2.0's name for CE on Mixup/Cutmix batches; the batch ops here yield soft targets."""


@register_loss
class SoftTargetCrossEntropy(nn.Layer):
    """CE against soft targets [N,C] (DeiT-style configs)."""

    def forward(self, output, target):
        return soft_cross_entropy(logits_of(output), target.astype("float32"))


@register_loss
class GoogLeNetLoss(nn.Layer):
    """GoogLeNet's training loss: CE on the main head plus 0.3 x CE on each auxiliary head (Szegedy et al.).

    In eval mode the model returns only the main head, and this is plain CE.
    """

    AUX_WEIGHT = 0.3

    def __init__(self, epsilon=None):
        super().__init__()
        self.ce = CELoss(epsilon=epsilon)

    def forward(self, output, target):
        if not isinstance(output, (list, tuple)):
            return self.ce(output, target)
        main, *aux = output
        loss = self.ce(main, target)
        for head in aux:
            loss = loss + self.AUX_WEIGHT * self.ce(head, target)
        return loss
