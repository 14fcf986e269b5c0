"""Honest work beside the attack, and what it must find afterwards.

``--load RATE`` runs :class:`tools.chaos.clients.Client` (the chaos suite's
generator: ``service.offer`` and ``service.status`` records through each target's
``POST /v1/records/sign``) against every target for the whole attack, RATE
records/s spread over them. Afterwards :func:`check_acks` asks the node that
answered 202 for each acknowledged record (``GET /v1/records/{hash}``) until it
says ``committed`` or the deadline passes: a hostile peer must not make a node
lose what it accepted. (Block hashes are compared across the targets, so a
record committed on one is committed on all.)

:func:`member_services` reads the attacker's own branch from a target
(``GET /v1/branches/{id}``): every service there must come from a record the
adversary sent as valid, or rejected input changed the state.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections import Counter
from typing import Any

from tools.chaos.clients import Ack, Client, NodeApi

BATCH_PAUSE = 0.5  # seconds between passes over the records not yet committed


class Direct:
    """The chaos clients' topology for nodes on this host's loopback."""

    @staticmethod
    def connect(i: int, address: tuple[str, int], timeout: float) -> socket.socket:
        return socket.create_connection(address, timeout=timeout)


def _port(api_url: str) -> int:
    return int(api_url.rpartition(":")[2])


def start_clients(targets: list[Any], rate: float, seed: int) -> list[Client]:
    """One client per target, ``rate`` records/s over all of them; started."""
    t0 = time.monotonic()
    clients = [Client(NodeApi(Direct, i, _port(t.api), t.token or ""), seed=seed * 1000 + i, rate=rate / len(targets),
                      clock=lambda: time.monotonic() - t0, run_tag=f"adv{seed}")
               for i, t in enumerate(targets)]
    for c in clients:
        c.start()
    return clients


def stop_clients(clients: list[Client]) -> None:
    for c in clients:
        c.stop()
    for c in clients:
        c.join(15)


def check_acks(targets: list[Any], clients: list[Client], deadline: float) -> dict[str, Any]:
    """Blocking (run it in a thread): each acknowledged record, asked of the node that
    acknowledged it until committed or ``deadline`` (time.monotonic())."""
    acks: list[Ack] = [a for c in clients for a in c.acks]
    apis = [NodeApi(Direct, i, _port(t.api), t.token or "", timeout=10) for i, t in enumerate(targets)]
    waiting: list[Ack] = list(acks)
    last: dict[str, str] = {}
    try:
        while waiting:
            still = []
            for a in waiting:
                try:
                    status, doc = apis[a.node].request("GET", f"/v1/records/{a.hash}")
                    last[a.hash] = doc.get("status", f"http_{status}") if status == 200 else f"http_{status}"
                except (OSError, http.client.HTTPException) as exc:
                    last[a.hash] = type(exc).__name__
                if last[a.hash] != "committed":
                    still.append(a)
            waiting = still
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(BATCH_PAUSE)
    finally:
        for api in apis:
            api.close()
    errors: Counter[str] = Counter()
    for c in clients:
        errors.update(c.errors)
    return {
        "sent": sum(c.sent for c in clients),
        "acknowledged": len(acks),
        "refused_or_failed": dict(errors.most_common()),
        "committed": len(acks) - len(waiting),
        "not_committed": len(waiting),
        "not_committed_by_status": dict(Counter(last[a.hash] for a in waiting)),
        "examples": [dict(a.to_json(), status=last[a.hash]) for a in waiting[:5]],
    }


def member_services(target: Any, branch_hex: str) -> list[str] | None:
    """The service ids of branch ``branch_hex`` on ``target``; None if it cannot be read."""
    api = NodeApi(Direct, 0, _port(target.api), target.token or "", timeout=10)
    try:
        status, doc = api.request("GET", f"/v1/branches/{branch_hex}")
    except (OSError, http.client.HTTPException):
        return None
    finally:
        api.close()
    if status != 200:
        return None
    return sorted(s["service_id"] for s in doc.get("services", []))
