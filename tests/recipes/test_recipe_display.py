"""How recipes read for people (issue #24 item 5): `pcls recipes show` prints what the recipe sets and the defaults
that apply to it, top-1 figures are percentages everywhere (fractions in --json)."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from pcls.cli import app
from pcls.config import load_config
from pcls.config.schema import validate
from pcls.recipes.report import report_lines, write_result

runner = CliRunner()


def _leaves(tree: dict, prefix=()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


@pytest.mark.parametrize("recipe, own, foreign", [
    ("flowers102-finetune", ["momentum", "use_nesterov"], ["beta1", "beta2", "rho", "epsilon"]),
    ("zoo-convnext", ["beta1", "beta2", "epsilon"], ["momentum", "use_nesterov", "rho"]),
])
def test_show_prints_what_the_recipe_sets_and_its_own_defaults_only(recipe, own, foreign):
    result = runner.invoke(app, ["recipes", "show", recipe])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert "mode" not in shown  # a key pcls only reads to refuse is no part of a recipe
    assert set(own) <= set(shown["Optimizer"]) and not set(foreign) & set(shown["Optimizer"])
    written = dict(_leaves(load_config(recipe, is_recipe=True, validate_schema=False)))
    printed = dict(_leaves(shown))
    assert None not in [value for path, value in printed.items() if path not in written]  # no null defaults
    kept = [path for path in written if path != ("_source",) and path[-1] not in foreign]
    assert {path: printed.get(path) for path in kept} == {path: written[path] for path in kept}
    # what is left out is only defaults: the printed YAML, run with -c, is the same config
    resolved = {k: v for k, v in load_config(recipe, is_recipe=True).items() if k != "_source"}
    assert validate(shown) == resolved


def test_recipes_list_shows_the_demo_s_documented_top1_as_a_percentage():
    table = runner.invoke(app, ["recipes", "list", "--group", "demo"])
    assert table.exit_code == 0 and "97.20%" in table.stdout
    rows = json.loads(runner.invoke(app, ["recipes", "list", "--group", "demo", "--json"]).stdout)
    assert rows[0]["documented_top1"] == pytest.approx(0.972)


def test_the_run_panel_gives_the_documented_top1_in_the_one_format(tmp_path):
    cfg = load_config("flowers102-finetune", is_recipe=True)
    record = write_result(tmp_path, cfg, recipe="flowers102-finetune", metrics={"top1": 0.9312, "top5": 0.99},
                          world_size=1, epochs_run=20, device="cpu")
    text = "\n".join(report_lines(record))
    assert "documented  top-1 94.02%" in text and "0.9402" not in text
    assert "achieved    top-1 93.12%   top-5 99.00%" in text and "delta       -0.90 points" in text


@pytest.mark.parametrize("recipe, metric, label", [("pulc-safety_helmet", "tpr", "tpr"),
                                                   ("pulc-person_attribute", "label_mA", "label_mA")])
def test_the_run_panel_names_the_recipe_s_metric(tmp_path, recipe, metric, label):
    cfg = load_config(recipe, is_recipe=True)
    record = write_result(tmp_path, cfg, recipe=recipe, metrics={metric: 0.5, "top1": 0.75}, world_size=4,
                          epochs_run=cfg["Global"]["epochs"], device="cpu")
    text = "\n".join(report_lines(record))
    assert f"achieved    {label} 50.00%   top-1 75.00%" in text
    assert f"documented  {label} {cfg['Reference']['documented']}" in text
