"""The web explorer's files, served at ``/explorer/`` when ``[api] explorer`` is on.

Only static files that ship with the package (``node/api/explorer/``: HTML, ES
modules, CSS); they hold no data. The page reads the public API from the
browser, with the bearer token the user enters when the node sets
``[api] auth_reads``, and verifies what it shows there against the genesis
file. A strict Content-Security-Policy keeps it to this origin: no CDN, no
other network access, no inline script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

EXPLORER_DIR = Path(__file__).with_name("explorer")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-cache")]
MEDIA_TYPES = {".js": b"text/javascript; charset=utf-8", ".css": b"text/css; charset=utf-8",
               ".html": b"text/html; charset=utf-8", ".svg": b"image/svg+xml"}


class _ExplorerFiles:
    """StaticFiles with the explorer's headers, and JS served as JavaScript whatever
    the system's mime.types says (browsers refuse ES modules of another type)."""

    def __init__(self) -> None:
        self.files = StaticFiles(directory=EXPLORER_DIR, html=True)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        media = MEDIA_TYPES.get(Path(scope["path"]).suffix or ".html")

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-type" or media is None]
                if media is not None:
                    headers.append((b"content-type", media))
                message = message | {"headers": headers + HEADERS}
            await send(message)

        await self.files(scope, receive, send_with_headers)


async def _to_explorer(request: Any) -> RedirectResponse:
    return RedirectResponse("/explorer/", status_code=308)


def explorer_routes() -> list:
    """``/explorer`` (a redirect) and ``/explorer/...`` (the files); read-only, no auth."""
    return [Route("/explorer", _to_explorer, methods=["GET", "HEAD"]), Mount("/explorer", app=_ExplorerFiles())]
