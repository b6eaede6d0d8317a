"""A training run folder as MODEL (#27): `pcls.Predictor(RUN)`, `pcls predict/serve/bench RUN` export it
once into $PCLS_HOME/inference/runs/ (again only when its weights or config change) and agree with an explicit
`pcls export -c RUN/config.yaml --weights RUN/best_model` of it; a run without weights or config is one line."""

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("paddle")

import pcls.deploy.export as export_package  # noqa: E402
from pcls.errors import PclsError  # noqa: E402
from tests.engine.conftest import tiny_config, write_colour_dataset, write_config  # noqa: E402


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real (one-epoch) TinyNet run: config.yaml, best_model and latest weights."""
    import pcls
    import tests.engine.tinynet  # noqa: F401 - registers TinyNet
    from pcls.config import load_config

    root = tmp_path_factory.mktemp("runfolder")
    data = write_colour_dataset(root / "data", train_per_class=4, val_per_class=2)
    cfg = load_config(str(write_config(tiny_config(data, root / "out", epochs=1), root / "c.yaml")))
    summary = pcls.train(cfg, log=lambda message: None)
    return {"run": Path(summary["run_dir"]), "data": data, "root": root}


@pytest.fixture
def exports(monkeypatch, tmp_path):
    """Every export made, with the cache in a fresh $PCLS_HOME."""
    monkeypatch.setenv("PCLS_HOME", str(tmp_path / "home"))
    real_export, made = export_package.export, []

    def counting_export(request, progress=None):
        made.append(request.out_dir)
        return real_export(request, progress)

    monkeypatch.setattr(export_package, "export", counting_export)
    return made


def images(data, count=6):
    lines = open(data["train"]).read().split("\n")[:: 4][:count]
    return [f"{data['root']}/{line.split()[0]}" for line in lines if line]


def test_a_run_folder_predicts_as_its_explicit_export_and_is_exported_once(trained_run, exports, tmp_path):
    import pcls
    from pcls.config import load_config
    from pcls.deploy.export import request_from_config
    from pcls.utils.logs import forward_logs

    run = trained_run["run"]
    messages = []
    with forward_logs(messages.append):
        first = pcls.Predictor(run, runtime="paddle", threads=1)
    assert len(exports) == 1 and first.model_dir == exports[0]
    assert first.model_dir.parent == tmp_path / "home" / "inference" / "runs"
    assert [m for m in messages if "exporting run" in m and str(first.model_dir) in m]

    explicit = tmp_path / "explicit"
    export_package.export(request_from_config(load_config(f"{run}/config.yaml"), explicit, f"{run}/best_model",
                                              fmt="paddle"))
    mine = first.predict(images(trained_run["data"]))
    theirs = pcls.Predictor(explicit, runtime="paddle", threads=1).predict(images(trained_run["data"]))
    assert [r["class_ids"][0] for r in mine] == [r["class_ids"][0] for r in theirs]
    np.testing.assert_allclose([r["scores"] for r in mine], [r["scores"] for r in theirs], atol=1e-5)

    from pcls.deploy.bench import run_bench
    from pcls.deploy.zoo_export import prepared_model_dir

    assert prepared_model_dir(run) == first.model_dir and len(exports) == 2  # reused: only the explicit one added
    timed = run_bench(str(run), batch_sizes=(1,), threads=1, warmup=1, iters=2, end_to_end=False, bare=False)
    assert timed["model_dir"] == str(first.model_dir) and len(exports) == 2  # bench too


def test_a_retrained_run_is_exported_again(trained_run, exports, tmp_path):
    from pcls.deploy.zoo_export import prepared_model_dir
    from pcls.utils.state_files import load_state_file, save_state_file

    run = tmp_path / "run"
    shutil.copytree(trained_run["run"], run, ignore=shutil.ignore_patterns(".pcls-lock"))
    before = prepared_model_dir(run)
    state = load_state_file(run / "best_model.pdparams")
    save_state_file({k: np.asarray(v) * 0.5 for k, v in state.items()}, run / "best_model.pdparams")
    after = prepared_model_dir(run)
    assert after != before and exports == [before, after]
    assert prepared_model_dir(run) == after and len(exports) == 2


def test_concurrent_first_uses_export_once(trained_run, exports):
    from concurrent.futures import ThreadPoolExecutor

    from pcls.deploy.zoo_export import prepared_model_dir

    with ThreadPoolExecutor(3) as pool:
        dirs = list(pool.map(prepared_model_dir, [trained_run["run"]] * 3))
    assert len(set(dirs)) == 1 and exports == dirs[:1]


def test_run_folders_without_weights_or_config_are_one_line(trained_run, exports, tmp_path):
    from pcls.deploy.zoo_export import prepared_model_dir

    fresh = tmp_path / "fresh"  # a run that has not saved weights yet
    fresh.mkdir()
    shutil.copy(trained_run["run"] / "config.yaml", fresh / "config.yaml")
    with pytest.raises(PclsError, match="no weights yet.*pcls train.*--weights"):
        prepared_model_dir(fresh)
    # PaddleClas's layout: output/<Arch.name>/best_model.pdparams, no config saved with it
    paddleclas = tmp_path / "output" / "TinyNet"
    paddleclas.mkdir(parents=True)
    shutil.copy(trained_run["run"] / "best_model.pdparams", paddleclas / "best_model.pdparams")
    with pytest.raises(PclsError, match=f"no config.yaml.*{paddleclas / 'config.yaml'}"):
        prepared_model_dir(tmp_path / "output")
    assert exports == []
    shutil.copy(trained_run["run"] / "config.yaml", paddleclas / "config.yaml")  # given its config, it exports
    assert (prepared_model_dir(tmp_path / "output") / "inference.yml").is_file() and len(exports) == 1


def test_pcls_serve_takes_a_run_folder(trained_run, exports):
    pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'pcls[serve]')")
    from pcls.deploy.predictor import Predictor
    from pcls.deploy.zoo_export import prepared_model_dir
    from tests.serve.conftest import run, served

    model_dir = prepared_model_dir(str(trained_run["run"]))  # what `pcls serve MODEL` calls
    image = images(trained_run["data"], 1)[0]
    want = Predictor(model_dir, runtime="paddle", threads=1).predict([image])[0]

    async def main():
        async with served(model_dir) as client:
            with open(image, "rb") as fh:
                return await client.post("/predict", files={"files": ("a.png", fh.read(), "image/png")})

    response = run(main())
    assert response.status_code == 200, response.text
    assert len(exports) == 1
    row = response.json()["results"][0]
    assert row["class_ids"] == want["class_ids"]
    np.testing.assert_allclose(row["scores"], want["scores"], atol=1e-5)


def test_pcls_predict_on_a_run_folder_says_once_that_it_exports(trained_run, tmp_path):
    """In a real process: one log line on the first use, none on the second, stdout only JSON; no weights: exit 2."""
    import json
    import os
    import subprocess
    import sys

    from tests.engine.conftest import TINYNET

    env = {**os.environ, "PCLS_HOME": str(tmp_path / "home"), "PCLS_PLUGINS": str(TINYNET), "PCLS_OFFLINE": "1"}
    env.pop("PCLS_DEBUG", None)

    def predict(model):
        return subprocess.run([sys.executable, "-m", "pcls", "predict", *images(trained_run["data"], 2), "--model",
                               str(model), "--runtime", "paddle", "--json"], capture_output=True, text=True, env=env,
                              timeout=300)

    first, second = predict(trained_run["run"]), predict(trained_run["run"])
    assert first.returncode == 0 and second.returncode == 0, first.stderr[-2000:] + second.stderr[-2000:]
    assert first.stderr.count("exporting run") == 1 and "exporting run" not in second.stderr
    assert json.loads(first.stdout)["results"] == json.loads(second.stdout)["results"]
    assert json.loads(first.stdout)["model"].startswith(str(tmp_path / "home" / "inference" / "runs"))
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(trained_run["run"] / "config.yaml", fresh / "config.yaml")
    refused = predict(fresh)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "no weights yet" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
