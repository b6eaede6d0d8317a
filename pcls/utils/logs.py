"""Library logging: every module logs to `logging.getLogger(__name__)` under the `pcls` logger; whoever runs
pcls decides where it goes (the CLI installs a Rich handler, a training worker a plain stderr one).

`forward_logs(fn)` hands a run's messages to a callable as well (a notebook, a test collecting lines).
`route_warnings()` makes Python warnings pcls log lines too, dropping those nobody can act on.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings

ROOT = "pcls"


class _Forward(logging.Handler):
    def __init__(self, fn):
        super().__init__(logging.INFO)
        self.fn = fn

    def emit(self, record):
        self.fn(record.getMessage())


@contextlib.contextmanager
def forward_logs(fn, level=logging.INFO):
    """Within the block, also pass every pcls log message at `level` or above to `fn(message)`."""
    logger = logging.getLogger(ROOT)
    handler = _Forward(fn)
    handler.setLevel(level)
    previous = logger.level
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def install_handler(handler: logging.Handler, level=logging.INFO) -> None:
    """Make `handler` the one output of pcls's logs (replacing any installed before)."""
    logger = logging.getLogger(ROOT)
    for old in [h for h in logger.handlers if getattr(h, "_pcls_owned", False)]:
        logger.removeHandler(old)
    handler._pcls_owned = True
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def log_to_stderr(level=logging.INFO) -> None:
    """Plain `message` lines on stderr (training workers: the launcher keeps them in workerlog.N)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    install_handler(handler, level)


# Warnings third-party code raises on every run that say nothing a pcls user can act on (`--debug` shows them).
UNACTIONABLE_WARNINGS = (
    r"No ccache found",  # `import paddle`: about compiling C++ extensions, which pcls never does
)


def drop_unactionable_warnings() -> None:
    """Filter UNACTIONABLE_WARNINGS out of Python's warnings; `import pcls` does it, before anything imports
    paddle, so a library user never sees "No ccache found" either (PCLS_DEBUG=1 keeps them)."""
    import os

    if os.environ.get("PCLS_DEBUG") == "1":
        return
    for pattern in UNACTIONABLE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


def route_warnings(debug: bool = False) -> None:
    """Python warnings as pcls log lines: UNACTIONABLE_WARNINGS dropped, any other one message on the
    `pcls.warnings` logger, shown by whatever handler the caller installed. With `debug`, Python's own
    display (file, line, source) is kept and nothing is dropped."""
    if debug:
        return
    drop_unactionable_warnings()
    warnings.showwarning = _log_warning


def _log_warning(message, category, filename, lineno, file=None, line=None):
    logging.getLogger(ROOT + ".warnings").warning("%s: %s", category.__name__, message)
