"""Binding the node's listening sockets, with errors an operator can act on.

Two nodes must never share a port: py-libp2p binds its TCP listener with
``SO_REUSEPORT``, so a second node on a port in use would start "fine" and
the kernel would split incoming connections between the two. Before the p2p
host binds, :func:`probe` binds the port once without ``SO_REUSEPORT``
(which fails if anyone listens there) and closes it; the HTTP API listens on
a socket :func:`bind_tcp` made the same way and hands to Hypercorn.

Every failure is a :class:`node.errors.ConfigError` naming the address, what
it is for and the config key: ``127.0.0.1:26657 is already in use (api
listen, config.toml [api] listen)``.
"""

from __future__ import annotations

import errno
import socket

from .errors import ConfigError


def _fail(host: str, port: int, what: str, key: str, exc: OSError) -> ConfigError:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(f"{where} is already in use ({what}, config.toml {key})")
    if exc.errno == errno.EADDRNOTAVAIL:
        return ConfigError(f"{where} is not an address of this machine ({what}, config.toml {key})")
    if exc.errno == errno.EACCES:
        return ConfigError(f"{where}: permission denied ({what}, config.toml {key}; ports below 1024 need privileges)")
    return ConfigError(f"{where}: cannot listen ({exc.strerror or exc}) ({what}, config.toml {key})")


def _address(host: str, port: int, what: str, key: str) -> tuple[int, tuple]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"{host}:{port}: cannot resolve {host!r} ({exc}) ({what}, config.toml {key})") from None
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def bind_tcp(host: str, port: int, *, what: str, key: str) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free one), never shared."""
    family, sockaddr = _address(host, port, what, key)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT only; not REUSEPORT
        sock.bind(sockaddr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise _fail(host, port, what, key, exc) from None
    return sock


def probe(host: str, port: int, *, what: str, key: str) -> None:
    """Raise ConfigError unless host:port could be listened on right now (port 0: always)."""
    if port == 0:
        _address(host, port, what, key)
        return
    bind_tcp(host, port, what=what, key=key).close()
