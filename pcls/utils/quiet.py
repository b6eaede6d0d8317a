"""Silence third-party chatter at the file-descriptor level.

paddle2onnx, Paddle's static-graph export, the TensorRT converter and ONNX Runtime's quantiser print from C++ (and
Python) straight to file descriptors 1 and 2, so `--json` output on stdout would not parse and the user sees lines
they cannot act on. `quiet()` points fds 1 and 2 (and `sys.stdout`/`sys.stderr`) at a temp file for the duration of
the block; the captured text is replayed on stderr when the block fails (it may explain the failure) and discarded
otherwise. With `PCLS_DEBUG=1` (set by `pcls --debug`) nothing is hidden: fd 1 goes to stderr, stdout stays JSON.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading

DEBUG_ENV = "PCLS_DEBUG"
_lock = threading.RLock()  # fds are process-wide: one redirection at a time


@contextlib.contextmanager
def quiet():
    if os.environ.get(DEBUG_ENV) == "1":
        with _lock:
            _flush(sys.stdout)
            saved = os.dup(1)
            os.dup2(2, 1)
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    yield
            finally:
                _flush_c_stdio()
                os.dup2(saved, 1)
                os.close(saved)
        return
    with _lock, tempfile.TemporaryFile(mode="w+b") as sink:
        for stream in (sys.stdout, sys.stderr):
            _flush(stream)
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        failed = False
        try:
            for fd in saved:
                os.dup2(sink.fileno(), fd)
            text_sink = open(sink.fileno(), "w", closefd=False, encoding="utf-8", errors="replace")
            with contextlib.redirect_stdout(text_sink), contextlib.redirect_stderr(text_sink):
                try:
                    yield
                except BaseException:
                    failed = True
                    raise
                finally:
                    text_sink.flush()
        finally:
            _flush_c_stdio()  # text C++ code buffered inside the block must land in the sink, not on stdout later
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            if failed:
                sink.seek(0)
                captured = sink.read().decode("utf-8", errors="replace").strip()
                if captured:
                    sys.stderr.write(captured[-4000:] + "\n")


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to flush (not expected on Linux/macOS)
        pass


def _flush(stream) -> None:
    try:
        stream.flush()
    except (AttributeError, ValueError, OSError):  # a closed or replaced stream has nothing to lose
        pass
