"""`pcls data`: Prepare datasets: flowers102 download, class-folder indexing, list checks, the demo set."""

import typer

from pcls.cli.common import not_implemented

app = typer.Typer(help="Prepare datasets: flowers102 download, class-folder indexing, list checks, the demo set.", no_args_is_help=True, rich_markup_mode=None)


@app.command("flowers102")
def _flowers102():
    """Not implemented yet."""
    not_implemented("data flowers102")


@app.command("index")
def _index():
    """Not implemented yet."""
    not_implemented("data index")


@app.command("check")
def _check():
    """Not implemented yet."""
    not_implemented("data check")


@app.command("demo")
def _demo():
    """Not implemented yet."""
    not_implemented("data demo")
