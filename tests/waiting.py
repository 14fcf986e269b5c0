"""Every wait a test does: on a condition, bounded, failing with what it waited for.

No test sleeps in place of a condition, and none asserts on elapsed time. A
wait that runs out raises ``AssertionError("timed out after 30s waiting for
<what>")``, so the failure says which condition never came.

Bounds are generous (a busy machine is slow, never wrong). Under trio's
``MockClock(autojump_threshold=0)`` (pytest-trio's ``autojump_clock``) they are
virtual seconds, and a wait costs only the work done while it waits.

* :func:`wait_until` — poll a predicate (plain or async) on trio's clock;
* :func:`wait_until_blocking` — the same for synchronous code (OS processes, threads);
* :func:`wait_heights` — every node has committed a height (``Chain.wait_height``: no polling);
* :func:`wait_committed` — every node's store holds every given record;
* :func:`wait_durable` — every node's store (not only its memory) holds a height;
* :func:`wait_mesh` — real gossipsub hosts have grafted each other into a topic's mesh.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Awaitable, Callable, Iterable

import trio

Predicate = Callable[[], "bool | Awaitable[bool]"]


def _timed_out(timeout: float, what: str, detail: Callable[[], Any] | None = None) -> AssertionError:
    extra = ""
    if detail is not None:
        try:
            extra = f" ({detail()})"
        except Exception as exc:  # the detail is a courtesy: never hide the timeout behind it
            extra = f" (detail failed: {exc!r})"
    return AssertionError(f"timed out after {timeout:g}s waiting for {what}{extra}")


async def wait_until(predicate: Predicate, timeout: float, what: str, *, interval: float = 0.05,
                     detail: Callable[[], Any] | None = None) -> None:
    """Return once ``predicate()`` is true (checked every ``interval`` s of trio time).
    ``predicate`` may be async (e.g. an HTTP query). ``detail()``, if given, is added
    to the failure message (say, every node's height)."""
    with trio.move_on_after(timeout):
        while True:
            ok = predicate()
            if inspect.isawaitable(ok):
                ok = await ok
            if ok:
                return
            await trio.sleep(interval)
    raise _timed_out(timeout, what, detail)


def wait_until_blocking(predicate: Callable[[], bool], timeout: float, what: str, *, interval: float = 0.1,
                        detail: Callable[[], Any] | None = None) -> None:
    """:func:`wait_until` for synchronous test code (real time: it waits on OS processes)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, detail)
        time.sleep(interval)


def _heights(nodes: Iterable[Any]) -> str:
    return "heights " + ", ".join(str(n.chain.height) for n in nodes)


async def wait_heights(nodes: list[Any], height: int, timeout: float, what: str | None = None) -> None:
    """Return once every node has committed ``height`` (woken by each chain's commits)."""
    with trio.move_on_after(timeout):
        for node in nodes:
            await node.chain.wait_height(height)
        return
    raise _timed_out(timeout, what or f"height {height} on {len(nodes)} nodes", lambda: _heights(nodes))


async def wait_committed(nodes: list[Any], hashes: Iterable[bytes], timeout: float, what: str = "records committed") -> None:
    """Return once every node's store holds every record in ``hashes``, at a height the
    node's in-memory chain has reached too (the store is written first)."""
    hashes = list(hashes)

    def missing() -> int:
        count = 0
        for n in nodes:
            for h in hashes:
                found = n.chain.store.record(h)
                if found is None or n.chain.height < found[1]:
                    count += 1
        return count

    await wait_until(lambda: missing() == 0, timeout, f"{what} ({len(hashes)} records on {len(nodes)} nodes)",
                     detail=lambda: f"{missing()} copies missing; {_heights(nodes)}")


async def wait_durable(nodes: list[Any], height: int, timeout: float = 30) -> None:
    """Return once every node's STORE holds ``height``: after a sync batch the in-memory
    height runs ahead of the disk until the batch's single write returns."""
    await wait_until(lambda: all(n.chain.store.height >= height for n in nodes), timeout, f"height {height} on disk",
                     detail=lambda: "stored heights " + ", ".join(str(n.chain.store.height) for n in nodes))


def mesh_peers(net: Any, topic: str) -> set[str]:
    """The peers a real :class:`node.p2p.P2PNetwork` has grafted into its gossipsub mesh for ``topic``."""
    return {str(p) for p in net.gossip.pubsub.router.mesh.get(topic, ())}


async def wait_mesh(nets: list[Any], topic: str, neighbours: dict[str, set[str]], timeout: float) -> None:
    """Return once each real P2PNetwork's gossipsub mesh for ``topic`` holds all of
    ``neighbours[net.peer_id]`` (its connected subscribers): from then on a publish
    reaches them through the mesh (grafting happens on a heartbeat, after subscriptions
    are announced)."""
    await wait_until(lambda: all(neighbours[n.peer_id] <= mesh_peers(n, topic) for n in nets), timeout,
                     f"gossipsub mesh of {topic}", interval=0.02,
                     detail=lambda: {n.peer_id[-6:]: sorted(p[-6:] for p in mesh_peers(n, topic)) for n in nets})
