"""`pcls train` and `pcls eval`."""

import typer

from pcls.cli.common import not_implemented


def register(app: typer.Typer) -> None:
    @app.command("train")
    def _train():
        """Train a classifier from a config or recipe. Example: pcls train --recipe demo"""
        not_implemented("train")

    @app.command("eval")
    def _eval():
        """Evaluate weights on a labelled list. Example: pcls eval -c cfg.yaml --weights output/run/best_model"""
        not_implemented("eval")

    from pcls.cli import distill

    distill.register(app)
