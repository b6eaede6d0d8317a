"""Built-in recipes: they load, record the documented figures exactly as the seeds give them, and the trick
tables show achieved results found under output/."""

import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from pcls.cli import app
from pcls.config import list_recipes, load_config
from pcls.recipes import recipe_summary
from pcls.recipes.report import trick_tables, write_result
from tests.reference import REFERENCE_DIR, REPO

SEEDS = REFERENCE_DIR / "seeds"
runner = CliRunner()

REQUIRED = [
    "flowers102-scratch", "flowers102-finetune", "flowers102-ssld-finetune", "flowers102-mv3-finetune",
    "flowers102-ssld-random-erasing", "flowers102-distill-mv3",
    "imagenet-aug-baseline", "imagenet-aug-autoaugment", "imagenet-aug-mixup", "imagenet-aug-cutmix",
    "imagenet-aug-cutout", "imagenet-aug-gridmask", "imagenet-aug-randaugment", "imagenet-aug-random-erasing",
    "imagenet-aug-hide-and-seek",
    "imagenet-resnet50_vd-ls-off", "imagenet-resnet50_vd-ls-on", "imagenet-resnet18-ls-off", "imagenet-resnet18-ls-on",
    "imagenet-mobilenetv1_x0_25-l2-1e-4", "imagenet-mobilenetv1_x0_25-l2-3e-5",
    "imagenet-resnet50-randaugment-l2-1e-4", "imagenet-resnet50-randaugment-l2-7e-5",
    "imagenet-mobilenetv2_x0_25-crop-0.08", "imagenet-mobilenetv2_x0_25-crop-0.2",
    "imagenet-resnet50_vd",
]

# Typed in by hand from the seeds (000 §1.2.3.7, §2.2.4-2.2.7; 002): row label -> documented top-1.
SEED_TABLES = {
    "flowers102": ["0.2735", "0.9000", "0.9402", "0.9500", "0.9627", "0.9647"],
    "augmentation": ["77.31%", "77.95%", "78.28%", "78.39%", "78.01%", "77.85%", "77.70%", "77.91%", "77.43%"],
    "label-smoothing": ["77.9%", "78.4%", "70.98%", "70.81%"],
    "weight-decay": ["50.41%", "51.45%", "77.65%", "78.04%"],
    "crop-scale": ["52.35%", "53.18%"],
    "reference": ["79.12%"],
}


def seed_text() -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(SEEDS.glob("*.txt")))


def test_every_required_recipe_exists():
    missing = sorted(set(REQUIRED) - set(list_recipes()))
    assert not missing


def test_a_standard_recipe_for_every_zoo_family():
    """The seeds' families and the PaddleClas 2.x ones (zoo_catalog_2x.json) each have a zoo-<family> recipe."""
    from tests.zoo.test_catalog import CATALOG_2X

    catalog = json.loads((REFERENCE_DIR / "zoo_catalog.json").read_text()) + json.loads(CATALOG_2X.read_text())
    families = {row["family"] for row in catalog if row.get("family")}
    covered = {load_config(n, is_recipe=True)["Reference"]["row"].split(":")[0]
               for n in list_recipes() if n.startswith("zoo-")}
    assert families == covered


def _family_recipes_script():
    from tests.zoo.test_catalog import script_module

    return script_module("make_family_recipes")


def test_2x_family_recipes_are_what_the_script_writes():
    script = _family_recipes_script()
    rows = json.loads((REPO / "pcls" / "zoo" / "catalog.json").read_text())
    by_name = {row["name"]: row for row in rows}
    for family, facts in script.PADDLECLAS_2X.items():
        slug = family.lower().replace("_", "-")
        written = yaml.safe_load((REPO / "recipes" / f"zoo-{slug}.yaml").read_text())
        expected = yaml.safe_load(yaml.safe_dump(script.recipe_2x(family, facts, by_name[facts["model"]])))
        assert written == expected, f"recipes/zoo-{slug}.yaml is stale: run scripts/make_family_recipes.py"


# Figures typed in from PaddleClas 2.6's configs (ppcls/configs/ImageNet/<Family>/<Model>.yaml).
@pytest.mark.parametrize(("recipe", "path", "value"), [
    ("zoo-convnext", "Optimizer.lr.learning_rate", 4e-3),
    ("zoo-convnext", "Global.update_freq", 4),
    ("zoo-convnext", "EMA.decay", 0.9999),
    ("zoo-cspnet", "Optimizer.lr.values", [0.1, 0.01, 0.001, 0.0001]),
    ("zoo-pp-lcnetv2", "Global.epochs", 480),
    ("zoo-pp-hgnet", "Optimizer.regularizer.coeff", 4e-5),
    ("zoo-swintransformerv2", "Optimizer.no_weight_decay_name",
     "absolute_pos_embed relative_position_bias_table .bias norm"),
    ("zoo-tinynet", "Optimizer.name", "RMSProp"),
    ("zoo-mobilenetv4", "Global.epochs", 2400),
    ("zoo-mobilenetv4", "DataLoader.Train.sampler.batch_size", 1024),
    ("zoo-micronet", "Reference.gpus", 4),
])
def test_2x_family_recipes_carry_paddleclas_config(recipe, path, value):
    node = load_config(recipe, is_recipe=True)
    for key in path.split("."):
        node = node[key]
    assert node == (pytest.approx(value) if isinstance(value, float) else value)


def test_2x_family_recipes_evaluate_as_the_catalog_says():
    from pcls.zoo.catalog import eval_transform_ops, preprocess_for

    for family, facts in _family_recipes_script().PADDLECLAS_2X.items():
        cfg = load_config(f"zoo-{family.lower()}", is_recipe=True)
        expected = eval_transform_ops(preprocess_for(facts["model"]))
        ops = cfg["DataLoader"]["Eval"]["dataset"]["transform_ops"]
        resize = [op for op in ops if "ResizeImage" in op or "CropImage" in op]
        catalog = [op for op in expected if "ResizeImage" in op or "CropImage" in op]
        at_ratio = [op["CropImageAtRatio"] for op in ops if "CropImageAtRatio" in op]
        if at_ratio:  # EfficientNetV2: PaddleClas's crop at size / (size + pad) of the short side, then resize
            (crop,), short = at_ratio, catalog[0]["ResizeImage"]["resize_short"]
            assert (crop["size"], crop["size"] + crop["pad"]) == (catalog[1]["CropImage"]["size"], short), family
        else:
            assert resize == catalog, family
        assert cfg["Infer"]["transforms"] == ops


@pytest.mark.parametrize("name", list_recipes())
def test_recipe_loads_and_names_a_registered_backbone(name):
    from pcls.arch.registry import list_models

    cfg = load_config(name, is_recipe=True)
    arch = cfg["Arch"]
    members = [next(iter(m.values())) for m in arch.get("models") or []] or [arch]
    # AFD's AttentionModel member is a backbone plus a connector (pcls.distill.connectors): check the backbone
    members = [next(iter(m["models"][0].values())) if m["name"] == "AttentionModel" else m for m in members]
    registered = set(list_models())
    assert all(member["name"] in registered for member in members), [m["name"] for m in members]
    summary = recipe_summary(name)
    assert summary["epochs"] >= 1
    reference = cfg.get("Reference")
    if name != "demo":
        assert reference and reference.get("group"), "every documented experiment says which table it belongs to"


@pytest.mark.parametrize("group, documented", sorted(SEED_TABLES.items()))
def test_trick_tables_carry_the_documented_numbers_exactly(group, documented):
    tables = trick_tables(output_root="/nonexistent", group=group)
    assert len(tables) == 1
    assert [row["documented"] for row in tables[0]["rows"]] == documented
    text = seed_text()
    for figure in documented:
        assert figure in text, f"{figure} is not in the seeds"


def test_documented_numeric_figure_agrees_with_the_text():
    for name in list_recipes():
        reference = load_config(name, is_recipe=True).get("Reference") or {}
        text, figure = reference.get("documented"), reference.get(reference.get("metric"))
        if text is None or figure is None:
            continue
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
        assert value == pytest.approx(figure, abs=1e-9), name


# Typed in by hand from PaddleClas 2.6's PULC pages (docs/en/PULC/PULC_<task>_en.md and the zh pages of
# clarity_assessment, image_orientation, table_attribute): the metric each page reports and its bold figure
PULC_PAGES = {
    "person_exists": ("tpr", 0.9623), "car_exists": ("tpr", 0.9592), "safety_helmet": ("tpr", 0.9938),
    "person_attribute": ("label_mA", 0.7859), "vehicle_attribute": ("label_mA", 0.9081),
    "table_attribute": ("label_mA", 0.881), "code_exists": ("top1", 0.9494), "traffic_sign": ("top1", 0.9835),
    "text_image_orientation": ("top1", 0.9906), "textline_orientation": ("top1", 0.9601),
    "language_classification": ("top1", 0.9926), "image_orientation": ("top1", 0.8999),
    "clarity_assessment": ("top1", 0.953),
}


def test_pulc_recipes_record_the_metric_and_figure_of_their_page():
    recorded = {}
    for name in list_recipes():
        if name.startswith("pulc-"):
            reference = load_config(name, is_recipe=True)["Reference"]
            recorded[name[len("pulc-"):]] = (reference["metric"], reference[reference["metric"]])
    assert recorded == PULC_PAGES


@pytest.mark.parametrize("recipe, metric, says", [
    ("pulc-person_exists", "mA", "'mA' is not one of top1, top5, tpr, label_mA"),
    ("pulc-code_exists", "tpr", "tpr comes from the metric TprAtFpr, which Metric.Eval does not list"),
    ("pulc-person_exists", "label_mA", "label_mA comes from the metric ATTRMetric"),
])
def test_a_reference_metric_the_evaluation_does_not_give_is_refused_in_one_line(recipe, metric, says):
    result = runner.invoke(app, ["recipes", "show", recipe, "-o", f"Reference.metric={metric}"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "config key Reference.metric: " in result.output
    assert says in result.output


def test_every_reference_metric_is_a_key_its_meter_gives():
    import numpy as np
    import paddle

    from pcls.config.schema import REFERENCE_METRICS
    from pcls.engine.metrics import build_meter

    rng = np.random.default_rng(0)
    for metric, maker in REFERENCE_METRICS.items():
        multilabel = maker == "ATTRMetric"
        meter = build_meter([{maker: None}], multilabel=multilabel, class_num=6 if multilabel else 2)
        logits = rng.normal(size=(8, 6 if multilabel else 2)).astype("float32")
        labels = rng.integers(0, 2, size=(8, 6) if multilabel else (8,))
        meter.update(paddle.to_tensor(logits), paddle.to_tensor(labels))
        assert metric in meter.result(), (metric, maker)


def test_a_pulc_run_is_reported_in_its_page_s_metric(tmp_path):
    cfg = load_config("pulc-car_exists", is_recipe=True)
    output = tmp_path / "output"
    record = write_result(output / "run", cfg, recipe="pulc-car_exists", metrics={"tpr": 0.9012, "top1": 0.99},
                          world_size=4, epochs_run=20, device="cpu")
    assert (record["metric"], record["achieved"], record["documented_value"]) == ("tpr", 0.9012, 0.9592)
    assert record["delta"] == pytest.approx(0.9012 - 0.9592)
    result = runner.invoke(app, ["recipes", "table", "pulc", "--output", str(output)])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "pulc-car_exists" in line)
    assert [cell.strip() for cell in line.split("│")[3:6]] == ["tpr", "95.92%", "90.12%"]
    top1_line = next(line for line in result.stdout.splitlines() if "pulc-code_exists" in line)
    assert [cell.strip() for cell in top1_line.split("│")[3:5]] == ["top-1", "94.94%"]


def test_table_shows_achieved_and_delta_from_runs(tmp_path):
    cfg = load_config("flowers102-finetune", is_recipe=True)
    run_dir = tmp_path / "output" / "flowers102-finetune"
    record = write_result(run_dir, cfg, recipe="flowers102-finetune", metrics={"top1": 0.9302, "top5": 0.99},
                          world_size=1, epochs_run=20, device="cpu")
    assert record["deviations"] == []  # 1 GPU x 32, 20 epochs: the documented setting
    assert record["delta"] == pytest.approx(0.9302 - 0.9402)
    row = next(r for r in trick_tables(tmp_path / "output", "flowers102")[0]["rows"]
               if r["recipe"] == "flowers102-finetune")
    assert row["achieved_top1"] == pytest.approx(0.9302)
    result = runner.invoke(app, ["recipes", "table", "flowers102", "--output", str(tmp_path / "output"), "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)[0]["rows"]
    assert any(r["achieved_top1"] == pytest.approx(0.9302) for r in rows)


def test_the_result_record_carries_the_documented_top5(tmp_path):
    cfg = load_config("zoo-swintransformerv2", is_recipe=True)
    record = write_result(tmp_path, cfg, recipe="zoo-swintransformerv2", metrics={"top1": 0.5, "top5": 0.8},
                          world_size=1, epochs_run=1, device="cpu")
    assert record["documented_top5"] == cfg["Reference"]["top5"] is not None


def test_deviation_is_reported(tmp_path):
    cfg = load_config("imagenet-aug-baseline", is_recipe=True)
    record = write_result(tmp_path, cfg, recipe="imagenet-aug-baseline", metrics={"top1": 0.5}, world_size=1,
                          epochs_run=2, device="cpu")
    assert "global batch 1x64=64 vs documented 8x64=512" in record["deviations"]
    assert "2 epochs vs documented 300" in record["deviations"]


def test_table_prefers_a_run_that_matched_the_recipe(tmp_path):
    cfg = load_config("flowers102-finetune", is_recipe=True)
    output = tmp_path / "output"
    write_result(output / "full", cfg, recipe="flowers102-finetune", metrics={"top1": 0.93}, world_size=1,
                 epochs_run=20, device="cpu")
    write_result(output / "try", cfg, recipe="flowers102-finetune", metrics={"top1": 0.376}, world_size=1,
                 epochs_run=1, device="cpu")  # newer, but a 1-epoch try-out

    def shown():
        return next(r for r in trick_tables(output, "flowers102")[0]["rows"] if r["recipe"] == "flowers102-finetune")

    assert shown()["achieved_top1"] == pytest.approx(0.93) and shown()["deviations"] == []
    (output / "full" / "result.json").unlink()
    assert shown()["achieved_top1"] == pytest.approx(0.376)  # only a deviating run: shown, and marked
    assert shown()["deviations"] == ["1 epoch vs documented 20"]
    result = runner.invoke(app, ["recipes", "table", "flowers102", "--output", str(output)])
    assert result.exit_code == 0
    line = next(line for line in result.stdout.splitlines() if "flowers102-finetune" in line)
    assert "37.60% (deviated: 1 epoch vs documented 20)" in line


def test_recipes_list_shows_each_recipe_s_metric_and_documented_figure():
    result = runner.invoke(app, ["recipes", "list", "--group", "pulc"])
    assert result.exit_code == 0
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[-3:-1]]
            for line in result.stdout.splitlines() if line.startswith("│")}
    assert rows["pulc-person_exists"] == ["tpr", "96.23%"]
    assert rows["pulc-vehicle_attribute"] == ["label_mA", "90.81%"]
    assert rows["pulc-traffic_sign"] == ["top-1", "98.35%"]
    listed = {row["name"]: row for row in json.loads(runner.invoke(app, ["recipes", "list", "--json"]).stdout)}
    assert (listed["pulc-person_exists"]["metric"], listed["pulc-person_exists"]["documented_value"]) == ("tpr", 0.9623)
    assert listed["flowers102-finetune"]["metric"] == "top1"


def test_recipes_list_shows_documented_top1_in_one_format():
    result = runner.invoke(app, ["recipes", "list"])
    assert result.exit_code == 0
    lines = [line for line in result.stdout.splitlines() if line.startswith("│")]
    documented = {line.split("│")[-2].strip() for line in lines}
    assert "96.47%" in documented and "77.90%" in documented  # the seeds wrote 0.9647 and 77.9%
    assert all(re.fullmatch(r"\d{1,2}\.\d\d%|-", text) for text in documented), documented
    assert "flowers102-distill-mv3" in {line.split("│")[1].strip() for line in lines}  # names are never cut


def test_smoke_results_are_not_shown_as_achieved(tmp_path):
    cfg = load_config("flowers102-scratch", is_recipe=True)
    write_result(tmp_path / "output" / "x", cfg, recipe="flowers102-scratch", metrics={"top1": 0.01},
                 world_size=1, epochs_run=1, device="cpu", smoke=True)
    row = next(r for r in trick_tables(tmp_path / "output", "flowers102")[0]["rows"] if r["recipe"] == "flowers102-scratch")
    assert row["achieved"] is None and row["achieved_top1"] is None and row["delta"] is None  # what the table shows


def test_recipes_list_json_has_every_recipe():
    result = runner.invoke(app, ["recipes", "list", "--json"])
    assert result.exit_code == 0
    names = [row["name"] for row in json.loads(result.stdout)]
    assert names == list_recipes()


def test_listing_a_recipe_says_none_of_the_notes_a_run_would_say(caplog, monkeypatch):
    import logging

    import pcls.config.schema as schema

    monkeypatch.setattr(schema, "_noted", set())  # another test may have noted it in this process
    schema_log = logging.getLogger("pcls.config.schema")
    with caplog.at_level(logging.INFO, logger="pcls.config.schema"):
        level = schema_log.level
        recipe_summary("pulc-person_exists")  # its config sets Infer.infer_imgs, a key only PaddleClas reads
        assert schema_log.level == level and not caplog.records  # quiet by argument, the logger untouched
        load_config("pulc-person_exists", is_recipe=True)  # a run still says it
    assert any("Infer.infer_imgs" in r.message for r in caplog.records)


def test_unknown_table_group_is_an_error():
    result = runner.invoke(app, ["recipes", "table", "nope"])
    assert result.exit_code == 2


@pytest.mark.parametrize(("words", "offered"), [
    ("pcls train --recipe zoo-pp", ["zoo-pp-hgnet", "zoo-pp-hgnetv2", "zoo-pp-lcnet", "zoo-pp-lcnetv2"]),
    ("pcls recipes show flowers102-f", ["flowers102-finetune"]),
    ("pcls export --recipe de", ["demo"]),
])
def test_completion_offers_recipe_names_without_paddle(words, offered):
    from tests.zoo.test_zoo_cli import complete

    names, imported_paddle = complete(words)
    assert names == offered
    assert not imported_paddle


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--recipe", "ZOO-RESNET", "--smoke"], "unknown recipe 'ZOO-RESNET' (did you mean zoo-resnet?)"),
    (["zoo", "info", "resnet50_VD"], "unknown model 'resnet50_VD' in the zoo (did you mean ResNet50_vd?)"),
    (["recipes", "show", "zoo-mobilenet"], "(did you mean zoo-mobilenext or zoo-mobilenetv4 or zoo-mobilenetv3?)"),
    (["zoo", "info", "ResNet5_vd"], "(did you mean ResNet50_vd or ResNet152_vd or ResNet50_vc?)"),
])
def test_unknown_recipe_and_zoo_names_get_the_same_suggestions(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in " ".join(result.output.split())
