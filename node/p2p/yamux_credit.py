"""Yamux flow-control credit in batches, as go-yamux does: one WINDOW_UPDATE per half window.

py-libp2p 0.8.1's ``YamuxStream.read`` sends a WINDOW_UPDATE frame after nearly
every read that finds data ("release on read", and a "partial slack" branch that
credits whatever was consumed): for our small request frames, one extra Yamux
frame (encrypted, written, read and parsed by the peer) per message. On a
16-validator devnet under load, 17,588 of one node's 40,953 frames written were
window updates (cProfile, ``BRANCHNET_PROFILE``). :func:`install_window_credit_batching`
makes a stream credit its peer only once the consumed, uncredited bytes reach
half the stream's target window (256 KiB, so 128 KiB) — go-yamux's
``sendWindowUpdate`` hysteresis, which py-libp2p also applies, but only after
the per-read branches. A sender still never stalls for good: it can have a whole
window in flight, and once the reader has consumed half of it, the credit goes
out. The auto-tuning (the target window doubling within 4 RTTs) is kept.
Idempotent.
"""

from __future__ import annotations

from typing import Any

_INSTALLED = "_branchnet_credit_batching"


def install_window_credit_batching() -> None:
    from libp2p.stream_muxer.yamux.yamux import YamuxStream

    if getattr(YamuxStream, _INSTALLED, False):
        return

    async def credit_in_batches(self: Any, *, bytes_read: int = 0) -> None:
        total_delta = 0
        async with self.window_lock:
            buffered = len(self.conn.stream_buffers.get(self.stream_id, b""))
            delta = self.target_recv_window - (self.recv_window + buffered)
            if delta > 0 and delta >= self._grow_threshold():
                total_delta = self._grow_to_delta(buffered)
                total_delta += self._apply_autotune_epoch(buffered)
                self._pending_recv_release = 0
        if total_delta > 0:
            await self.send_window_update(total_delta, skip_lock=True)

    YamuxStream._auto_tune_and_send_window_update = credit_in_batches
    setattr(YamuxStream, _INSTALLED, True)
