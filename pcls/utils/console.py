"""The Rich console every pcls output goes through: the terminal's width on a terminal, and never a cut path or
number when the output is a file or a pipe.

A path is what the user copies next, so when stdout/stderr is redirected the console is as wide as the content
needs: tables keep whole cells, progress bars print as one full line per task, nothing wraps. (Rich would
otherwise assume 80 columns and put `…` in the middle of a run directory.)
"""

from __future__ import annotations

from rich.console import Console, ConsoleDimensions

PIPED_WIDTH = 10_000  # "as wide as needed": Rich lays out tables to their content and only cuts past this


class PipeConsole(Console):
    """A `rich.console.Console` whose width, when it does not write to a terminal, is PIPED_WIDTH.

    The check happens on every print, so a console created at import time follows whatever `sys.stdout` or
    `sys.stderr` is at the time (a test runner's capture, a redirected file). An explicit `width=` wins."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if kwargs.get("width") is None:
            self._width = None  # Rich copied $COLUMNS here; `size` still reads it on a terminal, not on a pipe

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(PIPED_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size) -> None:
        self._width, self._height = new_size
