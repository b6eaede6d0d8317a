"""`pcls train --recipe NAME --smoke` for every built-in recipe: the recipe's operators, model, loss, optimizer,
schedule, eval and report all run for two iterations on generated data of the recipe's shape and class count."""

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pcls.cli import app
from pcls.config import list_recipes, load_config

pytest.importorskip("paddle")
runner = CliRunner()


def _params():
    # distill-*/pulc-* are PaddleClas's configs unchanged, which test_paddleclas_distill_pulc_configs.py runs
    # already: one of them stays in the fast suite
    for name in list_recipes():
        slow = name.startswith(("distill-", "pulc-")) and name != "pulc-person_exists"
        yield pytest.param(name, marks=[pytest.mark.slow] if slow else [], id=name)


@pytest.mark.parametrize("name", _params())
def test_recipe_smoke_run(name, tmp_path):
    result = runner.invoke(app, ["train", "--recipe", name, "--smoke", "-o", f"Global.output_dir={tmp_path}",
                                 "--json"])
    assert result.exit_code == 0, result.output[-3000:]
    summary = json.loads(result.stdout)
    assert summary["status"] == "done"
    final = summary["final"]
    assert math.isfinite(final["train_loss"])
    cfg = load_config(name, is_recipe=True)
    record = summary.get("recipe_result")
    if cfg.get("Reference"):
        assert record["smoke"] is True and record["recipe"] == name
        assert json.loads((Path(summary["run_dir"]) / "result.json").read_text())["smoke"] is True
    # the generated data had the recipe's class count: the classifier was built for it
    assert (Path(summary["run_dir"]) / "best_model.pdparams").exists() or (Path(summary["run_dir"]) / "latest.pdparams").exists()
