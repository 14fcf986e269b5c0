"""The OpenAPI 3.1 document of the node's HTTP API.

Served at ``/v1/openapi.json`` and kept in the repo as docs/openapi.json (a
test checks they are equal). After changing the API, regenerate the file::

    python -m node.api.openapi > docs/openapi.json
"""

from __future__ import annotations

import json
from typing import Any

from protocol.schema import BODY_TYPES, CATEGORIES, STATUSES

OBJ = {"type": "object"}
HEX = {"type": "string", "pattern": "^[0-9a-f]*$"}
HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
BRANCH = {"type": "string", "pattern": "^[0-9a-f]{40}$"}
INT = {"type": "integer", "minimum": 0}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _p(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


ERRORS = {
    "400": _json(_ref("Error"), "Bad request: error.code names the reason, error.field the input"),
    "401": _json(_ref("Error"), "Missing or wrong bearer token (code unauthorized)"),
    "404": _json(_ref("Error"), "Not found (code not_found)"),
}
WRITE_ERRORS = ERRORS | {
    "409": _json(_ref("Error"), "duplicate or seq_conflict"),
    "413": _json(_ref("Error"), "Body over 64 KiB (code too_large)"),
    "503": _json(_ref("Error"), "mempool_full or catching_up: retry after Retry-After seconds"),
}
PAGE = [_q("before", INT | {"minimum": 1}, "only heights below this"), _q("limit", INT | {"minimum": 1, "maximum": 100}, "page size (default 20)")]


def _get(summary: str, schema: dict[str, Any], params: list | None = None, *, open_read: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": _json(schema)} | ERRORS}
    if params:
        op["parameters"] = params
    if open_read:
        op["security"] = []
    return {"get": op}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "branchnet node API",
        "version": "1",
        "description": (
            "JSON over HTTP. Reads are open unless the node sets [api] auth_reads; writes need "
            "'Authorization: Bearer <HOME/api_token>'. Every error body is "
            '{"error": {"code", "field", "message"}}, counted in branchnet_rejected{source="api", reason=code}: '
            "400 bad input (code names the rule, field the input), 401 no or wrong token, 404, 405 (Allow lists the "
            "path's methods), 409 duplicate or sequence conflict, 413 body over 64 KiB, 431 headers over 16 KiB, "
            "503 mempool_full or catching_up (with Retry-After). One exception: a request that is not valid HTTP/1.1 "
            "(a malformed request line or target, Content-Length or chunked body, HTTP/0.9) is refused by the HTTP "
            "server before the application sees it: 400 with an empty body."
        ),
    },
    "servers": [{"url": "http://127.0.0.1:26657"}],
    "security": [{"bearer": []}],
    "paths": {
        "/health": _get("Liveness and height", {"type": "object", "properties": {"ok": {"type": "boolean"}, "height": INT}}, open_read=True),
        "/metrics": {"get": {"summary": "Prometheus metrics (text exposition format)",
                             "responses": {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/v1/openapi.json": _get("This document", OBJ, open_read=True),
        "/v1/status": _get("Node status", _ref("Status")),
        "/v1/peers": _get("Connected peers", {"type": "object", "properties": {
            "count": INT, "peers": {"type": "array", "items": {"type": "object", "properties": {"peer_id": {"type": "string"}}}}}}),
        "/v1/validators": _get("Current validator set", {"type": "object", "properties": {
            "total_power": INT, "validators": {"type": "array", "items": _ref("Validator")}}}),
        "/v1/blocks": _get("Block headers, newest first", {"type": "object", "properties": {
            "blocks": {"type": "array", "items": _ref("HeaderSummary")},
            "next_before": {"type": ["integer", "null"], "description": "pass as before= for the next page"}}}, PAGE),
        "/v1/blocks/{height}": _get("One block with its records and commit certificate", _ref("Block"), [_p("height", INT)]),
        "/v1/blocks/hash/{hash}": _get("One block by hash", _ref("Block"), [_p("hash", HASH)]),
        "/v1/records": {
            **_get("Committed records, newest first", {"type": "object", "properties": {
                "records": {"type": "array", "items": _ref("Record")},
                "next_cursor": {"type": ["string", "null"],
                                "description": "pass as cursor= for the next page (pages may end inside a block); null on the last page"}}}, [
                _q("branch", BRANCH, "publishing branch id"),
                _q("kind", {"enum": list(BODY_TYPES)}, "record kind"),
                _q("service", {"type": "string"}, "service id"),
                _q("category", {"enum": list(CATEGORIES)}, "service category"),
                _q("region", {"type": "string"}, "branch region code at commit time"),
                _q("cursor", {"type": "string", "pattern": "^[0-9]+:[0-9]+$"}, "HEIGHT:INDEX from next_cursor: only records before that position"),
                *PAGE]),
            "post": {
                "summary": "Submit a record signed elsewhere",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["record"], "properties": {"record": HEX}}}}},
                "responses": {"202": _json({"type": "object", "properties": {"hash": HASH, "status": {"const": "accepted"}}},
                                           "Accepted: on the node's disk before this answer; sent until it commits "
                                           "(GET /v1/records/{hash} follows it)")} | WRITE_ERRORS,
            },
        },
        "/v1/records/sign": {"post": {
            "summary": "Build, sign (with the node's branch key, a seq above every one it signed for the subject, "
                       "wall-clock time) and submit a record; 202 once it is on disk",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["kind", "body"], "properties": {
                    "kind": {"enum": list(BODY_TYPES)},
                    "body": {"type": "object", "description": "fields by name, as in Record.body of GET /v1/records/{hash}"}}}}}},
            "responses": {"202": _json({"type": "object", "properties": {"hash": HASH, "seq": INT, "record": _ref("Record")}},
                                       "Accepted: on the node's disk before this answer")} | WRITE_ERRORS,
        }},
        "/v1/records/{hash}": _get("One record and where it stands: committed (with height and index), pending "
                                   "(acknowledged or in the mempool, not committed yet) or rejected (acknowledged, "
                                   "but it can never commit: reason)", {"type": "object", "properties": {
            "record": {"oneOf": [_ref("Record"), {"type": "null"}]}, "height": {"type": ["integer", "null"]}, "index": INT,
            "status": {"enum": ["committed", "pending", "rejected"]}, "reason": {"type": "string"},
            "rejected_at_ms": INT}}, [_p("hash", HASH)]),
        "/v1/records/{hash}/proof": _get("Inclusion proof of a committed record and the header it proves against; "
                                          "verify with protocol.proofs.verify_record_proof and only the genesis file",
                                          _ref("RecordProof"), [_p("hash", HASH)]),
        "/v1/services": _get("Current services registry", {"type": "object", "properties": {
            "total": INT, "services": {"type": "array", "items": _ref("Service")}}}, [
            _q("category", {"enum": list(CATEGORIES)}, "service category"),
            _q("branch", BRANCH, "branch id"),
            _q("region", {"type": "string"}, "region code or prefix (CN-BJ matches CN-BJ-110108)"),
            _q("status", {"enum": list(STATUSES)}, "live status"),
            _q("q", {"type": "string"}, "case-insensitive text in title or description"),
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 100"),
            _q("offset", INT, "default 0")]),
        "/v1/branches": _get("Member branches and their profiles", {"type": "object", "properties": {
            "branches": {"type": "array", "items": _ref("Branch")}}}),
        "/v1/branches/{branch_id}": _get("One branch with its services (services is then a list)", _ref("Branch"), [_p("branch_id", BRANCH)]),
        "/v1/governance": _get("Governance (PROTOCOL.md §15): members, the validator sets signing the next two heights, "
                               "the chain parameters in force and every proposal, newest first", _ref("Governance"),
                               [_q("status", {"enum": ["open", "passed", "refused", "expired"]}, "only proposals in this state")]),
        "/v1/events": {"get": {
            "summary": "Server-sent events: 'block' {height, hash, time_ms, num_records} then one 'record' "
                       "{hash, kind, branch_id, subject, height} per record; a keep-alive comment every 15 s; "
                       "'dropped' if the client reads too slowly",
            "responses": {"200": {"description": "OK", "content": {"text/event-stream": {"schema": {"type": "string"}}}}}}},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "content of HOME/api_token"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "string", "description": "reason slug, e.g. bad_hex, replayed_seq"},
                "field": {"type": "string"}, "message": {"type": "string"}}}}},
            "Status": {"type": "object", "properties": {
                "moniker": {"type": "string"}, "chain_id": {"type": "string"}, "branch_id": BRANCH, "peer_id": {"type": "string"},
                "role": {"enum": ["validator", "observer"]}, "height": INT, "last_block_hash": HASH,
                "last_block_time_ms": INT, "state_root": HASH, "mempool": INT, "peers": INT, "sync": OBJ,
                "consensus": {"type": ["object", "null"]}}},
            "Validator": {"type": "object", "properties": {
                "branch_id": BRANCH, "name": {"type": "string"}, "power": INT, "public_key": HEX, "peer_id": {"type": "string"}}},
            "Header": {"type": "object", "properties": {
                "version": INT, "chain_id": {"type": "string"}, "height": INT, "round": INT, "time_ms": INT,
                "prev_hash": HASH, "records_root": HASH, "evidence_root": HASH, "state_root": HASH,
                "validators_hash": HASH, "next_validators_hash": HASH, "proposer": BRANCH, "hash": HASH}},
            "HeaderSummary": {"allOf": [_ref("Header"), {"type": "object", "properties": {"num_records": INT}}]},
            "Certificate": {"type": "object", "properties": {
                "height": INT, "round": INT, "block_hash": HASH, "signatures": {"type": "array", "items": {
                    "type": "object", "properties": {"validator": BRANCH, "signature": HEX}}}}},
            "Block": {"type": "object", "properties": {
                "header": _ref("Header"), "hash": HASH, "records": {"type": "array", "items": _ref("Record")},
                "evidence": {"type": "array", "items": OBJ}, "certificate": _ref("Certificate")}},
            "Record": {"type": "object", "properties": {
                "hash": HASH, "kind": {"enum": list(BODY_TYPES)}, "chain_id": {"type": "string"}, "branch_id": BRANCH,
                "subject": {"type": "string"}, "seq": INT, "time_ms": INT, "body": OBJ, "signature": HEX,
                "height": {"type": "integer", "description": "in record lists only"},
                "index": {"type": "integer", "description": "position in its block; in record lists only"}}},
            "RecordProof": {"type": "object", "properties": {
                "chain_id": {"type": "string"}, "record": HEX, "height": INT, "index": INT,
                "proof": {"type": "object", "properties": {"index": INT, "tree_size": INT, "path": {"type": "array", "items": HASH}}},
                "header": {"description": "hex of the canonical header encoding", **HEX},
                "certificate": {"description": "hex of the canonical commit certificate encoding", **HEX}}},
            "Service": {"type": "object", "properties": {
                "branch_id": BRANCH, "branch_name": {"type": "string"}, "region": {"type": ["string", "null"]},
                "service_id": {"type": "string"}, "offer": {"type": "object", "description": "service.offer body (fees, risk_level, ...)"},
                "status": {"type": ["object", "null"], "description": "service.status body"}, "record_hash": HASH, "height": INT}},
            "Governance": {"type": "object", "properties": {
                "height": INT,
                "members": {"type": "array", "items": {"type": "object", "properties": {
                    "branch_id": BRANCH, "name": {"type": "string"}, "public_key": HEX, "power": INT,
                    "jailed": {"type": "boolean"}, "key_rotated": {"type": "boolean"}}}},
                "validators": {"type": "array", "items": _ref("SetMember"), "description": "signs the next block"},
                "next_validators": {"type": "array", "items": _ref("SetMember"), "description": "signs the block after it"},
                "params": OBJ,
                "proposals": {"type": "array", "items": {"type": "object", "properties": {
                    "id": HASH, "name": {"type": "string"}, "proposer": BRANCH,
                    "action": {"type": "object", "description": "kind and its fields (PROTOCOL.md §15.2)"},
                    "expires_height": INT, "submitted_height": INT,
                    "status": {"enum": ["open", "passed", "refused", "expired"]},
                    "decided_height": {"type": ["integer", "null"]}, "reason": {"type": ["string", "null"]},
                    "votes": {"type": "array", "items": {"type": "object", "properties": {
                        "branch_id": BRANCH, "yes": {"type": "boolean"}}}}}}}}},
            "SetMember": {"type": "object", "properties": {"branch_id": BRANCH, "name": {"type": "string"}, "power": INT}},
            "Branch": {"type": "object", "properties": {
                "branch_id": BRANCH, "name": {"type": "string", "description": "member name (genesis or governance)"},
                "profile": {"type": ["object", "null"]}, "power": INT,
                "services": {"description": "count in lists; the list in /v1/branches/{branch_id}",
                             "oneOf": [INT, {"type": "array", "items": _ref("Service")}]},
                "num_services": INT}},
        },
    },
}


def dumps() -> str:
    return json.dumps(OPENAPI, indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(dumps(), end="")
