"""DistillationModel: several backbones under one name each (Teacher, Student, ...), run on the same batch.

forward returns {name: logits}, or {name: {"logits": ..., <feature>: ...}} for members with `return_patterns`
or a connector (AttentionModel, pcls/distill/connectors.py). Frozen models (the teacher) stay in eval mode, run
without gradients and have stop_gradient parameters, so they get no optimizer state. `student_state_dict()` is the
plain state dict of the deployable model (Arch.infer_model_name), which the trainer saves beside every checkpoint.
"""

from __future__ import annotations

import logging
from typing import Dict, List

import paddle
import paddle.nn as nn

from pcls.config.schema import default_of
from pcls.config.members import distill_members, frozen_labels, student_label
from pcls.distill.connectors import build_attention_model
from pcls.engine.backbone import build_backbone, load_weights
from pcls.errors import PclsError

log = logging.getLogger(__name__)


class DistillationModel(nn.Layer):
    def __init__(self, models: Dict[str, nn.Layer], frozen: List[str], infer_model_name: str):
        """infer_model_name: the deployable model, chosen by pcls.config.members.student_label (the one rule)."""
        super().__init__()
        self.names = list(models)
        for name, model in models.items():
            self.add_sublayer(name, model)
        self.frozen = set(frozen)
        for name in self.frozen:
            for param in getattr(self, name).parameters():
                param.stop_gradient = True
        if infer_model_name not in models:
            raise PclsError(f"Arch.infer_model_name '{infer_model_name}' is not one of Arch.models "
                            f"({', '.join(self.names)})")
        self.infer_model_name = infer_model_name
        self.teacher_cache = None  # a pcls.distill.cache.TeacherCache with --cache-teacher
        self.teacher_dtype = None  # "float16" once teacher_to_half ran (AMP on GPU)
        self.train()

    def train(self, *args, **kwargs):
        super().train(*args, **kwargs)
        for name in self.frozen:
            getattr(self, name).eval()  # a frozen teacher keeps its BatchNorm statistics and no dropout
        for name in set(self.names) - self.frozen:  # paddle sets sub-layers' flags without calling their train()
            layer = getattr(self, name)
            if self.training and hasattr(layer, "deployable"):  # an AttentionModel re-freezes its frozen parts
                layer.train()
        return self

    def teacher_to_half(self, dtype: str = "float16") -> None:
        """Under AMP (GPU): keep the frozen models' weights in half precision and run them in it.

        Normalisation layers stay float32, as paddle's O2 does, for their statistics' precision. The cast is
        the per-layer one paddle.amp.decorate uses; decorate itself is a no-op off GPU and wants an optimizer
        for master weights, which a frozen model has none of."""
        norms = (nn.layer.norm._BatchNormBase, nn.LayerNorm, nn.GroupNorm)
        for name in self.frozen:
            for layer in getattr(self, name).sublayers(include_self=True):
                if not isinstance(layer, norms):
                    layer._to_impl(dtype=dtype, include_sublayers=False, floating_only=True)
        self.teacher_dtype = dtype if self.frozen else None

    def use_teacher_cache(self, cache) -> None:
        """Look frozen models' outputs up in `cache` (filled on first sight) while training; None: stop."""
        self.teacher_cache = cache

    def _run_frozen(self, model, x):
        with paddle.no_grad():
            if self.teacher_dtype is None:
                return _map_tensors(model(x), lambda t: t.detach())
            with paddle.amp.auto_cast(enable=True, level="O2", dtype=self.teacher_dtype):
                # a half input keeps every op half (O2 promotes ops with a float32 input back to float32)
                return _map_tensors(model(x.astype(self.teacher_dtype)), lambda t: t.astype("float32").detach())

    def forward(self, x):
        outputs = {}
        keys = self.teacher_cache.keys_for(x) if self.teacher_cache is not None and self.training else None
        for name in self.names:
            model = getattr(self, name)
            if name not in self.frozen:
                outputs[name] = model(x)
                continue
            cached = self.teacher_cache.lookup(name, keys) if keys is not None else None
            if cached is not None:
                outputs[name] = paddle.to_tensor(cached)
                continue
            outputs[name] = self._run_frozen(model, x)
            if keys is not None:
                self.teacher_cache.store(name, keys, outputs[name].numpy())
        return outputs

    # -- the surface the engine uses for any model -------------------------------------------------------
    @property
    def student(self) -> nn.Layer:
        return getattr(self, self.infer_model_name)

    @property
    def model_name(self) -> str:
        return getattr(self.student, "model_name", self.infer_model_name)

    @property
    def pretrained_cfg(self) -> dict:
        return getattr(self.student, "pretrained_cfg", {})

    def classifier_prefixes(self) -> list:
        return [f"{name}.{p}" for name in self.names for p in getattr(self, name).classifier_prefixes()]

    def student_state_dict(self) -> dict:
        """The deployable model's weights as plain float32 numpy arrays (an O2 run holds them in half)."""
        state = {}
        deployable = getattr(self.student, "deployable", self.student)  # AFD: the backbone, not its connector
        for key, value in deployable.state_dict().items():
            array = value.numpy()
            state[key] = array.astype("float32") if array.dtype == "float16" else array
        return state


def _map_tensors(output, fn):
    """`fn` applied to every tensor of a model output (a tensor, or a dict/list of them: feature taps)."""
    if isinstance(output, dict):
        return {key: _map_tensors(value, fn) for key, value in output.items()}
    if isinstance(output, (list, tuple)):
        return type(output)(_map_tensors(value, fn) for value in output)
    return fn(output)


def _model_sources(arch_cfg: dict, global_cfg: dict, count: int):
    """Per-model weights from a list in Global.pretrained_model or Arch.pretrained_list (PaddleClas forms)."""
    for key, where in ((global_cfg.get("pretrained_model"), "Global.pretrained_model"),
                       (arch_cfg.get("pretrained_list"), "Arch.pretrained_list")):
        if isinstance(key, list):
            if len(key) != count:
                raise PclsError(f"{where} lists {len(key)} weights for {count} models in Arch.models")
            return key
    return None


def _load_member(label: str, model, source, frozen: bool) -> None:
    if not source:
        if frozen:
            log.warning("%s is frozen but has no weights (pretrained): it will teach from random initialisation",
                        label)
        return
    try:
        report = load_weights(model, source)
    except PclsError as err:
        raise PclsError(f"{label}: {err}") from err
    if frozen and report is not None and report.reinitialised:
        raise PclsError(f"{label} weights {source} do not fit its classifier ({', '.join(report.reinitialised)} "
                        f"have another class_num): a frozen teacher cannot learn a new head; give weights trained "
                        f"on these {model.state_dict()[report.reinitialised[0]].shape[-1]} classes")


def build_distillation_model(arch_cfg: dict, global_cfg: dict) -> DistillationModel:
    """The DistillationModel of an `Arch: {name: DistillationModel, models: [...]}` section (registered as a
    model kind in pcls.engine.model)."""
    members = distill_members(arch_cfg)
    class_num = arch_cfg.get("class_num")
    frozen = frozen_labels(arch_cfg)
    pretrained = global_cfg.get("pretrained_model")
    per_model_sources = _model_sources(arch_cfg, global_cfg, len(members))
    sub_global = {k: v for k, v in global_cfg.items() if k != "pretrained_model"}
    models, class_nums, sources = {}, {}, {}
    for index, (label, cfg) in enumerate(members):
        cfg.setdefault("class_num", class_num or default_of("Arch.class_num"))
        class_nums[label] = int(cfg["class_num"])
        cfg.pop("freeze_params", None)
        sources[label] = cfg.pop("pretrained", None)
        if per_model_sources and per_model_sources[index]:
            sources[label] = per_model_sources[index]
    if len(set(class_nums.values())) > 1:
        detail = ", ".join(f"{k} {v}" for k, v in class_nums.items())
        raise PclsError(f"the distilled models must have the same class_num ({detail}); set Arch.class_num once")
    for label, cfg in members:
        log.info("%s: %s%s", label, cfg["name"], " (frozen)" if label in frozen else "")
        if cfg["name"] == "AttentionModel":  # AFD: a backbone plus its attention connector
            models[label] = build_attention_model(cfg, sub_global, class_nums[label])
        else:
            models[label] = build_backbone(cfg, sub_global)
        _load_member(label, models[label], sources[label], label in frozen)
    model = DistillationModel(models, frozen, student_label(arch_cfg))
    if pretrained and not per_model_sources:  # a whole distillation checkpoint (Teacher.* / Student.* keys)
        load_weights(model, pretrained)
    return model
