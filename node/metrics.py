"""Prometheus metrics of one node, in a registry of its own (several nodes may
share a process in tests). Every rejected input is counted by source and reason;
the transport's own rejections (PSK, handshakes, unknown peers, decode errors by
protocol, penalties, bans) are read from it at scrape time (``watch_transport``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class NodeMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.height = Gauge("branchnet_height", "Last committed block height", registry=r)
        self.blocks_committed = Counter("branchnet_blocks_committed", "Blocks committed (consensus or sync)", ["via"], registry=r)
        self.records_committed = Counter("branchnet_records_committed", "Records committed in blocks", registry=r)
        self.commit_round = Histogram("branchnet_commit_round", "Round at which each height was decided", buckets=(0, 1, 2, 3, 5, 10, 20), registry=r)
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
        self.record_batches_sent = Counter("branchnet_record_batches_sent", "Batches of our clients' records sent: "
                                           "pushed to one validator, or gossiped", ["via"], registry=r)
        self.record_push_failures = Counter("branchnet_record_push_failures", "Record pushes refused or timed out "
                                            "(the batch then goes out on gossip)", registry=r)
        self.proposal_data_fetched = Counter("branchnet_proposal_data_fetched", "What a compact proposal lacked and "
                                             "was fetched from peers: records by hash, or whole blocks", ["what"], registry=r)

    def watch_transport(self, transport: object) -> None:
        """Export the transport's rejections, penalties and bans (``node.p2p.metrics``)."""
        from .p2p.metrics import TransportCollector

        self.registry.register(TransportCollector(transport))

    def reject(self, source: str, reason: str) -> None:
        self.rejected.labels(source, reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def rejected_counts(self) -> dict[str, int]:
        out = {}
        for metric in self.rejected.collect():
            for s in metric.samples:
                if s.name.endswith("_total"):
                    out[f"{s.labels['source']}/{s.labels['reason']}"] = int(s.value)
        return out
