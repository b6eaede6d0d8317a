"""The typed schema of a PaddleClas 2.x config (plus pcls's `Reference` block for recipes).

Every config field pcls knows is declared here once, with its type and default; `validate` checks a loaded
config against it and fills the defaults, so no other module re-reads a field with its own fallback.
Operator, loss and metric lists are checked for shape here (a list of single-key maps); their names and
parameters are checked by the registry that builds them.

Every field is read by some module, or carries `refuse=`: the reason pcls does not do what the key asks,
given as one error line when a config sets it to anything but a harmless value (`accept`). A key that only
another tool uses (Infer.infer_imgs: PaddleClas's infer script) carries `note=`, logged once when set.
tests/config/test_schema_readers.py fails on a field that no module reads and that neither refuses nor notes.
Resolution that crosses sections happens here too, once: `Global.class_num` fills `Arch.class_num` when
Arch does not set it (PaddleClas's rule); `Arch.name` must name a known backbone (checked without paddle,
pcls.config.arch_names); `Global.use_multilabel` must agree with the losses, metrics and datasets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from pcls.config.expr import LITERALS
from pcls.errors import PclsError, closest

log = logging.getLogger(__name__)
REQUIRED = object()


@dataclass(frozen=True)
class Field:
    """One config value: accepted kinds ('int', 'float', 'bool', 'str', 'list', 'dict', 'any', 'none')."""

    kinds: Tuple[str, ...]
    default: Any = None
    minimum: Optional[int] = None  # numbers below it mean nothing (0 epochs, 0 classes, batch size 0)
    refuse: Optional[str] = None  # why pcls does not do what the key asks (any value outside `accept`)
    accept: Tuple[Any, ...] = (None, False)  # values of a refused key that ask for nothing
    choices: Optional[Tuple[Any, ...]] = None  # the only values that mean something
    note: Optional[str] = None  # a key other tools read: logged once when set

    def describe(self) -> str:
        names = {"int": "an integer", "float": "a number", "bool": "true/false", "str": "a string",
                 "list": "a list", "dict": "a mapping", "none": "null", "any": "any value"}
        return " or ".join(names[k] for k in self.kinds)


@dataclass(frozen=True)
class Section:
    """A mapping with known keys. `open=True` lets unknown keys through (e.g. backbone kwargs in Arch)."""

    fields: Dict[str, Any]
    open: bool = False
    optional: bool = True
    fill: bool = True  # create it with its defaults when absent (False: absence means "not used")
    # fields (and defaults) that depend on the section's `name` (Optimizer.name, Optimizer.lr.name): each
    # component gets its own, e.g. RMSProp's epsilon 1e-6 where Adam's is 1e-8, and no beta1 under Momentum
    by_name: Optional[Dict[str, Dict[str, Any]]] = None

    def fields_for(self, value: dict) -> Dict[str, Any]:
        if not self.by_name:
            return self.fields
        name = value.get("name", self.fields["name"].default)
        variant = self.by_name.get(name, {}) if isinstance(name, str) else {}  # a non-text name is refused below
        return {**self.fields, **variant}


@dataclass(frozen=True)
class OpList:
    """A list of single-key maps `- Name: {params}` (operators, losses, metrics)."""

    what: str
    default: Optional[list] = None  # what an absent list means (e.g. the CE loss)


_INFER_IMGS_NOTE = ("Infer.infer_imgs / Global.infer_imgs are the images of PaddleClas's infer script; pcls predicts "
                    "what you give it: pcls predict IMAGES --model EXPORT")


def f(*kinds, default=None, minimum=None, refuse=None, accept=(None, False), choices=None, note=None):
    return Field(tuple(kinds), default, minimum, refuse, tuple(accept), choices, note)


def refused(reason: str, *kinds, accept=(None, False)):
    """A key pcls reads only to refuse it: any value outside `accept` is one error line giving `reason`."""
    return f(*(kinds or ("any",)), refuse=reason, accept=accept)


# what a recipe's documented figure can be measured in (Reference.metric): eval metric keys, as the meters name
# them (pcls.engine.metrics), -> the Metric.Eval entry that makes the key ("TopkAcc" is also the default list)
REFERENCE_METRICS = {"top1": "TopkAcc", "top5": "TopkAcc", "tpr": "TprAtFpr", "label_mA": "ATTRMetric"}

_OPS = OpList("operator")
DEFAULT_LOSS = [{"CELoss": {"weight": 1.0}}]

_DATASET = Section(
    {
        "name": f("str", default="ImageNetDataset"),  # ImageNetDataset, ClassFolderDataset, MultiLabelDataset
        "image_root": f("str", default="./"),
        "cls_label_path": f("str", "none"),
        "delimiter": f("str", "none"),
        "transform_ops": _OPS,
        "batch_transform_ops": _OPS,
        "allow_unlabeled": f("bool", default=False),
        "class_num": f("int", "none"),
        # MultiLabelDataset: each target also carries the training set's positive ratio per label, which
        # MultiLabelLoss.weight_ratio turns into per-label weights (pcls.data.multilabel)
        "label_ratio": f("bool", default=False),
        # CustomLabelDataset: a list of image paths only; the label comes from the transform op `label_key`
        # names (RandomRot90's rotation, BlurImage's blur) (pcls.data.datasets)
        "sample_list_path": f("str", "none"),
        "label_key": f("str", "none"),
    }
)

def _loader_split(shuffle: bool) -> Section:
    """DataLoader.Train / DataLoader.Eval: the same keys; only the sampler's `shuffle` default differs (training
    draws a new order each epoch, evaluation reads the list in order)."""
    return Section(
        fill=False,
        fields={
            "dataset": _DATASET,
            "sampler": Section(
                {
                    "name": f("str", default="DistributedBatchSampler",
                              choices=("DistributedBatchSampler", "BatchSampler", "MultiScaleSampler", "RASampler")),
                    "num_repeats": f("int", default=3, minimum=1),  # RASampler: copies of each image per epoch
                    "batch_size": f("int", default=64, minimum=1),
                    "drop_last": f("bool", default=False),
                    "shuffle": f("bool", default=shuffle),
                    # MultiScaleSampler: a batch size and an image size per batch, drawn from `scales`
                    "scales": f("list", "none"),
                    "first_bs": f("int", "none", minimum=1),
                    "divided_factor": f("int", "list", default=32),
                    "is_training": f("bool", "none"),
                }
            ),
            "loader": Section(
                {
                    "num_workers": f("int", default=0),
                    "use_shared_memory": f("bool", default=True),
                }
            ),
        },
    )


_BACKBONE_ARGS = {
    "name": f("str", default=REQUIRED),
    "class_num": f("int", default=1000, minimum=1),
    "pretrained": f("bool", "str", default=False),
}

_GAMMA = f("float", default=0.1)
# float32 master weights in the optimizer (paddle's optimizers take it; AMP O2's decorate turns it on anyway)
_MULTI_PRECISION = f("bool", default=False)
_LR = Section(
    fields={
        "name": f("str", default="Cosine"),
        "learning_rate": f("float", default=0.1),
        "warmup_epoch": f("int", "float", default=0, minimum=0),
        "warmup_start_lr": f("float", default=0.0),
        "last_epoch": refused("a schedule starts where the run is: resume with --resume instead of setting "
                              "last_epoch", "int", accept=(-1, None)),
        "by_epoch": f("bool", default=False),
        # PaddleClas's engine overwrites it with the loader's length; pcls computes it too
        "step_each_epoch": f("int", "none", note="Optimizer.lr.step_each_epoch is ignored: "
                             "pcls takes the steps per epoch from the training loader"),
    },
    # pcls.optim.lr's schedules, with PaddleClas's defaults (ppcls/optimizer/learning_rate.py)
    by_name={
        "Constant": {},
        "Cosine": {"eta_min": f("float", default=0.0)},
        "CosineWarmup": {"eta_min": f("float", default=0.0), "warmup_epoch": f("int", "float", default=5, minimum=0)},
        "Linear": {"end_lr": f("float", default=0.0), "power": f("float", default=1.0)},
        "Polynomial": {"end_lr": f("float", default=0.0), "power": f("float", default=1.0)},
        "Piecewise": {"decay_epochs": f("list", default=REQUIRED), "values": f("list", default=REQUIRED)},
        "Step": {"step_size": f("int", "float", default=REQUIRED), "gamma": _GAMMA},  # epochs (fractions allowed)
        "MultiStepDecay": {"milestones": f("list", default=REQUIRED), "gamma": _GAMMA},  # epochs
        # gamma (2.x) or decay_rate (1.x): the factor per `decay_epochs` epochs
        "Exponential": {"gamma": f("float", "none"), "decay_rate": f("float", "none"),
                        "decay_epochs": f("int", "float", default=1)},
    },
)

SCHEMA = Section(
    {
        "Global": Section(
            {
                "checkpoints": f("str", "none"),
                "pretrained_model": f("str", "list", "none"),
                "output_dir": f("str", default="./output/"),
                "device": f("str", default="auto"),
                "save_interval": f("int", default=1, minimum=1),
                "save_steps": f("int", "none"),
                "eval_during_train": f("bool", default=True),
                "eval_interval": f("int", default=1, minimum=1),
                "start_eval_epoch": f("int", default=0),
                "epochs": f("int", default=1, minimum=1),
                "print_batch_step": f("int", default=10, minimum=1),
                "use_visualdl": f("bool", default=False),
                "image_shape": f("list", default=[3, 224, 224]),
                "save_inference_dir": f("str", default="./inference"),
                "seed": f("int", "none"),
                "to_static": f("bool", default=False),
                "use_dali": f("bool", "none"),  # pcls's own loader runs instead, with a warning (config/loader.py)
                "update_freq": f("int", default=1, minimum=1),
                "eval_mode": refused("pcls trains and evaluates classification models only (retrieval, face and "
                                     "other modes are not part of it)", "str",
                                     accept=(None, "classification", "Classification")),
                "use_multilabel": f("bool", default=False),
                "infer_imgs": f("str", "list", "none", note=_INFER_IMGS_NOTE),
                # 4 in PaddleClas's NHWC fp16 configs: NormalizeImage pads a 4th channel, the stem takes 4
                "image_channel": f("int", default=3, choices=(3, 4)),
                # "efficientnetv2": progressive learning, the crop and RandAugment growing over four stages
                "train_mode": f("str", "none", choices=(None, "efficientnetv2")),
                "feature_normalize": refused("feature normalisation is for retrieval models, which pcls does not "
                                             "train; remove the key or set it to False", "bool", "none"),
                "class_num": f("int", "none", minimum=1),
                "max_iters": f("int", "none", minimum=1),
                "clip_grad_norm": f("float", "none"),
                "data_format": f("str", "none"),
                "run_name": f("str", "none"),
                # [{name: Callback, option: value}]: built by pcls.engine.callbacks.CALLBACKS in every process
                "callbacks": f("list", "none"),
                # CPU training processes (data parallel): "auto" (pcls.engine.parallel decides) or a count >= 1
                "cpu_processes": f("int", "str", default="auto", minimum=1),
                "distributed": refused("pcls starts processes from --nproc / --gpus / --ips on the command "
                                       "line, not from the config", "bool", "none"),
            }
        ),
        "Arch": Section(fill=False, fields=
            {
                **_BACKBONE_ARGS,
                "models": f("list", "none"),
                "infer_model_name": f("str", "none"),
                "freeze_params_list": f("list", "none"),
                "lr_mult_list": f("list", "none"),
                "use_sync_bn": f("bool", "none"),
            },
            open=True,
        ),
        # absent: PaddleClas's fallbacks, CE loss and Momentum with a cosine schedule (the defaults below)
        "Loss": Section(fields={"Train": OpList("loss", default=DEFAULT_LOSS), "Eval": OpList("loss", default=DEFAULT_LOSS)}),
        "Optimizer": Section(
            fields={
                "name": f("str", default="Momentum"),
                "weight_decay": f("float", "none"),
                "no_weight_decay_name": f("str", "list", "none"),
                "one_dim_param_no_weight_decay": f("bool", default=False),
                "clip_norm": f("float", "none"),
                "clip_grad": f("float", "none"),  # PaddleClas 2.6: global-norm clipping at this norm
                "lr": _LR,
                "regularizer": Section({"name": f("str", default="L2"), "coeff": f("float", default=0.0)},
                                       fill=False),  # absent = no L2 (AdamW configs use weight_decay)
            },
            # PaddleClas's defaults per optimizer (ppcls/optimizer/optimizer.py)
            by_name={
                "Momentum": {"momentum": f("float", default=0.9), "use_nesterov": f("bool", default=False),
                             "multi_precision": _MULTI_PRECISION},
                "SGD": {"multi_precision": _MULTI_PRECISION},
                "RMSProp": {"momentum": f("float", default=0.0), "rho": f("float", default=0.95),
                            "epsilon": f("float", default=1e-6), "centered": f("bool", default=False)},
                "Adam": {"beta1": f("float", default=0.9), "beta2": f("float", default=0.999),
                         "epsilon": f("float", default=1e-8), "multi_precision": _MULTI_PRECISION},
                "AdamW": {"beta1": f("float", default=0.9), "beta2": f("float", default=0.999),
                          "epsilon": f("float", default=1e-8), "multi_precision": _MULTI_PRECISION},
            },
        ),
        "DataLoader": Section(fill=False, fields={"Train": _loader_split(shuffle=True), "Eval": _loader_split(shuffle=False)}),
        "Infer": Section(fill=False, fields=
            {
                "infer_imgs": f("str", "list", "none", note=_INFER_IMGS_NOTE),
                "batch_size": f("int", default=10, minimum=1),
                "transforms": _OPS,
                "PostProcess": Section(
                    {
                        "name": f("str", default="Topk", choices=("Topk", "ThreshOutput", "MultiLabelThreshOutput",
                                                                    "DistillationPostProcess", "PersonAttribute",
                                                                    "VehicleAttribute", "TableAttribute")),
                        "topk": f("int", default=5, minimum=1),
                        "class_id_map_file": f("str", "none"),
                        # DistillationPostProcess: the wrapped post-process and which model's output it reads
                        "func": f("str", "none", choices=(None, "Topk", "ThreshOutput", "MultiLabelThreshOutput",
                                                          "PersonAttribute", "VehicleAttribute", "TableAttribute")),
                        "model_name": f("str", "none"),
                        "key": refused("an export holds the model's logits only; remove "
                                       "Infer.PostProcess.key", "str", "none", accept=(None, "logits")),
                        # ThreshOutput (binary: label 1 when the class-1 score reaches it) and
                        # MultiLabelThreshOutput; none: each one's PaddleClas default (0.0 and 0.5)
                        "threshold": f("float", "none"),
                        "default_label_index": f("int", default=0),
                        # PersonAttribute / VehicleAttribute / TableAttribute: one attribute's own threshold
                        # (none: `threshold`, whose default is each one's PaddleClas default)
                        **{f"{attribute}_threshold": f("float", "none") for attribute in (
                            "glasses", "hold", "color", "type", "source", "number", "clarity", "obstruction",
                            "angle")},
                        "label_0": f("str", "none"),
                        "label_1": f("str", "none"),
                        # the label file's id/name separator: pcls reads 'id name' split at whitespace
                        "delimiter": refused("pcls reads class_id_map_file lines as 'id name' split at "
                                             "whitespace", "str", "none", accept=(None, " ", "\t")),
                    }
                ),
            }
        ),
        "Metric": Section(fill=False, fields={"Train": OpList("metric"), "Eval": OpList("metric")}),
        "AMP": Section(fill=False, fields=
            {
                "use_amp": f("bool", default=True),
                "scale_loss": f("float", default=1.0),
                "use_dynamic_loss_scaling": f("bool", default=False),
                # none: O2 when use_pure_fp16 (PaddleClas 2.x's key for it), else O1 (resolved in validate)
                "level": f("str", "none", choices=(None, "O1", "O2", "o1", "o2")),
                "use_fp16_test": f("bool", default=False),
                "use_promote": f("bool", default=False),
                "use_pure_fp16": f("bool", default=False),
            }
        ),
        "EMA": Section(fill=False, fields={"decay": f("float", default=0.9999)}),
        "mode": refused("the pcls command (train, eval, export) decides what runs; remove the top-level 'mode' "
                        "key", "str", "none"),
        "Reference": Section(fill=False, fields=
            {
                "group": f("str", "none"),
                "row": f("str", "none"),
                "order": f("int", default=0),
                # the eval metric the documented figure is measured in; the figure itself sits under that key
                "metric": f("str", default="top1", choices=tuple(REFERENCE_METRICS)),
                **{key: f("float", "none") for key in REFERENCE_METRICS},  # documented fractions (0.7859)
                "dataset": f("str", "none"),
                "source": f("str", "none"),
                "gpus": f("int", "none"),
                "batch_size": f("int", "none"),
                "epochs": f("int", "none"),
                "notes": f("str", "none"),
                "documented": f("str", "none"),
                "recipe_group_title": f("str", "none"),
            }
        ),
    },
    optional=False,
)


# bool before int: True is an int to isinstance
_KINDS = ((type(None), "none"), (bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (list, "list"),
          (dict, "dict"))


def _kind_of(value) -> str:
    return next((name for cls, name in _KINDS if isinstance(value, cls)), type(value).__name__)


_noted = set()


def _note(message: str, notes: Optional[list] = None) -> None:
    """Say `message` once per process, or add it to `notes` (a caller that decides whether to say them)."""
    if notes is not None:
        notes.append(message)
    elif message not in _noted:  # once per process: every published config sets these
        _noted.add(message)
        log.info("%s", message)


def _check_field(path: str, field: Field, value, notes: Optional[list] = None):
    if field.refuse is not None:
        if value not in field.accept:
            raise PclsError(f"config key {path}: {value!r} is not supported: {field.refuse}")
        return value
    value = _check_kind(path, field, value)
    if field.minimum is not None and _kind_of(value) in ("int", "float") and value < field.minimum:
        raise PclsError(f"config key {path}: must be at least {field.minimum}, got {value!r}")
    if field.choices is not None and value not in field.choices:
        options = [c for c in field.choices if c is not None]
        hint = closest(str(value), [str(c) for c in options])
        suggestion = f" (did you mean {hint[0]}?)" if hint else ""
        raise PclsError(f"config key {path}: {value!r} is not one of {', '.join(map(str, options))}{suggestion}")
    if field.note and value is not None:
        _note(field.note, notes)
    return value


def _check_kind(path: str, field: Field, value):
    kind = _kind_of(value)
    if "any" in field.kinds or kind in field.kinds:
        return value
    if kind == "int" and "float" in field.kinds:
        return float(value)
    if kind == "str" and value in LITERALS and _kind_of(LITERALS[value]) in field.kinds:
        return LITERALS[value]  # PaddleClas literal-evaluates these: `clip_grad: None` means null
    if kind == "str" and "float" in field.kinds:  # published configs write e.g. "1e-4" or 1.0/255.0 as text
        from pcls.config.expr import parse_number

        number = parse_number(value)
        if number is not None:
            return number
    raise PclsError(f"config key {path}: expected {field.describe()}, got {value!r} ({kind})")


def _check_oplist(path: str, spec: OpList, value):
    if value is None:
        return []
    if not isinstance(value, list):
        raise PclsError(f"config key {path}: expected a list of '- {spec.what.capitalize()}Name: {{params}}' items, "
                        f"got {value!r}")
    for index, item in enumerate(value):
        if isinstance(item, str):
            value[index] = item = {item: None}
        if not isinstance(item, dict) or len(item) != 1:
            raise PclsError(f"config key {path}[{index}]: each {spec.what} must be a single-key map "
                            f"'- Name: {{params}}', got {item!r}")
        (name, params), = item.items()
        if params is not None and not isinstance(params, dict):
            raise PclsError(f"config key {path}[{index}].{name}: parameters must be a mapping, got {params!r}")
    return value


def _validate_section(path: str, spec: Section, value: Optional[dict], notes: Optional[list] = None) -> dict:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise PclsError(f"config key {path}: expected a mapping, got {value!r}")
    result = {}
    fields = spec.fields_for(value)
    for key, item in value.items():
        key_path = f"{path}.{key}" if path else str(key)
        child = fields.get(key)
        if child is None:
            if spec.open:
                result[key] = item
                continue
            if spec.by_name and any(key in variant for variant in spec.by_name.values()):
                # another component's parameter (published AdamW configs carry Momentum's `momentum`):
                # PaddleClas drops it too (its optimizers take **kwargs); said once, and dropped
                _note(f"{key_path} is not a parameter of {path}.name {value.get('name', fields['name'].default)}: "
                      f"ignored (as PaddleClas does)", notes)
                continue
            hint = closest(str(key), fields)
            suggestion = f" (did you mean {path + '.' if path else ''}{hint[0]}?)" if hint else ""
            known = ", ".join(k for k in fields if not k.startswith("_"))
            which = f" (for {path}.name {value.get('name', fields['name'].default)})" if spec.by_name else ""
            raise PclsError(f"unknown config key {key_path}{suggestion}; valid keys here{which}: {known}")
        result[key] = _validate_value(key_path, child, item, notes)
    for key, child in fields.items():
        if key in result:
            continue
        if isinstance(child, Field):
            if spec.open and child.default is None:
                continue  # open sections (Arch) pass their keys on as kwargs: add no None noise
            if child.default is REQUIRED:
                raise PclsError(f"config key {path + '.' if path else ''}{key} is required")
            result[key] = _copy(child.default)
        elif isinstance(child, Section) and child.fill:
            result[key] = _validate_section(f"{path}.{key}" if path else key, child, {}, notes)
        elif isinstance(child, OpList) and child.default is not None:
            result[key] = _copy(child.default)
    return result


def _validate_value(path: str, spec, value, notes: Optional[list]):
    if isinstance(spec, Section):
        return _validate_section(path, spec, {} if value is None and spec.optional else value, notes)
    if isinstance(spec, OpList):
        return _check_oplist(path, spec, value)
    return _check_field(path, spec, value, notes)


def _copy(value):
    import copy

    return copy.deepcopy(value)


def default_of(path: str, name: str = None):
    """The schema's default for a dotted key path, e.g. default_of("Arch.class_num") -> 1000: for code that
    meets a section the schema has not filled (a distillation member, an API caller's partial dict).
    `name`: the component whose defaults to use in a section keyed by name (default_of("Optimizer.epsilon",
    "RMSProp") -> 1e-6)."""
    spec = SCHEMA
    parts = path.split(".")
    for part in parts[:-1]:
        spec = spec.fields[part]
    return _copy(spec.fields_for({"name": name} if name else {})[parts[-1]].default)


def validate_part(path: str, value) -> dict:
    """One section (e.g. "Optimizer.lr") checked and completed with its defaults: for library functions that
    take a section on its own (pcls.optim.build_schedule(...)), so their defaults stay the schema's."""
    spec = SCHEMA
    for part in path.split("."):
        spec = spec.fields[part]
    return _validate_section(path, spec, value)


def validate(config: dict, *, notes: bool = True) -> dict:
    """Check `config` against the schema; return a copy with every declared default filled. `notes`: log the
    notes on keys other tools read (once per process); off for a listing, which is not a run."""
    if not isinstance(config, dict):
        raise PclsError(f"a config must be a mapping of sections (Global, Arch, ...), got {type(config).__name__}")
    if "base_config_file" in config:
        raise PclsError(f"this is a search file of PaddleClas's hyper-parameter search tool (base_config_file: "
                        f"{config['base_config_file']}), not a training config: train its base config instead")
    said: list = []
    validated = _validate_section("", SCHEMA, _global_class_num(config), said)
    arch = validated.get("Arch")
    if arch is not None:
        _check_arch_name("Arch.name", arch.get("name"))
    if arch is not None and arch.get("name") == "DistillationModel":
        _validate_distillation_models(arch)
    _validate_multilabel(validated)
    _validate_reference_metric(validated)
    _validate_cpu_processes(validated["Global"]["cpu_processes"])
    for message in said if notes else ():
        _note(message)
    optimizer, clip = validated["Optimizer"], validated["Global"]["clip_grad_norm"]
    if clip and not optimizer["clip_norm"]:  # Global.clip_grad_norm (PaddleClas 2.x) clips like Optimizer.clip_norm
        optimizer["clip_norm"] = clip
    amp = validated.get("AMP")  # AMP.level unset: O2 when use_pure_fp16 (PaddleClas 2.x), else O1
    if amp is not None and amp["level"] is None:
        amp["level"] = "O2" if amp["use_pure_fp16"] else "O1"
    if amp is not None:
        amp["level"] = amp["level"].upper()
    return validated


MULTILABEL_LOSSES = ("MultiLabelLoss", "MultiLabelAsymmetricLoss", "DistillationMultiLabelLoss")
# teacher-student terms read no labels: they fit single- and multi-label runs alike
LABEL_FREE_LOSSES = ("DistillationCELoss", "DistillationKLDivLoss", "DistillationJSDivLoss", "DistillationDMLLoss",
                     "DistillationDistanceLoss", "DistillationPairLoss", "DistillationRKDLoss", "AFDLoss")
# multi-label metric name -> its result key (pcls.engine.metrics computes them)
MULTILABEL_METRICS = {"HammingDistance": "hamming_distance", "AccuracyScore": "accuracy_score", "mAP": "mAP",
                      "ATTRMetric": "label_mA"}


def _validate_cpu_processes(value) -> None:
    if isinstance(value, str) and value != "auto":  # an int below 1 was refused by the field's minimum
        raise PclsError(f"config key Global.cpu_processes: {value!r} is not a process count; use auto or a whole "
                        "number >= 1 (1: one process)")


def _names(entries) -> list:
    return [next(iter(entry)) for entry in entries or []]


def _validate_multilabel(cfg: dict) -> None:
    """Global.use_multilabel and the sections it needs agree: a multi-label loss, metrics and dataset, and
    none of them without the flag (each mismatch is one line naming the key)."""
    on = bool(cfg["Global"]["use_multilabel"])
    for split in ("Train", "Eval"):
        losses = _names(cfg["Loss"][split])
        wrong = [n for n in losses if n not in LABEL_FREE_LOSSES and (n in MULTILABEL_LOSSES) != on]
        if wrong:
            need = f"one of {', '.join(MULTILABEL_LOSSES)}" if on else "a single-label loss (e.g. CELoss)"
            raise PclsError(f"config key Loss.{split}: {wrong[0]} with Global.use_multilabel: {on}; use {need}")
        metrics = _names((cfg.get("Metric") or {}).get(split))
        wrong = [n for n in metrics if (n in MULTILABEL_METRICS) != on]
        if wrong:
            need = ", ".join(MULTILABEL_METRICS) if on else "TopkAcc"
            raise PclsError(f"config key Metric.{split}: {wrong[0]} with Global.use_multilabel: {on}; use {need}")
        dataset = ((cfg.get("DataLoader") or {}).get(split) or {}).get("dataset") or {}
        if dataset and (dataset.get("name") == "MultiLabelDataset") != on:
            need = "MultiLabelDataset" if on else "a single-label dataset (ImageNetDataset)"
            raise PclsError(f"config key DataLoader.{split}.dataset.name: {dataset.get('name')} with "
                            f"Global.use_multilabel: {on}; use {need}")


def _validate_reference_metric(cfg: dict) -> None:
    """Reference.metric is a key the run's evaluation gives: tpr needs TprAtFpr in Metric.Eval, label_mA
    ATTRMetric; top-k keys come from any single-label run."""
    metric = (cfg.get("Reference") or {}).get("metric")
    if metric is None:
        return
    maker = REFERENCE_METRICS[metric]
    made = not cfg["Global"]["use_multilabel"] if maker == "TopkAcc" \
        else maker in _names((cfg.get("Metric") or {}).get("Eval"))
    if not made:
        raise PclsError(f"config key Reference.metric: {metric} comes from the metric {maker}, which Metric.Eval "
                        f"does not list; add it there or name the metric the documented figure is measured in")


def _check_arch_name(path: str, name) -> None:
    """An unknown backbone fails with the rest of the config (did-you-mean), not at build time."""
    from pcls.config.arch_names import known_arch_names
    from pcls.errors import did_you_mean

    known = known_arch_names()
    if name not in known:
        raise PclsError(f"config key {path}: unknown backbone '{name}'{did_you_mean(str(name), known)}; "
                        f"see 'pcls zoo list' (or register your own with PCLS_PLUGINS)")


def _global_class_num(config: dict) -> dict:
    """PaddleClas's rule, applied before defaults are filled: `Global.class_num` sets `Arch.class_num` when
    Arch does not set it; when both are set, Arch's wins (and the Global value is reported as unused)."""
    g, arch = config.get("Global"), config.get("Arch")
    if not isinstance(g, dict) or g.get("class_num") is None or not isinstance(arch, dict):
        return config
    if arch.get("class_num") is None:
        config = {**config, "Arch": {**arch, "class_num": g["class_num"]}}
    elif arch["class_num"] != g["class_num"]:
        log.warning("Global.class_num %s is ignored: Arch.class_num %s is set (PaddleClas's rule)",
                    g["class_num"], arch["class_num"])
    return config


def _validate_distillation_models(arch: dict) -> None:
    from pcls.config.members import member_sections, student_label

    for index, (label, backbone) in enumerate(member_sections(arch)):
        backbone_path = f"Arch.models[{index}].{label}"
        if backbone["name"] != "AttentionModel":  # AFD's backbone + connector (pcls.distill.connectors)
            _check_arch_name(f"{backbone_path}.name", backbone["name"])
        if "class_num" in backbone:
            _check_field(f"{backbone_path}.class_num", _BACKBONE_ARGS["class_num"], backbone["class_num"])
    student_label(arch)  # at least two; Arch.infer_model_name names one of them; freeze_params_list fits
