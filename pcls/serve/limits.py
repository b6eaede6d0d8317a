"""What the server refuses before a route sees the request: bodies over the size limit (413) and, with an API key,
requests without `Authorization: Bearer KEY` (401). Both are plain ASGI middleware, so a refused body is never
read into memory, and both answer in the API's error shape (`pcls.serve.errors.error_body`)."""

from __future__ import annotations

import hmac
import json
from typing import Iterable, Optional

from pcls.serve.errors import error_body

DEFAULT_MAX_BODY_MB = 20.0


async def send_error(send, status: int, message: str, headers: Iterable = ()) -> None:
    body = json.dumps(error_body(status, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *[(k.encode(), v.encode()) for k, v in headers]]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a request body above `max_bytes`: at once when Content-Length says so, else (a chunked upload)
    as soon as the bytes read pass the limit; the app then reads a disconnect, and its own answer is dropped."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    def _message(self) -> str:
        return (f"request body is larger than the server's limit of {self.max_bytes / 1e6:g} MB "
                "(pcls serve --max-body-mb raises it)")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await send_error(send, 413, self._message())
        seen, started, refused = 0, False, False

        async def limited_receive():
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not started:
                    refused = True
                    await send_error(send, 413, self._message())
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message):
            nonlocal started
            if refused:
                return  # the 413 has been sent
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, tracking_send)


class ApiKey:
    """With a key, every path but `open_paths` needs `Authorization: Bearer KEY` (compared in constant time)."""

    def __init__(self, app, key: Optional[str], open_paths=("/health",)):
        self.app, self.open_paths = app, tuple(open_paths)
        self.expected = f"Bearer {key}".encode() if key else None

    async def __call__(self, scope, receive, send):
        if self.expected is None or scope["type"] != "http" or scope["path"] in self.open_paths:
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(given, self.expected):
            what = "a wrong API key" if given else "no API key"
            return await send_error(send, 401, f"{what}: send the header 'Authorization: Bearer KEY' with the key "
                                               "the server was started with", [("www-authenticate", "Bearer")])
        await self.app(scope, receive, send)
