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
