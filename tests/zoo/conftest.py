"""A local HTTP file server on 127.0.0.1 (in a thread) that can misbehave on purpose, and a clean cache."""

from __future__ import annotations

import http.server
import threading
import time

import pytest


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A client that hangs up mid-body (a read timeout under test) is expected, not worth a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FileServer:
    """Serves `files` (path -> bytes) with HTTP Range support, recording every request's headers.

    cut_once: paths whose first full (non-Range) response announces the whole Content-Length but closes
    after half the body. fail_once: path -> status returned once before serving normally. fail_always:
    path -> status returned to every request.
    chunk_delay: seconds slept between 16 KiB chunks, to keep a download in flight.
    redirects: path -> Location answered with 302. trickle: path -> seconds between single bytes of the body.
    silent: paths whose requests get no answer at all (until the server stops).
    """

    def __init__(self):
        self.files: dict = {}
        self.requests: list = []  # (path, headers dict)
        self.cut_once: set = set()
        self.fail_once: dict = {}
        self.fail_always: dict = {}
        self.chunk_delay = 0.0
        self.redirects: dict = {}
        self.trickle: dict = {}
        self.silent: set = set()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def gets(self, path: str) -> list:
        """Headers of each GET of `path`, in order."""
        return [headers for p, headers in self.requests if p == path]

    def _handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.requests.append((self.path, headers))
                    status = server.fail_once.pop(self.path, server.fail_always.get(self.path))
                if status is not None:
                    return self._reply(status, b"try again later")
                if self.path in server.silent:
                    server.stopping.wait(60)  # never answers (bounded, so no thread outlives the test for long)
                    return
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                body = server.files.get(self.path)
                if body is None:
                    return self._reply(404, b"not found")
                etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
                first = 0
                wanted = headers.get("range", "")
                if wanted.startswith("bytes=") and headers.get("if-range", etag) == etag:
                    first = int(wanted[len("bytes="):].split("-")[0])
                    if first >= len(body):
                        return self._reply(416, b"")
                self.send_response(206 if first else 200)
                self.send_header("Content-Length", str(len(body) - first))
                self.send_header("ETag", etag)
                self.send_header("Accept-Ranges", "bytes")
                if first:
                    self.send_header("Content-Range", f"bytes {first}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                payload = body[first:]
                if not first and self.path in server.cut_once:
                    server.cut_once.discard(self.path)
                    payload = payload[: len(payload) // 2]
                    self.close_connection = True
                if self.path in server.trickle:
                    for index in range(len(payload)):
                        if server.stopping.wait(server.trickle[self.path]):
                            return
                        self.wfile.write(payload[index : index + 1])
                        self.wfile.flush()
                for start in range(0, len(payload), 1 << 14):
                    self.wfile.write(payload[start : start + (1 << 14)])
                    if server.chunk_delay:
                        time.sleep(server.chunk_delay)
                self.wfile.flush()

            def _reply(self, status, body):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def file_server():
    with FileServer() as server:
        yield server


@pytest.fixture
def pcls_home(tmp_path, monkeypatch):
    """An empty $PCLS_HOME, online, no mirror, fast retries."""
    home = tmp_path / "pcls_home"
    monkeypatch.setenv("PCLS_HOME", str(home))
    monkeypatch.delenv("PCLS_OFFLINE", raising=False)
    monkeypatch.delenv("PCLS_ZOO_MIRROR", raising=False)
    monkeypatch.setattr("pcls.zoo.download.BACKOFF_S", 0.01)
    return home
