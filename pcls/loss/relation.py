"""Relation-based distillation: RKD (Park et al., CVPR 2019, "Relational Knowledge Distillation") by its
PaddleClas name. The student matches the teacher's *relations* between the samples of a batch, not their
outputs: pairwise distances (normalised by their mean) and the angles the samples form in triples, each
compared with the smooth-L1 (Huber) loss. Features of any rank are flattened per sample (4-D maps
adaptive-average-pooled to `target_size` first, when given)."""

from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.errors import PclsError
from pcls.loss.distillation import checked_pairs, member_entry
from pcls.loss.registry import register_loss


def pairwise_distance(embedding, eps=1e-12):
    """[N, N] Euclidean distances between the rows; squared distances are floored at eps before the square
    root (so the diagonal is sqrt(eps), not 0, and the root stays differentiable there)."""
    square = (embedding * embedding).sum(axis=1)
    product = paddle.matmul(embedding, embedding, transpose_y=True)
    return (square.unsqueeze(1) + square.unsqueeze(0) - 2 * product).clip(min=eps).sqrt()


def _mean_normalised(distance, eps=1e-12):
    # PaddleClas 2.6 divides by the mean over all N x N entries, the near-zero diagonal included (N / (N - 1)
    # times the paper's off-diagonal mean): measured against it in tests/loss/test_paddleclas_parity.py
    return distance / (distance.mean() + eps)


def rkd_distance(student, teacher):
    """Smooth-L1 between the student's and the teacher's pairwise distances, each divided by its mean (the
    teacher's side carries no gradient)."""
    with paddle.no_grad():
        t_d = _mean_normalised(pairwise_distance(teacher))
    return F.smooth_l1_loss(_mean_normalised(pairwise_distance(student)), t_d, reduction="mean")


def _angles(embedding):
    """[N*N*N] cosines of the angle at sample j between samples i and k (unit difference vectors)."""
    difference = F.normalize(embedding.unsqueeze(0) - embedding.unsqueeze(1), p=2, axis=2)
    return paddle.bmm(difference, difference.transpose([0, 2, 1])).reshape([-1])


def rkd_angle(student, teacher):
    with paddle.no_grad():
        t_angle = _angles(teacher)
    return F.smooth_l1_loss(_angles(student), t_angle, reduction="mean")


@register_loss
class DistillationRKDLoss(nn.Layer):
    """RKD's distance and angle terms for each [student, teacher] pair, on the entry `key` of each model's
    output (logits by default, or a return pattern's feature map)."""

    def __init__(self, model_name_pairs=(("Student", "Teacher"),), target_size=None, student_keepkeys=None,
                 teacher_keepkeys=None, key=None, name="loss_rkd"):
        super().__init__()
        self.pairs = checked_pairs(model_name_pairs, "DistillationRKDLoss")
        self.student_keys = list(student_keepkeys or [key or "logits"])
        self.teacher_keys = list(teacher_keepkeys or self.student_keys)
        if len(self.student_keys) != len(self.teacher_keys):
            raise PclsError("Loss.DistillationRKDLoss: student_keepkeys and teacher_keepkeys must have the same "
                            "length")
        self.target_size = target_size
        self.label = name

    def _flat(self, feature):
        if feature.ndim == 4 and self.target_size:
            feature = F.adaptive_avg_pool2d(feature, self.target_size)
        return feature.reshape([feature.shape[0], -1])

    def forward(self, output, target=None):
        terms = {}
        for student, teacher in self.pairs:
            for s_key, t_key in zip(self.student_keys, self.teacher_keys):
                s = self._flat(member_entry(output, student, s_key, "DistillationRKDLoss"))
                t = self._flat(member_entry(output, teacher, t_key, "DistillationRKDLoss")).detach()
                suffix = f"{student}_{teacher}" + (f"_{s_key}" if len(self.student_keys) > 1 else "")
                terms[f"{self.label}_angle_{suffix}"] = rkd_angle(s, t)
                terms[f"{self.label}_dist_{suffix}"] = rkd_distance(s, t)
        return terms
