"""The `pcls` command tree. Each subcommand lives in its own module and imports paddle only in its body."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated, Optional

import typer
import typer.core

try:  # typer >= 0.2x carries its own copy of click
    from typer._click.exceptions import UsageError
except ImportError:  # older typer runs on click itself
    from click.exceptions import UsageError

from pcls import __version__
from pcls.errors import PclsError

_state = {"debug": False}
COMPLETE_VAR = "_PCLS_COMPLETE"


class _PclsGroup(typer.core.TyperGroup):
    """Root group: turns PclsError, and the command line's own errors (a bad option value, an unknown option),
    into one red line and exit code 2 (traceback only with --debug)."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as err:  # the root's own options (`pcls --nosuch`)
            _usage_error(err)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PclsError as err:
            _report(err)
            raise typer.Exit(err.exit_code) from None
        except UsageError as err:  # a subcommand's options and arguments
            _usage_error(err)
        except KeyboardInterrupt:
            from pcls.cli.common import console

            console.print("interrupted", style="yellow")
            raise typer.Exit(130) from None


def _report(err: PclsError) -> None:
    from rich.markup import escape

    from pcls.cli.common import console

    if _state["debug"]:
        traceback.print_exception(err, file=sys.stderr)
    console.print(f"[bold red]error:[/bold red] {escape(err.message)}", markup=True, highlight=False, soft_wrap=True)


def _usage_error(err: UsageError):
    """Typer's parameter errors as the same one line as PclsError, pointing at the command's help."""
    if type(err).__name__ == "NoArgsIsHelpError":  # `pcls zoo` alone asks for help: shown as click does
        raise err
    message = " ".join(err.format_message().split())
    if err.ctx is not None:
        message = f"{message.rstrip('.')}; see '{err.ctx.command_path} --help'"
    _report(PclsError(message, err.exit_code))
    raise typer.Exit(err.exit_code) from None


app = typer.Typer(
    name="pcls",
    cls=_PclsGroup,
    help="PaddleClas image classification in one command: pick a pretrained backbone, fine-tune or "
    "distill it on your data, export and deploy it.\n\nExample: pcls train --recipe demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        print(f"pcls {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = None,
):
    _state["debug"] = debug
    from pcls.cli.common import setup_logging

    setup_logging(debug)
    if debug:
        os.environ["PCLS_DEBUG"] = "1"  # pcls.utils.quiet then lets third-party output through


def _register() -> None:
    from pcls.cli import bench, data, deploy, distill, recipes, serve, train, zoo

    app.add_typer(data.app, name="data")
    app.add_typer(zoo.app, name="zoo")
    train.register(app)  # train, eval
    distill.register(app)
    deploy.register(app)  # export, predict
    bench.register(app)
    serve.register(app)
    app.add_typer(recipes.app, name="recipes")


_register()


def main(argv: Optional[list] = None) -> None:
    """Console-script entry point."""
    if argv is None:
        argv = sys.argv[1:]
    if COMPLETE_VAR in os.environ:  # a shell asking for completions (see completions/)
        import typer.completion

        typer.completion.completion_init()
    app(args=argv, prog_name="pcls")
