"""`pcls bench`: model, end-to-end and data-pipeline throughput."""

import typer

from pcls.cli.common import not_implemented


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def _bench():
        """Measure latency and throughput. Example: pcls bench ResNet50_vd --batch-sizes 1,4,8"""
        not_implemented("bench")
