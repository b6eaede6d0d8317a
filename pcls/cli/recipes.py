"""`pcls recipes`: the built-in recipes (documented experiments) and their trick tables."""

import typer

from pcls.cli.common import not_implemented

app = typer.Typer(help="List and show the built-in recipes.", no_args_is_help=True, rich_markup_mode=None)


@app.command("list")
def _list():
    """Not implemented yet."""
    not_implemented("recipes list")
