"""Validate API responses against docs/openapi.json (the committed, generated document).

:func:`validating_hooks` gives httpx event hooks that check every response a test
client receives: its path and method must be an operation of the document, its
status one the operation lists, and a JSON body must validate against the
schema given for that status (JSON Schema 2020-12, ``jsonschema``). Streams
(``text/event-stream``) and text bodies are checked by media type only; the
events' data has its own schemas (:func:`validate_schema`).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
VALIDATED: dict[tuple[str, str, str], int] = {}  # (method, path template, status) -> responses checked


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    return json.loads(DOC_PATH.read_text())


@lru_cache(maxsize=1)
def _templates() -> list[tuple[re.Pattern, str]]:
    """Path templates as regexes, literal paths first (as Starlette's routes are ordered)."""
    out = []
    for template in document()["paths"]:
        pattern = "^" + re.sub(r"\{[^/}]+\}", "[^/]+", template) + "$"
        out.append((re.compile(pattern), template))
    return sorted(out, key=lambda t: t[1].count("{"))


def operation_of(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    method = "get" if method.upper() == "HEAD" else method.lower()
    for pattern, template in _templates():
        if pattern.match(path):
            op = document()["paths"][template].get(method)
            if op is not None:
                return template, op
    return None


def validate_schema(instance: Any, schema: dict[str, Any]) -> None:
    """Validate ``instance`` against ``schema``, whose refs point into the document's components."""
    root = {"components": document()["components"], **schema}
    Draft202012Validator(root).validate(instance)


def check_response(response: httpx.Response) -> None:
    request = response.request
    path = request.url.path
    if path.startswith("/explorer"):
        return  # static files, not part of the JSON API
    found = operation_of(request.method, path)
    ctype = response.headers.get("content-type", "").split(";")[0]
    if found is None:  # not a documented operation: only the error shape (404 no route, 405 method)
        assert response.status_code in (404, 405), f"{request.method} {path} is not in openapi.json"
        validate_schema(response.json(), {"$ref": "#/components/schemas/Error"})
        return
    template, op = found
    status = str(response.status_code)
    if response.status_code in (405, 431, 413):  # the HTTP edge, documented for every path in info.description
        validate_schema(response.json(), {"$ref": "#/components/schemas/Error"})
        return
    assert status in op["responses"], f"{request.method} {template} answered {status}, not documented"
    content = op["responses"][status].get("content", {})
    if request.method == "HEAD":
        return
    if not content:  # documented without a body (a redirect)
        assert not response.content, f"{request.method} {template} {status}: a body where none is documented"
        VALIDATED[(request.method, template, status)] = VALIDATED.get((request.method, template, status), 0) + 1
        return
    assert ctype in content, f"{request.method} {template} {status}: content-type {ctype} not documented"
    if ctype == "application/json":
        validate_schema(response.json(), content[ctype]["schema"])
    VALIDATED[(request.method, template, status)] = VALIDATED.get((request.method, template, status), 0) + 1


async def _async_hook(response: httpx.Response) -> None:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        check_response(response)  # status and media type; the body is a stream
        return
    await response.aread()
    check_response(response)


def validating_hooks() -> dict[str, list]:
    """``event_hooks`` for an ``httpx.AsyncClient``."""
    return {"response": [_async_hook]}
