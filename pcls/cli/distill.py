"""`pcls distill`."""

import typer

from pcls.cli.common import not_implemented


def register(app: typer.Typer) -> None:
    @app.command("distill")
    def _distill():
        """Distill a teacher into a student (SSLD, KD, DML). Example: pcls distill --recipe flowers102-distill-mv3"""
        not_implemented("distill")
