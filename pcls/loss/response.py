"""Response-based distillation losses (on the teacher's and student's logits) by their PaddleClas names:
DKD, WSL, SKD and DIST. Each pairs models by `model_name_pairs` ([student, teacher]) like the other
distillation losses; the teacher's logits carry no gradient.

Where a loss needs the "true" class (DKD's target/non-target split, WSL's weights, SKD's CE term) it takes
the batch labels; `use_target_as_gt: true` takes the teacher's argmax instead (PaddleClas 2.6's switch, whose
name reads "use the teacher's target as ground truth": measured against its code, tests/loss/
test_paddleclas_parity.py). Unlabeled samples (label -1) take the teacher's argmax, soft (Mixup) targets
their own argmax.
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F

from pcls.errors import PclsError
from pcls.loss.distillation import PairLoss, soft_ce
from pcls.loss.registry import register_loss


def ground_truth(target, teacher_logits, teacher_as_gt: bool):
    """int labels [N]: the batch's labels (-1 rows take the teacher's argmax), or the teacher's argmax for all."""
    from pcls.engine.metrics import hard_labels

    predicted = teacher_logits.argmax(axis=-1)
    if teacher_as_gt or target is None:
        return predicted
    labels = hard_labels(target).astype(predicted.dtype)
    return paddle.where(labels >= 0, labels, predicted)


def _kl_sum(target_prob, log_prob):
    """sum over the batch and classes of q (log q - log p), with 0 log 0 = 0 (a masked-out class)."""
    safe = paddle.where(target_prob > 0, target_prob, paddle.ones_like(target_prob))
    return (target_prob * (paddle.log(safe) - log_prob)).sum()


class _TargetPairLoss(PairLoss):
    """A pair loss that also reads the batch labels."""

    def __init__(self, model_name_pairs, temperature=1.0, name=None, key=None, use_target_as_gt=False):
        super().__init__(model_name_pairs, temperature, name, key)
        self.use_target_as_gt = bool(use_target_as_gt)

    def gt(self, teacher_logits):
        return ground_truth(self.target, teacher_logits, self.use_target_as_gt)


@register_loss
class DistillationDKDLoss(_TargetPairLoss):
    """Decoupled KD (Zhao et al., CVPR 2022): KD split into the target-class term (TCKD, a binary KL between
    p(target) and p(rest)) and the non-target term (NCKD, a KL among the other classes), weighted by alpha
    and beta; both x T^2, summed over the batch and divided by its size."""

    label = "loss_dkd"
    MASK = 1000.0  # subtracted from the target logit so that it leaves the non-target softmax

    def __init__(self, model_name_pairs, temperature=1.0, alpha=1.0, beta=1.0, use_target_as_gt=False, name=None,
                 key=None):
        super().__init__(model_name_pairs, temperature, name, key, use_target_as_gt)
        self.alpha, self.beta = float(alpha), float(beta)

    def pair_loss(self, s, t):
        t = t.detach()
        T, batch = self.temperature, s.shape[0]
        gt = F.one_hot(self.gt(t), s.shape[-1]).astype(s.dtype)
        p_s, p_t = F.softmax(s / T, axis=-1), F.softmax(t / T, axis=-1)

        def binary(p):  # [N, 2]: probability of the target class, of all the others
            target = (p * gt).sum(axis=-1, keepdim=True)
            return paddle.concat([target, (p * (1 - gt)).sum(axis=-1, keepdim=True)], axis=-1)

        tckd = _kl_sum(binary(p_t), paddle.log(binary(p_s)))
        nckd = _kl_sum(F.softmax(t / T - self.MASK * gt, axis=-1), F.log_softmax(s / T - self.MASK * gt, axis=-1))
        return (self.alpha * tckd + self.beta * nckd) * T * T / batch


@register_loss
class DistillationWSLLoss(_TargetPairLoss):
    """Weighted soft labels (Zhou et al., ICLR 2021): per sample, T^2 x CE(student/T, teacher/T) weighted by
    1 - exp(-CE_student / CE_teacher) on the true class (detached): samples the student already fits better
    than the teacher count less."""

    label = "loss_wsl"

    def __init__(self, model_name_pairs, temperature=2.0, use_target_as_gt=False, name=None, key=None):
        super().__init__(model_name_pairs, temperature, name, key, use_target_as_gt)

    def pair_loss(self, s, t):
        t = t.detach()
        T = self.temperature
        soft = -(F.softmax(t / T, axis=-1) * F.log_softmax(s / T, axis=-1)).sum(axis=-1)
        gt = self.gt(t).reshape([-1, 1])
        ce_s = F.cross_entropy(s.detach(), gt, reduction="none").reshape([-1])
        ce_t = F.cross_entropy(t, gt, reduction="none").reshape([-1])
        weight = 1 - paddle.exp(-F.relu(ce_s / (ce_t + 1e-7)))
        return T * T * (weight * soft).mean()


@register_loss
class DistillationSKDLoss(_TargetPairLoss):
    """Spherical KD (Guo et al.): both logit vectors are normalised to zero mean and unit variance (layer
    norm over the classes) and scaled by `multiplier`, removing the teacher's larger confidence; then
    alpha x T^2 x soft CE + (1 - alpha) x CE of the normalised student on the true class."""

    label = "loss_skd"

    def __init__(self, model_name_pairs, temperature=1.0, multiplier=2.0, alpha=0.9, use_target_as_gt=False,
                 name=None, key=None):
        super().__init__(model_name_pairs, temperature, name, key, use_target_as_gt)
        if not 0 <= float(alpha) <= 1:
            raise PclsError(f"Loss.DistillationSKDLoss.alpha must be in [0, 1], got {alpha}")
        self.multiplier, self.alpha = float(multiplier), float(alpha)

    def sphere(self, logits):
        return F.layer_norm(logits, logits.shape[-1:], epsilon=1e-7) * self.multiplier

    def pair_loss(self, s, t):
        t = t.detach()
        T = self.temperature
        gt = self.gt(t).reshape([-1, 1])
        s_n, t_n = self.sphere(s), self.sphere(t)
        kd = soft_ce(s_n / T, F.softmax(t_n / T, axis=-1)) * T * T
        return self.alpha * kd + (1 - self.alpha) * F.cross_entropy(s_n, gt)


def _pearson_rows(a, b, eps=1e-8):
    """Per row: the Pearson correlation of a and b (cosine similarity of the centred rows)."""
    a = a - a.mean(axis=1, keepdim=True)
    b = b - b.mean(axis=1, keepdim=True)
    return (a * b).sum(axis=1) / (a.norm(axis=1) * b.norm(axis=1) + eps)


@register_loss
class DistillationDISTLoss(PairLoss):
    """DIST (Huang et al., 2022): match relations instead of probabilities. With y = softmax(logits / T):
    inter-class = 1 - mean Pearson correlation of each sample's class vector, intra-class = the same over
    each class's column across the batch; loss = T^2 (beta x inter + gamma x intra)."""

    label = "loss_dist"

    def __init__(self, model_name_pairs, beta=1.0, gamma=1.0, temperature=1.0, name=None, key=None):
        super().__init__(model_name_pairs, temperature, name, key)
        self.beta, self.gamma = float(beta), float(gamma)

    def pair_loss(self, s, t):
        T = self.temperature
        y_s, y_t = F.softmax(s / T, axis=-1), F.softmax(t.detach() / T, axis=-1)
        inter = 1 - _pearson_rows(y_s, y_t).mean()
        intra = 1 - _pearson_rows(y_s.t(), y_t.t()).mean()
        return T * T * (self.beta * inter + self.gamma * intra)
