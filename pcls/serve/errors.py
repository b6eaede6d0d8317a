"""The API's error shape, PaddleX 3's serving protocol: `{"logId", "errorCode": <HTTP status>, "errorMsg"}`."""

from __future__ import annotations

import uuid
from typing import Optional


class ServeError(Exception):
    """A request the server answers with `status` and a one-line `message` for the client."""

    def __init__(self, status: int, message: str, headers: Optional[dict] = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def log_id() -> str:
    return uuid.uuid4().hex


def error_body(status: int, message: str) -> dict:
    return {"logId": log_id(), "errorCode": status, "errorMsg": message}


def success_body(result: dict) -> dict:
    return {"logId": log_id(), "errorCode": 0, "errorMsg": "Success", "result": result}
