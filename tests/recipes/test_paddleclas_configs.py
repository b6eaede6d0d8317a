"""PaddleClas 2.6's own configs for the newer families run `pcls train -c CONFIG --smoke` unchanged.

`paddleclas_configs/` holds, per family with a `zoo-<family>` recipe built from PaddleClas 2.6's config, that
config in PaddleClas's own layout, keys, operators and values (comments dropped). Three representative ones run
in CI; the rest are slow."""

import json
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pcls.cli import app
from pcls.config import list_recipes
from pcls.config.recipe_files import recipes_dir

pytest.importorskip("paddle")
runner = CliRunner()
CONFIGS = Path(__file__).parent / "paddleclas_configs"
# TimmAutoAugment (random interpolation), clip_grad: None, drop_rate 0 | override_params, Step 2.4 epochs, PIL
# decode, ColorJitter | RandAugmentV3, quoted RandomErasing sh, clip_norm, EMA
QUICK = {"StarNet_S1", "TinyNet_E", "MobileViTV2_x0_5"}


def _paddleclas_models() -> set:
    """The models of the zoo recipes that carry PaddleClas 2.6's config (the newer families)."""
    models = set()
    for name in list_recipes():
        reference = (yaml.safe_load((recipes_dir() / f"{name}.yaml").read_text()) or {}).get("Reference") or {}
        if name.startswith("zoo-") and "PaddleClas 2.6" in str(reference.get("source")):
            models.add(reference["row"].split(": ", 1)[1])
    return models


def _params():
    for path in sorted(CONFIGS.glob("*.yaml")):
        yield pytest.param(path, marks=[] if path.stem in QUICK else [pytest.mark.slow], id=path.stem)


def test_every_newer_family_has_its_paddleclas_config():
    models = _paddleclas_models()
    assert len(models) == 25
    assert models == {path.stem for path in CONFIGS.glob("*.yaml")}


def smoke_run(config: Path, tmp_path: Path) -> dict:
    """`pcls train -c CONFIG --smoke --json` ran to the end with a finite loss, and kept its metrics (a smoke run
    keeps no checkpoints) and the config's eval metric; its JSON summary."""
    result = runner.invoke(app, ["train", "-c", str(config), "--smoke", "-o", f"Global.output_dir={tmp_path}",
                                 "--json"])
    assert result.exit_code == 0, result.output[-3000:]
    summary = json.loads(result.stdout)
    assert summary["status"] == "done" and math.isfinite(summary["final"]["train_loss"])
    assert (Path(summary["run_dir"]) / "metrics.jsonl").exists()
    assert summary["best"]["value"] is not None
    return summary


@pytest.mark.parametrize("config", _params())
def test_paddleclas_config_smoke_run(config, tmp_path):
    smoke_run(config, tmp_path)
