"""The node's HTTP JSON API (Starlette on Hypercorn's trio worker).

Endpoints (docs/openapi.json is the contract; node/api/openapi.py generates it
from the models in node/api/models*.py): status, genesis, peers, validators,
activity, blocks (also as raw bytes), records (+ inclusion proofs), the services
registry, branch profiles, record submission (signed, or signed here with the
node's own branch key), a server-sent-events stream, /health and /metrics; and
the explorer's static files at /explorer/ (``[api] explorer``, node/api/explorer.py).

* Bound to ``[api] listen`` (127.0.0.1 by default; port 0 picks a free port,
  reported through ``task_status.started((host, port))``).
* Writes need ``Authorization: Bearer <token>``, the token being the content of
  HOME/api_token (read once at start, compared in constant time). Reads need it
  too when ``[api] auth_reads`` is set; /health and /v1/openapi.json never do.
* Every 4xx/5xx answer is ``{"error": {"code", "field", "message"}}`` and is
  counted in ``branchnet_rejected{source="api", reason=code}``. Request bodies
  over 64 KiB get 413 before they are read in full. Submitted records go through
  :meth:`RecordIngest.submit`, the same checks a peer's record gets, so nothing
  malformed reaches the mempool.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from functools import partial
from typing import Any, Awaitable, Callable

import trio
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from protocol.errors import RemoteProtocolError
from protocol.governance import PROPOSAL_STATUSES
from protocol.keys import BRANCH_ID_SIZE
from protocol.records import Record
from protocol.schema import BODY_TYPES, CATEGORIES, CHANNELS, FEE_BASES, OWNERSHIP, STATUSES
from protocol.quality import PERIOD as QUALITY_PERIOD
from protocol.terms import MAX_AMOUNT, MAX_TERM_MONTHS
from protocol.views import body_from_json

from ..ingest import CatchingUp
from ..keyfile import KeyFileError
from ..listen import bind_tcp
from ..mempool import MempoolFull, MempoolRejected
from ..overload import Overloaded
from . import compare, views
from .activity import DEFAULT_WINDOW, MAX_WINDOW, activity
from .events import block_events
from .catalogue import ServiceCatalogue
from .explorer import explorer_routes
from .openapi import OPENAPI
from .params import ApiError, choice_param, cursor_param, error_response, hex_param, int_param, query_params, text_param

log = logging.getLogger("branchnet.api")

MAX_BODY_BYTES = 64 * 1024
MAX_PAGE = 100
HASH_HEX = 64
# Mempool rejections that are not the client's malformed input.
_STATUS_BY_REASON = {"duplicate": 409, "seq_conflict": 409}


Handler = Callable[[Request], Awaitable[Response]]
MAX_HEADER_BYTES = 16 * 1024
_SURROGATE = re.compile("[\ud800-\udfff]")


class ClientGone(Exception):
    """The client went away before its request was read: nobody to answer, nobody at fault."""


def _reject_lone_surrogates(value: Any, field: str) -> None:
    """JSON may escape a lone surrogate (``"\\ud800"``); no UTF-8 encoding of it exists,
    so it can never be signed: refuse it naming the field."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise ApiError(400, "bad_text", "not valid Unicode (a lone surrogate)", field)
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_lone_surrogates(key, field)
            _reject_lone_surrogates(item, f"{field}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_lone_surrogates(item, f"{field}[{i}]")


class HeaderLimit:
    """ASGI middleware: requests whose headers exceed ``MAX_HEADER_BYTES`` in all get
    431 in the API's error shape (Hypercorn's own limit applies to a partial read only)."""

    def __init__(self, app: Any, metrics: Any):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and sum(len(k) + len(v) + 4 for k, v in scope["headers"]) > MAX_HEADER_BYTES:
            self.metrics.reject("api", "headers_too_large")
            response = error_response(431, "headers_too_large", f"request headers over {MAX_HEADER_BYTES} bytes", "headers")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


# ------------------------------------------------------------------ the app


class NodeApi:
    """Request handlers bound to one node. ``make_app`` wires them into Starlette."""

    def __init__(self, node: Any):
        self.node = node
        self.auth_reads = node.config.api.auth_reads
        self.catalogue = ServiceCatalogue(lambda: node.chain.state)  # /v1/services and /v1/quality without walking the state
        node.chain.on_commit(self.catalogue.block_committed)
        try:
            self.token = node.home.api_token.read_text().strip()
        except OSError as exc:
            log.warning("no API token (%s): every write will be refused", exc)
            self.token = ""

    # ---------------------------------------------------------- plumbing
    def check_auth(self, request: Request, *, write: bool) -> None:
        if not write and not self.auth_reads:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if not self.token or scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise ApiError(401, "unauthorized", "a valid bearer token is required (see HOME/api_token)", "authorization")

    async def read_json(self, request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            raise ApiError(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes", "body")
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise ApiError(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes", "body")
                chunks.append(chunk)
        except ClientDisconnect:
            raise ClientGone() from None
        try:
            doc = json.loads(b"".join(chunks))
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, "bad_json", f"body is not valid JSON ({exc})", "body") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "bad_json", "body must be a JSON object", "body")
        _reject_lone_surrogates(doc, "body")
        return doc

    def route(self, path: str, *, get: Handler | None = None, post: Handler | None = None, public: bool = False) -> Route:
        """One route per path; GET (and HEAD) reads, POST writes (the token is required)."""
        handlers = {m: h for m, h in (("GET", get), ("POST", post)) if h is not None}

        async def endpoint(request: Request) -> Response:
            write = request.method == "POST"
            if not public:
                self.check_auth(request, write=write)
            return await handlers["POST" if write else "GET"](request)

        return Route(path, endpoint, methods=list(handlers), name=next(iter(handlers.values())).__name__)

    # ---------------------------------------------------------- reads
    async def index(self, request: Request) -> Response:
        """Links to the parts of the API; a browser (Accept: text/html) goes to the explorer."""
        explorer = "/explorer/" if self.node.config.api.explorer else None
        if explorer and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(explorer, status_code=307)
        return JSONResponse({"service": "branchnet node API", "openapi": "/v1/openapi.json", "health": "/health",
                             "status": "/v1/status", "metrics": "/metrics", "explorer": explorer})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "height": self.node.chain.height})

    async def status(self, request: Request) -> Response:
        return JSONResponse(self.node.status())

    async def peers(self, request: Request) -> Response:
        return JSONResponse(views.peers(self.node))

    async def observers(self, request: Request) -> Response:
        return JSONResponse(views.observers(self.node))

    async def set_observer(self, request: Request) -> Response:
        doc = await self.read_json(request)
        peer_id, allow = doc.get("peer_id"), doc.get("allow")
        if not isinstance(peer_id, str):
            raise ApiError(400, "missing_field" if peer_id is None else "type", "peer_id (a string) is required", "peer_id")
        if not isinstance(allow, bool):
            raise ApiError(400, "missing_field" if allow is None else "type", "allow (true or false) is required", "allow")
        for name in doc:
            if name not in ("peer_id", "allow"):
                raise ApiError(400, "unknown_field", f"unknown field {name!r}", name)
        try:
            await self.node.set_observer(peer_id, allow)
        except ValueError as exc:
            raise ApiError(400, "peer_id", str(exc), "peer_id") from None
        return JSONResponse(views.observers(self.node))

    async def validators(self, request: Request) -> Response:
        return JSONResponse(views.validators(self.node))

    async def genesis(self, request: Request) -> Response:
        return JSONResponse(views.genesis(self.node))

    async def activity(self, request: Request) -> Response:
        window = int_param(query_params(request).get("window"), "window", default=DEFAULT_WINDOW, lo=1, hi=MAX_WINDOW)
        return JSONResponse(await self._read(activity, self.node, window=window))

    async def blocks(self, request: Request) -> Response:
        q = query_params(request)
        before = int_param(q.get("before"), "before", default=None, lo=1, hi=2**62)
        limit = int_param(q.get("limit"), "limit", default=20, lo=1, hi=MAX_PAGE)
        return JSONResponse(await self._read(views.block_list, self.node, before=before, limit=limit))

    async def block_by_height(self, request: Request) -> Response:
        height = int_param(request.path_params["height"], "height", default=None, lo=0, hi=2**62)
        return self._found(await self._read(views.block, self.node, height=height), "height", f"no block at height {height}")

    async def raw_block(self, request: Request) -> Response:
        height = int_param(request.path_params["height"], "height", default=None, lo=0, hi=2**62)
        return self._found(await self._read(views.raw_block, self.node, height), "height", f"no block at height {height}")

    async def block_by_hash(self, request: Request) -> Response:
        block_hash = hex_param(request.path_params["hash"], "hash", HASH_HEX // 2)
        return self._found(await self._read(views.block, self.node, block_hash=block_hash), "hash", "no such block")

    async def record(self, request: Request) -> Response:
        record_hash = hex_param(request.path_params["hash"], "hash", HASH_HEX // 2)
        return self._found(await self._read(views.record, self.node, record_hash), "hash", "no such record")

    async def record_proof(self, request: Request) -> Response:
        record_hash = hex_param(request.path_params["hash"], "hash", HASH_HEX // 2)
        proof = await views.record_proof_offline(self.node, record_hash)
        if proof is None and record_hash in self.node.mempool:
            raise ApiError(404, "not_found", "record is pending; a proof exists once it is committed", "hash")
        return self._found(proof.to_json() if proof else None, "hash", "no such committed record")

    async def records(self, request: Request) -> Response:
        q = query_params(request)
        branch = q.get("branch")
        filters = dict(
            branch_id=hex_param(branch, "branch", BRANCH_ID_SIZE) if branch is not None else None,
            kind=choice_param(q.get("kind"), "kind", tuple(BODY_TYPES)),
            service_id=text_param(q.get("service"), "service"),
            category=choice_param(q.get("category"), "category", CATEGORIES),
            region=text_param(q.get("region"), "region", 32),
            before_height=int_param(q.get("before"), "before", default=None, lo=1, hi=2**62),
            before=cursor_param(q.get("cursor")),
            limit=int_param(q.get("limit"), "limit", default=20, lo=1, hi=MAX_PAGE),
        )
        return JSONResponse(await self._read(views.records, self.node, **filters))

    async def services(self, request: Request) -> Response:
        q = query_params(request)
        branch = q.get("branch")
        as_of_ms = int_param(q.get("as_of"), "as_of", default=None, lo=0, hi=2**53)
        as_of = None
        if as_of_ms is not None:  # history from the store in a worker thread; the state is read here, on trio's
            height, offers = await self._read(self.node.chain.store.offers_as_of, as_of_ms)
            as_of = (as_of_ms, height, offers)
        return JSONResponse(views.services(
            self.node,
            category=choice_param(q.get("category"), "category", CATEGORIES),
            branch=hex_param(branch, "branch", BRANCH_ID_SIZE) if branch is not None else None,
            region=text_param(q.get("region"), "region", 32),
            status=choice_param(q.get("status"), "status", STATUSES),
            q=text_param(q.get("q"), "q", 120),
            channel=choice_param(q.get("channel"), "channel", CHANNELS),
            risk_level=int_param(q.get("risk_level"), "risk_level", default=None, lo=0, hi=5),
            ownership=choice_param(q.get("ownership"), "ownership", OWNERSHIP),
            fee_basis=choice_param(q.get("fee_basis"), "fee_basis", FEE_BASES),
            max_fee=int_param(q.get("max_fee"), "max_fee", default=None, lo=0, hi=10**15),
            term_months=int_param(q.get("term_months"), "term_months", default=None, lo=0, hi=MAX_TERM_MONTHS),
            amount=int_param(q.get("amount"), "amount", default=None, lo=0, hi=MAX_AMOUNT),
            valid_at=int_param(q.get("valid_at"), "valid_at", default=None, lo=0, hi=2**53),
            sort=choice_param(q.get("sort"), "sort", compare.SORTS),
            as_of=as_of,
            catalogue=self.catalogue,
            limit=int_param(q.get("limit"), "limit", default=100, lo=1, hi=1000),
            offset=int_param(q.get("offset"), "offset", default=0, lo=0, hi=10**9),
        ))

    async def quality(self, request: Request) -> Response:
        q = query_params(request)
        branch = q.get("branch")
        period = q.get("period")
        if period is not None and not QUALITY_PERIOD.fullmatch(period):
            raise ApiError(400, "bad_param", "expected a period YYYY-MM", "period")
        return JSONResponse(views.quality(
            self.node, period=period, region=text_param(q.get("region"), "region", 32),
            branch=hex_param(branch, "branch", BRANCH_ID_SIZE) if branch is not None else None,
            sort=choice_param(q.get("sort"), "sort", tuple(compare.QUALITY_SORTS)),
            limit=int_param(q.get("limit"), "limit", default=100, lo=1, hi=1000),
            offset=int_param(q.get("offset"), "offset", default=0, lo=0, hi=10**9),
            catalogue=self.catalogue,
        ))

    async def branches(self, request: Request) -> Response:
        return JSONResponse(views.branches(self.node, catalogue=self.catalogue))

    async def branch(self, request: Request) -> Response:
        branch_id = hex_param(request.path_params["branch_id"], "branch_id", BRANCH_ID_SIZE)
        return self._found(views.branch(self.node, branch_id, with_services=True, catalogue=self.catalogue), "branch_id", "not a member branch")

    async def governance(self, request: Request) -> Response:
        status = choice_param(query_params(request).get("status"), "status", PROPOSAL_STATUSES)
        return JSONResponse(views.governance(self.node, status=status))

    async def events(self, request: Request) -> Response:
        return StreamingResponse(block_events(self.node), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def metrics(self, request: Request) -> Response:
        return Response(self.node.metrics.render(), media_type=CONTENT_TYPE_LATEST)  # gauges refreshed by on_scrape hooks

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(OPENAPI)

    async def _read(self, view: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a view that reads the store in a worker thread (it has its own read
        connection, so it never waits behind a commit's fsync, nor stalls trio)."""
        return await self.node.runtime.run_sync(partial(view, *args, **kwargs))

    def _found(self, doc: dict[str, Any] | None, field: str, message: str) -> Response:
        if doc is None:
            raise ApiError(404, "not_found", message, field)
        return JSONResponse(doc)

    # ---------------------------------------------------------- writes
    async def submit_record(self, request: Request) -> Response:
        doc = await self.read_json(request)
        if "record" not in doc:
            raise ApiError(400, "missing_field", "the signed record, hex encoded", "record")
        value = doc["record"]
        if not isinstance(value, str):
            raise ApiError(400, "bad_hex", "must be a hex string", "record")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise ApiError(400, "bad_hex", "not valid hex", "record") from None
        record = await self._submit(self.node.ingest.submit, raw)
        return JSONResponse({"hash": record.hash.hex(), "status": "accepted"}, status_code=202)

    async def sign_record(self, request: Request) -> Response:
        doc = await self.read_json(request)
        for name in ("kind", "body"):
            if name not in doc:
                raise ApiError(400, "missing_field", f"{name} is required", name)
        try:
            body = body_from_json(doc["kind"], doc["body"])
        except RemoteProtocolError as exc:
            raise ApiError(400, exc.reason, exc.message, exc.field) from None
        record = await self._submit(self.node.ingest.sign_and_submit, body)
        return JSONResponse({"hash": record.hash.hex(), "seq": record.seq, "record": views.record_json(record)}, status_code=202)

    async def rotate_key(self, request: Request) -> Response:
        doc = await self.read_json(request)
        value = doc.get("public_key")
        if not isinstance(value, str) or len(value) != 64:
            raise ApiError(400, "bad_hex", "the pending key's public key, 64 hex digits", "public_key")
        try:
            public_key = bytes.fromhex(value)
        except ValueError:
            raise ApiError(400, "bad_hex", "not valid hex", "public_key") from None
        try:
            record, status = await self._submit(self.node.rotate_key, public_key)
        except KeyFileError as exc:
            raise ApiError(409, "bad_key_file", str(exc), "public_key") from None
        except ValueError as exc:
            raise ApiError(409, "no_pending_key", str(exc), "public_key") from None
        return JSONResponse({"status": status, "public_key": value.lower(),
                             "hash": record.hash.hex() if record is not None else None,
                             "record": views.record_json(record) if record is not None else None}, status_code=202)

    async def _submit(self, submit: Callable[[Any], Awaitable[Record]], arg: Any) -> Record:
        try:
            return await submit(arg)
        except MempoolFull as exc:
            raise ApiError(503, exc.reason, exc.message, "record", counted=True, headers={"Retry-After": "1"}) from None
        except CatchingUp as exc:
            raise ApiError(503, exc.reason, str(exc), "", counted=True, headers={"Retry-After": "1"}) from None
        except Overloaded as exc:
            raise ApiError(503, exc.reason, str(exc), "", counted=True, headers={"Retry-After": str(exc.retry_after_s)}) from None
        except MempoolRejected as exc:
            raise ApiError(_STATUS_BY_REASON.get(exc.reason, 400), exc.reason, exc.message, "record", counted=True) from None
        except RemoteProtocolError as exc:
            field = exc.field
            if not field.startswith(("record", "body")):  # e.g. "encoding" or "signature": name it under record
                field = "record" if field in ("", "encoding") else f"record.{field}"
            raise ApiError(400, exc.reason, exc.message, field, counted=True) from None


def make_app(node: Any) -> Any:
    """The ASGI app: Starlette routes behind the header-size limit."""
    api = NodeApi(node)
    r = api.route
    routes = [
        r("/", get=api.index, public=True),
        r("/health", get=api.health, public=True),
        r("/metrics", get=api.metrics),
        r("/v1/openapi.json", get=api.openapi, public=True),
        r("/v1/status", get=api.status),
        r("/v1/peers", get=api.peers),
        r("/v1/observers", get=api.observers, post=api.set_observer),
        r("/v1/genesis", get=api.genesis),
        r("/v1/validators", get=api.validators),
        r("/v1/activity", get=api.activity),
        r("/v1/blocks", get=api.blocks),
        r("/v1/blocks/hash/{hash}", get=api.block_by_hash),
        r("/v1/blocks/{height}", get=api.block_by_height),
        r("/v1/blocks/{height}/raw", get=api.raw_block),
        r("/v1/records", get=api.records, post=api.submit_record),
        r("/v1/records/sign", post=api.sign_record),
        r("/v1/keys/rotate", post=api.rotate_key),
        r("/v1/records/{hash}", get=api.record),
        r("/v1/records/{hash}/proof", get=api.record_proof),
        r("/v1/services", get=api.services),
        r("/v1/quality", get=api.quality),
        r("/v1/branches", get=api.branches),
        r("/v1/branches/{branch_id}", get=api.branch),
        r("/v1/events", get=api.events),
        r("/v1/governance", get=api.governance),
    ]
    if node.config.api.explorer:
        routes += explorer_routes()  # static files only: public, read-only

    def on_error(request: Request, exc: Exception) -> Response:
        headers = None
        if isinstance(exc, ClientGone):
            node.metrics.reject("api", "client_disconnect")
            return Response(status_code=400)  # nobody reads it
        if isinstance(exc, ApiError):
            status, code, message, field = exc.status, exc.code, exc.message, exc.field
            headers = exc.headers
            if status == 401:
                headers = {"WWW-Authenticate": "Bearer"}
            if exc.counted:
                return error_response(status, code, message, field, headers)
        elif isinstance(exc, HTTPException):
            status = exc.status_code
            code = {404: "not_found", 405: "method_not_allowed"}.get(status, f"http_{status}")
            message, field = str(exc.detail), ""
            headers = exc.headers
        else:
            log.exception("API handler failed on %s %s", request.method, request.url.path, exc_info=exc)
            status, code, message, field = 500, "internal", "internal error (logged on the node)", ""
        node.metrics.reject("api", code)
        return error_response(status, code, message, field, headers)

    app = Starlette(routes=routes, exception_handlers={ApiError: on_error, ClientGone: on_error,
                                                       HTTPException: on_error, Exception: on_error})
    return HeaderLimit(app, node.metrics)


class _DropRunningOn(logging.Filter):
    """Hypercorn announces "Running on http://... (CTRL + C to quit)"; serve_api logs
    "API listening on ..." itself, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Running on")


def _hypercorn_log() -> logging.Logger:
    hyper = logging.getLogger("branchnet.api.server")
    if not any(isinstance(f, _DropRunningOn) for f in hyper.filters):
        hyper.addFilter(_DropRunningOn())
    return hyper


async def serve_api(node: Any, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve the API until cancelled; report ``(host, port)`` once it accepts connections.

    The listening socket is bound here (:func:`node.listen.bind_tcp`: a port in use
    or an address that does not resolve is a ConfigError naming it) and handed to
    Hypercorn by file descriptor.
    """
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.trio import serve

    host, _, port = node.config.api.listen.rpartition(":")
    sock = bind_tcp(host.strip("[]"), int(port), what="api listen", key="[api] listen")
    address = sock.getsockname()[:2]
    config = HypercornConfig()
    config.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns the socket from here
    config.accesslog = None
    config.errorlog = _hypercorn_log()
    config.graceful_timeout = 1.0
    config.keep_alive_timeout = 30.0
    config.include_server_header = False
    config.h11_max_incomplete_size = 16 * 1024
    app = make_app(node)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve, app, config, mode="asgi"))
        log.info("API listening on http://%s:%d", *address)
        task_status.started(address)
