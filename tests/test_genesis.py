"""protocol/genesis.py: loading, hashing and dumping the genesis file."""

import json

import pytest

from factories import CHAIN_ID, GENESIS_TIME_MS, genesis_doc, make_genesis, member_keys, validator_keys
from protocol.encoding import encode
from protocol.errors import ValidationError
from protocol.genesis import ChainParams, Genesis
from protocol.hashing import sha256


def test_load_and_fields():
    vals, mems = validator_keys(4), member_keys(2)
    g = Genesis.loads(json.dumps(genesis_doc(vals, mems, powers=[1, 2, 3, 4])).encode())
    assert g.chain_id == CHAIN_ID and g.genesis_time_ms == GENESIS_TIME_MS
    assert g.validators.total_power == 10 and len(g.validators) == 4
    assert [m.branch_id for m in g.members] == [k.branch_id for k in vals + mems]
    assert [m.power for m in g.members] == [1, 2, 3, 4, 0, 0]
    assert mems[0].branch_id not in g.validators
    assert g.params == ChainParams()


def test_dumps_round_trip_and_hash():
    g = make_genesis()
    again = Genesis.loads(g.dumps())
    assert again == g and again.hash == g.hash
    assert g.hash == sha256(encode(g.to_array()))


def test_hash_covers_everything_that_matters():
    base = make_genesis().hash
    assert make_genesis(chain_id="other-chain").hash != base
    assert make_genesis(powers=[10, 10, 10, 11]).hash != base
    assert make_genesis(members=member_keys(3)).hash != base
    assert make_genesis(params={"max_block_records": 5}).hash != base
    doc = genesis_doc(None, member_keys())
    doc["genesis_time_ms"] += 1
    assert Genesis.from_json(doc).hash != base


def test_params():
    g = make_genesis(params={"max_block_records": 50, "timeout_propose_ms": 3000})
    assert g.params.max_block_records == 50 and g.params.timeout_propose_ms == 3000
    assert g.params.max_block_bytes == ChainParams().max_block_bytes
    assert Genesis.loads(g.dumps()).params == g.params


def test_branch_id_optional_and_checked():
    doc = genesis_doc()
    del doc["validators"][0]["branch_id"]
    Genesis.from_json(doc)
    doc["validators"][0]["branch_id"] = "00" * 20
    with pytest.raises(ValidationError) as exc:
        Genesis.from_json(doc)
    assert (exc.value.field, exc.value.reason) == ("validators[0].branch_id", "branch_id")


def test_huge_integer_literal_is_a_validation_error():
    """Bug fixed: json.loads raises plain ValueError on ints over Python's digit limit."""
    with pytest.raises(ValidationError) as exc:
        Genesis.loads(b'{"chain_id": "x", "genesis_time_ms": ' + b"1" * 5000 + b"}")
    assert exc.value.reason == "json"


def test_small_order_public_key_is_refused_with_its_own_reason():
    doc = genesis_doc(validator_keys(4), member_keys(1))
    doc["members"][0]["public_key"] = ("01" + "00" * 31)  # the identity point: anyone could sign for it
    doc["members"][0].pop("branch_id", None)
    with pytest.raises(ValidationError) as exc:
        Genesis.from_json(doc)
    assert exc.value.reason == "bad_key" and exc.value.field == "members[0].public_key"
