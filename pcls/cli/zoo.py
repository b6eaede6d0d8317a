"""`pcls zoo`: Browse and download the pretrained model zoo."""

import typer

from pcls.cli.common import not_implemented

app = typer.Typer(help="Browse and download the pretrained model zoo.", no_args_is_help=True, rich_markup_mode=None)


@app.command("list")
def _list():
    """Not implemented yet."""
    not_implemented("zoo list")


@app.command("info")
def _info():
    """Not implemented yet."""
    not_implemented("zoo info")


@app.command("download")
def _download():
    """Not implemented yet."""
    not_implemented("zoo download")


@app.command("path")
def _path():
    """Not implemented yet."""
    not_implemented("zoo path")
