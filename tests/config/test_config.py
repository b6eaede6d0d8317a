"""The config system: PaddleClas 2.x configs load unchanged; overrides; inheritance; every error message."""

from pathlib import Path

import pytest
import yaml

from pcls.config import apply_overrides, dump_config, load_config, parse_override
from pcls.config.expr import parse_number
from pcls.errors import PclsError

CONFIGS = Path(__file__).parent / "configs"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_imagenet_config_loads_unchanged_with_defaults_filled():
    cfg = load_config(CONFIGS / "ResNet50_vd_imagenet.yaml")
    assert cfg["Arch"] == {"name": "ResNet50_vd", "class_num": 1000, "pretrained": False}
    assert cfg["Global"]["epochs"] == 200
    assert cfg["Global"]["seed"] is None and cfg["Global"]["update_freq"] == 1  # defaults filled
    ops = cfg["DataLoader"]["Train"]["dataset"]["transform_ops"]
    assert [next(iter(op)) for op in ops] == ["DecodeImage", "RandCropImage", "RandFlipImage", "NormalizeImage"]
    assert ops[3]["NormalizeImage"]["scale"] == "1.0/255.0"  # operator params are the operator's business
    assert cfg["DataLoader"]["Train"]["dataset"]["batch_transform_ops"] == [{"MixupOperator": {"alpha": 0.2}}]
    assert cfg["Optimizer"]["regularizer"] == {"name": "L2", "coeff": 7e-05}
    assert cfg["Infer"]["transforms"][-1] == {"ToCHWImage": None}
    assert "AMP" not in cfg and "EMA" not in cfg  # absent optional sections stay absent (= not used)


def test_finetune_config_keeps_lr_mult_list_and_pretrained_model():
    cfg = load_config(CONFIGS / "ResNet50_vd_ssld_finetune.yaml")
    assert cfg["Arch"]["lr_mult_list"] == [0.5, 0.5, 0.6, 0.6, 0.8]
    assert cfg["Arch"]["class_num"] == 102
    assert cfg["Global"]["pretrained_model"] == "./pretrained/ResNet50_vd_ssld_pretrained"
    assert cfg["Optimizer"]["regularizer"]["coeff"] == pytest.approx(1e-6)


def test_distillation_config_with_arch_models_and_anchors():
    cfg = load_config(CONFIGS / "R50_vd_distill_MV3_large_x1_0.yaml")
    models = cfg["Arch"]["models"]
    assert [next(iter(m)) for m in models] == ["Teacher", "Student"]
    assert models[0]["Teacher"]["class_num"] == 102 and models[1]["Student"]["class_num"] == 102  # alias resolved
    assert cfg["Arch"]["freeze_params_list"] == [True, False]
    assert cfg["Arch"]["pretrained_list"] is None  # empty value in the published config
    assert cfg["Loss"]["Train"][0]["DistillationCELoss"]["model_name_pairs"] == [["Student", "Teacher"]]


def test_overrides_are_parsed_as_yaml_and_applied():
    cfg = load_config(
        CONFIGS / "ResNet50_vd_imagenet.yaml",
        [
            "Global.epochs=10",
            "Arch.class_num=102",
            "DataLoader.Train.sampler.batch_size=32",
            "Global.pretrained_model=null",
            "Global.use_visualdl=true",
            "Arch.lr_mult_list=[0.1, 0.1, 0.2, 0.2, 0.3]",
            "DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=192",
            "Optimizer.lr.learning_rate=1e-3",
        ],
    )
    assert cfg["Global"]["epochs"] == 10
    assert cfg["Arch"]["class_num"] == 102
    assert cfg["DataLoader"]["Train"]["sampler"]["batch_size"] == 32
    assert cfg["Global"]["pretrained_model"] is None
    assert cfg["Global"]["use_visualdl"] is True
    assert cfg["Arch"]["lr_mult_list"] == [0.1, 0.1, 0.2, 0.2, 0.3]
    assert cfg["DataLoader"]["Train"]["dataset"]["transform_ops"][1] == {"RandCropImage": {"size": 192}}
    assert cfg["Optimizer"]["lr"]["learning_rate"] == pytest.approx(1e-3)  # YAML 1.1 reads 1e-3 as text


def test_parse_override_values():
    assert parse_override("A.b=3") == (["A", "b"], 3)
    assert parse_override("A.b=3.5") == (["A", "b"], 3.5)
    assert parse_override("A.b=False") == (["A", "b"], False)
    assert parse_override("A.b=[1, 2]") == (["A", "b"], [1, 2])
    assert parse_override("A.b=") == (["A", "b"], None)
    assert parse_override("A.b=a=b") == (["A", "b"], "a=b")


def test_base_inheritance_merges_sections_and_replaces_lists(tmp_path):
    write(tmp_path, "base.yaml", "Global: {epochs: 5, seed: 1}\nArch: {name: ResNet18, class_num: 10}\n"
          "Metric: {Eval: [{TopkAcc: {topk: [1, 5]}}]}\n")
    child = write(tmp_path, "child.yaml", "_base_: base.yaml\nGlobal: {epochs: 7}\n"
                  "Metric: {Eval: [{TopkAcc: {topk: [1]}}]}\n")
    cfg = load_config(child)
    assert cfg["Global"]["epochs"] == 7 and cfg["Global"]["seed"] == 1
    assert cfg["Arch"]["name"] == "ResNet18"
    assert cfg["Metric"]["Eval"] == [{"TopkAcc": {"topk": [1]}}]


def test_base_loop_is_an_error(tmp_path):
    write(tmp_path, "a.yaml", "_base_: b.yaml\n")
    write(tmp_path, "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(PclsError, match="loops back"):
        load_config(tmp_path / "a.yaml")


def test_dump_config_round_trips():
    cfg = load_config(CONFIGS / "ResNet50_vd_ssld_finetune.yaml")
    again = yaml.safe_load(dump_config(cfg))
    cfg.pop("_source")
    assert again == cfg


def test_string_numbers_in_number_fields(tmp_path):
    path = write(tmp_path, "c.yaml", "Optimizer: {lr: {learning_rate: '0.1/8'}, regularizer: {coeff: '1e-4'}}\n")
    cfg = load_config(path)
    assert cfg["Optimizer"]["lr"]["learning_rate"] == pytest.approx(0.0125)
    assert cfg["Optimizer"]["regularizer"]["coeff"] == pytest.approx(1e-4)


@pytest.mark.parametrize(
    "text, value",
    [("1.0/255.0", 1 / 255), ("1e-4", 1e-4), ("-2*3", -6.0), ("(1+2)/4", 0.75), ("2**-3", 0.125),
     ("2**1000", 2.0 ** 1000)],
)
def test_parse_number_accepts_arithmetic(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["__import__('os')", "abc", "[1]", "", "1 if 1 else 2"])  # (non-finite: test_expr_limits)
def test_parse_number_refuses_anything_else(text):
    assert parse_number(text) is None


# --- error messages --------------------------------------------------------------------------------
def error_of(*args, **kwargs) -> str:
    with pytest.raises(PclsError) as info:
        load_config(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message  # one line
    return message


def test_unknown_key_names_full_path_and_closest_key():
    message = error_of(CONFIGS / "ResNet50_vd_imagenet.yaml", ["DataLoader.Train.sampler.batchsize=8"])
    assert "DataLoader.Train.sampler.batchsize" in message
    assert "did you mean DataLoader.Train.sampler.batch_size?" in message


def test_unknown_top_level_section(tmp_path):
    message = error_of(write(tmp_path, "c.yaml", "Globall: {epochs: 3}\n"))
    assert "unknown config key Globall" in message and "did you mean Global?" in message


def test_wrong_type_names_path_value_and_expected_type():
    message = error_of(CONFIGS / "ResNet50_vd_imagenet.yaml", ["Global.epochs=ten"])
    assert message == "config key Global.epochs: expected an integer, got 'ten' (str)"
    message = error_of(CONFIGS / "ResNet50_vd_imagenet.yaml", ["Global.use_visualdl=3"])
    assert "Global.use_visualdl" in message and "true/false" in message and "3" in message


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert error_of(missing) == f"config file not found: {missing}"


def test_missing_base_names_the_file(tmp_path):
    path = write(tmp_path, "c.yaml", "_base_: other.yaml\n")
    assert "_base_ file not found: other.yaml" in error_of(path)


def test_unknown_recipe_suggests_closest():
    with pytest.raises(PclsError, match="unknown recipe 'dem'"):
        load_config("dem", is_recipe=True)


def test_bad_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "c.yaml", "Global:\n  epochs: [1, 2\n  seed: 3\n")
    message = error_of(path)
    assert str(path) in message and "not valid YAML" in message


def test_operator_list_shape_is_checked(tmp_path):
    path = write(tmp_path, "c.yaml", "DataLoader: {Train: {dataset: {transform_ops: [{A: 1, B: 2}]}}}\n")
    assert "DataLoader.Train.dataset.transform_ops[0]" in error_of(path)


def test_distillation_models_need_a_backbone_name(tmp_path):
    path = write(tmp_path, "c.yaml", "Arch: {name: DistillationModel, models: [{Teacher: {class_num: 3}}]}\n")
    assert "Arch.models[0].Teacher.name is required" in error_of(path)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("Global.epochs", "expected KEY=VALUE"),
        ("=3", "dotted path"),
        ("Global..epochs=3", "dotted path"),
        ("Global.epochs=[1", "not valid YAML"),
        ("Global.epochs.deeper=1", "is a value, not a section"),
        ("DataLoader.Train.dataset.transform_ops.9.X=1", "out of range"),
        ("DataLoader.Train.dataset.transform_ops.first=1", "use an index"),
    ],
)
def test_bad_overrides(override, fragment):
    assert fragment in error_of(CONFIGS / "ResNet50_vd_imagenet.yaml", [override])


def test_apply_overrides_creates_missing_sections():
    config = {}
    apply_overrides(config, ["Global.epochs=3"])
    assert config == {"Global": {"epochs": 3}}


def test_a_shipped_recipe_is_parsed_once_and_each_caller_gets_its_own_copy(monkeypatch):
    from pcls.config import loader
    from pcls.config.recipe_files import recipe_path

    path = recipe_path("demo")
    parsed = []
    real = loader._parse_yaml_file
    monkeypatch.setattr(loader, "_parse_yaml_file", lambda p, measure: parsed.append((p, measure)) or real(p, measure))
    loader._shipped_yaml.cache_clear()
    first = loader.load_yaml_file(path)
    first["Global"]["epochs"] = -1
    first.setdefault("Arch", {})["name"] = "changed"
    second = loader.load_yaml_file(path)
    assert parsed == [(Path(str(Path(path).resolve())), False)]  # once, and not measured (pcls ships it)
    assert second["Global"]["epochs"] != -1 and second.get("Arch", {}).get("name") != "changed"
    assert second == yaml.safe_load(Path(path).read_text())


def test_recipes_sharing_a_base_never_share_its_sections():
    """Merging does not copy (each load is fresh): changing one loaded recipe leaves its base's next load alone."""
    from pcls.config import loader
    from pcls.config.recipe_files import list_recipes, recipe_path

    child = next(name for name in list_recipes() if "_base_" in recipe_path(name).read_text())
    first = loader._load_with_bases(recipe_path(child))
    second = loader._load_with_bases(recipe_path(child))
    assert first == second
    section = next(key for key, value in first.items() if isinstance(value, dict) and value)
    first[section].clear()
    assert loader._load_with_bases(recipe_path(child)) == second and second[section]


def test_a_shipped_file_with_values_marshal_cannot_copy_is_deep_copied(tmp_path, monkeypatch):
    from pcls.config import loader

    monkeypatch.setattr(loader, "recipes_dir", lambda: tmp_path)
    path = tmp_path / "dated.yaml"
    path.write_text("Reference: {measured: 2024-05-01}\nGlobal: {epochs: 2}\n")
    loader._shipped_yaml.cache_clear()
    first = loader.load_yaml_file(path)
    first["Reference"]["measured"] = None
    assert str(loader.load_yaml_file(path)["Reference"]["measured"]) == "2024-05-01"
