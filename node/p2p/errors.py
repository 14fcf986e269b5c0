"""Errors of the p2p layer, split by who is at fault.

- ``PeerUnavailable``: the peer could not be reached or its stream broke
  (transient; retry later or ask another peer).
- ``ProtocolUnsupported`` (a ``PeerUnavailable``): the peer answered that it
  does not serve the protocol (multistream-select "na"); asking again will not
  help until it changes.
- ``RequestTimeout``: no response within the caller's deadline.
- ``RequestFailed``: the peer answered with an error (its handler raised, it
  rejected our frame, or it sent malformed frames).
- ``ConfigError`` (:mod:`node.errors`): a bad listen address, peer address or
  network key in the operator's configuration.
- ``FrameError``: a frame violates the framing rules (oversize, short,
  truncated). Raised locally for our own oversize payloads (a caller bug) and
  used internally when a peer sends garbage (the stream is then dropped and
  counted, never crashing anything).
"""

from __future__ import annotations


class P2PError(Exception):
    """Base class of all errors raised by node.p2p."""


class PeerUnavailable(P2PError):
    """The peer is not connected / cannot be dialed, or the stream broke."""


class ProtocolUnsupported(PeerUnavailable):
    """The peer does not serve the requested protocol (for example a peer that only gossips)."""


class RequestTimeout(P2PError):
    """The request got no response before its deadline."""


class RequestFailed(P2PError):
    """The peer answered with an error, or violated the stream protocol."""


class FrameError(P2PError):
    """A frame is oversize, shorter than its header, or truncated. ``reason``: a metrics label."""

    def __init__(self, message: str, *, reason: str = "bad_frame") -> None:
        super().__init__(message)
        self.reason = reason


# Invalid p2p configuration (the operator's, found at startup) is the node's ConfigError.
from ..errors import ConfigError  # noqa: E402,F401
