"""node/p2p/pubsub.py, 13: the inert scorer answers what upstream's PeerScorer computes
when every weight is zero, for every score and gate, whatever happened to the peers."""

from __future__ import annotations

import random

import pytest
from libp2p.peer.id import ID
from libp2p.pubsub.score import PeerScorer, ScoreParams, TopicScoreParams

from node.p2p.gossip import make_router
from node.p2p.pubsub import InertScorer, scores_are_zero

TOPICS = ["a", "b", "c"]


def random_history(scorers, rng: random.Random, peers) -> None:
    """The same events, fed to every scorer."""
    for _ in range(600):
        peer, topic = rng.choice(peers), rng.choice(TOPICS)
        event = rng.randrange(10)
        for s in scorers:
            if event == 0:
                s.on_join_mesh(peer, topic)
            elif event == 1:
                s.on_first_delivery(peer, topic)
            elif event == 2:
                s.on_invalid_message(peer, topic)
            elif event == 3:
                s.penalize_graft_flood(peer, 10.0)
            elif event == 4:
                s.penalize_behavior(peer, 1.0)
            elif event == 5:
                s.add_peer_ip(peer, f"10.0.0.{rng.randrange(3)}")
            elif event == 6:
                s.on_heartbeat()
            elif event == 7:
                s.penalize_iwant_spam(peer, 5.0)
            elif event == 8:
                s.penalize_equivocation(peer, 100.0)
            else:
                s.on_leave_mesh(peer, topic)


@pytest.mark.parametrize("thresholds", [{}, {"publish_threshold": 0.0, "gossip_threshold": 0.0,
                                             "graylist_threshold": 0.0, "accept_px_threshold": 0.0}])
def test_inert_scores_and_gates_are_upstreams(thresholds):
    from libp2p.crypto.ed25519 import create_new_key_pair

    rng = random.Random(7)
    peers = [ID.from_pubkey(create_new_key_pair(bytes([i + 1]) * 32).public_key) for i in range(6)]
    params = ScoreParams(p7_ip_colocation_threshold=1, **thresholds)  # colocated peers: still weight 0
    upstream, inert = PeerScorer(params), InertScorer(params)
    random_history((upstream, inert), rng, peers)
    for peer in peers:
        for topics in ([], ["a"], ["a", "b"], TOPICS):
            assert inert.score(peer, topics) == upstream.score(peer, topics) == 0
            for gate in ("allow_publish", "allow_gossip", "is_graylisted", "allow_px_from"):
                assert getattr(inert, gate)(peer, topics) == getattr(upstream, gate)(peer, topics), (gate, topics)
        for topic in TOPICS:
            assert inert.topic_score(peer, topic) == upstream.topic_score(peer, topic) == 0


def test_parameters_that_weigh_keep_upstreams_scorer():
    weighing = ScoreParams(p4_invalid_messages=TopicScoreParams(weight=1.0, cap=10.0, decay=0.5))
    assert scores_are_zero(ScoreParams()) and not scores_are_zero(weighing)
    assert not scores_are_zero(ScoreParams(p5_behavior_penalty_weight=1.0))
    assert not scores_are_zero(ScoreParams(p7_ip_colocation_weight=1.0))
    with pytest.raises(ValueError):
        InertScorer(weighing)
    assert type(make_router().scorer) is InertScorer  # ours sets no weight
