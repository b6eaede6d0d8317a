"""Distillation losses by their PaddleClas names. They read a DistillationModel's output, a dict
{model name: logits} (or {model name: {"logits": ..., <return pattern>: feature}} for members with
`return_patterns`), and pair models by `model_name_pairs` (student first) or pick them by `model_names`.

Unlabeled samples (label -1, e.g. SSLD's extra_list.txt lines) count only in the teacher-student terms:
the ground-truth terms mask them out.
"""

from __future__ import annotations

import re

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.errors import PclsError
from pcls.loss.ce import CELoss
from pcls.loss.multilabel import MultiLabelLoss, ratio_weights, split_ratio_target
from pcls.loss.registry import register_loss

_EPS = 1e-7


def checked_pairs(model_name_pairs, what):
    """`model_name_pairs` as (student, teacher) tuples; a PclsError naming Loss.<what> when malformed."""
    if not model_name_pairs or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in model_name_pairs):
        raise PclsError(f"Loss.{what}.model_name_pairs must be a list of [student, teacher] pairs, "
                        f"got {model_name_pairs!r}")
    return [tuple(p) for p in model_name_pairs]


def _check_key(key, what):
    """PaddleClas configs may name the output entry (`key: logits`); a pcls model outputs only logits."""
    if key not in (None, "logits"):
        raise PclsError(f"Loss.{what}.key: '{key}' is not an output of pcls distillation models, which give each "
                        f"model's logits only; use 'key: logits' or leave it out")


def member_output(output, name, what):
    """What model `name` of a DistillationModel returned: logits, or a dict of logits and feature maps."""
    if not isinstance(output, dict):
        raise PclsError(f"Loss.{what} needs a DistillationModel (Arch.name: DistillationModel) whose output names "
                        f"each model; this model returns a single tensor")
    if name not in output:
        raise PclsError(f"Loss.{what}: no model named '{name}' in Arch.models (have: {', '.join(output)})")
    return output[name]


def pattern_key(key: str) -> str:
    """A return pattern as the model's output names it: PaddleClas writes `blocks[2]`, sub-layers are `blocks.2`."""
    return re.sub(r"\[(\d+)\]", r".\1", str(key))


def member_entry(output, name, key, what):
    """Entry `key` ('logits' or a return pattern / connector output) of model `name`'s output."""
    value = member_output(output, name, what)
    if not isinstance(value, dict):
        if key in (None, "logits"):
            return value
        raise PclsError(f"Loss.{what}.key: '{key}' is not an output of model '{name}', which returns only "
                        f"logits; list '{key}' in its return_patterns (Arch.models) or use 'key: logits'")
    for candidate in ("logits" if key is None else key, pattern_key(key or "logits")):
        if candidate in value:
            return value[candidate]
    raise PclsError(f"Loss.{what}.key: '{key}' is not an output of model '{name}' (have: {', '.join(value)}); "
                    f"add it to the model's return_patterns")


def _logits(output, name, what):
    return member_entry(output, name, "logits", what)


def soft_ce(student_logits, teacher_prob):
    """mean_i -sum_c q_ic log p_ic with p = softmax(student), q the teacher's probabilities."""
    return -(teacher_prob * F.log_softmax(student_logits, axis=-1)).sum(axis=-1).mean()


def kl_terms(p_log, q_log):
    """The per-class terms q_ic (log q_ic - log p_ic) of KL(q_i || p_i), from log-probabilities."""
    return paddle.exp(q_log) * (q_log - p_log)


def kl_div(p_log, q_log):
    """mean_i KL(q_i || p_i) from log-probabilities (KL(target || prediction))."""
    return kl_terms(p_log, q_log).sum(axis=-1).mean()


def js_div(p_log, q_log):
    """mean_i JS(p_i, q_i) = (KL(p||m) + KL(q||m)) / 2 with m = (p + q) / 2."""
    p, q = paddle.exp(p_log), paddle.exp(q_log)
    m_log = paddle.log((p + q) / 2 + _EPS)
    return ((p * (p_log - m_log)).sum(axis=-1) + (q * (q_log - m_log)).sum(axis=-1)).mean() / 2


class PairLoss(nn.Layer):
    """Shared plumbing: one term per (student, teacher) pair, named `<name>_<student>_<teacher>`, on each
    model's output entry `key` (logits, or a return pattern's feature map)."""

    label = "loss"

    def __init__(self, model_name_pairs, temperature=1.0, name=None, key=None):
        super().__init__()
        self.key = key or "logits"
        self.target = None
        self.pairs = checked_pairs(model_name_pairs, type(self).__name__)
        self.temperature = float(temperature)
        if self.temperature <= 0:
            raise PclsError(f"Loss.{type(self).__name__}.temperature must be > 0, got {temperature}")
        self.label = name or self.label

    def forward(self, output, target):
        self.target = target  # for the losses that also read the labels (pair_loss takes the logits only)
        terms = {}
        try:
            for student, teacher in self.pairs:
                s = member_entry(output, student, self.key, type(self).__name__)
                t = member_entry(output, teacher, self.key, type(self).__name__)
                terms[f"{self.label}_{student}_{teacher}"] = self.pair_loss(s, t)
        finally:
            self.target = None
        return terms

    def pair_loss(self, student_logits, teacher_logits):
        raise NotImplementedError


@register_loss
class DistillationCELoss(PairLoss):
    """SSLD's soft-label loss: CE of the student against the teacher's softmax(logits / T) (detached)."""

    label = "loss_ce"

    def pair_loss(self, s, t):
        teacher_prob = F.softmax(t.detach() / self.temperature, axis=-1)
        return soft_ce(s / self.temperature, teacher_prob)


@register_loss
class DistillationKLDivLoss(PairLoss):
    """Classic knowledge distillation (Hinton et al.): T^2 * KL(softmax(t/T) || softmax(s/T))."""

    label = "loss_kl"

    def __init__(self, model_name_pairs, temperature=4.0, name=None, key=None):
        super().__init__(model_name_pairs, temperature, name, key)

    def pair_loss(self, s, t):
        T = self.temperature
        return kl_div(F.log_softmax(s / T, axis=-1), F.log_softmax(t.detach() / T, axis=-1)) * T * T


@register_loss
class DistillationJSDivLoss(PairLoss):
    """SSLD's JS-divergence between the student's and the teacher's softmax(logits / T)."""

    label = "loss_js"

    def pair_loss(self, s, t):
        T = self.temperature
        return js_div(F.log_softmax(s / T, axis=-1), F.log_softmax(t.detach() / T, axis=-1))


@register_loss
class DistillationDMLLoss(PairLoss):
    """Deep mutual learning: symmetric KL between two trainable models; gradients reach both.

    For attribute (label_ratio) data, `weight_ratio` weighs each class's term like MultiLabelLoss does.
    PaddleClas 2.6 scales each (sample, class) term by the class count C and then averages over all of them
    (the KL summed over classes, averaged over the batch); `sum_across_class_dim: true` sums those scaled
    terms over the classes instead, which is C times as large (measured: tests/loss/test_paddleclas_parity.py)."""

    label = "loss_dml"

    def __init__(self, model_name_pairs, temperature=1.0, name=None, key=None, act="softmax", weight_ratio=False,
                 sum_across_class_dim=False):
        if act != "softmax":
            raise PclsError(f"Loss.DistillationDMLLoss.act: '{act}' is not supported; pcls compares the models' "
                            f"softmax outputs (act: softmax)")
        super().__init__(model_name_pairs, temperature, name, key)
        self.weight_ratio, self.sum_across_class_dim = bool(weight_ratio), bool(sum_across_class_dim)

    def pair_loss(self, a, b):
        T = self.temperature
        a_log, b_log = F.log_softmax(a / T, axis=-1), F.log_softmax(b / T, axis=-1)
        terms = (kl_terms(a_log, b_log) + kl_terms(b_log, a_log)) / 2
        if self.weight_ratio:
            labels, ratio = split_ratio_target(self.target, "DistillationDMLLoss")
            terms = terms * ratio_weights(labels, ratio)
        loss = terms.sum(axis=-1).mean()
        return loss * terms.shape[-1] if self.sum_across_class_dim else loss


@register_loss
class DistillationGTCELoss(nn.Layer):
    """Ground-truth CE for the listed models; unlabeled samples (label -1) are left out."""

    def __init__(self, model_names, epsilon=None, name="loss_gt_ce", key=None):
        super().__init__()
        _check_key(key, "DistillationGTCELoss")
        if not isinstance(model_names, (list, tuple)) or not model_names or not all(isinstance(n, str) for n in model_names):
            raise PclsError(f"Loss.DistillationGTCELoss.model_names must be a list of model names, got {model_names!r}")
        self.model_names = list(model_names)
        self.ce = CELoss(epsilon=epsilon)
        self.label = name

    def forward(self, output, target):
        terms = {}
        for model_name in self.model_names:
            logits = _logits(output, model_name, "DistillationGTCELoss")
            terms[f"{self.label}_{model_name}"] = masked_ce(self.ce, logits, target)
        return terms


def masked_ce(ce, logits, target):
    """CE over the labelled samples only; 0 (with a graph) when the batch has none."""
    if target.dtype not in (paddle.int64, paddle.int32):
        return ce(logits, target)
    labels = target.reshape([-1])
    keep = paddle.nonzero(labels >= 0).reshape([-1])
    if keep.shape[0] == 0:
        return (logits * 0).sum()
    if keep.shape[0] == labels.shape[0]:
        return ce(logits, labels)
    return ce(paddle.gather(logits, keep), paddle.gather(labels, keep))


@register_loss
class DistillationMultiLabelLoss(nn.Layer):
    """MultiLabelLoss against the labels for each model in `model_names` of a DistillationModel (PULC's
    attribute distillation configs), one term per model named `<name>_<model>`."""

    def __init__(self, model_names, epsilon=None, size_sum=False, weight_ratio=False, key=None, name="loss_mll"):
        super().__init__()
        if not isinstance(model_names, (list, tuple)) or not model_names:
            raise PclsError(f"Loss.DistillationMultiLabelLoss.model_names must be a list of model names, got "
                            f"{model_names!r}")
        self.model_names, self.key, self.label = list(model_names), key or "logits", name
        self.loss = MultiLabelLoss(epsilon=epsilon, size_sum=size_sum, weight_ratio=weight_ratio)

    def forward(self, output, target):
        return {f"{self.label}_{model}": self.loss(member_entry(output, model, self.key, "DistillationMultiLabelLoss"),
                                                   target)
                for model in self.model_names}
