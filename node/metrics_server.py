"""``[metrics] listen``: a listener that serves only ``GET /metrics``.

For a Prometheus that should reach the metrics but not the API (the API keeps
its own /metrics). HTTP/1.0-style and deliberately tiny: one request per
connection, the request head bounded (8 KiB) and read within 5 s, anything but
``GET /metrics`` answered 404 (405 for another method). The socket is bound by
:func:`node.listen.bind_tcp`, so a port in use is a one-line ConfigError naming
``[metrics] listen``.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from .listen import bind_tcp

log = logging.getLogger("branchnet.metrics")

MAX_HEAD = 8192
READ_TIMEOUT = 5.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def _read_head(stream: trio.SocketStream) -> bytes | None:
    head = b""
    with trio.move_on_after(READ_TIMEOUT):
        while b"\r\n\r\n" not in head and b"\n\n" not in head and len(head) < MAX_HEAD:
            chunk = await stream.receive_some(MAX_HEAD)
            if not chunk:
                break
            head += chunk
        return head
    return None


def _response(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


async def _serve_one(metrics: Any, stream: trio.SocketStream) -> None:
    async with stream:
        try:
            head = await _read_head(stream)
            if not head:
                return
            parts = head.split(b"\r\n", 1)[0].split()
            if len(parts) < 2:
                await stream.send_all(_response("400 Bad Request", b"bad request\n"))
            elif parts[0] != b"GET":
                await stream.send_all(_response("405 Method Not Allowed", b"only GET /metrics\n"))
            elif parts[1].split(b"?", 1)[0] != b"/metrics":
                await stream.send_all(_response("404 Not Found", b"only /metrics is served here\n"))
            else:
                await stream.send_all(_response("200 OK", metrics.render(), CONTENT_TYPE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the scraper went away


async def serve_metrics(metrics: Any, listen: str, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``metrics.render()`` at http://``listen``/metrics until cancelled; report ``(host, port)``."""
    host, _, port = listen.rpartition(":")
    sock = bind_tcp(host.strip("[]"), int(port), what="metrics listen", key="[metrics] listen")
    address = sock.getsockname()[:2]
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    log.info("metrics listening on http://%s:%d/metrics", *address)
    async with trio.open_nursery() as nursery:
        task_status.started(address)
        await trio.serve_listeners(lambda stream: _serve_one(metrics, stream), [listener], handler_nursery=nursery)
