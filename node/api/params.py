"""Request parameters of the HTTP API, and the error answer they raise.

Every parser raises :class:`ApiError` (400 ``bad_hex`` or ``bad_param``)
naming the parameter, which the app turns into the API's error shape.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse


class ApiError(Exception):
    """An error answer: HTTP status, a stable ``code`` slug, the offending ``field``."""

    def __init__(self, status: int, code: str, message: str, field: str = "", *, counted: bool = False,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.counted = counted  # already counted by RecordIngest
        self.headers = headers


def error_response(status: int, code: str, message: str, field: str = "", headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "field": field, "message": message}}, status_code=status, headers=headers)


def query_params(request: Request) -> dict[str, str]:
    """Query parameters; an empty value (``?category=``) means the parameter is absent."""
    return {k: v for k, v in request.query_params.items() if v != ""}


def hex_param(value: str, field: str, size: int) -> bytes:
    if len(value) != 2 * size:
        raise ApiError(400, "bad_hex", f"must be {2 * size} hex characters", field)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ApiError(400, "bad_hex", "not valid hex", field) from None


def int_param(value: str | None, field: str, *, default: int | None, lo: int, hi: int) -> int | None:
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise ApiError(400, "bad_param", "must be a non-negative integer", field)
    n = int(value)
    if not lo <= n <= hi:
        raise ApiError(400, "bad_param", f"must be between {lo} and {hi}", field)
    return n


def cursor_param(value: str | None) -> tuple[int, int] | None:
    """``HEIGHT:INDEX`` from a previous page's ``next_cursor``."""
    if value is None:
        return None
    height, sep, index = value.partition(":")
    if not sep:
        raise ApiError(400, "bad_param", "must be HEIGHT:INDEX, as next_cursor gives it", "cursor")
    return int_param(height, "cursor", default=None, lo=1, hi=2**62), int_param(index, "cursor", default=None, lo=0, hi=2**32)


def choice_param(value: str | None, field: str, allowed: tuple[str, ...] | Any) -> str | None:
    if value is not None and value not in allowed:
        raise ApiError(400, "bad_param", f"must be one of {', '.join(allowed)}", field)
    return value


def text_param(value: str | None, field: str, max_len: int = 64) -> str | None:
    if value is not None and not 1 <= len(value) <= max_len:
        raise ApiError(400, "bad_param", f"must be 1-{max_len} characters", field)
    return value
