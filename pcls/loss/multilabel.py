"""Multi-label losses by PaddleClas name, on logits [N, C] and 0/1 targets [N, C] (one sigmoid per class).

MultiLabelLoss: binary cross-entropy with logits; `epsilon` smooths the targets to (1 - e) * t + e / C;
`size_sum` sums over the classes before averaging over the batch (otherwise the mean over all entries).
MultiLabelAsymmetricLoss: the asymmetric loss of Ridnik et al. (2021), "Asymmetric Loss For Multi-Label
Classification": focusing exponents `gamma_pos` / `gamma_neg`, negatives' probabilities shifted by `clip`.
"""

from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.errors import PclsError
from pcls.loss.ce import logits_of
from pcls.loss.registry import register_loss


def _targets(target, logits):
    if target.ndim == 3:  # [N, 2, C] from a label_ratio dataset: the labels, then the ratios
        target = target[:, 0]
    if target.ndim != 2 or target.shape[-1] != logits.shape[-1]:
        raise PclsError(f"multi-label losses need 0/1 targets of shape [N, {logits.shape[-1]}], got "
                        f"{list(target.shape)}: use a MultiLabelDataset list (path<TAB>0,1,...)")
    return target.astype(logits.dtype)


def split_ratio_target(target, what="MultiLabelLoss"):
    """(labels, positive ratios), each [N, C], of a label_ratio dataset's [N, 2, C] target."""
    if target is None or target.ndim != 3 or target.shape[1] != 2:
        raise PclsError(f"Loss.{what}.weight_ratio needs each label's positive ratio from the dataset: set "
                        f"DataLoader.Train.dataset.label_ratio: True (and Eval's) on the MultiLabelDataset")
    return target[:, 0].astype("float32"), target[:, 1].astype("float32")


def _ratio(target):
    return split_ratio_target(target)[1]


def ratio_weights(target, ratio):
    """Weighted BCE for imbalanced attributes (Li et al., 2015; PaddleClas's pedestrian attribute baseline):
    a positive of a label with positive ratio r weighs exp(1 - r), a negative exp(r); entries above 1 (RAP's
    "uncertain" 2) and below 0 weigh nothing."""
    positive = (target > 0.5).astype(ratio.dtype)
    weight = paddle.exp(positive * (1.0 - ratio) + (1.0 - positive) * ratio)
    return weight * ((target <= 1) & (target > -1)).astype(ratio.dtype)


@register_loss
class MultiLabelLoss(nn.Layer):
    def __init__(self, epsilon=None, size_sum=False, weight_ratio=False):
        super().__init__()
        self.weight_ratio = bool(weight_ratio)
        if epsilon is not None and not 0 <= float(epsilon) < 1:
            raise PclsError(f"Loss.MultiLabelLoss.epsilon must be in [0, 1), got {epsilon}")
        self.epsilon = float(epsilon) if epsilon else 0.0
        self.size_sum = bool(size_sum)

    def forward(self, output, target):
        logits = logits_of(output)
        ratio = _ratio(target) if self.weight_ratio else None
        target = _targets(target, logits)
        if self.epsilon:
            target = target * (1.0 - self.epsilon) + self.epsilon / logits.shape[-1]
        cost = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        if ratio is not None:
            cost = cost * ratio_weights(target, ratio)
        return cost.sum(axis=1).mean() if self.size_sum else cost.mean()


@register_loss
class MultiLabelAsymmetricLoss(nn.Layer):
    def __init__(self, gamma_pos=1.0, gamma_neg=4.0, clip=0.05, epsilon=1e-8, disable_focal_loss_grad=True,
                 reduction="sum"):
        super().__init__()
        if reduction not in ("sum", "mean", "none"):
            raise PclsError(f"Loss.MultiLabelAsymmetricLoss.reduction must be sum, mean or none, got {reduction!r}")
        self.gamma_pos, self.gamma_neg = float(gamma_pos), float(gamma_neg)
        self.clip, self.epsilon = float(clip or 0.0), float(epsilon)
        self.disable_focal_loss_grad, self.reduction = bool(disable_focal_loss_grad), reduction

    def forward(self, output, target):
        logits = logits_of(output)
        target = _targets(target, logits)
        positive = F.sigmoid(logits)
        negative = 1.0 - positive
        if self.clip > 0:  # probability shifting: easy negatives (p < clip) contribute nothing
            negative = (negative + self.clip).clip(max=1.0)
        loss = target * paddle.log(positive.clip(min=self.epsilon)) + \
            (1.0 - target) * paddle.log(negative.clip(min=self.epsilon))
        if self.gamma_pos > 0 or self.gamma_neg > 0:
            chosen = positive * target + negative * (1.0 - target)
            gamma = self.gamma_pos * target + self.gamma_neg * (1.0 - target)
            if self.disable_focal_loss_grad:
                with paddle.no_grad():
                    weight = paddle.pow(1.0 - chosen, gamma)
            else:
                weight = paddle.pow(1.0 - chosen, gamma)
            loss = loss * weight
        loss = -loss
        if self.reduction == "sum":
            return loss.sum()
        return loss.mean() if self.reduction == "mean" else loss

