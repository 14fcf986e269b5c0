"""Every worked example in docs/PROTOCOL.md §11-§12 (consensus, peer-to-peer, the
vectors' inputs), recomputed from the code, and a guard that no hex example in the
doc goes unchecked. See test_protocol_doc.py for §1-§10.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from protocol.encoding import encode
from protocol.errors import DecodeError
from protocol.genesis import ChainParams
from protocol.keys import PrivateKey
from protocol.validators import Validator, ValidatorSet
from protocol_doc import PROSE, find, number, section, table_rows

H = bytes.fromhex


# ---------------------------------------------------------------- §11 consensus and p2p


def _spec_rotation(powers: list[int], steps: int) -> list[tuple[list[int], int, list[int]]]:
    """§11.1's rotation as written: add powers, highest wins (ties: first), winner pays total."""
    priorities, out, total = [0] * len(powers), [], sum(powers)
    for _ in range(steps):
        priorities = [p + w for p, w in zip(priorities, powers)]
        winner = max(range(len(powers)), key=lambda i: (priorities[i], -i))
        before = list(priorities)
        priorities[winner] -= total
        out.append((before, winner, list(priorities)))
    return out


def test_s11_proposer_rotation_example():
    from protocol.consensus.proposer import proposer

    text = section("11.1")
    names = find(r"validators A, B and C \(in branch-id order\) of\s+powers (\d+), (\d+) and (\d+)", text)
    powers = [int(x) for x in names.groups()]
    rows = [r for r in table_rows(text) if re.fullmatch(r"\d+", r[0])]
    ints = lambda cell: [int(x.replace("−", "-")) for x in cell.split(", ")]  # noqa: E731
    spec = _spec_rotation(powers, len(rows))
    for row, (before, winner, after) in zip(rows, spec):
        assert ints(row[1]) == before and row[2][0] == "ABC"[winner] and ints(row[3]) == after, row
    assert spec[-1][2] == [0, 0, 0]
    # the code agrees, on a real validator set whose branch-id order has these powers
    keys = sorted((PrivateKey.from_seed(bytes([i + 7]) * 32) for i in range(3)), key=lambda k: k.branch_id)
    valset = ValidatorSet(Validator(k.branch_id, k.public_key, w) for k, w in zip(keys, powers))
    letter = {k.branch_id: "ABC"[i] for i, k in enumerate(keys)}
    assert [letter[proposer(valset, step, 0)] for step in range(12)] == [r[2][0] for r in rows] * 2
    m = find(r"The proposer of \(height (\d+), round (\d+)\) is\s+the winner of step (\d+), (\w)", text)
    assert int(m[1]) + int(m[2]) == int(m[3]) and letter[proposer(valset, int(m[1]), int(m[2]))] == m[4]
    m = find(r"that of \(height (\d+), round (\d+)\) is the winner of step\s+(\d+) mod (\d+) = (\d+), (\w)", text)
    h, r, s, total, step, who = m.groups()
    assert int(h) + int(r) == int(s) and int(s) % int(total) == int(step) and int(total) == sum(powers)
    assert letter[proposer(valset, int(h), int(r))] == who


def test_s11_timeouts_grow_by_the_delta():
    from protocol.consensus.params import ConsensusParams

    find(r"propose\s+`timeout_propose_ms \+ round \* timeout_delta_ms`", section("11.1"))
    params = ConsensusParams.of_chain(ChainParams())
    for round_ in (0, 1, 5):
        assert params.timeout_propose(round_) == 1000 + round_ * 500
        assert params.timeout_prevote(round_) == params.timeout_precommit(round_) == 500 + round_ * 500


def test_s11_private_network_example_and_key_file():
    from node.p2p.pnet import MULTISTREAM_HEADER
    from node.p2p.psk import XSalsa20, format_key_file, parse_key_file

    text = section("11.2")
    block = find(r"```\n(key .*?)```", text, raw=True)[1]
    values = {k: H(v) for k, v in re.findall(r"^(\w+)\s+([0-9a-f]+)$", block, re.M)}
    assert values["header"] == MULTISTREAM_HEADER == b"\x13/multistream/1.0.0\n"
    assert find(r"multistream-select's header\s+`([0-9a-f]+)`", text)[1] == MULTISTREAM_HEADER.hex()
    stream = XSalsa20(values["key"], values["nonce"])
    assert stream.xor(bytes(len(values["keystream"]))) == values["keystream"]
    assert XSalsa20(values["key"], values["nonce"]).xor(values["header"]) == values["encrypted"]
    key_file = find(r"```\n(/key/swarm/psk/1\.0\.0/\n.*?)```", text, raw=True)[1]
    key = parse_key_file(key_file.encode())
    assert key == bytes(range(32)) and format_key_file(key) == key_file
    from node.p2p.host import HostConfig

    nonce_wait = float(find(r"the reference node: ([\d.]+) s", text)[1])
    assert nonce_wait == HostConfig().upgrade_timeout / 2  # build_host's handshake timeout


def test_s11_frames_limits_and_example():
    from protocol import wire
    from node.p2p.frames import DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_RESPONSE_FRAME_SIZE, encode_frame

    text = section("11.2")
    m = find(r"`length` is at most 4 MiB \((\d[\d ]*)\) in a request frame and at most 16 MiB \+ 5\s+"
             r"\((\d[\d ]*), a body of up to 16 MiB\)", text)
    assert number(m[1]) == DEFAULT_MAX_FRAME_SIZE == 4 * 2**20
    assert number(m[2]) == DEFAULT_MAX_RESPONSE_FRAME_SIZE == wire.MAX_RESPONSE_BYTES + 5
    m = find(r"the status request `\[1\]` \(body `([0-9a-f]+)`\) with request id (\d+) is the frame\s+`([0-9a-f]+)`",
             text)
    assert encode([1]).hex() == m[1]
    assert encode_frame(0, int(m[2]), H(m[1]), DEFAULT_MAX_FRAME_SIZE).hex() == m[3]
    find(r"inline block of up to 3 MiB", text)
    assert wire.MAX_DIRECT_BLOCK_BYTES == 3 * 2**20 and wire.MAX_INLINE_BLOCK_BYTES == 900 * 1024
    find(r"inline blocks there only up to 900 KiB", text)
    find(r"at most 64 KiB of records per message", text)
    assert wire.MAX_RECORD_BATCH_BYTES == 64 * 1024
    find(r"`1 ≤ count ≤ 64`", text)
    assert wire.MAX_SYNC_BLOCKS == 64
    find(r"1 to 1024 hashes", text)
    assert wire.MAX_RECORDS_REQUEST == 1024


def test_s11_notifications_and_bundles():
    from node.p2p.frames import DEFAULT_MAX_FRAME_SIZE, encode_frame
    from node.p2p.streams import NOTIFICATION_ID
    from protocol import wire

    text = section("11.2")
    m = find(r"a notification with the body `([0-9a-f]+)` is written as the frame `([0-9a-f]+)`", text)
    assert NOTIFICATION_ID == 0 and find(r"a request frame with `request_id` 0 is a \*\*notification\*\*", text)
    assert encode_frame(0, NOTIFICATION_ID, H(m[1]), DEFAULT_MAX_FRAME_SIZE).hex() == m[2]
    m = find(r"one \*\*bundle\*\*, `\[7, \[message bytes, \.\.\.\]\]`: 1 to (\d+) messages of kinds 2, 3, 5 and 6", text)
    assert wire.MSG_BUNDLE == 7 and int(m[1]) == wire.MAX_BUNDLE_MESSAGES
    assert {wire.MSG_PROPOSAL, wire.MSG_VOTE, wire.MSG_COMPACT_PROPOSAL, wire.MSG_ROUND_SUMMARY} == {2, 3, 5, 6}
    m = find(r"up to (\d+) KiB unless one message alone is larger", text)
    assert int(m[1]) * 1024 == wire.BUNDLE_TARGET_BYTES
    m = find(r"message bytes `([0-9a-f]+)` and `([0-9a-f]+)` is `([0-9a-f]+)`", text)
    assert wire.encode_bundle([H(m[1]), H(m[2])]).hex() == m[3]
    assert wire.decode_bundle(H(m[3])) == [H(m[1]), H(m[2])] and wire.is_bundle(H(m[3]))
    for bad in ([], [H(m[1])] * (wire.MAX_BUNDLE_MESSAGES + 1)):
        with pytest.raises(DecodeError):
            wire.decode_bundle(encode([7, bad]))
    with pytest.raises(DecodeError):  # a bundle inside a bundle is no consensus message
        wire.decode_consensus(wire.decode_bundle(encode([7, [H(m[3])]]))[0])


def test_s11_consensus_links():
    from node.p2p.link import LINK_HEADER, LINK_PROTOCOL, MAX_BACKOFF, MIN_BACKOFF, decode_port, encode_port
    from node.p2p.link import DEFAULT_HANDSHAKE_TIMEOUT

    text = section("11.2")
    m = find(r"serves the request `([^`]+)` \(request body\s+empty\)", text)
    assert m[1] == LINK_PROTOCOL
    m = find(r"two bytes big-endian \(port\s+(\d+) is `([0-9a-f]+)`\)", text)
    assert encode_port(int(m[1])).hex() == m[2] and decode_port(H(m[2])) == int(m[1])
    m = find(r"Each side sends the (\d+) bytes `([0-9a-f]+)`", text)
    assert H(m[2]) == LINK_HEADER and int(m[1]) == len(LINK_HEADER)
    m = find(r"with a backoff from (\d+) s to (\d+) s", text)
    assert (int(m[1]), int(m[2])) == (MIN_BACKOFF, MAX_BACKOFF)
    assert int(find(r"bounded \(the reference node: (\d+) s\)", text)[1]) == DEFAULT_HANDSHAKE_TIMEOUT


def test_s11_topic_and_protocol_names():
    from protocol import wire

    text = section("11.2")
    chain = "c-1"
    named = set(re.findall(r"`(/branchnet/\{chain\}/[a-z]+/\d+)`", text))
    topics = wire.Topics.of(chain)
    ours = {t.replace(chain, "{chain}") for t in (topics.records, topics.consensus, topics.blocks)}
    ours |= {f(chain).replace(chain, "{chain}")
             for f in (wire.sync_protocol, wire.records_protocol, wire.consensus_protocol,
                       wire.consensus_push_protocol)}
    assert named == ours


def _roles() -> dict[str, dict[str, str]]:
    """protocol id or topic -> {"validator": cell, "observer": cell, ...} from §11.2's table."""
    rows = table_rows(find(r"\*\*Roles\.\*\*.*?\n\n(\|.*?)\n\n", section("11.2"), raw=True)[1])
    header, body = rows[0], rows[1:]
    return {r[0]: dict(zip(header[1:], r[1:])) for r in body}


async def test_s11_each_role_serves_what_the_doc_says(tmp_path):
    from cluster import make_homes, running_nodes

    roles = _roles()
    homes = make_homes(tmp_path, 1, observers=1)
    async with running_nodes(homes) as (validator, observer):
        chain = validator.genesis.chain_id
        for role, node in (("validator", validator), ("observer", observer)):
            served = set(node.net.host.get_mux().handlers)
            topics = set(node.net.gossip.pubsub.topic_ids)
            for what, cells in roles.items():
                name = what.strip("`").replace("{chain}", chain)
                must = cells[role].startswith("MUST")
                if what.startswith("topic "):
                    topic = what.split("`")[1].replace("{chain}", chain)
                    assert (topic in topics) or not must, (role, topic)
                elif what.startswith("`/branchnet/"):
                    assert (name in served) or not must, (role, name)
                elif what.startswith("gossipsub"):
                    assert served & {"/meshsub/1.2.0", "/meshsub/1.1.0"}
            assert {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"} <= served  # SHOULD, and we do


# ---------------------------------------------------------------- §12 inputs


def test_s12_inputs_are_the_generators():
    import tools.gen_vectors as gen

    text = section("12")
    assert find(r"chain id `([^`]+)`", text)[1] == gen.CHAIN_ID
    m = find(r"genesis time (\d+)\s+\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\)", text)
    from datetime import datetime, timezone

    assert int(m[1]) == gen.GENESIS_TIME_MS
    assert datetime.fromtimestamp(int(m[1]) / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") == m[2]
    m = find(r"two validators of power (\d+) each", text)
    assert all(v["power"] == int(m[1]) for v in gen.generate()["genesis"]["json"]["validators"])
    m = find(r"seeds are `bytes\(range\(32\)\)` =\s+`([0-9a-f]+)…([0-9a-f]+)`", text)
    assert gen.SEED_1.hex().startswith(m[1]) and gen.SEED_1.hex().endswith(m[2])
    assert find(r'`sha256\("([^"]+)"\)`', text)[1].encode() == b"branchnet-vector-2"
    assert gen.SEED_2 == hashlib.sha256(b"branchnet-vector-2").digest()
    assert int(find(r"record \(seq 1, time (\d+)\)", text)[1]) == gen.RECORD_TIME_MS
    assert int(find(r"block 1 \(round 0, time\s+(\d+)\)", text)[1]) == gen.BLOCK_TIME_MS
    find(r"Branch Two, the proposer of \(height 1, round 0\) by §11\.1", text)
    leaves = find(r"five ASCII leaves `([^`]+)` … `([^`]+)`, with the proof for index (\d)", text)
    assert [leaves[1].encode(), leaves[2].encode()] == [gen.MERKLE_LEAVES[0], gen.MERKLE_LEAVES[-1]]
    assert int(leaves[3]) == gen.MERKLE_PROOF_INDEX
    vectors = gen.generate()
    bin16 = find(r"wraps it as a bin16 \(`([0-9a-f]+)`\)", text)[1]
    payload = H(vectors["record"]["payload"])
    assert bin16 == "c5" + len(payload).to_bytes(2, "big").hex()
    assert H(vectors["record"]["signing_bytes"]).find(H(bin16) + payload) > 0


# ---------------------------------------------------------------- guard


CHECKED_ELSEWHERE_OR_NOT_EXAMPLES = {
    "2ad07bf",  # §13: a commit id
}


def test_every_hex_example_is_checked():
    """Any hex example of 16+ digits (or with an ellipsis) outside §12's vectors is one
    the tests above read from the doc. A new one needs a test here first."""
    here = Path(__file__).parent
    source = "".join((here / name).read_text(encoding="utf-8")
                     for name in ("test_protocol_doc.py", "test_protocol_doc_p2p.py"))
    tokens = set(re.findall(r"(?<![0-9A-Za-z])([0-9a-f]{16,}|[0-9a-f]+…[0-9a-f]+)(?![0-9A-Za-z])", PROSE))
    tokens = {t for t in tokens if not t.isdigit()} - CHECKED_ELSEWHERE_OR_NOT_EXAMPLES
    literal_in_tests = {t for t in tokens if t in source}
    read_by_tests = {
        # read from the doc by the tests above (by pattern, not spelled out here)
        *re.findall(r"`([0-9a-f]{64})`", section("4")),
        find(r"`([0-9a-f]{128})`", section("4"))[1],
        find(r"The prefix is the \d+ ASCII bytes `([0-9a-f]+)`", section("3"))[1],
        *re.findall(r"^\w+\s+([0-9a-f]+)$", find(r"```\n(key .*?)```", section("11.2"), raw=True)[1], re.M),
        find(r"multistream-select's header\s+`([0-9a-f]+)`", section("11.2"))[1],
        find(r"/base16/\n([0-9a-f]{64})\n", section("11.2"), raw=True)[1],
        find(r"is the frame\s+`([0-9a-f]+)`", section("11.2"))[1],
        find(r"is written as the frame `([0-9a-f]+)`", section("11.2"))[1],
        find(r"message bytes `01` and `02` is `([0-9a-f]+)`", section("11.2"))[1],
        find(r"Each side sends the \d+ bytes `([0-9a-f]+)`", section("11.2"))[1],
        "e3b0c442…b855", "000102…1f",
        find(r"public key `([0-9a-f]{64})`", section("15"))[1],  # test_governance_example_and_tables
        find(r"expiring after height \d+:\s*```\s*([0-9a-f]+)", section("15"), raw=True)[1],
        # test_member_entry_proof_example
        find(r"Its entry leaf\s*```\s*([0-9a-f]+)", section("15.6"), raw=True)[1],
        *re.findall(r"[0-9a-f]{64}", find(r"`branch_path` = (.*?) state root `[0-9a-f]{64}`", section("15.6"))[0]),
    }
    unchecked = tokens - literal_in_tests - read_by_tests
    assert not unchecked, f"hex examples in docs/PROTOCOL.md that no test checks: {sorted(unchecked)}"
