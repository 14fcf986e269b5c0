"""Property tests: canonical encoding, tamper evidence, Merkle proofs, replay.

Kept small (modest max_examples, exhaustive loops over short inputs) so the file
runs in a few seconds.
"""

import struct

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from factories import (
    CHAIN_ID,
    build_chain,
    certify,
    decode_block,
    make_genesis,
    make_state,
    member_keys,
    next_block,
    offer,
    profile,
    record,
    sample_bodies,
    status,
    validator_keys,
    withdraw,
)
from protocol import merkle
from protocol.blocks import Header
from protocol.encoding import decode, encode
from protocol.errors import DecodeError, ProtocolError, ValidationError
from protocol.ledger import LedgerState
from protocol.records import Record

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEMBERS = member_keys(2)
VALS = validator_keys(4)

# ---------------------------------------------------------------- encoding

leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.binary(max_size=300)
    | st.text(max_size=300)
)
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=20), max_leaves=40)


@FAST
@given(values)
def test_encode_decode_round_trip(value):
    data = encode(value)
    assert decode(data, max_size=1 << 20) == value
    assert encode(decode(data, max_size=1 << 20)) == data


def _forms(value):
    """All msgpack encodings of the head of ``value`` (prefix bytes, payload), canonical first."""
    t = type(value)
    if value is None or t is bool:
        return [msgpack.packb(value)]
    if t is int:
        forms = [msgpack.packb(value)]
        for code, fmt, lo, hi in (
            (0xCC, ">B", 0, 2**8 - 1), (0xCD, ">H", 0, 2**16 - 1), (0xCE, ">I", 0, 2**32 - 1), (0xCF, ">Q", 0, 2**64 - 1),
            (0xD0, ">b", -(2**7), 2**7 - 1), (0xD1, ">h", -(2**15), 2**15 - 1), (0xD2, ">i", -(2**31), 2**31 - 1),
            (0xD3, ">q", -(2**63), 2**63 - 1),
        ):
            if lo <= value <= hi:
                form = bytes([code]) + struct.pack(fmt, value)
                if form not in forms:
                    forms.append(form)
        return forms
    if t is str or t is bytes:
        payload = value.encode() if t is str else value
        n = len(payload)
        heads = []
        if t is str and n < 32:
            heads.append(bytes([0xA0 | n]))
        codes = (0xD9, 0xDA, 0xDB) if t is str else (0xC4, 0xC5, 0xC6)
        for code, fmt, hi in zip(codes, (">B", ">H", ">I"), (2**8 - 1, 2**16 - 1, 2**32 - 1)):
            if n <= hi:
                heads.append(bytes([code]) + struct.pack(fmt, n))
        return [h + payload for h in heads]  # first one is the shortest
    raise AssertionError(t)


def _array_heads(n):
    heads = [bytes([0x90 | n])] if n < 16 else []
    heads += [b"\xdc" + struct.pack(">H", n), b"\xdd" + struct.pack(">I", n)]
    return heads


@st.composite
def encodings(draw, value):
    """Some encoding of ``value``; returns (bytes, canonical?)."""
    if type(value) is list:
        heads = _array_heads(len(value))
        i = draw(st.integers(0, len(heads) - 1)) if draw(st.integers(0, 7)) == 0 else 0
        parts = [draw(encodings(v)) for v in value]
        return heads[i] + b"".join(p for p, _ in parts), i == 0 and all(c for _, c in parts)
    forms = _forms(value)
    i = draw(st.integers(0, len(forms) - 1)) if draw(st.integers(0, 7)) == 0 else 0
    return forms[i], i == 0


@FAST
@given(st.data())
def test_non_canonical_encodings_rejected(data):
    value = data.draw(values)
    blob, canonical = data.draw(encodings(value))
    assert msgpack.unpackb(blob, raw=False, strict_map_key=False) == value  # it is a valid msgpack of value
    if canonical:
        assert blob == encode(value)
        assert decode(blob, max_size=1 << 20) == value
    else:
        with pytest.raises(DecodeError) as exc:
            decode(blob, max_size=1 << 20)
        assert exc.value.reason == "non_canonical"


@FAST
@given(values, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_rejected(value, extra):
    with pytest.raises(DecodeError) as exc:
        decode(encode(value) + extra, max_size=1 << 20)
    assert exc.value.reason in ("trailing", "malformed")  # some extra bytes start an incomplete value


# ---------------------------------------------------------------- tamper evidence

MUTATIONS = (lambda b: b ^ 0x01, lambda b: b ^ 0x80, lambda b: (b + 1) & 0xFF)


def _mutants(data: bytes):
    for i in range(len(data)):
        for m in MUTATIONS:
            yield i, data[:i] + bytes([m(data[i])]) + data[i + 1:]


def _assert_record_rejected(mutated: bytes, members) -> None:
    """A mutated record must fail to decode or fail to verify under its branch's key."""
    try:
        rec = Record.decode(mutated, chain_id=CHAIN_ID)
    except ProtocolError:
        return
    key = members.get(rec.branch_id)
    if key is None:
        return  # branch id changed to a non-member: the ledger rejects it ("not_member")
    with pytest.raises(ValidationError):
        rec.verify(key)


@pytest.mark.parametrize("body", sample_bodies(), ids=lambda b: b.KIND)
def test_every_single_byte_change_to_a_record_is_rejected(body):
    members = {k.branch_id: k.public_key for k in MEMBERS}
    rec = record(MEMBERS[0], body, seq=7)
    rec.verify(members[rec.branch_id])
    for _, mutated in _mutants(rec.raw):
        _assert_record_rejected(mutated, members)


@FAST
@given(st.data())
def test_random_byte_replacement_in_a_record_is_rejected(data):
    members = {k.branch_id: k.public_key for k in MEMBERS}
    rec = record(MEMBERS[1], data.draw(st.sampled_from(sample_bodies())))
    i = data.draw(st.integers(0, len(rec.raw) - 1))
    b = data.draw(st.integers(0, 255))
    assume(b != rec.raw[i])
    _assert_record_rejected(rec.raw[:i] + bytes([b]) + rec.raw[i + 1:], members)


def test_every_single_byte_change_to_a_header_is_rejected():
    """A mutated header either fails to decode or is not the block the certificate signed."""
    state = make_state()
    block, _, _ = next_block(state, [record(MEMBERS[0], offer())])
    cert = certify(block, VALS[:3])
    data = block.header.encode()
    assert Header.decode(data) == block.header
    cert.verify(state.validators, CHAIN_ID, height=block.height, block_hash=block.hash)
    for _, mutated in _mutants(data):
        try:
            header = Header.decode(mutated)
        except ProtocolError:
            continue
        assert header.hash != block.hash
        with pytest.raises(ValidationError):
            cert.verify(state.validators, CHAIN_ID, height=header.height, block_hash=header.hash)


def test_every_single_byte_change_to_a_block_is_rejected():
    """Body changes break a root (checked at decode); header changes change the block hash."""
    state = make_state()
    block, _, _ = next_block(state, [record(MEMBERS[0], profile()), record(MEMBERS[1], offer())])
    assert len(block.records) == 2
    data = block.encode()
    for _, mutated in _mutants(data):
        try:
            got = decode_block(mutated)
        except ProtocolError:
            continue
        assert got.hash != block.hash


# ---------------------------------------------------------------- Merkle proofs


@FAST
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=40, unique=True), st.data())
def test_merkle_proofs(leaves_, data):
    hashes = [merkle.leaf_hash(x) for x in leaves_]
    root = merkle.root(leaves_)
    n = len(leaves_)
    for i in range(n):
        proof = merkle.prove(hashes, i)
        merkle.verify_inclusion(leaves_[i], proof, root)
        assert merkle.InclusionProof.decode(proof.encode()) == proof
    i = data.draw(st.integers(0, n - 1))
    proof = merkle.prove(hashes, i)
    for j in range(n):
        if j != i:
            with pytest.raises(ValidationError):
                merkle.verify_inclusion(leaves_[j], proof, root)
    other = data.draw(st.binary(max_size=40).filter(lambda x: x not in leaves_))
    with pytest.raises(ValidationError):
        merkle.verify_inclusion(other, proof, root)
    changed = list(leaves_)
    changed[data.draw(st.integers(0, n - 1))] = other
    with pytest.raises(ValidationError):
        merkle.verify_inclusion(leaves_[i], proof, merkle.root(changed))
    if n > 1:
        wrong_index = merkle.InclusionProof(data.draw(st.integers(0, n - 1).filter(lambda k: k != i)), n, proof.path)
        with pytest.raises(ValidationError):
            merkle.verify_inclusion(leaves_[i], wrong_index, root)


# ---------------------------------------------------------------- replay

ops = st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["offer", "status", "withdraw", "profile"]),
                         st.integers(0, 2), st.integers(0, 9)), max_size=14)


def _records_from_ops(op_list):
    """Turn random operations into a valid record history (invalid ops are dropped)."""
    seq: dict = {}
    offered: set = set()
    out = []
    for who, kind, sid_n, x in op_list:
        k = MEMBERS[who]
        sid = f"svc-{sid_n}"
        if kind == "offer":
            body = offer(sid, fees=(), description=f"variant {x}")
            offered.add((who, sid))
        elif kind == "profile":
            body = profile(f"Branch {who} v{x}")
        elif (who, sid) not in offered:
            continue
        elif kind == "status":
            body = status(sid, wait=x)
        else:
            body = withdraw(sid)
            offered.discard((who, sid))
        subject = (who, body.subject())
        seq[subject] = seq.get(subject, 0) + 1
        out.append(record(k, body, seq[subject]))
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.lists(st.integers(0, 5), min_size=1, max_size=4))
def test_replaying_the_same_blocks_gives_the_same_state(op_list, cuts):
    records = _records_from_ops(op_list)
    batches, start = [], 0
    for c in cuts:
        batches.append(records[start:start + c])
        start += c
    batches.append(records[start:])
    genesis = make_genesis()
    chain, built = build_chain(genesis, batches, VALS)
    for _ in range(2):
        replica = LedgerState(genesis)
        for data, cert in chain:
            replica.commit_block(decode_block(data), cert)
        assert replica.state_root == built.state_root
        assert list(replica.entries()) == list(built.entries())
        assert (replica.height, replica.last_block_hash) == (built.height, built.last_block_hash)
