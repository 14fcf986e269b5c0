"""One real single-validator node for the HTTP API tests (tests/test_api.py,
tests/test_api_guard.py), in a background thread with its own trio loop: module
scope, so each of those modules starts one node however many requests its tests make.

``net`` is the running node (its URL, token, key and genesis), ``client`` an httpx
client that validates every response against docs/openapi.json, ``published`` a
profile, three offers and a status committed on it.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
import trio

import factories as f
from node.keyfile import load_key
from node.node import BranchNode
from openapi_check import validating_hooks
from protocol.genesis import Genesis
from protocol.views import body_to_json
from tools.netsetup import create_network
from waiting import wait_until

CONSENSUS = {"block_interval_ms": 20, "empty_block_interval_ms": 500}
WAIT = 30  # seconds: upper bound for any single wait (generous: a busy machine is slow, not wrong)


class NodeThread:
    """A BranchNode running in its own thread and trio loop."""

    def __init__(self, home):
        self.home = home
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="api-test-node", daemon=True)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported by start()/stop()
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self.cancel_scope = nursery.cancel_scope
            self.node = await nursery.start(BranchNode(self.home).run)
            self.ready.set()

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(WAIT), "node did not start"
        if self.error:
            raise self.error

    def stop(self) -> None:
        self.token.run_sync_soon(self.cancel_scope.cancel)
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "node did not stop"
        if self.error:
            raise self.error


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    home = create_network(tmp_path_factory.mktemp("api"), 1, fixed_ports=False, consensus=CONSENSUS)[0]
    nt = NodeThread(home)
    nt.start()
    host, port = nt.node.api_address
    nt.base_url = f"http://{host}:{port}"
    nt.auth = {"Authorization": f"Bearer {home.api_token.read_text().strip()}"}
    nt.key = load_key(home.key)
    nt.genesis = Genesis.loads(home.genesis.read_bytes())
    yield nt
    nt.stop()


@pytest.fixture
async def client(net):
    async with httpx.AsyncClient(base_url=net.base_url, timeout=WAIT, event_hooks=validating_hooks()) as c:
        yield c


async def wait_committed(client: httpx.AsyncClient, record_hash: str) -> dict[str, Any]:
    """The record's document once the API reports it committed."""
    doc: dict[str, Any] = {}

    async def committed() -> bool:
        r = await client.get(f"/v1/records/{record_hash}")
        assert r.status_code == 200, r.text
        doc.update(r.json())
        return doc["height"] is not None

    await wait_until(committed, WAIT, f"record {record_hash[:16]} committed", interval=0.02)
    return doc


async def wait_height(client: httpx.AsyncClient, height: int) -> None:
    async def reached() -> bool:
        return (await client.get("/health")).json()["height"] >= height

    await wait_until(reached, WAIT, f"height {height}")


async def sign(client, net, kind: str, body) -> dict[str, Any]:
    r = await client.post("/v1/records/sign", json={"kind": kind, "body": body_to_json(body)}, headers=net.auth)
    assert r.status_code == 202, r.text
    return r.json()


PROFILE = f.profile("Haidian Sub-branch")
OFFERS = [
    f.offer("cash-withdrawal", "cash", title="Cash withdrawal", description="Counter and ATM withdrawals"),
    f.offer("home-loan", "loan", title="Home loan", description="First-home MORTGAGE advice"),
    f.consigned_offer("fund-a", title="Fund A", description="A consigned wealth product"),
]


@pytest.fixture(scope="module")
def published(net):
    """Profile, three offers and one status, committed. Returns their sign responses."""
    out: dict[str, Any] = {}

    async def main():
        async with httpx.AsyncClient(base_url=net.base_url, timeout=WAIT, event_hooks=validating_hooks()) as c:
            out["profile"] = await sign(c, net, "branch.profile", PROFILE)
            for o in OFFERS:
                out[o.service_id] = await sign(c, net, "service.offer", o)
            out["status"] = await sign(c, net, "service.status", f.status("cash-withdrawal", "open", 3))
            for doc in out.values():
                doc["committed"] = await wait_committed(c, doc["hash"])

    trio.run(main)
    return out
