"""Overload benchmark: offer 1x, 1.5x, 2x and 3x the network's capacity through the API.

    python -m tools.bench_overload [--multiples 1,1.5,2,3] [--duration S] [--capacity R] [--json]

Four validator daemons run on 127.0.0.1 (as in ``tools.bench``), each with its API.
Clients submit pre-signed ``service.offer`` records with ``POST /v1/records``
(new services round-robin over 50 member branches, so no record supersedes
another), over keep-alive HTTP/1.1 connections to every validator, open loop:
record *i* is due at ``t0 + i / rate`` whatever the answers so far.

A node admits a submission only while its backlog commits within
``[mempool] finality_target_ms``; beyond that it answers 503 with
``Retry-After`` (node/overload.py). This tool shows whether that holds:

1. Capacity: unless ``--capacity`` is given, a calibration phase offers
   ``--calibrate-rate`` records/s (open loop, like the phases) and takes the
   committed rate as the capacity. Offer more than the network commits but not
   so much that the client takes the cores: on this machine the API path commits
   100-150 records/s and the client costs about 0.7 ms of CPU per request.
   (A closed loop that honours ``Retry-After`` underestimates: a cold admission
   limit first lets a long backlog in, then refuses for its whole drain.)
2. For each multiple, a phase of ``--duration`` seconds at multiple x capacity,
   then a drain until every accepted record is committed (bounded). Per phase:
   offered/s, accepted (202)/s, refused (503)/s, other answers, committed/s, and
   the finality of accepted records (p50/p99, from sending the request to the
   moment a generator peer hears the block's commit announcement).

The issue's bar (issue 11): at 2x, finality p99 of accepted records under 2 s
and committed/s at least 90 % of the peak. The client shares the machine's
cores with the validators; its cost is printed (``client_cpu_s``). It uses h11
directly (a few tens of µs per request) so that the load generator is not what
saturates the machine. A script, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import h11
import httpx
import trio

from node.config import Home
from node.keyfile import load_key
from node.p2p.host import peer_id_of
from node.store import ChainReader
from node.testnet import create_network, set_config
from protocol.genesis import Genesis
from protocol.records import Record
from tools.bench import (BENCH_PARAMS, N_VALIDATORS, generator_network, percentile, proc_stats, sample_offer,
                         start_daemon, start_listening, stop)

BRANCHES = 50  # member branches whose keys sign the offered records
CONNECTIONS_PER_NODE = 16  # keep-alive connections per validator API: requests in flight at once
DRAIN_QUIET_S = 15  # a drain ends when nothing commits for this long
WATCHED = ("branchnet_rejected_total", "branchnet_proposal_data_fetched_total", "branchnet_commit_round_bucket",
           "branchnet_record_push_failures_total")  # /metrics counters summed over the validators, per phase


def metric_totals(endpoints: list[tuple[str, int, str]]) -> dict[str, float]:
    """The WATCHED counters of every validator's /metrics, summed by series."""
    out: dict[str, float] = {}
    for host, port, token in endpoints:
        text = httpx.get(f"http://{host}:{port}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10).text
        for line in text.splitlines():
            if line.startswith(WATCHED):
                series, value = line.rsplit(" ", 1)
                out[series] = out.get(series, 0.0) + float(value)
    return out


def offer_records(keys: list, chain_id: str, total: int, start: int = 0) -> list[Record]:
    """``total`` new services, round-robin over ``keys``: every record a new subject."""
    now = int(time.time() * 1000)
    return [Record.create(keys[i % len(keys)], chain_id, 1, now, sample_offer(i)) for i in range(start, start + total)]


class Submitter:
    """Open-loop HTTP/1.1 clients (h11 over trio) posting records to several APIs."""

    def __init__(self, endpoints: list[tuple[str, int, str]]):
        self.endpoints = endpoints  # (host, port, bearer token)
        self.answers: dict[int, int] = {}  # status code -> count
        self.sent_at: dict[int, float] = {}  # record index -> when its request went out
        self.accepted: list[int] = []
        self.errors = 0

    async def run(self, bodies: list[bytes], rate: float) -> float:
        """Post every body, body *i* not before ``t0 + i / rate`` (open loop: a refused
        client does not slow down); returns the seconds it took."""
        self._next = 0
        t0 = time.monotonic()
        trio_t0 = trio.current_time()

        async def claim() -> int | None:
            i = self._next
            if i >= len(bodies):
                return None
            self._next += 1
            await trio.sleep_until(trio_t0 + i / rate)
            return i

        async with trio.open_nursery() as nursery:
            for host, port, token in self.endpoints:
                for _ in range(CONNECTIONS_PER_NODE):
                    nursery.start_soon(self._connection, host, port, token, bodies, claim)
        return time.monotonic() - t0

    async def _connection(self, host: str, port: int, token: str, bodies: list[bytes], claim) -> None:
        headers = [("Host", f"{host}:{port}"), ("Content-Type", "application/json"), ("Authorization", f"Bearer {token}")]
        stream, conn = None, None
        while (i := await claim()) is not None:
            body = bodies[i]
            try:
                if stream is None:
                    stream = await trio.open_tcp_stream(host, port)
                    conn = h11.Connection(h11.CLIENT)
                self.sent_at[i] = time.monotonic()
                await stream.send_all(conn.send(h11.Request(method="POST", target="/v1/records",
                                                            headers=headers + [("Content-Length", str(len(body)))]))
                                      + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
                status = await self._response(stream, conn)
            except (OSError, trio.BrokenResourceError, h11.ProtocolError):
                self.errors += 1
                if stream is not None:
                    await stream.aclose()
                stream = None
                continue
            self.answers[status] = self.answers.get(status, 0) + 1
            if status == 202:
                self.accepted.append(i)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                await stream.aclose()
                stream = None
            else:
                conn.start_next_cycle()
        if stream is not None:
            await stream.aclose()

    @staticmethod
    async def _response(stream: trio.SocketStream, conn: h11.Connection) -> int:
        status = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    raise trio.BrokenResourceError("the server closed the connection")
                conn.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                return status


async def run(base: Path, multiples: list[float], duration: float, capacity: float | None,
              calibrate_rate: float = 300.0) -> dict:
    homes = create_network(base, N_VALIDATORS, observers=1, spare_members=BRANCHES, fixed_ports=True, params=BENCH_PARAMS,
                           observer_links=N_VALIDATORS,
                           consensus={"block_interval_ms": 50, "empty_block_interval_ms": 2000, "max_block_records": 5000})
    validators, gen_home = homes[:N_VALIDATORS], homes[N_VALIDATORS]
    set_config(gen_home, "api", "enabled", False)
    genesis = Genesis.loads(gen_home.genesis.read_bytes())
    keys = [load_key(Home(base / f"member-{k:02d}").key) for k in range(BRANCHES)]
    validator_ids = {peer_id_of(load_key(h.key).public_key.raw) for h in validators}
    endpoints = []
    for h in validators:
        host, port = h.load_config().api.listen.rsplit(":", 1)
        endpoints.append((host, int(port), h.api_token.read_text().strip()))

    procs = [start_daemon(h) for h in validators]
    net = generator_network(gen_home, validator_ids)
    announced: dict[int, float] = {}
    phases: list[dict] = []
    made = 0
    try:
        async with trio.open_nursery() as nursery:
            await start_listening(nursery, net, genesis, announced)
            reader = ChainReader.open(validators[0].db, genesis)  # read-only, beside the running node
            plan = (["calibrate"] if capacity is None else []) + multiples
            for label in plan:
                rate = calibrate_rate if label == "calibrate" else label * capacity
                total = int(rate * duration)
                print(f"{label}: signing {total} records ...", file=sys.stderr)
                records = offer_records(keys, genesis.chain_id, total, start=made)
                made += total
                bodies = [json.dumps({"record": r.raw.hex()}).encode() for r in records]
                print(f"{label}: offering {rate:.0f}/s for {duration:.0f} s ...", file=sys.stderr)
                phase = await run_phase(endpoints, procs, reader, announced, records, bodies, rate)
                phase = {"phase": label if isinstance(label, str) else f"{label:g}x", **phase}
                phases.append(phase)
                print(json.dumps(phase), file=sys.stderr)
                if capacity is None:
                    capacity = phase["committed_per_s"]
            reader.close()
            nursery.cancel_scope.cancel()
    finally:
        stop(procs)
    loaded = [p for p in phases if p["phase"] != "calibrate"]
    peak = max((p["committed_per_s"] for p in phases), default=0.0)
    at2 = next((p for p in loaded if p["phase"] == "2x"), None)
    return {"capacity_per_s": capacity, "peak_committed_per_s": peak, "phases": phases,
            "at_2x": None if at2 is None else {
                "finality_p99_ms": at2["finality_p99_ms"],
                "committed_share_of_peak": round(at2["committed_per_s"] / peak, 3) if peak else None,
                "refused_share": round(at2["refused"] / max(at2["sent"], 1), 3)}}


async def run_phase(endpoints, procs, reader: ChainReader, announced: dict[int, float], records: list[Record],
                    bodies: list[bytes], rate: float) -> dict:
    submitter = Submitter(endpoints)
    metrics0 = await trio.to_thread.run_sync(metric_totals, endpoints)
    cpu0 = [proc_stats(p.pid)[0] for p in procs]
    client0 = time.process_time()
    t0 = time.monotonic()
    took = await submitter.run(bodies, rate)
    client_cpu = time.process_time() - client0
    # drain: every accepted record committed, or nothing new for DRAIN_QUIET_S
    accepted = {records[i].hash: i for i in submitter.accepted}
    heights: dict[bytes, int] = {}
    last_change = time.monotonic()
    while len(heights) < len(accepted) and time.monotonic() - last_change < DRAIN_QUIET_S:
        await trio.sleep(0.5)
        found = reader.heights_of([h for h in accepted if h not in heights])
        if found:
            heights.update(found)
            last_change = time.monotonic()
    cpu = [proc_stats(p.pid)[0] - c for p, c in zip(procs, cpu0)]
    metrics = await trio.to_thread.run_sync(metric_totals, endpoints)
    counters = {k: v - metrics0.get(k, 0.0) for k, v in sorted(metrics.items()) if v != metrics0.get(k, 0.0)}
    finality, commit_times = [], []
    for h, height in heights.items():
        if height in announced:  # an announcement is gossip: it can be lost; then no sample
            finality.append((announced[height] - submitter.sent_at[accepted[h]]) * 1000)
            commit_times.append(announced[height])
    window = max(max(commit_times, default=t0 + took), t0 + took) - t0
    sent = sum(submitter.answers.values()) + submitter.errors
    return {
        "offered_per_s": round(rate, 1),
        "sent": sent,
        "sent_per_s": round(sent / took, 1),
        "accepted": len(accepted),
        "refused": submitter.answers.get(503, 0),
        "refused_per_s": round(submitter.answers.get(503, 0) / took, 1),
        "other_answers": {str(k): v for k, v in sorted(submitter.answers.items()) if k not in (202, 503)},
        "connection_errors": submitter.errors,
        "committed": len(heights),
        "accepted_not_committed": len(accepted) - len(heights),
        "committed_per_s": round(len(heights) / window, 1),
        "finality_samples": len(finality),
        "finality_p50_ms": round(percentile(finality, 0.50), 1),
        "finality_p99_ms": round(percentile(finality, 0.99), 1),
        "cpu_s_per_node": [round(c, 1) for c in cpu],
        "client_cpu_s": round(client_cpu, 1),
        "validator_counters": counters,  # what the validators' /metrics counted during the phase
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench_overload", description=__doc__.split("\n\n")[0])
    ap.add_argument("--multiples", default="1,1.5,2,3", help="multiples of capacity to offer, in order (default 1,1.5,2,3)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of offered load per phase (default 20)")
    ap.add_argument("--capacity", type=float, default=None, help="records/s the network commits at saturation; "
                    "measured by a calibration phase when left out")
    ap.add_argument("--calibrate-rate", type=float, default=300.0, help="offered records/s of the calibration phase "
                    "(default 300: above this machine's capacity through the API)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    multiples = [float(m) for m in args.multiples.split(",") if m.strip()]
    if not multiples or any(m <= 0 for m in multiples) or args.duration <= 0:
        ap.error("--multiples must be positive numbers and --duration positive")
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    base = Path(tempfile.mkdtemp(prefix="branchnet-overload-"))
    try:
        out = trio.run(run, base, multiples, args.duration, args.capacity, args.calibrate_rate)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"capacity {out['capacity_per_s']}/s, peak committed {out['peak_committed_per_s']}/s")
        cols = ("phase", "offered_per_s", "sent_per_s", "accepted", "refused_per_s", "committed_per_s",
                "finality_p50_ms", "finality_p99_ms", "accepted_not_committed", "client_cpu_s")
        print("  ".join(f"{c:>14}" for c in cols))
        for p in out["phases"]:
            print("  ".join(f"{p[c]!s:>14}" for c in cols))
        if out["at_2x"]:
            print(f"at 2x: {out['at_2x']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
