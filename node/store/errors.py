"""Errors of the node database: it is damaged, or it is not this chain's."""

from __future__ import annotations

from pathlib import Path

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
