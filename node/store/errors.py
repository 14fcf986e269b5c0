"""Errors of the node database: it is damaged, or it is not this chain's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import StorageDamaged


class StoreCorrupted(StorageDamaged):
    """The database does not match its own certificates. The node must stop."""

    def __init__(self, path: Path, detail: str):
        home = Path(path).parent.parent
        super().__init__(
            f"store {path} is damaged: {detail}; the node will not run on damaged data. To recover, rebuild "
            f"the state from the verified blocks (`branchnet store rebuild --home {home}`) or move {path} "
            f"aside and let the node sync from its peers"
        )
        self.detail = detail


class WrongChain(StorageDamaged):
    """The database belongs to another chain (genesis hash differs)."""

    @classmethod
    def between(cls, path: Path, stored_chain_id: str | None, stored_hash: bytes | None, genesis: Any) -> "WrongChain":
        """The one line for a database of ``stored_chain_id`` / ``stored_hash`` opened with
        ``genesis``: both chain ids as text, both full hashes, and what to do about it."""
        path = Path(path)
        stored = f"{stored_chain_id or '?'} (genesis hash {stored_hash.hex() if stored_hash else '?'})"
        return cls(
            f"{path} holds another chain: {stored}, not the genesis file's {genesis.chain_id} (genesis hash "
            f"{genesis.hash.hex()}). If the genesis file is the wrong one, put the network's genesis.json back "
            f"(its hash is in every node's `branchnet status`); if the database is left from another network, "
            f"move it aside (mv {path} {path}.other) and start the node: it syncs this chain from its peers"
        )
