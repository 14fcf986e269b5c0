"""The transport's rejections as Prometheus metrics, read from its counters at scrape time.

Families (all per node):

* ``branchnet_p2p_rejected_total{protocol, reason}`` — everything the transport
  refused: ``pnet`` (wrong network key, silent or broken handshake),
  ``handshake`` (Noise or Yamux upgrade failed), ``allowlist`` (unknown peer
  ids, banned peers), each pubsub protocol (``/meshsub/1.2.0``: undecodable
  RPCs, bad topics, floods...), ``multistream`` and libp2p's own protocols
  (identify, ping), each ``/branchnet/...`` stream protocol (bad frames), and
  the node's own rejections that scored a peer (``consensus``, ``records``,
  ``sync``, ``blocks``);
* ``branchnet_p2p_penalties_total{fault}`` — faults scored against peers;
* ``branchnet_p2p_bans_total`` and ``branchnet_p2p_banned_peers``;
* ``branchnet_gossip_dropped_total{reason}`` — gossip lost on our side:
  ``subscriber_behind`` (a topic's consumer channel was full), ``push_dropped``
  (pubsub.py: a forwarded push the per-peer queue could not take);
* ``branchnet_p2p_request_timeouts_total`` — our requests (sync, record push,
  proposal fetch) a peer did not answer in time;
* ``branchnet_p2p_requests_total{protocol, direction}`` — request frames
  ``served`` (read from peers) and ``sent``, by stream protocol (the chain id
  left out: ``/branchnet/consensus/1``);
* ``branchnet_gossip_messages_total{topic, stage}`` — gossip messages by topic:
  ``copies`` (every published message arriving in a pubsub RPC, the copies
  gossipsub's seen-cache drops included) and ``delivered`` (new, handed to the
  node);
* ``branchnet_gossip_rpcs_total{direction}`` — pubsub RPCs read and written
  (messages and control: subscriptions, IHAVE/IWANT, GRAFT/PRUNE, IDONTWANT);
* ``branchnet_p2p_connections{direction}`` — open libp2p connections,
  ``inbound``/``outbound`` (``unknown`` where libp2p did not record it);
* ``branchnet_p2p_open_streams`` and ``branchnet_p2p_stream_slots_free_lowest`` —
  Yamux streams open now, and the fewest of a connection's 256 stream slots left
  on any connection (at 0 no new stream opens on it; ``stream_open.py``);
* ``branchnet_p2p_links`` and ``branchnet_p2p_link_frames_total{outcome}`` — consensus
  links open now (``link.py``), and the notifications sent on them (``sent``) or
  sent by libp2p after a link failed (``fell_back``); refused link handshakes are
  in ``branchnet_p2p_rejected_total{protocol="link"}``;
* ``branchnet_p2p_bytes_total{direction}`` — bytes on the wire over every peer
  connection, ``sent``/``received`` (counted by the private-network layer, so
  0 on a network without a network key);
* ``branchnet_p2p_peer_bytes_total{peer, direction}`` — the same for each
  connected peer's open connection (restarts at 0 when it reconnects).

Inputs the node rejects (consensus, records, the API, admission control's
``overloaded``) keep their own family, ``branchnet_rejected_total{source, reason}``.
"""

from __future__ import annotations

from typing import Any, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class TransportCollector:
    """A prometheus_client collector over a transport (``P2PNetwork`` or ``MemoryNetwork``)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def collect(self) -> Iterator[Any]:
        rejected = CounterMetricFamily("branchnet_p2p_rejected", "Input the transport refused, by protocol "
                                       "(or layer) and reason", labels=["protocol", "reason"])
        for (protocol, reason), n in sorted(self.transport.rejections().items()):
            rejected.add_metric([protocol, reason], n)
        yield rejected
        faults = self.transport.faults
        penalties = CounterMetricFamily("branchnet_p2p_penalties", "Faults scored against peers, by class",
                                        labels=["fault"])
        for fault, n in sorted(faults.scores.penalties_total.items()):
            penalties.add_metric([fault], n)
        yield penalties
        yield CounterMetricFamily("branchnet_p2p_bans", "Peers banned for misbehaviour",
                                  value=faults.scores.bans_total)
        yield GaugeMetricFamily("branchnet_p2p_banned_peers", "Peers banned now", value=len(faults.banned()))
        stats = self.transport.statistics()
        dropped = CounterMetricFamily("branchnet_gossip_dropped", "Gossip messages dropped on this node, by reason",
                                      labels=["reason"])
        dropped.add_metric(["subscriber_behind"], stats.get("gossip", {}).get("dropped", 0))
        dropped.add_metric(["push_dropped"], getattr(getattr(getattr(self.transport, "gossip", None), "pubsub", None), "pushes_dropped", 0))
        yield dropped
        yield CounterMetricFamily("branchnet_p2p_request_timeouts", "Requests to peers that timed out",
                                  value=stats.get("streams", {}).get("request_timeouts", 0))
        streams = stats.get("streams") or stats.get("memory") or {}
        requests = CounterMetricFamily("branchnet_p2p_requests", "Request frames by stream protocol, served "
                                       "(read from peers) or sent", labels=["protocol", "direction"])
        for direction in ("served", "sent"):
            for protocol, n in sorted(streams.get(f"{direction}_by_protocol", {}).items()):
                requests.add_metric([short_protocol(protocol), direction], n)
        yield requests
        gossip = stats.get("gossip") or stats.get("memory") or {}
        pubsub = getattr(getattr(self.transport, "gossip", None), "pubsub", None)
        messages = CounterMetricFamily("branchnet_gossip_messages", "Gossip messages by topic: copies arriving "
                                       "(duplicates included), delivered (new)", labels=["topic", "stage"])
        for stage, counts in (("copies", getattr(pubsub, "copies_by_topic", {})),
                              ("delivered", gossip.get("received_by_topic", {}))):
            for topic, n in sorted(counts.items()):
                messages.add_metric([short_protocol(topic), stage], n)
        yield messages
        rpcs = CounterMetricFamily("branchnet_gossip_rpcs", "Pubsub RPCs read and written", labels=["direction"])
        rpcs.add_metric(["received"], getattr(pubsub, "rpcs_received", 0))
        rpcs.add_metric(["sent"], getattr(pubsub, "rpcs_sent", 0))
        yield rpcs
        router = getattr(pubsub, "router", None)
        idontwant = CounterMetricFamily("branchnet_gossip_idontwant", "IDONTWANT control messages sent (one per "
                                        "mesh peer), and messages too small to get one", labels=["outcome"])
        idontwant.add_metric(["sent"], getattr(router, "idontwant_sent", 0))
        idontwant.add_metric(["skipped"], getattr(router, "idontwant_skipped", 0))
        yield idontwant
        connections = GaugeMetricFamily("branchnet_p2p_connections", "Open peer connections, by direction",
                                        labels=["direction"])
        by_direction = {"inbound": 0, "outbound": 0}
        count = getattr(self.transport, "connections_by_direction", None)
        if count is not None:
            by_direction.update(count())
        for direction, n in sorted(by_direction.items()):
            connections.add_metric([direction], n)
        yield connections
        slots = stats.get("streams", {})
        yield GaugeMetricFamily("branchnet_p2p_open_streams", "Yamux streams open on all peer connections",
                                value=slots.get("open_streams", 0))
        yield GaugeMetricFamily("branchnet_p2p_stream_slots_free_lowest", "The fewest of a connection's 256 stream "
                                "slots left on any peer connection (no new stream opens on a connection at 0)",
                                value=slots.get("lowest_free_stream_slots", 256))
        links = stats.get("links") or {}
        yield GaugeMetricFamily("branchnet_p2p_links", "Consensus links to other validators open now",
                                value=links.get("up", 0))
        link_frames = CounterMetricFamily("branchnet_p2p_link_frames", "Consensus notifications sent on links, "
                                          "and those that went by libp2p because the link failed", labels=["outcome"])
        link_frames.add_metric(["sent"], links.get("frames_sent", 0))
        link_frames.add_metric(["fell_back"], links.get("send_failures", 0))
        yield link_frames
        traffic = CounterMetricFamily("branchnet_p2p_bytes", "Bytes on the wire over all peer connections, by direction",
                                      labels=["direction"])
        for direction in ("sent", "received"):
            traffic.add_metric([direction], stats.get("connections", {}).get(f"bytes_{direction}", 0))
        yield traffic
        per_peer = CounterMetricFamily("branchnet_p2p_peer_bytes", "Bytes on the wire over each peer's open "
                                       "connection, by direction (restarts at 0 with a new connection)",
                                       labels=["peer", "direction"])
        details = getattr(self.transport, "peer_details", None)
        for peer in details() if details is not None else ():
            for direction in ("sent", "received"):
                if peer.get(f"bytes_{direction}") is not None:
                    per_peer.add_metric([peer["peer_id"], direction], peer[f"bytes_{direction}"])
        yield per_peer

    def describe(self) -> list[Any]:
        return []  # collected at scrape time only


def short_protocol(name: str) -> str:
    """A protocol id or topic without its chain id: ``/branchnet/{chain}/consensus/1`` -> ``/branchnet/consensus/1``."""
    parts = name.split("/")
    if len(parts) == 5 and parts[1] == "branchnet":
        return "/".join(parts[:2] + parts[3:])
    return name
