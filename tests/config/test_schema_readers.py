"""Every schema field is read by code, or refused in one line, or noted: no key passes silently.

Traced, not searched for: a validated config records the dotted path of every key code reads, over real work
(a tiny training run with AMP and EMA, an evaluation, `pcls export -c`, a distillation run and its export
request, every optimizer, schedule, sampler and dataset builder, the recipe listing and report). A field that
none of that reads is either in _NOT_READ_HERE with the reason, or it fails the test. Handing a section's
items on (`f(**section)`, `dict(section)`) counts as reading all of them: Arch's backbone keyword arguments,
an optimizer's parameters and a post-process's options are read that way.
"""

import subprocess
import sys

import pytest

from pcls.config.schema import SCHEMA, Field, OpList, Section, default_of, validate
from pcls.errors import PclsError


def _fields(section, path=""):
    variants = [section.fields] + list((section.by_name or {}).values())  # per-component fields too
    for fields in variants:
        for key, spec in fields.items():
            where = f"{path}.{key}" if path else key
            yield where, key, spec
            if isinstance(spec, Section):
                yield from _fields(spec, where)


class _RecordingDict(dict):
    """A validated config section that records the dotted path of every key code reads (indexing, get, pop,
    or handing the section's items on, e.g. as an optimizer's keyword arguments). Serialising it (json,
    yaml), copying it or validating it is not reading."""

    path = ""
    reads: set = set()

    def _mark(self, key):
        self.reads.add(f"{self.path}.{key}" if self.path else str(key))

    def __getitem__(self, key):
        self._mark(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._mark(key)
        return super().get(key, default)

    def pop(self, key, *default):
        self._mark(key)
        return super().pop(key, *default)

    def _handed_on(self):
        caller = sys._getframe(2).f_globals.get("__name__", "")
        if not caller.startswith(("json", "yaml", "copy", "pcls.config.schema")):
            for key in super().keys():
                self._mark(key)

    def items(self):  # {k: v for k, v in section.items()}
        self._handed_on()
        return super().items()

    def keys(self):  # f(**section), dict(section)
        self._handed_on()
        return super().keys()

    def __iter__(self):  # makes **section and dict(section) go through keys()
        return iter(super().keys())


# fields the traced work does not read, and why that is right; every other field must show up in the trace
_NOT_READ_HERE = {
    **{f"DataLoader.{split}.loader.use_shared_memory": "PaddleClas's switch for how workers hand batches over; "
       "pcls's workers send each batch through a pipe, so either value runs the same (pcls/data/loader.py)"
       for split in ("Train", "Eval")},
    "Infer.batch_size": "the batch of PaddleClas's infer script; pcls predict takes --batch-size (every published "
                        "config sets it, so a note would be a line on every run)",
    "Arch.use_sync_bn": "read only by a multi-process run (pcls/engine/components.py, world > 1), which a test "
                        "process does not start",
}


def _drive(tmp_path):
    """The real work whose reads are traced: every part of pcls that takes a validated config section."""
    import paddle
    import yaml
    from typer.testing import CliRunner

    import pcls
    from pcls.cli import app
    from pcls.data.loader import build_dataloader
    from pcls.data.sampler import build_sampler
    from pcls.deploy.export import request_from_config
    from pcls.engine.backbone import build_backbone
    from pcls.optim import build_optimizer, build_schedule
    from pcls.recipes import recipe_summary
    from pcls.recipes.report import setting_deviations, trick_tables, write_result
    from tests.distill.conftest import distill_config
    from tests.engine import tinynet  # noqa: F401  (registers TinyNet)
    from tests.engine.conftest import tiny_config, write_colour_dataset

    data = write_colour_dataset(tmp_path / "data", train_per_class=4, val_per_class=2)
    labels = tmp_path / "labels.txt"
    labels.write_text("0 red\n1 green\n2 blue\n3 yellow\n")
    cfg = tiny_config(data, tmp_path / "out", epochs=1)
    cfg.update(AMP={"use_amp": True}, EMA={"decay": 0.9},
               Infer={"transforms": cfg["DataLoader"]["Eval"]["dataset"]["transform_ops"],
                      "PostProcess": {"name": "Topk", "topk": 2, "class_id_map_file": str(labels)}})
    summary = pcls.train(cfg, log=lambda message: None)
    pcls.evaluate(cfg, weights=summary["run_dir"], out_dir=tmp_path / "eval")
    config_file = tmp_path / "tiny.yaml"  # `pcls export -c`: the output folder is Global.save_inference_dir
    config_file.write_text(yaml.safe_dump(cfg))
    exported = CliRunner().invoke(app, ["export", "-c", str(config_file), "--weights", summary["run_dir"]])
    assert exported.exit_code == 0, exported.output

    distill = distill_config(data, data["train"], tmp_path / "distill", False, epochs=1, batch_size=8)
    distill["Arch"]["freeze_params_list"] = [True, False]
    pcls.train(distill, log=lambda message: None)
    distill["Infer"] = {"PostProcess": {"name": "DistillationPostProcess", "func": "Topk", "model_name": "Student"}}
    request_from_config(validate(distill), tmp_path / "distill-export")

    build_backbone(validate({"Arch": {"name": "TinyNet", "class_num": 4, "lr_mult_list": [1.0, 0.5]}})["Arch"])

    for split in ("Train", "Eval"):  # every sampler on both splits (the run built the default one)
        for name, extra in (("BatchSampler", {}), ("RASampler", {"num_repeats": 2}),
                            ("MultiScaleSampler", {"scales": [[16, 16], [24, 24]], "first_bs": 4, "is_training": True,
                                                   "divided_factor": 8})):
            build_sampler({"name": name, "batch_size": 4, **extra}, 256, train=split == "Train")
    images = tmp_path / "images.txt"  # CustomLabelDataset: an image list, labels made by a transform
    images.write_text("".join(f"{data['root']}/train_0_{k}.png\n" for k in range(4)))
    rotations = {"dataset": {"name": "CustomLabelDataset", "image_root": "/", "sample_list_path": str(images),
                             "label_key": "random_rot90_orientation",
                             "transform_ops": [{"DecodeImage": {}}, {"RandomRot90": {}}, {"ResizeImage": {"size": 8}}]},
                 "sampler": {"batch_size": 2}}
    custom = validate({**cfg, "DataLoader": {"Train": rotations, "Eval": rotations}})
    for split in ("Train", "Eval"):
        build_dataloader(custom["DataLoader"][split], train=split == "Train")

    params = list(paddle.nn.Linear(2, 2).named_parameters())
    optimizer_spec = SCHEMA.fields["Optimizer"]
    for name in optimizer_spec.by_name:
        build_optimizer({"name": name}, params, 0.1)
    required = {"Piecewise": {"decay_epochs": [1], "values": [0.1, 0.01]}, "Step": {"step_size": 1},
                "MultiStepDecay": {"milestones": [1]}, "Exponential": {"gamma": 0.9}}
    for name in optimizer_spec.fields["lr"].by_name:
        build_schedule({"name": name, **required.get(name, {})}, epochs=2, steps_per_epoch=2)

    # Reference: what `pcls recipes list` shows, a run's result record and the tricks table
    recipe = "flowers102-finetune"
    recipe_summary(recipe)
    reference = pcls.load_config(recipe, is_recipe=True)
    setting_deviations(reference, world_size=1, epochs_run=1)
    write_result(tmp_path / "recipe-run", reference, recipe=recipe, metrics={"top1": 0.5, "top5": 0.9}, world_size=1,
                 epochs_run=1, device="cpu")
    for recipe in ("pulc-person_exists", "pulc-person_attribute"):  # documented in tpr, label_mA
        write_result(tmp_path / recipe, pcls.load_config(recipe, is_recipe=True), recipe=recipe, metrics={},
                     world_size=1, epochs_run=1, device="cpu")
    trick_tables(tmp_path / "no-runs")


def _traced_reads(tmp_path) -> set:
    """The dotted paths of the schema fields that _drive reads."""
    import yaml

    import pcls.config.schema as schema

    reads = set()
    validate_section = schema._validate_section

    def recording(path, spec, value, notes=None):
        section = _RecordingDict(validate_section(path, spec, value, notes))
        section.path = path
        return section

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)  # what pcls writes by default (./inference) stays here
        patch.setattr(_RecordingDict, "reads", reads)
        patch.setattr(schema, "_validate_section", recording)
        patch.setitem(yaml.SafeDumper.yaml_representers, _RecordingDict,
                      lambda dumper, data: dumper.represent_dict(dict(dict.items(data))))
        _drive(tmp_path)
    return reads


def _unread(reads: set) -> list:
    """Schema fields that are neither read in `reads`, refused, noted nor in _NOT_READ_HERE."""
    unread = []
    for where, key, spec in _fields(SCHEMA):
        if (isinstance(spec, Field) and not (spec.refuse or spec.note) and where not in reads
                and where not in _NOT_READ_HERE and where not in unread):
            unread.append(where)
    return unread


def test_every_schema_field_is_read_during_real_work(tmp_path):
    reads = _traced_reads(tmp_path)
    assert {"Optimizer.epsilon", "Optimizer.lr.milestones", "DataLoader.Eval.sampler.num_repeats",
            "Arch.models", "Reference.top1"} <= reads  # the variants and the optional sections were traced
    unread = _unread(reads)
    assert not unread, f"schema fields no code read (read them, or refuse/note them in the schema): {unread}"
    now_read = sorted(set(_NOT_READ_HERE) & reads)
    assert not now_read, f"allow-listed fields that are read now: take them off _NOT_READ_HERE: {now_read}"


def test_the_traced_check_would_catch_an_unread_field(tmp_path, monkeypatch):
    sampler = SCHEMA.fields["DataLoader"].fields["Train"].fields["sampler"]
    monkeypatch.setitem(SCHEMA.fields["Global"].fields, "a_key_nobody_reads", Field(("int",), 3))
    monkeypatch.setitem(sampler.fields, "another_one", Field(("bool",), False))
    monkeypatch.setitem(SCHEMA.fields["Reference"].fields, "a_third", Field(("str", "none")))
    assert _unread(_traced_reads(tmp_path)) == ["Global.a_key_nobody_reads", "DataLoader.Train.sampler.another_one",
                                                "Reference.a_third"]


# -- refusals: one line naming the key and why ----------------------------------------------------------
def _base(**sections):
    cfg = {"Global": {"epochs": 1}, "Arch": {"name": "ResNet18"}}
    for name, value in sections.items():
        cfg.setdefault(name, {}).update(value) if isinstance(value, dict) else cfg.__setitem__(name, value)
    return cfg


@pytest.mark.parametrize("section, key, value, words", [
    ("Global", "eval_mode", "retrieval", "classification models only"),
    ("Global", "feature_normalize", True, "retrieval"),
    ("Global", "distributed", True, "--nproc"),
    ("Optimizer", "lr", {"name": "Cosine", "learning_rate": 0.1, "last_epoch": 5}, "--resume"),
])
def test_refused_keys_fail_in_one_line_naming_key_and_reason(section, key, value, words):
    with pytest.raises(PclsError) as err:
        validate(_base(**{section: {key: value}}))
    message = str(err.value)
    assert "\n" not in message and words in message
    assert f"{section}.{key}" in message


def test_top_level_mode_is_refused():
    with pytest.raises(PclsError, match=r"config key mode: 'train' is not supported: the pcls command"):
        validate({**_base(), "mode": "train"})


@pytest.mark.parametrize("section, key, value", [
    ("Global", "use_dali", False), ("Global", "eval_mode", "classification"), ("Global", "feature_normalize", False),
    ("Global", "train_mode", None),
])
def test_harmless_values_of_refused_keys_pass(section, key, value):
    assert validate(_base(**{section: {key: value}}))[section][key] == value


@pytest.mark.parametrize("path, value, words", [
    ("Global.image_channel", 1, "not one of 3, 4"),
    ("Global.train_mode", "efficientnetv3", "did you mean efficientnetv2"),  # the one progressive mode
    ("DataLoader.Train.sampler.name", "MultiScaleSamplr", "did you mean MultiScaleSampler"),
    ("Infer.PostProcess.name", "Threshoutput", "did you mean ThreshOutput"),
])
def test_values_outside_the_choices_are_refused(path, value, words):
    cfg = _base(DataLoader={"Train": {"dataset": {"name": "ImageNetDataset"}}})
    node = cfg
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    with pytest.raises(PclsError, match=words):
        validate(cfg)


def test_infer_imgs_is_noted_once(caplog, monkeypatch):
    import logging

    import pcls.config.schema as schema

    monkeypatch.setattr(schema, "_noted", set())  # another test may have noted it in this process
    with caplog.at_level(logging.INFO, logger="pcls.config.schema"):
        validate(_base(Infer={"infer_imgs": "docs/images/demo.jpg"}))
    assert any("pcls predict IMAGES" in r.message for r in caplog.records)


# -- Global.class_num, the one place it is resolved ----------------------------------------------------
def test_global_class_num_fills_arch_class_num():
    cfg = validate(_base(Global={"class_num": 102}))
    assert cfg["Arch"]["class_num"] == 102


def test_arch_class_num_wins_over_global(caplog):
    cfg = validate({"Global": {"class_num": 102}, "Arch": {"name": "ResNet18", "class_num": 10}})
    assert cfg["Arch"]["class_num"] == 10
    assert any("Global.class_num 102 is ignored" in r.message for r in caplog.records)


def test_each_optimizer_and_schedule_gets_its_own_defaults():
    rmsprop = validate(_base(Optimizer={"name": "RMSProp"}))["Optimizer"]
    assert (rmsprop["momentum"], rmsprop["epsilon"], rmsprop["rho"]) == (0.0, 1e-6, 0.95)  # PaddleClas's
    momentum = validate(_base())["Optimizer"]
    assert momentum["momentum"] == 0.9 and "beta1" not in momentum and "epsilon" not in momentum
    assert validate(_base(Optimizer={"name": "AdamW"}))["Optimizer"]["epsilon"] == 1e-8
    with pytest.raises(PclsError, match=r"unknown config key Optimizer.momentun \(did you mean Optimizer.momentum\?\)"
                                        r"; valid keys here \(for Optimizer.name Momentum\)"):
        validate(_base(Optimizer={"momentun": 0.8}))
    # another optimizer's parameter, as published AdamW configs carry `momentum`: dropped, as PaddleClas does
    assert "momentum" not in validate(_base(Optimizer={"name": "AdamW", "momentum": 0.9}))["Optimizer"]
    warm = validate(_base(Optimizer={"lr": {"name": "CosineWarmup"}}))["Optimizer"]["lr"]
    assert warm["warmup_epoch"] == 5 and "gamma" not in warm
    with pytest.raises(PclsError, match="Optimizer.lr.milestones is required"):
        validate(_base(Optimizer={"lr": {"name": "MultiStepDecay"}}))
    assert default_of("Optimizer.epsilon", "RMSProp") == 1e-6


def test_global_clip_grad_norm_clips_like_optimizer_clip_norm():
    assert validate(_base(Global={"clip_grad_norm": 5.0}))["Optimizer"]["clip_norm"] == 5.0
    both = validate(_base(Global={"clip_grad_norm": 5.0}, Optimizer={"clip_norm": 1.0}))
    assert both["Optimizer"]["clip_norm"] == 1.0  # the optimizer's own setting wins


@pytest.mark.parametrize("key", ["update_freq", "save_interval", "eval_interval", "print_batch_step", "max_iters"])
def test_counts_the_engine_divides_by_must_be_at_least_one(key):
    with pytest.raises(PclsError, match=f"Global.{key}: must be at least 1, got 0"):
        validate(_base(Global={key: 0}))


def test_defaults_come_from_the_schema():
    cfg = validate(_base())
    assert cfg["Arch"]["class_num"] == default_of("Arch.class_num")
    assert cfg["Loss"]["Train"] == cfg["Loss"]["Eval"] == [{"CELoss": {"weight": 1.0}}]
    assert cfg["Optimizer"]["name"] == default_of("Optimizer.name")
    assert isinstance(SCHEMA.fields["Loss"].fields["Train"], OpList)


# -- Arch.name checked with the rest of the config, without paddle -------------------------------------
def test_unknown_backbone_fails_at_validation_with_did_you_mean():
    with pytest.raises(PclsError, match=r"Arch.name: unknown backbone 'ResNet5O_vd' \(did you mean ResNet50_vd\?\)"):
        validate({"Arch": {"name": "ResNet5O_vd"}})


def test_unknown_distilled_member_fails_at_validation():
    arch = {"name": "DistillationModel", "models": [{"Teacher": {"name": "ResNet50_vd"}},
                                                     {"Student": {"name": "MobileNetV3_larg_x1_0"}}]}
    with pytest.raises(PclsError, match=r"Arch.models\[1\].Student.name: unknown backbone"):
        validate({"Arch": arch})


def test_print_config_refuses_an_unknown_backbone_without_importing_paddle(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("Global: {epochs: 1}\nArch: {name: ResNet5O_vd}\n")
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom pcls.cli import app\n"
            f"r = CliRunner().invoke(app, ['train', '-c', {str(cfg)!r}, '--print-config'])\n"
            "print(r.exit_code, 'paddle' in sys.modules)\nprint(r.output)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    status, text = out.split("\n", 1)
    assert status == "2 False"
    assert "did you mean ResNet50_vd" in text


def test_known_names_match_the_registry():
    from pcls.arch.registry import list_models
    from pcls.config.arch_names import known_arch_names

    assert set(list_models()) <= known_arch_names()


# -- the documented PaddleClas 2.x layout -------------------------------------------------------------
def _schema_doc_blocks():
    import re

    import yaml

    from tests.reference import REFERENCE_DIR

    text = (REFERENCE_DIR / "config_schema.md").read_text(encoding="utf-8")
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def test_every_key_of_the_documented_layout_is_accepted():
    classification, distillation = _schema_doc_blocks()
    cfg = validate(classification)
    assert cfg["Arch"]["lr_mult_list"] == [0.1, 0.1, 0.2, 0.2, 0.3]
    merged = {**classification, "Arch": distillation["Arch"], "Loss": distillation["Loss"],
              "Metric": distillation["Metric"]}
    assert validate(merged)["Arch"]["infer_model_name"] == "Student"


@pytest.mark.parametrize("key, value", [
    ("to_static", False), ("use_dali", False), ("update_freq", 2), ("eval_mode", "classification"),
    ("use_multilabel", False), ("infer_imgs", "docs/images/demo.jpg"), ("class_num", 102), ("start_eval_epoch", 3),
])
def test_other_global_keys_the_layout_mentions_are_accepted(key, value):
    classification, _ = _schema_doc_blocks()
    classification["Global"][key] = value
    assert validate(classification)["Global"][key] == value
