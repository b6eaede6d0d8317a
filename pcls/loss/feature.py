"""Feature-based distillation losses by their PaddleClas names, on the feature maps the models' members return
(`return_patterns` in Arch.models, or a connector's outputs):

- DistillationPairLoss: a named base loss on one student feature (`s_key`) and one teacher feature (`t_key`)
  per pair: MGDLoss (masked generative distillation, with its generation block), PEFDLoss (projector
  ensemble), or a plain distance (MSELoss, L1Loss, SmoothL1Loss). Its extra keys go to the base loss.
- DistillationDistanceLoss: an l1 / l2 / smooth_l1 distance between the pair's `key` entries (UDML).
- AFDLoss: attention-based feature matching over every student/teacher feature pair (AFD), reading the
  connectors' outputs (pcls.distill.connectors).

Base losses with parameters (MGD's generation block, PEFD's projectors, AFD's position embeddings) join the
optimizer through the loss layer, as in PaddleClas.
"""

from __future__ import annotations

import math

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.errors import PclsError
from pcls.loss.distillation import PairLoss, checked_pairs, member_entry
from pcls.loss.registry import register_loss


class MGDLoss(nn.Layer):
    """Masked generative distillation (Yang et al., ECCV 2022), the classification form: whole channels of
    the (aligned) student map are dropped with probability lambda_mgd, a conv-ReLU-conv generation block
    rebuilds the teacher's map from the rest, loss = alpha_mgd x MSE (mean over all entries). The convolutions
    start from He-normal weights scaled by their fan-out (as the paper's code and PaddleClas 2.6 do)."""

    def __init__(self, student_channels, teacher_channels, alpha_mgd=1.756, lambda_mgd=0.15):
        super().__init__()
        self.alpha_mgd, self.lambda_mgd = float(alpha_mgd), float(lambda_mgd)
        channels = int(teacher_channels)
        self.align = (nn.Conv2D(int(student_channels), channels, 1, weight_attr=_he_fan_out(channels, 1))
                      if int(student_channels) != channels else None)
        self.generation = nn.Sequential(
            nn.Conv2D(channels, channels, 3, padding=1, weight_attr=_he_fan_out(channels, 3)), nn.ReLU(),
            nn.Conv2D(channels, channels, 3, padding=1, weight_attr=_he_fan_out(channels, 3)))

    def forward(self, student, teacher):
        if self.align is not None:
            student = self.align(student)
        keep = (paddle.rand([student.shape[0], student.shape[1], 1, 1]) >= self.lambda_mgd).astype(student.dtype)
        return F.mse_loss(self.generation(student * keep), teacher) * self.alpha_mgd


def _he_fan_out(out_channels, kernel):
    """He-normal initialisation with the fan taken on the output side (out_channels x k x k)."""
    return paddle.ParamAttr(initializer=nn.initializer.KaimingNormal(fan_in=out_channels * kernel * kernel))


def _as_map(feature):
    """[N, C] (a pooled feature) as [N, C, 1, 1]; maps pass unchanged."""
    return feature.reshape(feature.shape + [1, 1]) if feature.ndim == 2 else feature


class PEFDLoss(nn.Layer):
    """Projector-ensemble feature distillation (Chen et al., NeurIPS 2022): `num_projectors` 1x1-conv + ReLU
    projectors map the student's map to the teacher's channels at every position; their mean, flattened, is
    aligned in direction with the teacher's flattened map: loss = mean over the batch of 1 - cos."""

    def __init__(self, student_channel, teacher_channel, num_projectors=3):
        super().__init__()
        if int(num_projectors) < 1:
            raise PclsError(f"PEFDLoss.num_projectors must be at least 1, got {num_projectors}")
        self.projectors = nn.LayerList([nn.Conv2D(int(student_channel), int(teacher_channel), 1)
                                        for _ in range(int(num_projectors))])

    def forward(self, student, teacher):
        student, teacher = _as_map(student), _as_map(teacher)
        if student.shape[2:] != teacher.shape[2:]:
            raise PclsError(f"PEFDLoss: the student's feature is {student.shape[2]}x{student.shape[3]} and the "
                            f"teacher's {teacher.shape[2]}x{teacher.shape[3]}; tap features of the same size "
                            f"(s_key / t_key)")
        projected = paddle.add_n([F.relu(p(student)) for p in self.projectors]) / len(self.projectors)
        projected, teacher = projected.flatten(1), teacher.flatten(1)
        return (1 - F.cosine_similarity(projected, teacher, axis=1)).mean()


DISTANCES = {"l1": nn.L1Loss, "l2": nn.MSELoss, "smooth_l1": nn.SmoothL1Loss}
BASE_LOSSES = {"MGDLoss": MGDLoss, "PEFDLoss": PEFDLoss, "MSELoss": nn.MSELoss, "L1Loss": nn.L1Loss,
               "SmoothL1Loss": nn.SmoothL1Loss}


@register_loss
class DistillationPairLoss(nn.Layer):
    def __init__(self, base_loss_name, model_name_pairs, s_key=None, t_key=None, name="loss", key=None, **kwargs):
        super().__init__()
        if base_loss_name not in BASE_LOSSES:
            raise PclsError(f"Loss.DistillationPairLoss.base_loss_name: '{base_loss_name}' is not one of "
                            f"{', '.join(BASE_LOSSES)}")
        try:
            self.base = BASE_LOSSES[base_loss_name](**kwargs)
        except TypeError as err:
            raise PclsError(f"Loss.DistillationPairLoss ({base_loss_name}): bad parameter ({err})") from err
        self.pairs = checked_pairs(model_name_pairs, "DistillationPairLoss")
        self.s_key, self.t_key = s_key or key or "logits", t_key or key or "logits"
        self.label = name

    def forward(self, output, target):
        terms = {}
        for student, teacher in self.pairs:
            s = member_entry(output, student, self.s_key, "DistillationPairLoss")
            t = member_entry(output, teacher, self.t_key, "DistillationPairLoss")
            terms[f"{self.label}_{student}_{teacher}"] = self.base(s, t)
        return terms


ACTIVATIONS = {None: None, "sigmoid": F.sigmoid, "softmax": lambda x: F.softmax(x, axis=-1)}


@register_loss
class DistillationDistanceLoss(PairLoss):
    """A distance between the pair's `key` entries (UDML matches intermediate features): mode l1, l2 (MSE)
    or smooth_l1, averaged over all entries, after an optional `act` (sigmoid / softmax over the last axis)
    on both. Gradients reach both models (mutual learning)."""

    label = "loss_distance"

    def __init__(self, model_name_pairs, mode="l2", key=None, name=None, act=None, **kwargs):
        if mode not in DISTANCES:
            raise PclsError(f"Loss.DistillationDistanceLoss.mode must be one of {', '.join(DISTANCES)}, got {mode!r}")
        if act not in ACTIVATIONS:
            raise PclsError(f"Loss.DistillationDistanceLoss.act must be sigmoid, softmax or left out, got {act!r}")
        super().__init__(model_name_pairs, 1.0, name, key)
        self.act = ACTIVATIONS[act]
        try:
            self.distance = DISTANCES[mode](**kwargs)
        except TypeError as err:
            raise PclsError(f"Loss.DistillationDistanceLoss ({mode}): bad parameter ({err})") from err

    def pair_loss(self, s, t):
        if self.act is not None:
            s, t = self.act(s), self.act(t)
        return self.distance(s, t)


def unique_shape_index(shapes) -> tuple:
    """(distinct shapes in order of appearance, for each shape the index of its distinct shape)."""
    distinct = []
    for shape in shapes:
        if list(shape) not in distinct:
            distinct.append(list(shape))
    return distinct, [distinct.index(list(shape)) for shape in shapes]


@register_loss
class AFDLoss(nn.Layer):
    """Attention-based feature distillation (Ji et al., AAAI 2021). The connectors give, per sample, a
    query per teacher feature, a bilinear key per (student, teacher) feature pair and each feature's
    normalised spatial attention map ("value"; the student's resampled to every teacher map size). The
    attention of teacher feature t over the student features is softmax_s((key_st . query_t + p_t . p_s) /
    sqrt(qk_dim)), with learned position embeddings p_t, p_s; the loss sums over t the attention-weighted
    mean squared distance between the value maps, averaged over the batch."""

    def __init__(self, model_name_pair=("Student", "Teacher"), student_keys=("bilinear_key", "value"),
                 teacher_keys=("query", "value"), s_shapes=None, t_shapes=None, qk_dim=128, name="loss_afd"):
        super().__init__()
        if not s_shapes or not t_shapes:
            raise PclsError("Loss.AFDLoss needs s_shapes and t_shapes (the [C, H, W] of every student and "
                            "teacher feature, as the connectors are given them)")
        if not isinstance(model_name_pair, (list, tuple)) or len(model_name_pair) != 2:
            raise PclsError(f"Loss.AFDLoss.model_name_pair must be [student, teacher], got {model_name_pair!r}")
        self.student, self.teacher = model_name_pair
        self.student_keys, self.teacher_keys = list(student_keys), list(teacher_keys)
        self.qk_dim = int(qk_dim)
        _, self.value_index = unique_shape_index(t_shapes)
        init = nn.initializer.XavierNormal()
        self.p_t = self.create_parameter([len(t_shapes), self.qk_dim], default_initializer=init)
        self.p_s = self.create_parameter([len(s_shapes), self.qk_dim], default_initializer=init)
        self.label = name

    def forward(self, output, target=None):
        key, s_values = (member_entry(output, self.student, k, "AFDLoss") for k in self.student_keys)
        query, t_values = (member_entry(output, self.teacher, k, "AFDLoss") for k in self.teacher_keys)
        position = paddle.matmul(self.p_t, self.p_s, transpose_y=True)  # [t, s]
        logit = (paddle.einsum("bstq,btq->bts", key, query) + position) / math.sqrt(self.qk_dim)
        attention = F.softmax(logit, axis=2)  # [b, t, s]
        loss = 0.0
        for index, t_value in enumerate(t_values):
            s_value = s_values[self.value_index[index]]  # [b, s, hw]
            distance = (s_value - t_value.unsqueeze(1)).pow(2).mean(axis=2)  # [b, s]
            loss = loss + (distance * attention[:, index]).sum(axis=1).mean()
        return {self.label: loss}
