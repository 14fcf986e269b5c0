"""The node database (SQLite, WAL): blocks, certificates, records, state, evidence, peers.

* :class:`Store` — the one writer (a block and its state change in one
  transaction) and, through :class:`ChainReader`, the read queries.
* :class:`ChainReader` — read-only queries on a connection of their own; the
  CLI opens one to export or verify a chain while the node runs.
* :class:`StoreCorrupted`, :class:`WrongChain` — the database is damaged or
  belongs to another chain (:class:`node.errors.StorageDamaged`).
"""

from .errors import StoreCorrupted, WrongChain
from .reader import ChainReader, RawBlock, StoredBlock
from .schema import SCHEMA_VERSION
from .writer import PreparedBlock, Store

__all__ = ["SCHEMA_VERSION", "ChainReader", "PreparedBlock", "RawBlock", "Store", "StoreCorrupted", "StoredBlock", "WrongChain"]
