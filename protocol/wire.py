"""Node-level wire messages: gossip topics and the request/response protocols.

Specified in docs/PROTOCOL.md §11.2. All payloads are canonical msgpack
(protocol.encoding). Pure codec: every ``decode_*`` raises :class:`DecodeError`
(the peer's fault) on anything malformed, never anything else.

Gossip topics (``{chain}`` is the chain id):

* ``/branchnet/{chain}/records/1``    ``[1, [record bytes, ...], resend]`` (a batch ≤ 64 KiB)
* ``/branchnet/{chain}/consensus/1``  ``[2, proposal, block bytes | nil, resend]``,
  ``[5, proposal, header, [record hash, ...], [evidence, ...], resend]`` (a compact
  proposal: receivers rebuild the block from their mempool and fetch it by hash
  if any record is missing) or ``[3, vote, resend]``. ``resend`` is a counter that makes a re-sent message's
  bytes (and so its gossip message id) new; receivers ignore it.
* ``/branchnet/{chain}/blocks/1``     ``[4, height, block_hash]`` — a commit announcement.

A stuck validator sends each validator ``[6, round summary, resend]`` (only over
the direct consensus protocol): what it holds of its height; the receiver
answers with the votes and proposal it lacks (protocol.consensus.gossip).
Several messages queued for one validator travel as one bundle,
``[7, [message bytes, ...]]`` (1 to 256 messages of kinds 2, 3, 5, 6; only over
the direct consensus protocol).

Validators also send consensus messages straight to each other over
``/branchnet/{chain}/consensus/2`` (one way: a request frame with id 0, never
answered; the body the same bytes as on the topic, or a bundle), or to a peer
that does not serve it over ``/branchnet/{chain}/consensus/1`` (request = the
same bytes as on the topic, response = empty): record batches on gossip would otherwise delay votes by
seconds under load (head-of-line blocking in one gossip stream per peer).

Record batches go to validators directly over ``/branchnet/{chain}/records/1``
(request = the batch, response ``[0, new records]`` or ``[2, "<reason>"]``); the
records topic carries a batch only when some validator could not be reached.

Request/response protocol ``/branchnet/{chain}/sync/1``, one frame each way:

* ``[1]``                      status → ``[0, [height, last_block_hash]]``
* ``[2, start, count]``        blocks → ``[0, [[block bytes, certificate bytes], ...]]``
  (count ≤ 64, answer may be shorter; empty when the peer has none of them)
* ``[3, block_hash]``          one block (committed or proposed) → ``[0, block bytes]``
* ``[4, [record_hash, ...]]``  records by hash (1..1024; for a compact proposal whose
  records are not all in our mempool) → ``[0, [record bytes | nil, ...]]`` in request order
* errors                       ``[1, "not found"]``, ``[2, "<reason>"]`` (bad request)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from .encoding import decode, encode, expect_array, expect_bytes, expect_int, expect_list
from .errors import DecodeError
from .votes import MAX_HEIGHT, Proposal, Vote

MSG_RECORDS = 1
MSG_PROPOSAL = 2
MSG_VOTE = 3
MSG_NEW_BLOCK = 4
MSG_COMPACT_PROPOSAL = 5
MSG_ROUND_SUMMARY = 6
MSG_BUNDLE = 7

REQ_STATUS = 1
REQ_BLOCKS = 2
REQ_BLOCK = 3
REQ_RECORDS = 4
MAX_RECORDS_REQUEST = 1024
OK, NOT_FOUND, BAD_REQUEST = 0, 1, 2

MAX_RECORD_BATCH_BYTES = 64 * 1024
MAX_SYNC_BLOCKS = 64
MAX_GOSSIP_BYTES = 1024 * 1024
MAX_INLINE_BLOCK_BYTES = 900 * 1024  # in a proposal sent over gossip
MAX_DIRECT_BLOCK_BYTES = 3 * 1024 * 1024  # in a proposal sent over a direct stream (4 MiB frames)
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_BUNDLE_MESSAGES = 256  # consensus messages in one bundle
MAX_BUNDLE_BYTES = 4 * 1024 * 1024 - 5  # a bundle fills at most one request frame (4 MiB with its 5-byte header)
BUNDLE_TARGET_BYTES = 256 * 1024  # a sender adds no message that would take its bundle past this


@dataclass(frozen=True, slots=True)
class Topics:
    """The gossip topics of one chain."""

    records: str
    consensus: str
    blocks: str

    @classmethod
    def of(cls, chain_id: str) -> "Topics":
        base = f"/branchnet/{chain_id}"
        return cls(f"{base}/records/1", f"{base}/consensus/1", f"{base}/blocks/1")


def sync_protocol(chain_id: str) -> str:
    return f"/branchnet/{chain_id}/sync/1"


def records_protocol(chain_id: str) -> str:
    """Direct delivery of record batches to validators (request = the batch as on the
    records topic, answer ``[0, new records]`` or ``[2, "<reason>"]``)."""
    return f"/branchnet/{chain_id}/records/1"


def consensus_protocol(chain_id: str) -> str:
    """Direct validator-to-validator delivery of consensus messages (one frame each way:
    the same bytes as on the consensus topic, answered by an empty frame)."""
    return f"/branchnet/{chain_id}/consensus/1"


def consensus_push_protocol(chain_id: str) -> str:
    """The same, one way (§11.2): request frames with id 0 that are never answered, each
    carrying one consensus message or a bundle of them (``[7, [message bytes, ...]]``)."""
    return f"/branchnet/{chain_id}/consensus/2"


# ---------------------------------------------------------------- gossip


def encode_records(raw_records: list[bytes], resend: int = 0) -> bytes:
    return encode([MSG_RECORDS, raw_records, resend])


def decode_records(data: bytes, *, max_records: int = 4096) -> list[bytes]:
    kind, items, resend = expect_array(decode(data, max_size=MAX_GOSSIP_BYTES), 3, "records_batch")
    expect_int(resend, "records_batch.resend", hi=2**32)
    if kind != MSG_RECORDS:
        raise DecodeError("not a record batch", field="records_batch.type", reason="type")
    raws = [expect_bytes(r, f"records_batch[{i}]", max_len=8192) for i, r in enumerate(expect_list(items, "records_batch", max_len=max_records))]
    if batch_size(raws) > MAX_RECORD_BATCH_BYTES:
        raise DecodeError(f"{batch_size(raws)} bytes of records, more than {MAX_RECORD_BATCH_BYTES}", field="records_batch",
                          reason="batch_too_large")
    return raws


def batch_size(raw_records: list[bytes]) -> int:
    """A batch's size as the 64 KiB limit counts it: 3 + the sum of (3 + record length)."""
    return 3 + sum(3 + len(r) for r in raw_records)


def record_batches(raw_records: list[bytes]) -> Iterator[list[bytes]]:
    """``raw_records`` in order, cut into batches within :func:`batch_size`'s limit
    (receivers refuse larger ones); a record too big for any batch goes alone."""
    start = 0
    while start < len(raw_records):
        end, size = start, batch_size([])
        while end < len(raw_records) and (end == start or size + len(raw_records[end]) + 3 <= MAX_RECORD_BATCH_BYTES):
            size += len(raw_records[end]) + 3
            end += 1
        yield raw_records[start:end]
        start = end


@dataclass(frozen=True, slots=True)
class ProposalMessage:
    proposal: Proposal
    block: bytes | None


@dataclass(frozen=True, slots=True)
class CompactProposal:
    """A proposal naming its block's records by hash (they are in every mempool already)."""

    proposal: Proposal
    header: Any  # protocol.blocks.Header
    record_hashes: list[bytes]
    evidence: list[Any]  # DuplicateVoteEvidence | DuplicateProposalEvidence


def encode_compact_proposal(proposal: Proposal, block: Any, resend: int = 0) -> bytes:
    return encode([MSG_COMPACT_PROPOSAL, proposal.to_array(), block.header.to_array(),
                   [r.hash for r in block.records], [e.to_array() for e in block.evidence], resend])


def encode_proposal(proposal: Proposal, block: bytes | None, resend: int = 0) -> bytes:
    return encode([MSG_PROPOSAL, proposal.to_array(), block, resend])


def encode_vote(vote: Vote, resend: int = 0) -> bytes:
    return encode([MSG_VOTE, vote.to_array(), resend])


def encode_round_summary(summary: Any, resend: int = 0) -> bytes:
    return encode([MSG_ROUND_SUMMARY, summary.to_array(), resend])


def decode_consensus(data: bytes) -> ProposalMessage | CompactProposal | Vote | Any:
    """A consensus message: ProposalMessage, CompactProposal, Vote, or a RoundSummary."""
    value = decode(data, max_size=MAX_DIRECT_BLOCK_BYTES + 4096)
    if type(value) is not list or not value:
        raise DecodeError("expected an array", field="consensus", reason="type")
    if value[0] == MSG_PROPOSAL:
        _, p, block, resend = expect_array(value, 4, "proposal_msg")
        expect_int(resend, "proposal_msg.resend", hi=2**32)
        if block is not None:
            block = expect_bytes(block, "proposal_msg.block", max_len=MAX_DIRECT_BLOCK_BYTES)
        return ProposalMessage(Proposal.from_array(p), block)
    if value[0] == MSG_COMPACT_PROPOSAL:
        from .blocks import Header
        from .votes import decode_evidence

        _, p, header, hashes, evidence, resend = expect_array(value, 6, "compact_proposal")
        expect_int(resend, "compact_proposal.resend", hi=2**32)
        hashes = [expect_bytes(h, f"compact_proposal.records[{i}]", size=32)
                  for i, h in enumerate(expect_list(hashes, "compact_proposal.records", max_len=100_000))]
        ev = [decode_evidence(e, f"compact_proposal.evidence[{i}]")
              for i, e in enumerate(expect_list(evidence, "compact_proposal.evidence", max_len=1024))]
        return CompactProposal(Proposal.from_array(p), Header.from_array(header), hashes, ev)
    if value[0] == MSG_VOTE:
        _, v, resend = expect_array(value, 3, "vote_msg")
        expect_int(resend, "vote_msg.resend", hi=2**32)
        return Vote.from_array(v)
    if value[0] == MSG_ROUND_SUMMARY:
        from .consensus.gossip import RoundSummary

        _, summary, resend = expect_array(value, 3, "round_summary_msg")
        expect_int(resend, "round_summary_msg.resend", hi=2**32)
        return RoundSummary.from_array(summary, "round_summary")
    raise DecodeError(f"unknown consensus message type {value[0]!r}", field="consensus.type", reason="type")


def encode_bundle(messages: list[bytes]) -> bytes:
    """Consensus messages for one validator in one request (§11.2): each element the bytes
    of a message of kind 2, 3, 5 or 6, in the order they were queued."""
    if not 0 < len(messages) <= MAX_BUNDLE_MESSAGES:
        raise ValueError(f"a bundle holds 1 to {MAX_BUNDLE_MESSAGES} messages, not {len(messages)}")
    return encode([MSG_BUNDLE, list(messages)])


def is_bundle(data: bytes) -> bool:
    """Whether ``data`` is a bundle by its first two bytes (a 2-element array, then 7)."""
    return data[:2] == b"\x92\x07"


def decode_bundle(data: bytes) -> list[bytes]:
    """The messages of a bundle, undecoded (each goes through :func:`decode_consensus`,
    which refuses a bundle inside a bundle). Raises DecodeError."""
    kind, messages = expect_array(decode(data, max_size=MAX_BUNDLE_BYTES), 2, "bundle")
    if kind != MSG_BUNDLE:
        raise DecodeError("not a bundle", field="bundle.type", reason="type")
    items = expect_list(messages, "bundle.messages", max_len=MAX_BUNDLE_MESSAGES)
    if not items:
        raise DecodeError("an empty bundle", field="bundle.messages", reason="size")
    return [expect_bytes(m, f"bundle.messages[{i}]", max_len=MAX_BUNDLE_BYTES) for i, m in enumerate(items)]


def encode_new_block(height: int, block_hash: bytes) -> bytes:
    return encode([MSG_NEW_BLOCK, height, block_hash])


def decode_new_block(data: bytes) -> tuple[int, bytes]:
    kind, height, block_hash = expect_array(decode(data, max_size=128), 3, "new_block")
    if kind != MSG_NEW_BLOCK:
        raise DecodeError("not a block announcement", field="new_block.type", reason="type")
    return expect_int(height, "new_block.height", lo=1, hi=MAX_HEIGHT), expect_bytes(block_hash, "new_block.hash", size=32)


# ---------------------------------------------------------------- sync


def decode_request(data: bytes) -> tuple[int, list[Any]]:
    value = decode(data, max_size=64 + 35 * MAX_RECORDS_REQUEST)
    if type(value) is not list or not value or type(value[0]) is not int:
        raise DecodeError("expected [op, ...]", field="request", reason="type")
    op = value[0]
    if op == REQ_STATUS:
        expect_array(value, 1, "status_request")
        return op, []
    if op == REQ_BLOCKS:
        _, start, count = expect_array(value, 3, "blocks_request")
        return op, [expect_int(start, "blocks_request.start", lo=1, hi=MAX_HEIGHT), expect_int(count, "blocks_request.count", lo=1, hi=MAX_SYNC_BLOCKS)]
    if op == REQ_BLOCK:
        _, block_hash = expect_array(value, 2, "block_request")
        return op, [expect_bytes(block_hash, "block_request.hash", size=32)]
    if op == REQ_RECORDS:
        _, hashes = expect_array(value, 2, "records_request")
        items = expect_list(hashes, "records_request.hashes", max_len=MAX_RECORDS_REQUEST)
        if not items:
            raise DecodeError("no record hashes", field="records_request.hashes", reason="empty")
        return op, [[expect_bytes(h, f"records_request.hashes[{i}]", size=32) for i, h in enumerate(items)]]
    raise DecodeError(f"unknown request {op}", field="request.op", reason="op")


def response(status: int, payload: Any) -> bytes:
    return encode([status, payload])


def decode_response(data: bytes) -> tuple[int, Any]:
    """``(status, payload)`` of any response; the payload is not checked."""
    status, payload = expect_array(decode(data, max_size=MAX_RESPONSE_BYTES), 2, "response")
    expect_int(status, "response.status", hi=2)
    return status, payload


class Refused(DecodeError):
    """The peer answered with an error status (``not found`` or ``bad request``)."""

    reason = "refused"


def _ok_payload(data: bytes, what: str) -> Any:
    status, payload = decode_response(data)
    if status != OK:
        message = payload if type(payload) is str else repr(payload)[:80]
        raise Refused(f"{what}: peer answered {'not found' if status == NOT_FOUND else 'bad request'} ({message[:200]})",
                      field=what, reason="not_found" if status == NOT_FOUND else "refused")
    return payload


def decode_status_response(data: bytes) -> tuple[int, bytes]:
    """``[0, [height, last_block_hash]]`` -> (height, hash)."""
    height, block_hash = expect_array(_ok_payload(data, "status"), 2, "status")
    return expect_int(height, "status.height", hi=MAX_HEIGHT), expect_bytes(block_hash, "status.hash", size=32)


def decode_blocks_response(data: bytes, *, max_blocks: int = MAX_SYNC_BLOCKS) -> list[tuple[bytes, bytes]]:
    """``[0, [[block, certificate], ...]]`` -> the raw pairs (not decoded further)."""
    items = expect_list(_ok_payload(data, "blocks"), "blocks", max_len=max_blocks)
    out = []
    for i, item in enumerate(items):
        block, cert = expect_array(item, 2, f"blocks[{i}]")
        out.append((expect_bytes(block, f"blocks[{i}].block"), expect_bytes(cert, f"blocks[{i}].certificate")))
    return out


def decode_block_response(data: bytes) -> bytes:
    """``[0, block bytes]`` -> the raw block. Raises Refused(not_found) if the peer lacks it."""
    return expect_bytes(_ok_payload(data, "block"), "block")


def decode_records_response(data: bytes, count: int) -> list[bytes | None]:
    """``[0, [record | nil, ...]]`` for a request of ``count`` hashes, in request order."""
    items = expect_list(_ok_payload(data, "records"), "records", max_len=count)
    if len(items) != count:
        raise DecodeError(f"{len(items)} entries for {count} hashes", field="records", reason="count")
    return [None if r is None else expect_bytes(r, f"records[{i}]", max_len=8192) for i, r in enumerate(items)]


def decode_push_response(data: bytes) -> int:
    """``[0, new records]`` answering a record batch pushed to a validator."""
    return expect_int(_ok_payload(data, "push"), "push.new", hi=2**32)
