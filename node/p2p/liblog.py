"""py-libp2p's log records, made fit for an operator's log: one line per event,
and libp2p's expected noise at DEBUG.

What upstream (py-libp2p 0.8.1) does that we undo here:

* **Expected events at ERROR.** ``transport/tcp/tcp.py`` logs every failed dial
  ("Failed to open TCP stream: all attempts to connect to ... failed") at ERROR,
  though a peer that is not up yet is the normal start of every network and
  ``peers.py`` redials it; ``protocol_muxer/multiselect_client.py`` logs a stream
  negotiation that the peer cut ("MultiselectClient handshake: read failed") at
  ERROR, and ``host/basic_host.py`` then logs the same failure again as a
  seven-line ERROR block ("Failed to open stream to peer ...: Error: ...
  Registry Stats: None") before raising it to the caller, who handles it.
* **Tracebacks for a clean stop.** ``network/swarm.py: Swarm.add_conn`` catches
  ``BaseException`` around starting a new connection's muxer and logs a WARNING
  with the formatted traceback pasted into the message ("[ADDCONN_FAIL] ...
  LifecycleError('Cannot schedule task after service has stopped')"). A
  connection whose upgrade completes while the swarm's service manager stops
  -- every SIGTERM of a connected node -- takes that path; so does a trio
  ``Cancelled`` at shutdown.
* **A peer that went away, at ERROR.** ``stream_muxer/yamux/yamux.py`` logs a
  connection the peer closed or reset ("Error in handle_incoming for peer ...:
  ConnectionClosedError: TCP connection reset by peer", "Yamux connection closed
  unexpectedly", "Incomplete read for data on stream 9: Connection closed during
  read operation") at ERROR or WARNING; every peer that stops causes it, and
  ``peers.py`` redials. Other Yamux errors keep their level.
* **A hostile peer's bytes, at ERROR.** ``pubsub/utils.py`` logs a signed peer
  record that does not parse ("Failed to update the Certified-Addr-Book: Error
  parsing message ...") at ERROR; ``pubsub.py`` counts the same event as the
  peer's fault (``bad_sender_record``) and logs it once.
* **Multi-line messages** in general, and ``network/connection/swarm_connection.py``
  logs through the *root* logger (``logging.warning(...)``), not its own.

``install()`` puts a relay handler on the ``libp2p`` logger (instead of letting it
propagate) that rewrites each record with :func:`tidy` and hands it to the root
logger's handlers; and a filter on the root logger that does the same for
libp2p's root-level calls. Demoted records are shown only when the
``node.p2p.libp2p`` logger is enabled for DEBUG (``--log-level debug``, or
``BRANCHNET_DEBUG_LOGGERS=node.p2p.libp2p``); the refusals that matter are
logged by our own code, one line each, with the reason (``host.py``: allowlist,
``pnet.py``: network key, ``peers.py``: the refused dialer's side).
"""

from __future__ import annotations

import logging

KNOB = "node.p2p.libp2p"  # enable DEBUG on this logger to see libp2p's demoted noise

# (logger name, message prefix): libp2p events that are expected and handled by
# their caller (a redial, a counted stream failure, a connection torn down at stop).
_EXPECTED = (
    ("libp2p.transport.tcp.tcp", "Failed to open TCP stream"),
    ("libp2p.protocol_muxer.multiselect_client", "MultiselectClient handshake"),
    ("libp2p.host.basic_host", "Failed to open stream to peer"),
    ("libp2p.network.swarm", "failed to upgrade security for peer"),  # pnet.py/host.py log why
    ("libp2p.network.swarm", "fail to upgrade mux for peer"),
    ("libp2p.network.swarm", "Failed to establish replacement connection"),
    # a peer's RPC carried a signed peer record that does not parse: pubsub.py counts and
    # logs it as the peer's fault (bad_sender_record), one INFO line
    ("libp2p.pubsub.utils", "Failed to update the Certified-Addr-Book"),
)
# Swarm.add_conn failures that mean "we are stopping" or "the peer went away meanwhile"
_STOPPING = ("LifecycleError", "Cancelled", "Connection closed while starting")
# Yamux's reader reports a peer that closed or reset its connection at ERROR/WARNING
# ("Error in handle_incoming for peer ...: ConnectionClosedError: TCP connection reset
# by peer"); the peer manager notices the drop and redials it.
_YAMUX = "libp2p.stream_muxer.yamux.yamux"
_PEER_WENT_AWAY = ("ConnectionClosedError", "ClosedResourceError", "connection reset", "Connection closed")


def is_expected(record: logging.LogRecord, message: str) -> bool:
    """True if ``record`` (from libp2p) reports an expected, handled event."""
    if message.startswith("[ADDCONN_FAIL]"):
        first = message.split("\n", 1)[0]
        return any(word in first for word in _STOPPING)
    if record.name == "root":  # swarm_connection.py's stray logging.warning calls: close/reset races
        return True
    if record.name == _YAMUX and (message.startswith("Error in handle_incoming for peer")
                                  or message.startswith("Yamux connection closed unexpectedly")
                                  or message.startswith("Incomplete read for data on stream")):
        return any(word in message for word in _PEER_WENT_AWAY)
    return any(record.name == name and message.startswith(prefix) for name, prefix in _EXPECTED)


def one_line(message: str) -> str:
    """libp2p's multi-line messages as one line (an embedded traceback is dropped)."""
    if message.startswith("[ADDCONN_FAIL]"):
        return message.split("\n", 1)[0]
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return ""
    head, rest = lines[0].rstrip(":"), lines[1:]
    return head if not rest else f"{head}: {'; '.join(rest)}"


def tidy(record: logging.LogRecord) -> logging.LogRecord | None:
    """Rewrite a libp2p record in place: one line, no traceback, expected noise at
    DEBUG; None if it is to be dropped (demoted while DEBUG is off for KNOB)."""
    message = record.getMessage()
    text = one_line(message)
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        text = f"{text} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    record.msg, record.args = text, None
    record.exc_info, record.exc_text, record.stack_info = None, None, None
    if is_expected(record, message):
        if not logging.getLogger(KNOB).isEnabledFor(logging.DEBUG):
            return None
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return record


class _Relay(logging.Handler):
    """On the ``libp2p`` logger (which no longer propagates): tidy, then pass to root's handlers."""

    def handle(self, record: logging.LogRecord) -> bool:
        tidied = tidy(record)
        if tidied is None:
            return False
        logging.getLogger().callHandlers(tidied)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover (handle() does the work)
        pass


class _RootFilter(logging.Filter):
    """On the root logger: libp2p's root-level ``logging.warning`` calls, tidied."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "/libp2p/" not in record.pathname.replace("\\", "/"):
            return True
        return tidy(record) is not None


def install(level: int = logging.WARNING) -> None:
    """Route libp2p's records through :func:`tidy` into the root logger's handlers,
    creating them at ``level`` and above. Idempotent."""
    import libp2p  # noqa: F401  (its import configures the libp2p logger)

    root = logging.getLogger()
    if not root.handlers:  # so libp2p's root-level logging.warning never runs basicConfig()
        root.addHandler(logging.NullHandler())
    if not any(isinstance(f, _RootFilter) for f in root.filters):
        root.addFilter(_RootFilter())
    lib = logging.getLogger("libp2p")
    lib.setLevel(level)
    lib.propagate = False
    for handler in list(lib.handlers):
        if not isinstance(handler, _Relay):
            lib.removeHandler(handler)
    if not any(isinstance(h, _Relay) for h in lib.handlers):
        lib.addHandler(_Relay())
