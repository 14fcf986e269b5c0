"""Prometheus metrics of one node, in a registry of its own (several nodes may
share a process in tests). Every rejected input is counted by source and reason;
the transport's own rejections (PSK, handshakes, unknown peers, decode errors by
protocol, penalties, bans), its gossip drops, request timeouts and connections by
direction are read from it at scrape time (``watch_transport``), and so are the
consensus height, round and step (``watch_consensus``), the store's WAL
checkpoints (``watch_store``) and the gauges refreshed by ``on_scrape`` callbacks
(peers, mempool, sync lag).

Per commit (``observe_commit``): the interval between block times (header
``time_ms``, the same on every node), each validator of the signing set as
signed or missed in the block's commit certificate, and the evidence the block
carries.

The registry also holds the process, Python platform and GC collectors and
``branchnet_build_info``. No ``_created`` series: prometheus_client's switch
(``disable_created_metrics``) is process-wide and is thrown on import here.
Metric names are listed in docs/CLI.md; deploy/grafana-dashboard.json uses them.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any, Callable, Iterator

from prometheus_client import (CollectorRegistry, Counter, GCCollector, Gauge, Histogram, Info, PlatformCollector,
                               ProcessCollector, disable_created_metrics, generate_latest)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

disable_created_metrics()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


class NodeMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.height = Gauge("branchnet_height", "Last committed block height", registry=r)
        self.blocks_committed = Counter("branchnet_blocks_committed", "Blocks committed (consensus or sync)", ["via"], registry=r)
        self.records_committed = Counter("branchnet_records_committed", "Records committed in blocks", registry=r)
        self.commit_round = Histogram("branchnet_commit_round", "Round at which each height was decided", buckets=(0, 1, 2, 3, 5, 10, 20), registry=r)
        self.consensus_received = Counter("branchnet_consensus_messages_received", "Consensus messages received, by "
                                          "path (direct, gossip), kind (proposal, compact_proposal, vote, summary, "
                                          "bundle) and outcome (new, duplicate, stale, invalid; a bundle: its frame)",
                                          ["via", "kind", "outcome"], registry=r)
        self.consensus_sent = Counter("branchnet_consensus_messages_sent", "Consensus messages queued for peers, by "
                                      "kind (own, relay: an answer to a summary, summary), and the request frames "
                                      "that carried them (frame_single, frame_bundle)", ["kind"], registry=r)
        self.votes_received = Counter("branchnet_votes_received", "Consensus votes received and verified", registry=r)
        self.peers = Gauge("branchnet_peers", "Connected peers", registry=r)
        self.mempool_records = Gauge("branchnet_mempool_records", "Records waiting in the mempool", registry=r)
        self.sync_lag = Gauge("branchnet_sync_lag_blocks", "Best known peer height minus ours", registry=r)
        self.validators = Gauge("branchnet_validators", "Validators in the set that signs the next block", registry=r)
        self.validator_power = Gauge("branchnet_validator_power", "Total voting power of that set", registry=r)
        self.members = Gauge("branchnet_members", "Member branches in the registry (PROTOCOL.md §15)", registry=r)
        self.open_proposals = Gauge("branchnet_gov_open_proposals", "Governance proposals still open", registry=r)
        self.rejected = Counter("branchnet_rejected", "Inputs rejected, by source and reason", ["source", "reason"], registry=r)
        self.finality = Histogram("branchnet_record_finality_seconds", "Time from local submission to commit",
                                  buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10), registry=r)
        self.signer_writes = Counter("branchnet_signer_state_writes", "fsynced signer-state writes", registry=r)
        self.record_batches_sent = Counter("branchnet_record_batches_sent", "Record batches sent to one validator: "
                                           "our clients' (push), a non-validator's forwarded by us as a validator "
                                           "(forward), or our clients' gossiped when no validator is connected "
                                           "(gossip)", ["via"], registry=r)
        self.record_push_failures = Counter("branchnet_record_push_failures", "Record pushes refused, failed or timed "
                                            "out (the sender's re-sends cover their records)", registry=r)
        self.record_push_seconds = Histogram("branchnet_record_push_seconds", "Record batches pushed to a validator: "
                                             "time waiting in that validator's queue (queued: one push at a time per "
                                             "validator) and from request to answer (answered)", ["stage"],
                                             buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10), registry=r)
        self.proposal_data_fetched = Counter("branchnet_proposal_data_fetched", "What a compact proposal lacked and "
                                             "was fetched from peers: records by hash, or whole blocks", ["what"], registry=r)

        self.block_interval = Histogram("branchnet_block_interval_seconds", "Time between consecutive blocks "
                                        "(their header times; the first block after a start is not counted)",
                                        buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300), registry=r)
        self.validator_signed = Counter("branchnet_validator_signed_blocks", "Blocks whose commit certificate "
                                        "holds this validator's precommit", ["validator"], registry=r)
        self.validator_missed = Counter("branchnet_validator_missed_blocks", "Blocks whose commit certificate "
                                        "lacks a precommit of this validator of the signing set", ["validator"], registry=r)
        self.evidence_committed = Counter("branchnet_evidence_committed", "Evidence of validator misbehaviour "
                                          "committed in blocks", registry=r)
        self.build = Info("branchnet_build", "Versions this node runs", registry=r)
        self.build.info({"version": _version("branchnet"), "python": platform.python_version(),
                         "implementation": platform.python_implementation(), "libp2p": _version("libp2p")})
        ProcessCollector(registry=r)   # process_cpu_seconds_total, process_resident_memory_bytes, open fds...
        PlatformCollector(registry=r)  # python_info
        GCCollector(registry=r)        # python_gc_*
        self._last_block_time_ms: int | None = None
        self._signing: dict[tuple[bytes, str], tuple[Any, Any]] = {}  # (branch id, label) -> (signed, missed) children
        self._scrape_hooks: list[Callable[[], None]] = []

    def observe_commit(self, block: Any, certificate: Any, signers: Any) -> None:
        """A committed ``block`` with its ``certificate``; ``signers``: the ValidatorSet
        that was to sign it (the state's set before the block)."""
        if self._last_block_time_ms is not None and block.height > 1:
            self.block_interval.observe(max(0, block.header.time_ms - self._last_block_time_ms) / 1000)
        self._last_block_time_ms = block.header.time_ms
        signed = {vid for vid, _ in certificate.signatures}
        for v in signers:
            children = self._signing.get((v.branch_id, v.name))
            if children is None:  # labels() per validator per block: ~4 % of a syncing node's GIL samples
                label = v.name or v.branch_id.hex()[:16]
                children = self._signing[(v.branch_id, v.name)] = (self.validator_signed.labels(label),
                                                                   self.validator_missed.labels(label))
            children[0 if v.branch_id in signed else 1].inc()  # both series exist from the first block
        if block.evidence:
            self.evidence_committed.inc(len(block.evidence))

    def on_scrape(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` (it sets gauges) before each render."""
        self._scrape_hooks.append(hook)

    def watch_consensus(self, statistics: Callable[[], dict]) -> None:
        """Export the consensus height, round and step from ``statistics()`` (the driver's)."""
        self.registry.register(ConsensusCollector(statistics))

    def watch_store(self, store: Any) -> None:
        """Export the store's WAL checkpoints (``Store.checkpoints``), done and failed."""
        self.registry.register(StoreCollector(store))

    def watch_transport(self, transport: object) -> None:
        """Export the transport's rejections, penalties and bans (``node.p2p.metrics``)."""
        from .p2p.metrics import TransportCollector

        self.registry.register(TransportCollector(transport))

    def reject(self, source: str, reason: str) -> None:
        self.rejected.labels(source, reason).inc()

    def render(self) -> bytes:
        for hook in self._scrape_hooks:
            hook()
        return generate_latest(self.registry)

    def rejected_counts(self) -> dict[str, int]:
        out = {}
        for metric in self.rejected.collect():
            for s in metric.samples:
                if s.name.endswith("_total"):
                    out[f"{s.labels['source']}/{s.labels['reason']}"] = int(s.value)
        return out


STEPS = ("new_height", "propose", "prevote", "precommit", "commit")  # protocol.consensus.steps.Step, in order


class ConsensusCollector:
    """``branchnet_consensus_height`` / ``_round`` / ``_step`` (0 new height, 1 propose,
    2 prevote, 3 precommit, 4 commit) of a validator's consensus, at scrape time."""

    def __init__(self, statistics: Callable[[], dict]) -> None:
        self.statistics = statistics

    def collect(self) -> Iterator[Any]:
        stats = self.statistics()
        yield GaugeMetricFamily("branchnet_consensus_height", "Height consensus works on", value=stats["height"])
        yield GaugeMetricFamily("branchnet_consensus_round", "Round of that height (0 when decided in the first)",
                                value=stats["round"])
        step = stats["step"]
        yield GaugeMetricFamily("branchnet_consensus_step", "Step of that round: 0 new height, 1 propose, "
                                "2 prevote, 3 precommit, 4 commit", value=STEPS.index(step) if step in STEPS else -1)

    def describe(self) -> list[Any]:
        return []


class StoreCollector:
    """``branchnet_wal_checkpoints_total{outcome}``: the store's checkpointer thread's
    checkpoints (node/store/writer.py), ``done`` or ``failed``, at scrape time."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        family = CounterMetricFamily("branchnet_wal_checkpoints", "WAL checkpoints of the store's checkpointer "
                                     "thread, by outcome (done, failed: the writer's own checkpoint takes over)",
                                     labels=["outcome"])
        for outcome, count in self.store.checkpoints().items():
            family.add_metric([outcome], count)
        yield family

    def describe(self) -> list[Any]:
        return []
