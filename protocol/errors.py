"""Error types for the sans-IO protocol layer, split by who is at fault.

* :class:`ProtocolError` — base of everything raised here. Catch one of the
  two below instead: catching the base also swallows our own bugs.
* :class:`RemoteProtocolError` — the input is bad: a peer's or a client's
  fault. Drop it, count it by ``reason``, maybe penalise the sender; never
  crash, never change state. Its two kinds:

  - :class:`DecodeError` — bytes that are not canonical branchnet encoding;
  - :class:`ValidationError` — well-formed bytes whose content breaks a rule
    (bad field, bad signature, stale sequence number, ...).
* :class:`LocalProtocolError` — *we* misused the API (a bug in our code). It
  must propagate: code that handles peers' input never catches it.

Every error carries ``field`` (which part of the input) and ``reason`` (a short
stable slug usable as a metrics label) so callers can count rejections by reason.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class. ``reason`` is a stable slug; ``field`` names the bad input."""

    reason: str = "protocol_error"

    def __init__(self, message: str, *, field: str = "", reason: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        if reason is not None:
            self.reason = reason


class RemoteProtocolError(ProtocolError):
    """The input breaks the protocol: the fault of whoever sent it, never ours."""

    reason = "bad_input"


class DecodeError(RemoteProtocolError):
    """Input bytes are not a canonical encoding of the expected structure."""

    reason = "decode"


class ValidationError(RemoteProtocolError):
    """Input decodes but breaks a rule of the protocol."""

    reason = "invalid"


class SignatureError(ValidationError):
    """A signature does not verify under the claimed key, domain and chain id."""

    reason = "bad_signature"


class LocalProtocolError(ProtocolError):
    """Our own code misused the protocol API; this is a bug, not bad input."""

    reason = "local_misuse"
