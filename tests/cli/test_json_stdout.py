"""Every command with --json prints one JSON document on stdout and nothing else, run as a real process:
Paddle and other libraries write from C++ straight to file descriptor 1, which an in-process runner never sees.

The deploy commands (export --format onnx, predict, bench --compare/--formats) are run the same way in
tests/deploy/test_json_stdout.py; this module runs the rest and checks that together they cover every command
that has --json.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_TEST = ROOT / "tests" / "deploy" / "test_json_stdout.py"
DEPLOY_COMMANDS = {"export", "predict", "bench"}  # run in DEPLOY_TEST
MODEL = "MobileNetV1_x0_25"


def json_commands() -> set:
    """'train', 'zoo list', ...: every leaf command of the app that has a --json option."""
    import typer.main

    from pcls.cli import app

    found = set()

    def walk(command, path):
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, path + [name])
        elif any("--json" in getattr(p, "opts", ()) for p in command.params):
            found.add(" ".join(path))

    walk(typer.main.get_command(app), [])
    return found


def run_json(world, *args):
    """Run `pcls ARGS --json` in a fresh process; the parsed stdout (fails on any stray line)."""
    done = subprocess.run([sys.executable, "-m", "pcls", *map(str, args), "--json"], capture_output=True, text=True,
                          env=world["env"], cwd=world["root"], timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout of 'pcls {' '.join(map(str, args))} --json' is not JSON:\n{done.stdout[:2000]}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("json-cli")
    env = {**os.environ, "PCLS_HOME": str(root / "home"), "PCLS_OFFLINE": "1", "TMPDIR": str(root)}
    for name in ("PCLS_DEBUG", "PCLS_ZOO_MIRROR", "PCLS_DATA_MIRROR"):
        env.pop(name, None)
    world = {"root": root, "env": env}
    world["demo"] = run_json(world, "data", "demo", root / "demo", "--size", "40", "--train-per-class", "2",
                             "--val-per-class", "1")
    return world


def test_every_json_command_is_run_by_a_test():
    mine = {"train", "eval", "distill", "zoo list", "zoo info", "zoo download", "data flowers102", "data index",
            "data check", "data demo", "recipes list", "recipes table", "doctor"}
    for command in DEPLOY_COMMANDS:
        assert f'"{command}"' in DEPLOY_TEST.read_text(), f"{DEPLOY_TEST} no longer runs {command} --json"
    missing = json_commands() - mine - DEPLOY_COMMANDS
    assert not missing, f"commands with --json that no stdout test runs: {sorted(missing)}"


def test_data_demo(world):
    assert Path(world["demo"]["train_list"]).is_file() and world["demo"]["val_images"] == 10


def test_data_index_and_check(world):
    import shutil

    folders = world["root"] / "folders"
    image = next((world["root"] / "demo").rglob("*.*g"))  # any demo image
    for label in ("cat", "dog"):
        (folders / label).mkdir(parents=True)
        for i in range(2):
            shutil.copy(image, folders / label / f"{i}{image.suffix}")
    indexed = run_json(world, "data", "index", folders)
    assert Path(indexed["image_root"]) == folders
    checked = run_json(world, "data", "check", world["demo"]["val_list"], "--root", world["root"] / "demo")
    assert checked["ok"] is True


def test_data_flowers102(world):
    from tests.data.flowers102_fixture import Server, mini_flowers

    server = Server(mini_flowers())
    try:
        env = {**world["env"]}
        env.pop("PCLS_OFFLINE")
        result = run_json({**world, "env": env}, "data", "flowers102", "--root", world["root"] / "flowers",
                          "--url-base", server.url)
    finally:
        server.close()
    assert result["classes"] == 3


def test_doctor(world):  # --run --json is run in tests/doctor/test_selfcheck.py
    assert {row["key"] for row in run_json(world, "doctor")["capabilities"]} >= {"paddle", "train_gpu", "int8_cpu"}


def test_recipes_list_and_table(world):
    assert "demo" in {row["name"] for row in run_json(world, "recipes", "list")}
    assert isinstance(run_json(world, "recipes", "table"), (list, dict))


def test_zoo_list_info_download(world):
    from urllib.parse import urlsplit

    from pcls.zoo.catalog import get_entry
    from tests.zoo.conftest import FileServer

    assert [row["name"] for row in run_json(world, "zoo", "list", MODEL)] == [MODEL]
    assert run_json(world, "zoo", "info", MODEL)["name"] == MODEL
    url = get_entry(MODEL)["pretrained_url"]
    from pcls.utils.state_files import save_state_file

    weights = save_state_file({"w": np.ones(3, "float32")}, world["root"] / "served.pdparams").read_bytes()
    with FileServer() as server:
        server.files["/mirror" + urlsplit(url).path] = weights  # a download must be a state dict to be kept
        env = {**world["env"], "PCLS_ZOO_MIRROR": server.url("/mirror")}
        env.pop("PCLS_OFFLINE")
        [entry] = run_json({**world, "env": env}, "zoo", "download", MODEL)
    assert entry["name"] == MODEL and entry["size"] == len(weights)


@pytest.fixture(scope="module")
def trained(world):
    """A smoke run of the demo recipe (10 classes), via --json; `arch` is the recipe's backbone."""
    from pcls.config import load_config

    summary = run_json(world, "train", "--recipe", "demo", "--smoke", "--keep-checkpoints", "-o",
                       f"Global.output_dir={world['root'] / 'out'}")
    return {**summary, "arch": load_config("demo", is_recipe=True)["Arch"]["name"]}


def test_train(trained):
    assert trained["status"] == "done" and Path(trained["run_dir"]).is_dir()


def test_eval_at_another_image_size(world, trained):
    weights = Path(trained["run_dir"]) / "best_model.pdparams"
    result = run_json(world, "eval", "--model", trained["arch"], "--weights", weights, "--data",
                      world["demo"]["val_list"], "--root", world["root"] / "demo", "--class-num", "10",
                      "--image-size", "32", "--out", world["root"] / "eval")
    assert result["samples"] == 10


def test_distill(world, trained):
    weights = Path(trained["run_dir"]) / "best_model.pdparams"
    demo = world["demo"]
    result = run_json(world, "distill", "--teacher", f"{trained['arch']}:{weights}", "--student", MODEL,
                      "--data", demo["train_list"], "--val", demo["val_list"], "--root", world["root"] / "demo",
                      "--image-size", "32", "--epochs", "1", "--batch-size", "10", "--output", world["root"] / "distill",
                      "-o", "DataLoader.Train.loader.num_workers=0", "-o", "DataLoader.Eval.loader.num_workers=0")
    assert result["student_model"] == MODEL
