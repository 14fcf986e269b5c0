"""Micro benchmark of node.p2p on loopback, all nodes in one process.

    python -m tools.bench_p2p [--json] [--messages N] [--requests N]

Measures gossip (4 nodes, full mesh, one publisher with backpressure; msgs/s
and MB/s per receiver, 1 KB and 64 KB), request/response round trips
(sequential on one long-lived stream, and pipelined with 32 in flight), and
one-way notifications of 200 bytes, as consensus votes travel (process CPU per
message, both ends: sent back to back, and one at a time with a 0.5 ms pause) —
over a libp2p stream, and over a consensus link (node/p2p/link.py: TCP with our PSK
layer and libp2p's Noise, our frames straight on the Noise session; no
multistream-select, no Yamux).
Figures are CPU-bound and in-process (all nodes share one core's GIL).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Awaitable, Callable

import trio

from node.p2p import P2PConfig
from node.p2p.testing import TEST_PSK, network_of

TOPIC = "bench/1"
PROTOCOL = "/branchnet/bench/1"


async def bench_gossip(size: int, count: int, nodes: int = 4) -> dict[str, float]:
    async with network_of(nodes, config=P2PConfig(psk=TEST_PSK,
                                                  max_gossip_message_size=size + 1024)) as nets:
        channels = [await net.subscribe(TOPIC, buffer=count + 16) for net in nets]
        await nets[0].gossip.wait_topic_peers(TOPIC, nodes - 1, 5)
        await trio.sleep(1.2)
        received = [0] * (nodes - 1)

        async def drain(i: int, channel) -> None:
            async for _ in channel:
                received[i] += 1
                if received[i] >= count:
                    return

        start = trio.current_time()
        with trio.move_on_after(60):
            async with trio.open_nursery() as nursery:
                for i, channel in enumerate(channels[1:]):
                    nursery.start_soon(drain, i, channel)
                for n in range(count):
                    await nets[0].publish(TOPIC, n.to_bytes(8, "big") + bytes(size - 8))
        elapsed = trio.current_time() - start
        delivered = min(received)
        return {"size": size, "messages": count, "delivered_min": delivered,
                "seconds": round(elapsed, 3), "msgs_per_s": round(delivered / elapsed, 1),
                "mb_per_s": round(delivered * size / elapsed / 1e6, 2),
                "backpressure_waits": nets[0].gossip.stats.backpressure_waits}


async def bench_requests(count: int, in_flight: int, size: int = 256) -> dict[str, float]:
    async with network_of(2) as (a, b):
        async def echo(peer: str, body: bytes) -> bytes:
            return body

        b.register_handler(PROTOCOL, echo)
        payload = bytes(size)
        await a.request(b.peer_id, PROTOCOL, payload)  # open the stream
        start = trio.current_time()
        if in_flight == 1:
            for _ in range(count):
                await a.request(b.peer_id, PROTOCOL, payload)
        else:
            async def worker(n: int) -> None:
                for _ in range(n):
                    await a.request(b.peer_id, PROTOCOL, payload)

            async with trio.open_nursery() as nursery:
                for _ in range(in_flight):
                    nursery.start_soon(worker, count // in_flight)
        elapsed = trio.current_time() - start
        done = count if in_flight == 1 else (count // in_flight) * in_flight
        return {"requests": done, "in_flight": in_flight, "payload": size,
                "seconds": round(elapsed, 3), "round_trips_per_s": round(done / elapsed, 1),
                "streams_opened": a.stream_stats.streams_opened}


PACE = 0.0005  # seconds between notifications sent one at a time


async def _time_one_way(send: Callable[[], Awaitable[None]], all_received: Callable[[], Awaitable[None]],
                        count: int, *, paced: bool, size: int) -> dict[str, float]:
    """Send ``count`` messages (back to back, or ``PACE`` apart), wait until all arrived;
    the process's CPU per message, both ends."""
    cpu0, start = time.process_time(), trio.current_time()
    for _ in range(count):
        await send()
        if paced:
            await trio.sleep(PACE)
    with trio.fail_after(120):
        await all_received()
    cpu = time.process_time() - cpu0
    return {"notifications": count, "payload": size, "seconds": round(trio.current_time() - start, 3),
            "cpu_us_per_message": round(cpu / count * 1e6, 1)}


async def bench_notifications(count: int, *, paced: bool, size: int = 200, link: bool = False) -> dict[str, float]:
    """``count`` notifications from one node to another: on a libp2p stream, or with
    ``link`` on the consensus link between them (node/p2p/link.py)."""
    config = P2PConfig(psk=TEST_PSK, link_listen=("127.0.0.1", 0) if link else None)
    async with network_of(2, config=config) as (a, b):
        served = 0
        all_served = trio.Event()

        async def sink(peer: str, body: bytes) -> bytes:
            nonlocal served
            served += 1
            if served == count + 1:
                all_served.set()
            return b""

        b.register_handler(PROTOCOL, sink)
        a.register_handler(PROTOCOL, sink)  # a link reads both ways
        if link:
            for net, other in ((a, b), (b, a)):
                net.carry_on_link(PROTOCOL)
                net.set_link_peers([other.peer_id])
            with trio.fail_after(30):
                while a.links.get(b.peer_id) is None:
                    await trio.sleep(0.01)
        payload = bytes(size)
        await a.notify(b.peer_id, PROTOCOL, payload)  # open the stream
        result = await _time_one_way(lambda: a.notify(b.peer_id, PROTOCOL, payload), all_served.wait, count,
                                     paced=paced, size=size)
        if link:
            assert a.links.stats.frames_sent == count + 1, "a notification went by libp2p"
        return result


async def main(args: argparse.Namespace) -> dict:
    return {
        "gossip_4_nodes_1kb": await bench_gossip(1024, args.messages),
        "gossip_4_nodes_64kb": await bench_gossip(64 * 1024, max(10, args.messages // 4)),
        "rr_sequential_one_stream": await bench_requests(args.requests, 1),
        "rr_pipelined_32": await bench_requests(args.requests, 32),
        "notify_back_to_back": await bench_notifications(args.requests, paced=False),
        "notify_one_at_a_time": await bench_notifications(args.requests, paced=True),
        "link_back_to_back": await bench_notifications(args.requests, paced=False, link=True),
        "link_one_at_a_time": await bench_notifications(args.requests, paced=True, link=True),
    }


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_p2p", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--messages", type=int, default=400, help="gossip messages (1 KB run)")
    parser.add_argument("--requests", type=int, default=2000,
                        help="request/response round trips, and notifications of each kind")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    results = trio.run(main, args)
    if args.json:
        print(json.dumps(results, sort_keys=True))
        return
    for name, figures in results.items():
        print(f"{name:28s} " + "  ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    cli(sys.argv[1:])
