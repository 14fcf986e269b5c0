"""The node's p2p transport: a hardened libp2p host, gossip, request/response, peers.

Nothing here knows about consensus; it moves opaque bytes between
authenticated peers. Start with ``P2PNetwork`` (network.py).
"""

from .errors import (ConfigError, FrameError, P2PError, PeerUnavailable, ProtocolUnsupported,
                     RequestFailed, RequestTimeout)
from .gossip import Gossip, GossipStats
from .host import ConnectionStats, HostConfig, PeerAllowlist, configure_libp2p_logging, peer_id_of
from .network import P2PConfig, P2PNetwork
from .peers import PeerBook, PeerManager
from .streams import Requester, RequestServer, StreamStats

__all__ = [
    "ConfigError", "ConnectionStats", "FrameError", "Gossip", "GossipStats", "HostConfig",
    "P2PConfig", "P2PError", "P2PNetwork", "PeerAllowlist", "PeerBook", "PeerManager",
    "PeerUnavailable", "ProtocolUnsupported", "RequestFailed", "RequestServer", "RequestTimeout", "Requester",
    "StreamStats", "configure_libp2p_logging", "peer_id_of",
]
