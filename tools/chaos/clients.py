"""Clients that submit records to every node throughout a run and remember each 202.

One thread per node posts to ``POST /v1/records/sign`` with the node's API
token, a few times a second: ``service.status`` updates of one service (one
subject, so its sequence numbers climb: a node that forgets what it signed
reuses one) and ``service.offer`` records of new, distinct services. An
:class:`Ack` is kept only for a 202 whose body names the record; a connection
error, a timeout, or any other status is counted by cause and is not an
acknowledgement. A status the node refuses with ``no_such_service`` (its offer
was lost) moves the client on to a fresh service.

:class:`NodeApi` is a minimal HTTP/1.1 JSON client whose socket comes from the
topology, so it reaches a node's API inside the node's network namespace.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ack:
    """A record a node answered 202 for: the node promised it would commit."""

    node: int
    hash: str
    kind: str
    branch: str
    subject: str
    seq: int
    at: float  # seconds since the fault phase started

    def to_json(self) -> dict:
        return {"node": self.node, "hash": self.hash, "kind": self.kind, "branch": self.branch,
                "subject": self.subject, "seq": self.seq, "at": round(self.at, 3)}


class _Connection(http.client.HTTPConnection):
    def __init__(self, topology, index: int, port: int, timeout: float):
        super().__init__("127.0.0.1", port, timeout=timeout)
        self._topology, self._index = topology, index

    def connect(self) -> None:
        self.sock = self._topology.connect(self._index, (self.host, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NodeApi:
    """JSON over one keep-alive connection to node ``index``'s API; reconnects after errors.
    Raises OSError / http.client.HTTPException on transport failures."""

    def __init__(self, topology, index: int, port: int, token: str, timeout: float = 4.0):
        self.topology, self.index, self.port, self.timeout = topology, index, port, timeout
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._conn: _Connection | None = None

    def request(self, method: str, path: str, doc: dict | None = None) -> tuple[int, dict]:
        """One request. A GET that fails on a kept-alive connection (the server closed
        it while idle, or the node restarted) is tried once more on a new one; a POST
        never is: a failed submission is an error, not an acknowledgement."""
        reused = self._conn is not None
        try:
            return self._request_once(method, path, doc)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused or method != "GET":
                raise
        return self._request_once(method, path, doc)

    def _request_once(self, method: str, path: str, doc: dict | None) -> tuple[int, dict]:
        if self._conn is None:
            self._conn = _Connection(self.topology, self.index, self.port, self.timeout)
        body = json.dumps(doc).encode() if doc is not None else None
        try:
            self._conn.request(method, path, body=body, headers=self.headers)
            resp = self._conn.getresponse()
            data = resp.read()
        except BaseException:
            self.close()
            raise
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {"_raw": data[:200].decode(errors="replace")}
        return resp.status, parsed if isinstance(parsed, dict) else {"_value": parsed}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def offer_body(service_id: str, fee_minor: int) -> dict:
    return {"service_id": service_id, "category": "fx", "title": "Foreign exchange", "description": "chaos test service",
            "channels": ["counter"], "hours": [], "fees": [{"label": "Commission", "amount_minor": fee_minor,
                                                           "currency": "CNY", "basis": "per_transaction"}],
            "risk_level": 0, "ownership": "own", "issuer": "", "accessibility": [], "effective_from_ms": 0}


def status_body(service_id: str, rng: random.Random) -> dict:
    return {"service_id": service_id, "status": rng.choice(["open", "paused"]), "wait_minutes": rng.randrange(60),
            "equipment": []}


class Client:
    """Submits to one node until :meth:`stop`. Thread-safe reads of ``acks``/``errors`` after join."""

    def __init__(self, api: NodeApi, *, seed: int, rate: float, clock, run_tag: str):
        self.api = api
        self.rng = random.Random(seed)
        self.interval = 1.0 / rate
        self.clock = clock
        self.tag = f"{run_tag}-{api.index}"
        self.acks: list[Ack] = []
        self.errors: Counter[str] = Counter()
        self.sent = 0
        self._offers = 0
        self._status_service: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"chaos-client-{api.index}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        self.api.close()

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._submit_one()
            next_at = max(next_at + self.interval, time.monotonic() - self.interval)
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _new_service(self) -> str:
        self._offers += 1
        return f"{self.tag}-s{self._offers}"

    def _submit_one(self) -> None:
        if self._status_service is None or self.rng.random() < 0.35:
            sid = self._new_service()
            kind, body = "service.offer", offer_body(sid, self.rng.randrange(1, 10_000))
        else:
            sid = self._status_service
            kind, body = "service.status", status_body(sid, self.rng)
        self.sent += 1
        try:
            status, doc = self.api.request("POST", "/v1/records/sign", {"kind": kind, "body": body})
        except (OSError, http.client.HTTPException) as exc:
            self.errors[_transport_error(exc)] += 1
            return
        if status != 202:
            code = doc.get("error", {}).get("code", "?") if isinstance(doc.get("error"), dict) else "?"
            self.errors[f"http_{status}_{code}"] += 1
            if code == "no_such_service" and sid == self._status_service:
                self._status_service = None  # its offer was lost: start over with a new service
            return
        record = doc.get("record") or {}
        try:
            ack = Ack(self.api.index, doc["hash"], record["kind"], record["branch_id"], record["subject"], int(record["seq"]),
                      self.clock())
        except (KeyError, TypeError, ValueError):
            self.errors["bad_202_body"] += 1
            return
        self.acks.append(ack)
        if kind == "service.offer" and self._status_service is None:
            self._status_service = sid


def _transport_error(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "disconnected"
    return type(exc).__name__
