"""Block sync over ``/branchnet/{chain}/sync/1``: serving peers, asking peers, catching up.

* :class:`SyncServer` — answers peers' requests for status, blocks, records.
* :class:`SyncClient` — typed requests to one peer (also used by consensus to
  fetch a proposal's block or missing records).
* :class:`BlockSync` — the catch-up loop of a node that is behind.
"""

from .catchup import BlockSync
from .client import SyncClient
from .server import SyncServer

__all__ = ["BlockSync", "SyncClient", "SyncServer"]
