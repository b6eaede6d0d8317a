"""`pcls eval --batch-size` (issue #25 item 12): 0 or a negative size is refused in one line (it was silently
ignored), and a valid size reaches the config's Eval sampler instead of being dropped."""

import pytest
from typer.testing import CliRunner

from pcls.cli import app

runner = CliRunner()


@pytest.mark.parametrize("size", ["0", "-5"])
def test_a_batch_size_below_one_is_refused(size):
    result = runner.invoke(app, ["eval", "--recipe", "demo", "--batch-size", size])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "--batch-size" in errors[0], result.output


def test_the_batch_size_reaches_the_eval_sampler_of_a_config(monkeypatch):
    import pcls.engine.evaluator as evaluator
    from pcls.data import sources

    seen = {}

    def fake_evaluate(cfg, **kwargs):
        seen["batch_size"] = cfg["DataLoader"]["Eval"]["sampler"]["batch_size"]
        raise SystemExit(0)

    monkeypatch.setattr(evaluator, "evaluate", fake_evaluate)
    monkeypatch.setattr(sources, "check_list_file", lambda cfg, split: None)
    runner.invoke(app, ["eval", "--recipe", "demo", "--batch-size", "3"])
    assert seen == {"batch_size": 3}
