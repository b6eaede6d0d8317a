"""Global.to_static: True trains and evaluates through paddle.jit.to_static with the same numbers as dygraph."""

import pytest

from pcls.engine.trainer import train
from tests.engine.conftest import tiny_config


def _history(tmp_path, colour_data, to_static):
    cfg = tiny_config(colour_data, tmp_path / ("static" if to_static else "dygraph"), epochs=2, to_static=to_static)
    cfg["Optimizer"]["regularizer"]["coeff"] = 0.0
    summary = train(cfg)
    assert summary["status"] == "done"
    import json

    rows = [json.loads(line) for line in open(f"{summary['run_dir']}/metrics.jsonl")]
    return [(r["train_loss"], r["val_loss"], r["val_top1"]) for r in rows if "val_loss" in r]


@pytest.mark.slow
def test_to_static_gives_the_dygraph_loss_curve(tmp_path, colour_data, tinynet):
    dygraph = _history(tmp_path, colour_data, False)
    static = _history(tmp_path, colour_data, True)
    assert len(dygraph) == len(static) == 2
    for (train_d, val_d, top1_d), (train_s, val_s, top1_s) in zip(dygraph, static):
        assert train_s == pytest.approx(train_d, rel=1e-4, abs=1e-5)
        assert val_s == pytest.approx(val_d, rel=1e-4, abs=1e-5)
        assert top1_s == pytest.approx(top1_d, abs=1e-6)


def test_to_static_compiles_the_model(tmp_path, colour_data, tinynet):
    from pcls.engine.trainer import Trainer

    trainer = Trainer(tiny_config(colour_data, tmp_path / "out", epochs=1, to_static=True))
    try:
        assert "StaticFunction" in type(trainer.net.forward).__name__
    finally:
        trainer._forward.close()
