"""Model-side parts of feature distillation that PaddleClas configs place in `Arch.models`: AFD's attention
connectors and the AttentionModel that runs a backbone (with `return_patterns`) and then a connector on
its feature maps, returning both outputs in one dict.

    - Student:
        name: AttentionModel
        freeze_params_list: [False, False]
        models:
          - ResNet18: {name: ResNet18, return_patterns: [...]}
          - LinearTransformStudent: {name: LinearTransformStudent, qk_dim: 128, keys: [...],
                                     s_shapes: ..., t_shapes: ...}

AFD (Ji et al., AAAI 2021): every feature map f [N, C, H, W] gives a channel descriptor (its spatial mean,
[N, C]) and a spatial attention map (the channel mean of f^2, flattened, L2-normalised). The teacher's
connector turns each descriptor into a query (Linear + BN); the student's into a key (Linear + BN + ReLU)
and then, through one bilinear layer, a key per teacher feature. The student's attention maps are
resampled to each distinct teacher map size. AFDLoss (pcls.loss.feature) turns these into the loss.
"""

from __future__ import annotations

from typing import Dict, List

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from pcls.errors import PclsError
from pcls.loss.distillation import pattern_key
from pcls.loss.feature import unique_shape_index


class LinearBNReLU(nn.Layer):
    def __init__(self, inputs: int, outputs: int):
        super().__init__()
        self.linear = nn.Linear(inputs, outputs)
        self.bn = nn.BatchNorm1D(outputs)

    def forward(self, x, relu: bool = True):
        x = self.bn(self.linear(x))
        return F.relu(x) if relu else x


def _features(outputs: dict, keys: List[str], what: str) -> list:
    missing = [k for k in keys if pattern_key(k) not in outputs]
    if missing:
        raise PclsError(f"{what}: the backbone returns no feature '{missing[0]}'; list it in its return_patterns")
    return [outputs[pattern_key(k)] for k in keys]


def _check_shapes(shapes, what: str) -> list:
    if not shapes or not all(isinstance(s, (list, tuple)) and len(s) == 3 for s in shapes):
        raise PclsError(f"Arch.models: {what} must list each feature's [C, H, W], got {shapes!r}")
    return [list(map(int, s)) for s in shapes]


class LinearTransformTeacher(nn.Layer):
    """Outputs {"query": [N, T, qk_dim], "value": [attention map [N, H*W] per teacher feature]}."""

    def __init__(self, qk_dim, t_shapes, keys):
        super().__init__()
        self.keys = list(keys)
        t_shapes = _check_shapes(t_shapes, "LinearTransformTeacher.t_shapes")
        if len(self.keys) != len(t_shapes):
            raise PclsError(f"Arch.models: LinearTransformTeacher has {len(self.keys)} keys and {len(t_shapes)} "
                            f"t_shapes")
        self.query_layer = nn.LayerList([LinearBNReLU(shape[0], int(qk_dim)) for shape in t_shapes])

    def forward(self, outputs: Dict[str, paddle.Tensor]) -> dict:
        features = _features(outputs, self.keys, "LinearTransformTeacher")
        batch = features[0].shape[0]
        channel_means = [f.mean(axis=[2, 3]) for f in features]
        spatial_means = [f.pow(2).mean(axis=1).reshape([batch, -1]) for f in features]
        query = paddle.stack([layer(mean, relu=False) for layer, mean in zip(self.query_layer, channel_means)], axis=1)
        return {"query": query, "value": [F.normalize(m, axis=1) for m in spatial_means]}


class LinearTransformStudent(nn.Layer):
    """Outputs {"bilinear_key": [N, S, T, qk_dim], "value": [[N, S, H*W] per distinct teacher map size]}."""

    def __init__(self, qk_dim, t_shapes, s_shapes, keys):
        super().__init__()
        self.keys = list(keys)
        t_shapes = _check_shapes(t_shapes, "LinearTransformStudent.t_shapes")
        s_shapes = _check_shapes(s_shapes, "LinearTransformStudent.s_shapes")
        if len(self.keys) != len(s_shapes):
            raise PclsError(f"Arch.models: LinearTransformStudent has {len(self.keys)} keys and {len(s_shapes)} "
                            f"s_shapes")
        self.qk_dim, self.t, self.s = int(qk_dim), len(t_shapes), len(s_shapes)
        distinct, _ = unique_shape_index(t_shapes)
        self.sizes = [(shape[1], shape[2]) for shape in distinct]
        self.key_layer = nn.LayerList([LinearBNReLU(shape[0], self.qk_dim) for shape in s_shapes])
        self.bilinear = LinearBNReLU(self.qk_dim, self.qk_dim * self.t)

    def forward(self, outputs: Dict[str, paddle.Tensor]) -> dict:
        features = _features(outputs, self.keys, "LinearTransformStudent")
        batch = features[0].shape[0]
        channel_means = [f.mean(axis=[2, 3]) for f in features]
        energy = [f.pow(2).mean(axis=1, keepdim=True) for f in features]
        values = [paddle.stack([F.adaptive_avg_pool2d(e, size).reshape([batch, -1]) for e in energy], axis=1)
                  for size in self.sizes]
        key = paddle.stack([layer(mean) for layer, mean in zip(self.key_layer, channel_means)], axis=1)
        key = key.reshape([batch * self.s, -1])
        bilinear_key = self.bilinear(key, relu=False).reshape([batch, self.s, self.t, -1])
        return {"bilinear_key": bilinear_key, "value": [F.normalize(v, axis=2) for v in values]}


CONNECTORS = {"LinearTransformTeacher": LinearTransformTeacher, "LinearTransformStudent": LinearTransformStudent}


class AttentionModel(nn.Layer):
    """A backbone followed by a connector on its feature maps; frozen parts (freeze_params_list) run in eval
    mode without gradients. Output: the backbone's dict (logits + return patterns) plus the connector's."""

    def __init__(self, backbone_label: str, backbone: nn.Layer, connector_label: str, connector: nn.Layer,
                 frozen: List[str]):
        super().__init__()
        self.backbone_label, self.connector_label = backbone_label, connector_label
        self.add_sublayer(backbone_label, backbone)
        self.add_sublayer(connector_label, connector)
        self.frozen = set(frozen)
        for label in self.frozen:
            for param in getattr(self, label).parameters():
                param.stop_gradient = True
        self.train()

    def train(self, *args, **kwargs):
        super().train(*args, **kwargs)
        for label in self.frozen:
            getattr(self, label).eval()
        return self

    def _run(self, label, x):
        layer = getattr(self, label)
        if label not in self.frozen:
            return layer(x)
        with paddle.no_grad():
            return layer(x)

    def forward(self, x):
        outputs = self._run(self.backbone_label, x)
        if not isinstance(outputs, dict):
            raise PclsError(f"AttentionModel: {self.backbone_label} returns no feature maps; set its return_patterns")
        return {**outputs, **self._run(self.connector_label, outputs)}

    # the engine's model surface: the backbone is what gets deployed
    @property
    def deployable(self) -> nn.Layer:
        return getattr(self, self.backbone_label)

    @property
    def model_name(self) -> str:
        return getattr(self, self.backbone_label).model_name

    @property
    def pretrained_cfg(self) -> dict:
        return getattr(getattr(self, self.backbone_label), "pretrained_cfg", {})

    def classifier_prefixes(self) -> list:
        return [f"{self.backbone_label}.{p}" for p in getattr(self, self.backbone_label).classifier_prefixes()]


def build_attention_model(cfg: dict, global_cfg: dict, class_num: int) -> AttentionModel:
    """An `{name: AttentionModel, models: [backbone, connector], freeze_params_list: [...]}` member."""
    from pcls.engine.backbone import build_backbone, load_weights

    members = []
    for index, item in enumerate(cfg.get("models") or []):
        if not isinstance(item, dict) or len(item) != 1:
            raise PclsError(f"Arch.models: AttentionModel.models[{index}] must be a single-key map")
        (label, section), = item.items()
        members.append((label, dict(section or {})))
    if len(members) != 2 or members[1][1].get("name") not in CONNECTORS:
        raise PclsError(f"Arch.models: AttentionModel.models must be a backbone then one of {', '.join(CONNECTORS)}")
    freeze = list(cfg.get("freeze_params_list") or [False, False])
    if len(freeze) != 2:
        raise PclsError(f"Arch.models: AttentionModel.freeze_params_list has {len(freeze)} values for 2 models")
    (backbone_label, backbone_cfg), (connector_label, connector_cfg) = members
    backbone_cfg.setdefault("class_num", class_num)
    source = backbone_cfg.pop("pretrained", None)
    backbone = build_backbone(backbone_cfg, {k: v for k, v in global_cfg.items() if k != "pretrained_model"})
    if source:
        load_weights(backbone, source)
    connector_name = connector_cfg.pop("name")
    if connector_cfg.pop("pretrained", None):
        raise PclsError(f"Arch.models: {connector_name} has no pretrained weights; load a whole distillation "
                        f"checkpoint with Global.pretrained_model instead")
    try:
        connector = CONNECTORS[connector_name](**connector_cfg)
    except TypeError as err:
        raise PclsError(f"Arch.models: {connector_name}: bad parameter ({err})") from err
    frozen = [label for label, flag in zip((backbone_label, connector_label), freeze) if flag]
    return AttentionModel(backbone_label, backbone, connector_label, connector, frozen)
