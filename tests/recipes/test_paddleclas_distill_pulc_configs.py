"""PaddleClas 2.6's distillation, PULC and attribute configs, unchanged (copied into paddleclas_configs/
ImageNet/Distillation, PULC/<task>/ and Attr/): the 74 training configs run `pcls train -c CONFIG --smoke`,
the 10 search.yaml files (inputs of PaddleClas's hyper-parameter search tool) are refused in one line.
Two run in the fast suite (a feature-distillation config with return_patterns and a trainable connector
loss, and an attribute config with label_ratio + ATTRMetric); the rest are slow."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pcls.cli import app
from tests.recipes.test_paddleclas_configs import smoke_run

pytest.importorskip("paddle")
runner = CliRunner()
CONFIGS = Path(__file__).parent / "paddleclas_configs"
QUICK = {"ImageNet/Distillation/resnet34_distill_resnet18_pefd.yaml", "PULC/table_attribute/PPLCNet_x1_0.yaml"}


def _configs(search: bool):
    for sub in ("ImageNet/Distillation", "PULC", "Attr"):
        for path in sorted((CONFIGS / sub).rglob("*.yaml")):
            if (path.name == "search.yaml") == search:
                yield path


def _params():
    for path in _configs(search=False):
        key = path.relative_to(CONFIGS).as_posix()
        yield pytest.param(path, marks=[] if key in QUICK else [pytest.mark.slow], id=key)


def test_the_84_configs_are_74_training_configs_and_10_search_files():
    assert len(list(_configs(search=False))) == 74
    assert len(list(_configs(search=True))) == 10


@pytest.mark.parametrize("config", _params())
def test_config_smoke_run(config, tmp_path):
    smoke_run(config, tmp_path)


@pytest.mark.parametrize("config", list(_configs(search=True)), ids=lambda p: p.parent.name)
def test_search_files_are_refused_in_one_line(config):
    result = runner.invoke(app, ["train", "-c", str(config), "--smoke"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "hyper-parameter search tool" in lines[0] and "Traceback" not in result.output
