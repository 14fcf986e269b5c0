"""Errors say whose fault they are: a peer's bad bytes are counted and dropped
and change nothing; our own bug is not swallowed by the code that handles peers."""

from __future__ import annotations

import pytest
import trio

import node.consensus.driver as driver_module
from cluster import make_homes, running_nodes, wait_until
from node.p2p.memory import MemoryHub
from protocol import wire
from protocol.errors import LocalProtocolError


async def test_a_peers_garbage_is_counted_and_dropped(tmp_path, autojump_clock):
    async with running_nodes(make_homes(tmp_path, 4), hub=MemoryHub()) as nodes:
        victim, sender = nodes[0], nodes[1]
        protocol = wire.consensus_protocol(victim.genesis.chain_id)
        before = victim.chain.height
        for garbage in (b"\xff\xff", b"\x93\x03\xc0\x00", wire.encode([3, [1, 2, 3], 0])):
            await sender.net.request(victim.peer_id, protocol, garbage)
        counts = victim.metrics.rejected_counts()
        assert sum(v for k, v in counts.items() if k.startswith("consensus/")) >= 3
        await wait_until(lambda: victim.chain.height >= before + 2, 60, "the victim keeps committing")


async def test_our_own_bug_is_not_swallowed_as_a_peers_fault(tmp_path, autojump_clock, monkeypatch):
    def buggy_check(*args, **kwargs):
        raise LocalProtocolError("a bug of ours", field="test")

    monkeypatch.setattr(driver_module, "check_message", buggy_check)
    with pytest.raises(BaseExceptionGroup) as info:
        async with running_nodes(make_homes(tmp_path, 4), hub=MemoryHub()):
            await trio.sleep(60)  # the first vote between validators hits the bug
    assert info.group_contains(LocalProtocolError)
