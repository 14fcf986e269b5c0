"""Homes for a whole local network at once: moved to :mod:`node.testnet` (the
``branchnet testnet`` command uses it); re-exported here for the tools and tests."""

from node.testnet import create_network, dialable_address, free_ports, set_config

__all__ = ["create_network", "dialable_address", "free_ports", "set_config"]
