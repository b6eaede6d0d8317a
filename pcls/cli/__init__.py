"""The `pcls` command tree. Each subcommand lives in its own module and imports paddle only in its body."""

from __future__ import annotations

import os
import re
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
    into one red line and exit code 2 (traceback only with --debug). Built, it gives every command one help
    style (`_help_style`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            _help_style(command)

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
        except ModuleNotFoundError as err:
            if err.name != "paddle":
                raise
            from pcls.doctor.paddle_guard import MISSING_MESSAGE

            _report(PclsError(MISSING_MESSAGE))
            raise typer.Exit(2) from None
        except OSError as err:
            if err.filename is None:  # not about a file the user named: a bug to see, not to hide
                raise
            from pcls.utils.io import file_error

            _report(file_error(err))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            from pcls.cli.common import console

            console.print("interrupted", style="yellow")
            raise typer.Exit(130) from None


def _first_sentence(text: str) -> str:
    paragraph = text.strip().split("\n\n")[0]
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(paragraph.split()), maxsplit=1)[0]


def _help_style(command) -> None:
    """One help style for every command and subcommand: a command list shows each command's whole first
    sentence (click cuts it at 45 characters with "..."), and a value's placeholder is a word in capitals
    (N, NUM, ROOT) where a command did not name one, instead of Typer's `<str>` / `{directory}`."""
    if not command.short_help and command.help:
        command.short_help = _first_sentence(command.help)
    for param in command.params:
        if isinstance(param.default, str) and param.default and not param.default.strip():
            param.show_default = False  # "[default:  ]" says nothing; the help text names the blank
        if param.metavar is not None or getattr(param, "is_flag", False):
            continue
        kind = param.display_type(None) or ""
        if "|" in kind:  # choices: the list of values is the placeholder
            continue
        if param.param_type_name == "argument":
            param.metavar = param.name.upper()
        elif "int" in kind:
            param.metavar = "N"
        elif "float" in kind:
            param.metavar = "NUM"
        else:
            param.metavar = max(param.opts, key=len).lstrip("-").replace("-", "_").upper()
    for child in getattr(command, "commands", {}).values():
        _help_style(child)


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
    from pcls.cli import bench, data, deploy, distill, doctor, recipes, serve, train, zoo

    app.add_typer(data.app, name="data")
    app.add_typer(zoo.app, name="zoo")
    train.register(app)  # train, eval
    distill.register(app)
    deploy.register(app)  # export, predict
    bench.register(app)
    serve.register(app)
    app.add_typer(recipes.app, name="recipes")
    doctor.register(app)


_register()


def main(argv: Optional[list] = None) -> None:
    """Console-script entry point."""
    if argv is None:
        argv = sys.argv[1:]
    if COMPLETE_VAR in os.environ:  # a shell asking for completions (see completions/)
        import typer.completion

        typer.completion.completion_init()
    app(args=argv, prog_name="pcls")
