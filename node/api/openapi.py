"""The OpenAPI 3.1 document of the node's HTTP API, generated from the typed
models of :mod:`.models` and :mod:`.models_node`.

Served at ``/v1/openapi.json`` and kept in the repo as docs/openapi.json (a
test checks they are equal, and the API tests validate every response against
it). After changing the API or a model, regenerate the file::

    python -m node.api.openapi > docs/openapi.json

Security is per operation: writes need the bearer token; reads are public
unless the node sets ``[api] auth_reads`` (``security: [{}, {"bearer": []}]``);
/, /health, this document and the explorer's files are always public.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from protocol.schema import BODY_TYPES, CATEGORIES, CHANNELS, FEE_BASES, OWNERSHIP, STATUSES

from . import models as m
from .compare import QUALITY_SORTS, SORTS
from . import models_node as n

HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
BRANCH = {"type": "string", "pattern": "^[0-9a-f]{40}$"}
INT = {"type": "integer", "minimum": 0}
PUBLIC: list = []
READ = [{}, {"bearer": []}]  # open, unless [api] auth_reads
WRITE = [{"bearer": []}]

# Every named model, in the order of components.schemas (others are pulled in by reference).
MODELS: tuple = (
    n.Error, n.Index, n.Health, n.Status, n.Peers, n.Observers, n.SetObserver, n.Validators, n.Activity, n.GenesisFile,
    m.BlockList, m.Block, m.RawBlock, m.RecordList, m.RecordState, m.RecordProof,
    m.ServiceList, m.QualityList, m.BranchList, m.BranchDetail, m.Governance,
    n.SubmitRecord, n.SignRecord, n.Accepted, n.Signed, n.RotateKey, n.KeyRotated, n.BlockEvent, n.RecordEvent, n.ValidatorSetEvent, n.DroppedEvent,
)
_REFS, SCHEMAS = msgspec.json.schema_components(MODELS, ref_template="#/components/schemas/{name}")
REF = dict(zip(MODELS, _REFS))


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(media: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "string"}}}}


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _p(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


ERR = REF[n.Error]
READ_ERRORS = {
    "400": _json(ERR, "Bad request: error.code names the reason, error.field the input"),
    "401": _json(ERR, "Only when the node sets [api] auth_reads: missing or wrong bearer token (code unauthorized)"),
    "404": _json(ERR, "Not found (code not_found)"),
}
WRITE_ERRORS = READ_ERRORS | {
    "401": _json(ERR, "Missing or wrong bearer token (code unauthorized)"),
    "409": _json(ERR, "duplicate or seq_conflict; for /v1/keys/rotate no_pending_key or bad_key_file"),
    "413": _json(ERR, "Body over 64 KiB (code too_large)"),
    "503": _json(ERR, "mempool_full, catching_up, key_rotation or overloaded: retry after Retry-After seconds"),
}
PAGE = [_q("before", INT | {"minimum": 1}, "only heights below this"),
        _q("limit", INT | {"minimum": 1, "maximum": 100}, "page size (default 20)")]


def _get(summary: str, schema: dict[str, Any], params: list | None = None, *, security: list = READ) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "security": security,
                          "responses": {"200": _json(schema)} | (READ_ERRORS if security else {})}
    if params:
        op["parameters"] = params
    return {"get": op}


def _post(summary: str, request: Any, response: Any, accepted: str) -> dict[str, Any]:
    return {"post": {"summary": summary, "security": WRITE,
                     "requestBody": {"required": True, "content": {"application/json": {"schema": REF[request]}}},
                     "responses": {"202": _json(REF[response], accepted)} | WRITE_ERRORS}}


def _enum(values: Any) -> dict[str, Any]:
    return {"enum": list(values)}


SERVICE_FILTERS = [
    _q("category", _enum(CATEGORIES), "service category"),
    _q("branch", BRANCH, "branch id"),
    _q("region", {"type": "string"}, "region code or prefix (CN-BJ matches CN-BJ-110108)"),
    _q("status", _enum(STATUSES), "live status"),
    _q("channel", _enum(CHANNELS), "offered through this channel"),
    _q("risk_level", {"type": "integer", "minimum": 0, "maximum": 5}, "risk level (1..5 is R1..R5, 0 unrated)"),
    _q("ownership", _enum(OWNERSHIP), "own product or consigned (sold on behalf of an issuer)"),
    _q("fee_basis", _enum(FEE_BASES), "has a fee of this basis"),
    _q("max_fee", INT, "every fee (of fee_basis, when given) is at most this amount_minor (basis points for percent_bp)"),
    _q("term_months", {"type": "integer", "minimum": 0, "maximum": 600},
       "product terms cover this term: within a loan's range, a row of a deposit's rate table, a wealth/agency term"),
    _q("amount", INT, "minor units: within a loan's amount range, at least a deposit's or product's minimum amount"),
    _q("valid_at", INT, "ms since the epoch: inside the offer's validity window (effective_from_ms .. terms.valid_until_ms)"),
    _q("sort", _enum(SORTS), "by the headline rate (rate_bp), the longest term or the minimum amount; - for descending; "
                             "offers without terms last"),
    _q("as_of", INT, "ms since the epoch: what was on offer then, from the chain's history as committed by then "
                     "(each subject's offer that had taken effect, within its validity window, not withdrawn); "
                     "status is null, region is the branch's current one; every record_hash has its proof"),
    _q("q", {"type": "string"}, "case-insensitive text in title or description"),
    _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 100"),
    _q("offset", INT, "default 0"),
]

DESCRIPTION = (
    "JSON over HTTP. Reads are public unless the node sets [api] auth_reads (then they need the token too: "
    "each read operation lists both); writes need 'Authorization: Bearer <HOME/api_token>'; /, /health, this "
    "document and the explorer (/explorer/) are always public. Every error body is "
    '{"error": {"code", "field", "message"}}, counted in branchnet_rejected{source="api", reason=code}: '
    "400 bad input (code names the rule, field the input), 401 no or wrong token, 404, 405 (Allow lists the "
    "path's methods), 409 duplicate or sequence conflict, 413 body over 64 KiB, 431 headers over 16 KiB, "
    "503 mempool_full, catching_up or overloaded (with Retry-After). One exception: a request that is not valid "
    "HTTP/1.1 (a malformed request line or target, Content-Length or chunked body, HTTP/0.9) is refused by the "
    "HTTP server before the application sees it: 400 with an empty body. Certificates: each node stores the "
    "commit certificate it gathered, so two nodes may return different (both valid) certificates for one block "
    "(PROTOCOL.md §9.3)."
)

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "branchnet node API", "version": "1", "description": DESCRIPTION},
    "servers": [{"url": "http://127.0.0.1:26657"}],
    "paths": {
        "/": {"get": {"summary": "Where this API's parts are (public). A request that accepts text/html while the "
                              "explorer is served is redirected to /explorer/ (307)",
                      "security": PUBLIC,
                      "responses": {"200": _json(REF[n.Index]),
                                    "307": {"description": "to the explorer (Location: /explorer/)"}}}},
        "/health": _get("Liveness and height", REF[n.Health], security=PUBLIC),
        "/metrics": {"get": {"summary": "Prometheus metrics (text exposition format)", "security": READ,
                             "responses": {"200": _text("text/plain")} | READ_ERRORS}},
        "/v1/openapi.json": _get("This document", {"type": "object"}, security=PUBLIC),
        "/v1/status": _get("Node status", REF[n.Status]),
        "/v1/genesis": _get("The genesis this node runs (a verifier computes its hash and compares it with the one "
                            "it trusts)", REF[n.GenesisFile]),
        "/v1/peers": _get("Connected peers", REF[n.Peers]),
        "/v1/observers": {
            **_get("Peers allowed to connect besides the members (auditors' observers), set at runtime", REF[n.Observers]),
            "post": {"summary": "Let a peer that is not a member connect from now on, or no longer; durable before the "
                                "answer, and the allowlist changes at once (connections already open stay)",
                     "security": WRITE,
                     "requestBody": {"required": True, "content": {"application/json": {"schema": REF[n.SetObserver]}}},
                     "responses": {"200": _json(REF[n.Observers], "The observers now")} | WRITE_ERRORS}},
        "/v1/validators": _get("Current validator set", REF[n.Validators]),
        "/v1/activity": _get("Block intervals, finality and validator signing over the last blocks", REF[n.Activity], [
            _q("window", {"type": "integer", "minimum": 1, "maximum": 1000}, "number of blocks (default 100)")]),
        "/v1/blocks": _get("Block headers, newest first", REF[m.BlockList], PAGE),
        "/v1/blocks/{height}": _get("One block with its records and commit certificate", REF[m.Block],
                                    [_p("height", INT)]),
        "/v1/blocks/{height}/raw": _get("One block and its certificate as canonical bytes (hex), for verifiers",
                                        REF[m.RawBlock], [_p("height", INT)]),
        "/v1/blocks/hash/{hash}": _get("One block by hash", REF[m.Block], [_p("hash", HASH)]),
        "/v1/records": {
            **_get("Committed records, newest first", REF[m.RecordList], [
                _q("branch", BRANCH, "publishing branch id"),
                _q("kind", _enum(BODY_TYPES), "record kind"),
                _q("service", {"type": "string"}, "service id"),
                _q("category", _enum(CATEGORIES), "service category"),
                _q("region", {"type": "string"}, "branch region code at commit time"),
                _q("cursor", {"type": "string", "pattern": "^[0-9]+:[0-9]+$"},
                   "HEIGHT:INDEX from next_cursor: only records before that position"),
                *PAGE]),
            **_post("Submit a record signed elsewhere", n.SubmitRecord, n.Accepted,
                    "Accepted: on the node's disk before this answer; sent until it commits "
                    "(GET /v1/records/{hash} follows it)"),
        },
        "/v1/records/sign": _post("Build, sign (with the node's branch key, a seq above every one it signed for the "
                                  "subject, wall-clock time) and submit a record; 202 once it is on disk",
                                  n.SignRecord, n.Signed, "Accepted: on the node's disk before this answer"),
        "/v1/keys/rotate": _post("Rotate this branch's key (docs/CLI.md keys rotate): announce the key written to "
                                 "HOME/node_key.pending.json in a branch.key record signed by the key in force; the node "
                                 "signs with the new key from the block that commits it. 503 key_rotation while records "
                                 "signed with the current key are pending", n.RotateKey, n.KeyRotated,
                                 "Accepted: the branch.key record is on the node's disk (or was before, or committed)"),
        "/v1/records/{hash}": _get("One record and where it stands: committed (with height and index), pending "
                                   "(acknowledged or in the mempool, not committed yet) or rejected (acknowledged, "
                                   "but it can never commit: reason)", REF[m.RecordState], [_p("hash", HASH)]),
        "/v1/records/{hash}/proof": _get("Inclusion proof of a committed record and the header it proves against; "
                                         "verify with protocol.proofs.verify_record_proof and only the genesis file",
                                         REF[m.RecordProof], [_p("hash", HASH)]),
        "/v1/services": _get("Current services registry", REF[m.ServiceList], SERVICE_FILTERS),
        "/v1/quality": _get("Each branch's current service-quality disclosure (branch.quality, PROTOCOL.md §5.10) for a "
                            "month, ranked; every row's record has a proof", REF[m.QualityList], [
            _q("period", {"type": "string", "pattern": "^20[0-9]{2}-(0[1-9]|1[0-2])$"}, "YYYY-MM; default: the latest disclosed"),
            _q("region", {"type": "string"}, "region code or prefix (CN-BJ matches CN-BJ-110108)"),
            _q("branch", BRANCH, "branch id"),
            _q("sort", _enum(QUALITY_SORTS), "resolution: lowest median resolution time first; wait: lowest average "
                                             "counter wait first; availability: highest self-service availability first; "
                                             "undisclosed values last"),
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 100"),
            _q("offset", INT, "default 0")]),
        "/v1/branches": _get("Member branches and their profiles", REF[m.BranchList]),
        "/v1/branches/{branch_id}": _get("One branch with its services", REF[m.BranchDetail], [_p("branch_id", BRANCH)]),
        "/v1/governance": _get("Governance (PROTOCOL.md §15): members, the validator sets signing the next two heights, "
                               "the chain parameters in force and every proposal, newest first", REF[m.Governance],
                               [_q("status", _enum(["open", "passed", "refused", "expired"]), "only proposals in this state")]),
        "/v1/events": {"get": {
            "summary": "Server-sent events: 'block' (BlockEvent) then one 'record' (RecordEvent) per record of the "
                       "block, then 'validator_set' (ValidatorSetEvent) when the block announces a new validator set; "
                       "a keep-alive comment every 15 s; 'dropped' (DroppedEvent) if the client reads too slowly",
            "description": "A block is announced once written. While the node catches up by block sync, its "
                           "writes are committed every few ranges (at most 2 s apart): /v1/blocks may answer 404 "
                           "for a just-announced height until then.",
            "security": READ,
            "responses": {"200": _text("text/event-stream")} | READ_ERRORS}},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "content of HOME/api_token"}},
        "schemas": SCHEMAS,
    },
}


def dumps() -> str:
    return json.dumps(OPENAPI, indent=2) + "\n"


if __name__ == "__main__":
    print(dumps(), end="")
