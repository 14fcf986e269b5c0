"""The consensus write-ahead log: what a validator must keep before it signs.

Before a proposal or vote leaves the node, the WAL holds, on disk (fsync):

* the :class:`SignerState` that signature implies (never sign anything
  conflicting after a crash; all of them for the current height are kept, so
  a restarted validator still holds every message it signed at that height
  and can give its votes of an earlier round to peers still in that round),
* the whole block of every proposal we sign and of every block we prevote or
  precommit for (so a block a quorum voted for is never lost while one voter
  survives on disk: a power cut of every validator cannot strand it).

Both go into ONE append and ONE fsync (:meth:`ConsensusWAL.append`). On
restart :meth:`ConsensusWAL.load` gives back the last signer state and the
blocks above the committed height; the node puts those blocks among its
candidates, serves them to peers, and the state machine resumes with them.

File ``HOME/data/consensus.wal``::

    file  = "BNWAL1\\n" entry*
    entry = length:u32be  crc32(payload):u32be  payload      (zlib's CRC-32)
    payload = canonical msgpack, one of
        [0, signer_state]          the signer state after a signature
        [1, height, hash, block]   a block we proposed or voted for
        [2, resume_height]         sign nothing below this height (operator's reset)

A damaged *last* entry is a write torn by a crash: it never completed, so the
signature it guarded was never released; it is cut off (and logged). It is
the last one only if no intact entry follows it anywhere. Damage anywhere else, a missing file, or a file that is not a WAL stops the node
with the recovery command: a wrong signer state could double-sign.

Pruning: blocks at or below the committed height are dead weight; once the
file passes ``COMPACT_BYTES`` it is rewritten (atomically) with the signer
state, the resume height and the live blocks only.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from protocol.consensus.signer import SignerState, signed_message
from protocol.encoding import decode, encode, expect_array, expect_bytes, expect_int
from protocol.errors import RemoteProtocolError
from protocol.votes import MAX_HEIGHT

from ..errors import StorageDamaged
from ..fsutil import fsync_path

log = logging.getLogger("branchnet.consensus")

MAGIC = b"BNWAL1\n"
_FRAME = struct.Struct(">II")
MAX_ENTRY_BYTES = 64 << 20
COMPACT_BYTES = 16 << 20
ENTRY_SIGNER, ENTRY_BLOCK, ENTRY_RESUME = 0, 1, 2
_ARRAY_HEADS = frozenset((0x92, 0x93, 0x94))  # every payload is a msgpack array of 2 to 4 elements


class SignerStateMissing(StorageDamaged):
    """A validator has no WAL: it cannot know what it signed before."""


class WalDamaged(StorageDamaged):
    """The WAL does not decode; the node must not sign on a guess."""


def _recovery(home: Path) -> str:
    return (f"to recover, find the network's height H (`branchnet status` against a peer) and run "
            f"`branchnet signer reset --home {home} --resume-height H+2` (nothing below it is ever signed)")


@dataclass
class WalContents:
    signer: SignerState = field(default_factory=SignerState)
    resume_height: int = 0
    blocks: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)  # block hash -> (height, block bytes)
    history: list[SignerState] = field(default_factory=list)  # every signer state of signer.height, in order

    def note_signed(self, state: SignerState) -> None:
        if self.history and self.history[-1].height != state.height:
            self.history = []
        self.history.append(state)
        self.signer = state

    def signed_before(self) -> tuple:
        """Our own messages of the last height we signed at (what a restart re-counts)."""
        return tuple(m for m in (signed_message(s) for s in self.history) if m is not None)


def _entry(payload: list) -> bytes:
    data = encode(payload)
    return _FRAME.pack(len(data), zlib.crc32(data)) + data


def open_wal(home: Any) -> "ConsensusWAL":
    """The WAL of a node's home, migrating a legacy ``signer_state.json`` into it once."""
    wal = ConsensusWAL(home.consensus_wal, home=home.path)
    legacy = home.legacy_signer_state
    if not wal.exists() and legacy.exists():
        try:
            signer = SignerState.decode(legacy.read_bytes())
        except (OSError, RemoteProtocolError) as exc:
            raise WalDamaged(f"{legacy} is damaged ({exc}), so this validator will not sign; " + _recovery(home.path)) from None
        wal.create(signer)
        legacy.unlink()
        fsync_path(legacy.parent)
        log.info("moved the signer state from %s into %s", legacy, wal.path)
    return wal



class ConsensusWAL:
    """Append-only, fsynced. Not thread-safe: one task (the driver) writes it."""

    def __init__(self, path: Path, *, home: Path | None = None):
        self.path = Path(path)
        self.home = home or self.path.parent.parent
        self.writes = 0
        self._fd: int | None = None
        self._contents = WalContents()

    # ------------------------------------------------------------ creating, loading
    def exists(self) -> bool:
        return self.path.exists()

    def create(self, signer: SignerState | None = None, *, resume_height: int = 0) -> None:
        """Write a fresh WAL (``branchnet init``, ``branchnet signer reset``), atomically."""
        self._contents = WalContents(signer or SignerState(), resume_height)
        self._rewrite()

    def load(self) -> WalContents:
        """Read the WAL; open it for appending. Raises SignerStateMissing or WalDamaged.
        Loading again returns what the first load found."""
        if self._fd is not None:
            return self._contents
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise SignerStateMissing(
                f"{self.path} is missing: this validator cannot know what it signed before, so it will not sign; "
                + _recovery(self.home)) from None
        except OSError as exc:
            raise WalDamaged(f"{self.path}: cannot read the consensus WAL ({exc.strerror}); " + _recovery(self.home)) from None
        if not data.startswith(MAGIC):
            raise WalDamaged(f"{self.path} is not a consensus WAL (bad header); " + _recovery(self.home))
        contents, good_end = self._parse(data)
        if good_end < len(data):
            log.warning("%s: cut off a torn last entry (%d bytes) left by a crash", self.path, len(data) - good_end)
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
                os.fsync(f.fileno())
        self._contents = contents
        self._open()
        return contents

    def _parse(self, data: bytes) -> tuple[WalContents, int]:
        contents = WalContents()
        pos = len(MAGIC)
        while pos < len(data):
            torn = pos + _FRAME.size > len(data)
            if not torn:
                length, crc = _FRAME.unpack_from(data, pos)
                end = pos + _FRAME.size + length
                torn = length > MAX_ENTRY_BYTES or end > len(data) or zlib.crc32(data[pos + _FRAME.size:end]) != crc
            if torn:
                if self._is_last_frame(data, pos):
                    return contents, pos
                raise WalDamaged(f"{self.path} is damaged at byte {pos} (an entry fails its checksum); " + _recovery(self.home))
            try:
                self._apply(contents, decode(data[pos + _FRAME.size:end], max_size=MAX_ENTRY_BYTES))
            except RemoteProtocolError as exc:
                raise WalDamaged(f"{self.path} is damaged at byte {pos} ({exc}); " + _recovery(self.home)) from None
            pos = end
        return contents, pos

    @staticmethod
    def _is_last_frame(data: bytes, pos: int) -> bool:
        """Whether the bad bytes at ``pos`` are the file's torn tail: no intact entry
        follows them. (A crash tears only the last write; a damaged length field in
        the middle would otherwise pass for a tail and cut off later signer states.)"""
        for p in range(pos + 1, len(data) - _FRAME.size):
            length, crc = _FRAME.unpack_from(data, p)
            end = p + _FRAME.size + length
            if (0 < length <= MAX_ENTRY_BYTES and end <= len(data) and data[p + _FRAME.size] in _ARRAY_HEADS
                    and zlib.crc32(data[p + _FRAME.size:end]) == crc):
                return False
        return True

    @staticmethod
    def _apply(contents: WalContents, value: object) -> None:
        if type(value) is not list or not value:
            raise RemoteProtocolError("entry is not an array", field="wal", reason="malformed")
        kind = value[0]
        if kind == ENTRY_SIGNER:
            _, state = expect_array(value, 2, "wal.signer")
            contents.note_signed(SignerState.from_array(state))
        elif kind == ENTRY_BLOCK:
            _, height, block_hash, block = expect_array(value, 4, "wal.block")
            contents.blocks[expect_bytes(block_hash, "wal.block.hash", size=32)] = (
                expect_int(height, "wal.block.height", lo=1, hi=MAX_HEIGHT), expect_bytes(block, "wal.block.bytes"))
        elif kind == ENTRY_RESUME:
            _, height = expect_array(value, 2, "wal.resume")
            contents.resume_height = max(contents.resume_height, expect_int(height, "wal.resume", hi=MAX_HEIGHT))
        else:
            raise RemoteProtocolError(f"unknown entry type {kind!r}", field="wal", reason="type")

    # ------------------------------------------------------------ writing
    def _open(self) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def signer(self) -> SignerState:
        return self._contents.signer

    @property
    def resume_height(self) -> int:
        return self._contents.resume_height

    def append(self, signer: SignerState, blocks: Iterable[tuple[int, bytes, bytes]] = ()) -> None:
        """Make ``signer`` (and ``blocks``: (height, hash, block bytes)) durable: one write, one fsync.
        Blocks already in the WAL are not written again."""
        parts = []
        for height, block_hash, raw in blocks:
            if block_hash not in self._contents.blocks:
                parts.append(_entry([ENTRY_BLOCK, height, block_hash, raw]))
                self._contents.blocks[block_hash] = (height, raw)
        parts.append(_entry([ENTRY_SIGNER, signer.to_array()]))
        data = b"".join(parts)
        self._open()
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)
        self._contents.note_signed(signer)
        self.writes += 1

    def has_block(self, block_hash: bytes) -> bool:
        return block_hash in self._contents.blocks

    def prune(self, committed_height: int) -> None:
        """Forget blocks at or below ``committed_height``; rewrite the file once it is big."""
        live = {h: v for h, v in self._contents.blocks.items() if v[0] > committed_height}
        if len(live) == len(self._contents.blocks):
            return
        self._contents.blocks = live
        if self._fd is not None and os.fstat(self._fd).st_size > COMPACT_BYTES:
            self._rewrite()

    def _rewrite(self) -> None:
        c = self._contents
        signers = c.history or [c.signer]  # every signature of the current height, the last one last
        data = MAGIC + _entry([ENTRY_RESUME, c.resume_height]) + b"".join(
            _entry([ENTRY_BLOCK, h, block_hash, raw]) for block_hash, (h, raw) in c.blocks.items()) + b"".join(
            _entry([ENTRY_SIGNER, s.to_array()]) for s in signers)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.close()
        os.replace(tmp, self.path)
        fsync_path(self.path.parent)
        self._open()

