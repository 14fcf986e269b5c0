"""Quiet, useful logs (issue 16, findings 4 and 5).

* libp2p's expected noise (dials to peers not up yet, multistream failures, its
  seven-line "Failed to open stream" block, the LifecycleError tracebacks of a
  clean stop) is DEBUG, one line per event (node/p2p/liblog.py);
* a refused connection's reason is logged on the refusing side, and the refused
  side says it was refused and why it likely was;
* a 4-validator devnet of real processes, started one after another and stopped
  with SIGTERM, logs no traceback, no ERROR and no WARNING.
"""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest

from cluster import ProcessNetwork, make_homes
from node.p2p import P2PConfig, P2PNetwork, peer_id_of
from node.p2p import liblog
from node.p2p.testing import TEST_PSK, make_keys, running
from waiting import wait_until, wait_until_blocking


def _record(name: str, level: int, msg: str, args=None, exc_info=None, pathname: str = "/x/libp2p/y.py"):
    return logging.LogRecord(name, level, pathname, 1, msg, args, exc_info)


@pytest.fixture
def knob():
    """The DEBUG switch for libp2p's demoted noise, restored afterwards."""
    logger = logging.getLogger(liblog.KNOB)
    before = logger.level
    yield logger
    logger.setLevel(before)


def test_expected_libp2p_noise_is_dropped_or_demoted_to_one_debug_line(knob):
    knob.setLevel(logging.INFO)
    dial = _record("libp2p.transport.tcp.tcp", logging.ERROR, "Failed to open TCP stream: %s",
                   ("all attempts to connect to 127.0.0.1:1 failed",))
    assert liblog.tidy(dial) is None
    block = ("Failed to open stream to peer 12D3:\n  Error: handshake read failed\n  Protocols: ['/meshsub/1.2.0']\n"
             "  Timeout: 5s\n  Registry Stats: None")
    try:
        raise RuntimeError("Cannot schedule task after service has stopped")
    except RuntimeError:
        import traceback
        tb = traceback.format_exc()
    addconn = _record("libp2p.network.swarm", logging.WARNING, "[ADDCONN_FAIL] add_conn failed for peer %s: %r\n%s",
                      ("12D3", "LifecycleError('Cannot schedule task after service has stopped')", tb))
    assert liblog.tidy(addconn) is None
    reset = _record("libp2p.stream_muxer.yamux.yamux", logging.ERROR, "Error in handle_incoming for peer %s: %s",
                    ("12D3", "ConnectionClosedError: TCP connection reset by peer"))
    assert liblog.tidy(reset) is None  # a peer that stopped: peers.py redials it
    cut = _record("libp2p.stream_muxer.yamux.yamux", logging.ERROR, "Incomplete read for data on stream %d: %s",
                  (9, "Connection closed during read operation: expected 33 bytes"))
    assert liblog.tidy(cut) is None  # a stream the peer cut mid-frame
    garbage = _record("libp2p.pubsub.utils", logging.ERROR, "Failed to update the Certified-Addr-Book: %s",
                      ("Error parsing message with type 'libp2p.peer.pb.record.Envelope'",))
    assert liblog.tidy(garbage) is None  # a hostile peer's record: pubsub.py counts and logs it (bad_sender_record)
    other = _record("libp2p.stream_muxer.yamux.yamux", logging.ERROR, "Error in handle_incoming for peer %s: %s",
                    ("12D3", "ValueError: bad frame"))
    assert liblog.tidy(other).levelno == logging.ERROR  # anything else keeps its level

    knob.setLevel(logging.DEBUG)
    tidied = liblog.tidy(_record("libp2p.host.basic_host", logging.ERROR, block))
    assert tidied is not None and tidied.levelno == logging.DEBUG and "\n" not in tidied.getMessage()
    assert tidied.getMessage().startswith("Failed to open stream to peer 12D3: Error: handshake read failed; ")
    tidied = liblog.tidy(_record("libp2p.network.swarm", logging.WARNING, "[ADDCONN_FAIL] add_conn failed for peer %s: %r\n%s",
                                 ("12D3", "LifecycleError('x')", tb)))
    assert tidied.levelno == logging.DEBUG and tidied.getMessage() == "[ADDCONN_FAIL] add_conn failed for peer 12D3: \"LifecycleError('x')\""


def test_unexpected_libp2p_records_keep_their_level_on_one_line(knob):
    knob.setLevel(logging.INFO)
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        import sys
        exc_info = sys.exc_info()
    rec = liblog.tidy(_record("libp2p.pubsub.pubsub", logging.ERROR, "something broke:\n  detail", exc_info=exc_info))
    assert rec.levelno == logging.ERROR
    assert rec.getMessage() == "something broke: detail (ValueError: bad)"
    assert rec.exc_info is None and rec.exc_text is None


async def test_a_refused_connection_is_explained_on_both_sides(caplog):
    caplog.set_level(logging.INFO)
    a_key, c_key = make_keys(2)
    ids = [peer_id_of(k.public_key.raw) for k in (a_key, c_key)]
    base = P2PConfig(psk=TEST_PSK, dial_timeout=10.0)
    a = P2PNetwork(a_key, dataclasses.replace(base, allowed_peers=frozenset(ids[:1])))  # a does not know c
    c = P2PNetwork(c_key, dataclasses.replace(base, allowed_peers=frozenset(ids)))

    def said(logger: str, pattern: str) -> bool:
        return any(r.name == logger and re.search(pattern, r.getMessage()) for r in caplog.records)

    async with running(a), running(c):
        c.add_persistent_peer(a.listen_addrs[0])  # c keeps redialing a
        await wait_until(lambda: said("node.p2p.host", rf"refusing inbound connection of peer {ids[1]} .*not in our genesis"),
                         60, "a's reason for refusing c")
        await wait_until(lambda: said("node.p2p.peers", rf"peer {ids[0]} .* refuses our connection .*our peer id {ids[1]}"),
                         60, "c's account of being refused")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert all("\n" not in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_devnet_processes_log_no_errors_and_stop_cleanly(tmp_path):
    """Nodes started one at a time (the first ones dial peers that are not up
    yet), a few blocks committed, then SIGTERM to each pid. No ERROR line, no
    libp2p WARNING, no traceback."""
    homes = make_homes(tmp_path, 4, fixed_ports=True, realtime=True, api=True)
    net = ProcessNetwork(homes)
    try:
        for i in range(4):
            net.start(i)
            wait_until_blocking(lambda: "up at height" in net.log(i), 120, f"node {i} up",
                                detail=lambda: net.log(i)[-800:])
        wait_until_blocking(lambda: min(net.height(i) for i in range(4)) >= 3, 180, "height 3 on every node",
                            detail=lambda: [net.height(i) for i in range(4)])
        for i in range(4):
            assert net.stop(i) == 0, net.log(i)[-2000:]
    finally:
        net.stop_all()
    for i in range(4):
        log = net.log(i)
        assert "stopped cleanly" in log
        assert "Traceback" not in log, log[-3000:]
        bad = [line for line in log.splitlines() if re.match(r"^\S+ \S+ (ERROR|CRITICAL) ", line)
               or re.match(r"^\S+ \S+ WARNING +(libp2p|root)", line)]
        assert not bad, "\n".join(bad)
        assert log.count("API listening") <= 1 and "Running on" not in log


async def test_a_validator_whose_key_does_not_sign_says_which_case_and_the_fix(tmp_path, caplog):
    """Finding 5: [node] mode = "validator" with a key outside the validator set is a
    WARNING (a new branch waiting for governance is legitimate), one line naming the key,
    the chain and its genesis hash, and the command that fixes it."""
    from node.node import BranchNode
    from node.p2p.memory import MemoryHub
    from node.testnet import create_network, set_config
    from protocol.genesis import Genesis
    from tools.netsetup import join_home

    validator, observer = create_network(tmp_path / "net", 1, observers=1, fixed_ports=False)
    outsider, public_key = join_home(tmp_path / "net", "outsider", [validator])
    set_config(observer, "node", "mode", "validator")  # a genesis member with no power
    genesis = Genesis.loads(validator.genesis.read_bytes())
    hub = MemoryHub()
    caplog.set_level(logging.WARNING, logger="branchnet.node")
    for home in (outsider, observer):
        node = BranchNode(home, api=False, transport=hub.network)
        node.store.close()
        node.wal.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "branchnet.node"]
    assert len(lines) == 2 and all(r.levelno == logging.WARNING for r in caplog.records if r.name == "branchnet.node")
    chain = f"chain {genesis.chain_id} (genesis {genesis.hash.hex()})"
    assert f"public key {public_key}) is not a member of {chain}" in lines[0]
    assert f"branchnet gov propose admit NAME --member-name NAME --public-key {public_key}" in lines[0]
    assert f"member 'observer-00' of {chain}) has no voting power now" in lines[1]
    assert "branchnet gov propose power NAME --branch " in lines[1]
    assert all("\n" not in line for line in lines)
