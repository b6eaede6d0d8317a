"""What every command shares: consoles, the error contract, --json output, progress bars, config options,
and where library logs go (`setup_logging`: pcls's `logging` records printed on the stderr console).

Results go to stdout (`out`), logs and progress to stderr (`console`), so `--json` output can be piped. Both are
`PipeConsole`s: written to a file or pipe they never cut a path or a number. Nothing here imports paddle.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated, Any, Iterable, List, Optional

import typer
from rich.table import Table

from pcls.errors import PclsError
from pcls.utils.console import PipeConsole

# markup=False: paths, class names and messages are printed as they are ("[plot]", "data/[a]/x.jpg"); the few
# styled lines say so with style=... (or markup=True around rich.markup.escape'd text).
out = PipeConsole(soft_wrap=True, markup=False)
console = PipeConsole(stderr=True, markup=False)


class ConsoleHandler(logging.Handler):
    """pcls log records as console lines: warnings in yellow, errors in red; no Rich markup is interpreted."""

    STYLES = {logging.WARNING: "yellow", logging.ERROR: "red", logging.CRITICAL: "red"}

    def emit(self, record):
        try:
            console.print(record.getMessage(), style=self.STYLES.get(record.levelno), markup=False,
                          highlight=False, soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging must never take the command down
            self.handleError(record)


def setup_logging(debug: bool = False) -> None:
    """Send the library's log records (the `pcls` logger) and Python warnings to the stderr console, leaving
    out the warnings nobody can act on unless `debug`."""
    from pcls.utils.logs import install_handler, route_warnings

    install_handler(ConsoleHandler(), logging.DEBUG if debug else logging.INFO)
    route_warnings(debug)


def fail(message: str, exit_code: int = 2) -> None:
    """Raise the user-facing error; the root command prints it as one line and exits."""
    raise PclsError(message, exit_code)


def not_implemented(command: str) -> None:
    fail(f"'pcls {command}' is not implemented yet")


def print_json(data: Any) -> None:
    """Machine-readable output on stdout (plain print, so no Rich wrapping or markup)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(value):
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    return str(value)


def table(title: Optional[str], columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    """A Rich table from plain rows; None cells print as '-'. A cell too long for a terminal folds onto the next
    line instead of ending in '…' (paths are copied from these tables); piped, nothing needs folding."""
    t = Table(title=title, show_lines=False)
    for column in columns:
        t.add_column(column, overflow="fold")
    for row in rows:
        t.add_row(*("-" if cell is None else str(cell) for cell in row))
    return t


def progress(transient: bool = False):
    """A Rich progress bar on stderr with count, rate and ETA columns. Piped, a bar prints once, as one whole line
    when it stops; a transient one prints nothing (Rich would leave an empty line)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}", style="progress.description", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}", markup=False),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}", markup=False),
        console=console,
        transient=transient,
        disable=transient and not console.is_terminal,
    )


# Options shared by every command that reads a training config (train, eval, distill, export).
ConfigOpt = Annotated[
    Optional[str], typer.Option("-c", "--config", help="A PaddleClas 2.x YAML config file.", metavar="FILE")
]
def complete_recipe(incomplete: str) -> list:
    """Shell completion of recipe names (imported only when completing: no paddle, no config loading)."""
    from pcls.recipes import complete_recipe_names

    return complete_recipe_names(incomplete)


RecipeOpt = Annotated[
    Optional[str], typer.Option("--recipe", help="A built-in recipe name (see 'pcls recipes list').", metavar="NAME",
                                autocompletion=complete_recipe)
]
OverrideOpt = Annotated[
    Optional[List[str]],
    typer.Option(
        "-o",
        "--override",
        help="Override one config value, e.g. -o Global.epochs=10 (value parsed as YAML). Repeatable.",
        metavar="KEY=VALUE",
    ),
]
PrintConfigOpt = Annotated[bool, typer.Option("--print-config", help="Print the resolved config as YAML and exit.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of a table.")]


def resolve_config(config: Optional[str], recipe: Optional[str], overrides: Optional[List[str]], required=True):
    """Load -c/--recipe plus -o overrides through the one config entry point (validated)."""
    from pcls.config import load_config

    if config and recipe:
        fail("give either -c/--config FILE or --recipe NAME, not both")
    if not config and not recipe:
        if required:
            fail("no config given: pass -c FILE or --recipe NAME (see 'pcls recipes list')")
        return None
    return load_config(config or recipe, overrides or [], is_recipe=bool(recipe))


def print_config(cfg) -> None:
    from pcls.config import dump_config

    sys.stdout.write(dump_config(cfg))
