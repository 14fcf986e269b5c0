"""The private network (libp2p PSK v1): cipher, key files, wire, hostile peers.

The cipher is checked three independent ways: against a pure-Python Salsa20 /
HSalsa20 written here from Bernstein's specifications (not sharing a line with
node/p2p/psk.py: HSalsa20 is derived from the Salsa20 core, as in "Extending the
Salsa20 nonce"), against libsodium (PyNaCl's SecretBox is XSalsa20-Poly1305),
and against the published vectors of "Cryptography in NaCl" (Bernstein 2009,
tests core1, core2 and stream). The wire test speaks PSK v1 to a running node
over a bare TCP socket with the cipher below, so neither side is py-libp2p.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import struct

import pytest
import trio

from node.p2p import P2PConfig, P2PNetwork, PeerUnavailable
from node.p2p.psk import XSalsa20, format_key_file, hsalsa20, parse_key_file
from node.p2p.testing import TEST_PSK, make_keys, running

# ---------------------------------------------------------------- Salsa20 from the spec

M32 = 0xFFFFFFFF


def rotate(u: int, c: int) -> int:
    return ((u << c) & M32) | (u >> (32 - c))


def quarterround(y0: int, y1: int, y2: int, y3: int) -> tuple[int, int, int, int]:
    z1 = y1 ^ rotate((y0 + y3) & M32, 7)
    z2 = y2 ^ rotate((z1 + y0) & M32, 9)
    z3 = y3 ^ rotate((z2 + z1) & M32, 13)
    z0 = y0 ^ rotate((z3 + z2) & M32, 18)
    return z0, z1, z2, z3


def rowround(y: list[int]) -> list[int]:
    z = [0] * 16
    z[0], z[1], z[2], z[3] = quarterround(y[0], y[1], y[2], y[3])
    z[5], z[6], z[7], z[4] = quarterround(y[5], y[6], y[7], y[4])
    z[10], z[11], z[8], z[9] = quarterround(y[10], y[11], y[8], y[9])
    z[15], z[12], z[13], z[14] = quarterround(y[15], y[12], y[13], y[14])
    return z


def columnround(x: list[int]) -> list[int]:
    transposed = [x[4 * (i % 4) + i // 4] for i in range(16)]
    y = rowround(transposed)
    return [y[4 * (i % 4) + i // 4] for i in range(16)]


def salsa20_core(words: list[int]) -> list[int]:
    z = list(words)
    for _ in range(10):
        z = rowround(columnround(z))
    return [(a + b) & M32 for a, b in zip(z, words)]


def expansion_words(key: bytes, sixteen: bytes) -> list[int]:
    sigma = [int.from_bytes(b, "little") for b in (b"expa", b"nd 3", b"2-by", b"te k")]
    k = list(struct.unpack("<8I", key))
    n = list(struct.unpack("<4I", sixteen))
    return [sigma[0], *k[:4], sigma[1], *n, sigma[2], *k[4:], sigma[3]]


def spec_hsalsa20(key: bytes, nonce16: bytes) -> bytes:
    """HSalsa20 = the Salsa20 core minus its input, at words 0, 5, 10, 15, 6, 7, 8, 9."""
    x = expansion_words(key, nonce16)
    z = salsa20_core(x)
    return struct.pack("<8I", *[(z[i] - x[i]) & M32 for i in (0, 5, 10, 15, 6, 7, 8, 9)])


def spec_xsalsa20_stream(key: bytes, nonce: bytes, length: int) -> bytes:
    subkey = spec_hsalsa20(key, nonce[:16])
    out = bytearray()
    block = 0
    while len(out) < length:
        words = salsa20_core(expansion_words(subkey, nonce[16:] + struct.pack("<Q", block)))
        out += struct.pack("<16I", *words)
        block += 1
    return bytes(out[:length])


def xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream))


# ---------------------------------------------------------------- cipher

NACL_FIRSTKEY = bytes.fromhex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")
NACL_NONCE = bytes.fromhex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")


def test_nacl_paper_vectors():
    shared = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    secondkey = "dc908dda0b9344a953629b733820778880f3ceb421bb61b91cbd4c3e66256ce4"
    for impl in (hsalsa20, spec_hsalsa20):
        assert impl(shared, bytes(16)) == NACL_FIRSTKEY                 # core1
        assert impl(NACL_FIRSTKEY, NACL_NONCE[:16]).hex() == secondkey  # core2
    # stream: SHA-256 of the first 4 194 304 keystream bytes
    stream = XSalsa20(NACL_FIRSTKEY, NACL_NONCE).xor(bytes(4194304))
    assert hashlib.sha256(stream).hexdigest() == \
        "662b9d0e3463029156069b12f918691a98f7dfb2ca0393c96bbfc6b1fbd630a2"
    assert stream[:200] == spec_xsalsa20_stream(NACL_FIRSTKEY, NACL_NONCE, 200)


def test_keystream_matches_the_spec_and_libsodium_in_any_chunking():
    import nacl.secret

    for trial in range(4):
        key, nonce = os.urandom(32), os.urandom(24)
        data = os.urandom(1000 + trial)
        expected = xor(data, spec_xsalsa20_stream(key, nonce, len(data)))
        cipher, out, rest = XSalsa20(key, nonce), b"", data
        for size in (1, 63, 64, 65, 7, 300):  # keystream position carries across calls
            out += cipher.xor(rest[:size])
            rest = rest[size:]
        out += cipher.xor(rest)
        assert out == expected
        # libsodium: secretbox = XSalsa20 keystream bytes 32.. XOR the message, after a 16-byte tag
        box = nacl.secret.SecretBox(key).encrypt(data, nonce).ciphertext
        assert box[16:] == xor(data, spec_xsalsa20_stream(key, nonce, 32 + len(data))[32:])


def test_cipher_rejects_wrong_sizes():
    with pytest.raises(ValueError):
        XSalsa20(bytes(31), bytes(24))
    with pytest.raises(ValueError):
        XSalsa20(bytes(32), bytes(8))  # upstream's nonce size


# ---------------------------------------------------------------- key file

KEY = bytes(range(32))
STANDARD = f"/key/swarm/psk/1.0.0/\n/base16/\n{KEY.hex()}\n"


@pytest.mark.parametrize("text", [
    STANDARD,
    STANDARD.replace("\n", "\r\n"),
    STANDARD.rstrip("\n"),
    STANDARD.upper().replace("/KEY/SWARM/PSK/1.0.0/", "/key/swarm/psk/1.0.0/").replace("/BASE16/", "/base16/"),
    KEY.hex() + "\n",          # legacy branchnet form
    "  " + KEY.hex().upper(),  # legacy, any case
])
def test_key_file_forms(text):
    assert parse_key_file(text.encode()) == KEY


def test_key_file_is_written_in_the_standard_form():
    assert format_key_file(KEY) == STANDARD
    assert parse_key_file(format_key_file(KEY).encode()) == KEY
    with pytest.raises(ValueError):
        format_key_file(KEY[:31])


@pytest.mark.parametrize("data, message", [
    (b"", "does not start with"),
    (b"\x00\xff\xfe" * 20, "not a text file"),
    (b"x" * 5000, "too large"),
    (KEY.hex()[:-2].encode(), "does not start with"),
    (STANDARD.replace("/base16/", "/base64/").encode(), "only '/base16/'"),
    (STANDARD.replace(KEY.hex(), KEY.hex()[:-2]).encode(), "64 hex characters"),
    (STANDARD.replace(KEY.hex(), "zz" * 32).encode(), "64 hex characters"),
    ((STANDARD + "extra\n").encode(), "has 4 lines"),
])
def test_malformed_key_files_get_one_line_reasons(data, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_key_file(data)
    assert "\n" not in str(info.value) and KEY.hex() not in str(info.value)


# ---------------------------------------------------------------- on the wire

FAST = P2PConfig(psk=TEST_PSK, dial_timeout=2.0, upgrade_timeout=1.0)  # nonce within 0.5 s
MULTISTREAM = b"\x13/multistream/1.0.0\n"


def _tcp_address(net: P2PNetwork) -> tuple[str, int]:
    parts = net.listen_addrs[0].split("/")
    return parts[2], int(parts[4])


async def _read_exactly(stream: trio.SocketStream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await stream.receive_some(n - len(data))
        if not chunk:
            raise EOFError(f"closed after {len(data)} bytes")
        data += chunk
    return data


async def _wait_closed(stream: trio.SocketStream) -> None:
    try:
        while await stream.receive_some(4096):
            pass
    except trio.BrokenResourceError:
        pass


async def test_a_hand_written_psk_v1_peer_sees_the_spec_on_the_wire():
    key = bytes.fromhex(TEST_PSK)
    node = P2PNetwork(make_keys(1)[0], FAST)
    async with running(node):
        with trio.fail_after(5):
            stream = await trio.open_tcp_stream(*_tcp_address(node))
            # Like js-libp2p, wait for the node's nonce before sending anything: the
            # node must not wait for ours first (upstream py-libp2p did, and hung).
            node_nonce = await _read_exactly(stream, 24)
            first = await _read_exactly(stream, len(MULTISTREAM))
            assert xor(first, spec_xsalsa20_stream(key, node_nonce, len(first))) == MULTISTREAM
            our_nonce = os.urandom(24)
            await stream.send_all(our_nonce + xor(MULTISTREAM, spec_xsalsa20_stream(key, our_nonce, 20)))
            await trio.sleep(0.2)
            assert node.connection_stats.psk_failures == 0
            # the network-key layer counts the bytes on the wire: exactly what we sent, at least what we read
            while node.statistics()["connections"]["bytes_received"] < 24 + len(MULTISTREAM):
                await trio.sleep(0.01)
            wire = node.statistics()["connections"]
            assert wire["bytes_received"] == 24 + len(MULTISTREAM)
            assert wire["bytes_sent"] >= 24 + len(MULTISTREAM)
            await stream.aclose()


@pytest.mark.parametrize("behaviour, reason", [
    ("short_nonce_then_hang", "timeout"),
    ("short_nonce_then_close", "closed"),
    ("wrong_key", "mismatch"),
])
async def test_hostile_peers_are_dropped_and_counted(behaviour, reason, caplog):
    caplog.set_level(logging.INFO, logger="node.p2p.pnet")
    node = P2PNetwork(make_keys(1)[0], FAST)
    async with running(node):
        with trio.fail_after(5):
            stream = await trio.open_tcp_stream(*_tcp_address(node))
            start = trio.current_time()
            if behaviour == "wrong_key":
                nonce = os.urandom(24)
                await stream.send_all(nonce + XSalsa20(bytes(32), nonce).xor(MULTISTREAM))
            else:
                await stream.send_all(os.urandom(10))
                if behaviour == "short_nonce_then_close":
                    await stream.aclose()
            if behaviour != "short_nonce_then_close":
                await _wait_closed(stream)  # the node hangs up on us
                assert trio.current_time() - start < 1.0
            while node.connection_stats.psk_failures < 1:
                await trio.sleep(0.01)
        assert node.statistics()["connections"]["psk_failures"] == 1
        assert node.connected_peers() == []
    lines = [r.getMessage() for r in caplog.records if r.name == "node.p2p.pnet"]
    assert len(lines) == 1 and "\n" not in lines[0]
    # "closed": the node may notice on reading (EOF after 10 nonce bytes) or on writing its own
    expected = {"timeout": "no 24-byte nonce", "closed": "connection ",
                "mismatch": "network key mismatch"}[reason]
    assert expected in lines[0]


async def test_nodes_with_different_keys_fail_fast_and_both_count_it():
    a_key, b_key = make_keys(2)
    a = P2PNetwork(a_key, FAST)
    b = P2PNetwork(b_key, dataclasses.replace(FAST, psk="77" * 32))
    async with running(a), running(b):
        with trio.fail_after(4):
            start = trio.current_time()
            with pytest.raises(PeerUnavailable):
                await b.connect(a.listen_addrs[0])
            assert trio.current_time() - start < 1.0  # no waiting for a negotiation timeout
            while a.connection_stats.psk_failures < 1:
                await trio.sleep(0.01)
        assert b.connection_stats.psk_failures == 1
        assert a.connected_peers() == [] and b.connected_peers() == []


async def test_same_key_connects_and_the_wrapper_delegates_what_upstream_lacked():
    a_key, b_key = make_keys(2)
    a, b = P2PNetwork(a_key, FAST), P2PNetwork(b_key, FAST)
    async with running(a), running(b):
        with trio.fail_after(5):
            await b.connect(a.listen_addrs[0])
            await a.wait_connected(1, 2)
        from node.p2p.pnet import PskConn

        class Inner:
            is_initiator = True

            def get_transport_addresses(self):
                return ["/ip4/127.0.0.1/tcp/1"]

            def get_connection_type(self):
                return "direct"

            def get_remote_address(self):
                return ("127.0.0.1", 1)

        from node.p2p.pnet import PrivateNetwork

        conn = PskConn(Inner(), PrivateNetwork(bytes(32)))
        assert conn.is_initiator is True
        assert conn.get_transport_addresses() == ["/ip4/127.0.0.1/tcp/1"]
        assert conn.get_connection_type() == "direct"
        assert a.connection_stats.psk_failures == b.connection_stats.psk_failures == 0


@pytest.mark.parametrize("layer, after_key", [
    ("noise", b"\x07/noise\n" + struct.pack(">H", 5) + b"\x01\x02\x03\x04\x05"),  # too short for an ephemeral key
    ("noise", b"\x07/noise\n" + struct.pack(">H", 32) + bytes(range(32))  # a usable ephemeral key, then
     + struct.pack(">H", 100) + bytes(100)),  # a third message that does not decrypt
])
async def test_a_failed_handshake_past_the_network_key_is_counted(layer, after_key):
    key = bytes.fromhex(TEST_PSK)
    node = P2PNetwork(make_keys(1)[0], FAST)
    async with running(node):
        with trio.fail_after(5):
            stream = await trio.open_tcp_stream(*_tcp_address(node))
            nonce = os.urandom(24)
            await stream.send_all(nonce + XSalsa20(key, nonce).xor(MULTISTREAM + after_key))
            await _wait_closed(stream)  # the node hangs up on us
            while node.connection_stats.upgrade_failures.get(layer, 0) < 1:
                await trio.sleep(0.01)
        assert node.connection_stats.psk_failures == 0
        assert node.connection_stats.rejections()[(layer, "handshake_failed")] == 1
        assert node.connected_peers() == []
