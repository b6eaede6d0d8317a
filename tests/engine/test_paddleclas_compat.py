"""PaddleClas 2.x and pcls exchange runs: Global.class_num sets the head, pcls's pickles load under numpy 1,
PaddleClas's run layout (`output/<Arch.name>/best_model.pdparams` beside a `best_model/` folder, flat or
nested) evaluates, and a PaddleClas `latest.pdparams/.pdopt/.pdstates` resumes at its epoch and optimizer state."""

import io
import pickle

import numpy as np
import paddle
import pytest

from pcls.engine.evaluator import evaluate
from pcls.engine.trainer import Trainer, train
from pcls.errors import PclsError
from tests.engine.conftest import tiny_config


class _Numpy1Unpickler(pickle.Unpickler):
    """What numpy 1.x can resolve: it has numpy.core, and no numpy._core."""

    def find_class(self, module, name):
        if module == "numpy._core" or module.startswith("numpy._core."):
            raise ModuleNotFoundError(f"No module named '{module}' (numpy 1.x)")
        return super().find_class(module, name)


def test_global_class_num_sets_the_head_and_pickles_load_under_numpy_1(tmp_path, colour_data, tinynet):
    cfg = tiny_config(colour_data, tmp_path / "out", epochs=1)
    del cfg["Arch"]["class_num"]
    cfg["Global"]["class_num"] = 4  # only here, as older PaddleClas configs have it
    summary = train(cfg)
    run = tmp_path / "out" / "TinyNet"
    assert summary["status"] == "done"
    for name in ("latest.pdparams", "latest.pdopt", "best_model.pdparams"):
        data = (run / name).read_bytes()
        assert b"numpy._core" not in data
        state = _Numpy1Unpickler(io.BytesIO(data)).load()
        if name.endswith(".pdparams"):
            assert state["fc.weight"].shape == (16, 4) and state["fc.bias"].shape == (4,)  # not 1000


def _paddleclas_run(folder, steps=3):
    """What PaddleClas 2.6's save_model writes for TinyNet after `steps` updates in epoch 1."""
    import pcls

    paddle.seed(3)
    model = pcls.create_model("TinyNet", class_num=4)
    schedule = paddle.optimizer.lr.CosineAnnealingDecay(learning_rate=0.05, T_max=100)
    opt = paddle.optimizer.Momentum(learning_rate=schedule, momentum=0.9, parameters=model.parameters())
    for _ in range(steps):
        model(paddle.rand([2, 3, 16, 16])).mean().backward()
        opt.step()
        opt.clear_grad()
        schedule.step()
    folder.mkdir(parents=True)
    paddle.save(model.state_dict(), str(folder / "latest.pdparams"))
    paddle.save(opt.state_dict(), str(folder / "latest.pdopt"))
    paddle.save({"metric": 0.25, "epoch": 1}, str(folder / "latest.pdstates"))
    paddle.save(model.state_dict(), str(folder / "best_model.pdparams"))
    (folder / "best_model").mkdir()  # PaddleClas 2.6 writes this folder beside best_model.pdparams
    names = {p.name: n for n, p in model.named_parameters()}
    velocity = {names[k.rsplit("_velocity", 1)[0]]: v.numpy() for k, v in opt.state_dict().items()
                if "_velocity" in k}
    return model, velocity


def test_resume_from_a_paddleclas_checkpoint_continues_at_its_epoch(tmp_path, colour_data, tinynet):
    pc_output = tmp_path / "pc_output"
    model, velocity = _paddleclas_run(pc_output / "TinyNet")
    cfg = tiny_config(colour_data, tmp_path / "out", epochs=2)
    cfg["Global"]["output_dir"] = str(pc_output)
    trainer = Trainer(cfg, resume=str(pc_output))  # the flat output_dir: its one run is found
    try:
        assert trainer.epoch == 1 and trainer.global_step == 3
        assert trainer.best["value"] == pytest.approx(0.25)
        assert trainer.run_dir != pc_output / "TinyNet"  # PaddleClas's files are never overwritten
        for name, value in model.state_dict().items():
            np.testing.assert_array_equal(trainer.net.state_dict()[name].numpy(), value.numpy())
        from pcls.engine.checkpoint import optimizer_state

        restored = optimizer_state(trainer.optimizer, trainer.net)
        for name, value in velocity.items():
            np.testing.assert_allclose(np.asarray(restored[f"{name}_velocity_0"]), value)  # held until the first step
        summary = trainer.fit()
    finally:
        trainer._forward.close()
    assert summary["epochs_done"] == 2 and len(summary["final"]) > 0


def test_paddleclas_checkpoint_without_scheduler_position_is_one_line(tmp_path, colour_data, tinynet):
    folder = tmp_path / "pc" / "TinyNet"
    _paddleclas_run(folder)
    opt = paddle.load(str(folder / "latest.pdopt"))
    opt.pop("LR_Scheduler")
    paddle.save(opt, str(folder / "latest.pdopt"))
    cfg = tiny_config(colour_data, tmp_path / "out", epochs=2)
    with pytest.raises(PclsError, match=r"LR_Scheduler.last_epoch.*Global.pretrained_model=") as err:
        Trainer(cfg, resume=str(folder / "latest"))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("weights", ["TinyNet/best_model", "TinyNet", "."])
def test_eval_accepts_paddleclas_best_model_prefix_and_both_run_layouts(tmp_path, colour_data, tinynet, weights):
    pc_output = tmp_path / "pc_output"
    _paddleclas_run(pc_output / "TinyNet")
    cfg = tiny_config(colour_data, tmp_path / "out")
    result = evaluate(cfg, weights=str(pc_output / weights), out_dir=tmp_path / "eval")
    assert result["samples"] == 24 and 0 <= result["top1"] <= 1


def test_export_resolves_the_paddleclas_best_model_prefix(tmp_path, tinynet):
    from pcls.zoo.weights import resolve_weights

    _paddleclas_run(tmp_path / "out" / "TinyNet")
    expected = tmp_path / "out" / "TinyNet" / "best_model.pdparams"
    assert resolve_weights(str(tmp_path / "out" / "TinyNet" / "best_model")) == expected
    assert resolve_weights(str(tmp_path / "out")) == expected


@pytest.mark.slow
def test_cli_eval_and_export_read_the_paddleclas_layout(tmp_path, colour_data, tinynet):
    import json

    from typer.testing import CliRunner

    from pcls.cli import app
    from tests.engine.conftest import write_config

    pc_output = tmp_path / "pc_output"
    _paddleclas_run(pc_output / "TinyNet")
    cfg = tiny_config(colour_data, tmp_path / "out")
    cfg["Global"]["image_shape"] = [3, 16, 16]  # the colour images go in as they are (no crop)
    config = write_config(cfg, tmp_path / "c.yaml")
    runner = CliRunner()
    prefix = pc_output / "TinyNet" / "best_model"  # a folder of that name stands beside best_model.pdparams
    result = runner.invoke(app, ["eval", "-c", str(config), "-o", f"Global.pretrained_model={prefix}", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["samples"] == 24
    result = runner.invoke(app, ["export", "-c", str(config), "--weights", str(prefix), "--out",
                                 str(tmp_path / "export"), "--json"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "export" / "inference.json").is_file()


def test_weights_files_pcls_writes_load_under_numpy_1(tmp_path):
    """save_state_file (zoo convert, the distilled student) writes numpy.core names, scalars included."""
    from pcls.utils.state_files import load_state_file, save_state_file

    state = {"fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "bn._mean": np.float32(0.5),
             "steps": np.int64(7)}
    path = save_state_file(state, tmp_path / "w.pdparams")
    data = path.read_bytes()
    assert b"numpy._core" not in data and b"numpy.core.multiarray" in data
    loaded = _Numpy1Unpickler(io.BytesIO(data)).load()
    np.testing.assert_array_equal(loaded["fc.weight"], state["fc.weight"])
    assert loaded["bn._mean"] == np.float32(0.5) and loaded["steps"] == 7
    np.testing.assert_array_equal(load_state_file(path)["fc.weight"], state["fc.weight"])  # pcls's own reader
