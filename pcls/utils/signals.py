"""Handling SIGINT and SIGTERM for the length of a `with` block (the trainer's stop flag; the data loader's
waits can use it too)."""

from __future__ import annotations

import signal
import threading


class SignalScope:
    """While inside `with`, SIGINT and SIGTERM call `self._handle(signum, frame)`; `self.previous` holds the
    handlers it replaced, put back on exit. Outside the main thread (where Python cannot install handlers)
    nothing is installed. Subclasses define `_handle`."""

    previous: dict

    def __enter__(self):
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        raise NotImplementedError

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class DeferredStop(SignalScope):
    """SIGINT/SIGTERM recorded, not raised, while Paddle may be running C++ frames (an exception unwinding
    through them aborts the process); `check()` at a safe point then ends the work: KeyboardInterrupt for
    SIGINT, else a one-line PclsError with exit code 128 + the signal."""

    def __init__(self):
        self.unhandled = None

    def _handle(self, signum, frame):
        self.unhandled = self.unhandled or signum

    def check(self) -> None:
        from pcls.errors import PclsError

        if self.unhandled == signal.SIGINT:
            raise KeyboardInterrupt
        if self.unhandled:
            raise PclsError(f"stopped by {signal.Signals(self.unhandled).name}", exit_code=128 + self.unhandled)
