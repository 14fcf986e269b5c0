"""The node's errors, split by whose fault they are (h11's rule).

=================================  ==========================================
fault                              what the node does
=================================  ==========================================
a remote party's bad data          ``protocol.errors.RemoteProtocolError``
                                   (``DecodeError``, ``ValidationError``,
                                   ``MempoolRejected``): drop it, count it by
                                   reason, maybe penalise the peer; keep
                                   running, change no state. Code that handles
                                   peers' or clients' input catches only this
                                   (and the transport's ``P2PError``).
our own misuse (a bug)             ``protocol.errors.LocalProtocolError`` and
                                   anything unexpected: it propagates and
                                   stops the node loudly (and fails tests).
the operator's setup or damaged    :class:`FatalError` and its subclasses: the
local files                        node refuses to start (or stops) with ONE
                                   line saying what is wrong, which file, and
                                   the command that recovers.
=================================  ==========================================
"""

from __future__ import annotations


class FatalError(Exception):
    """The node cannot start or keep running. ``str(exc)`` is the line to print."""


class ConfigError(FatalError, ValueError):
    """A setting or input file of the operator's is invalid; the message names it."""


class StorageDamaged(FatalError):
    """A file the node keeps (database, signer state, key) is damaged or not ours.
    The message names the file and the recovery command; the node never runs on."""


class ChainHalted(FatalError):
    """Something that must never happen happened (e.g. a fork). The node stops."""
