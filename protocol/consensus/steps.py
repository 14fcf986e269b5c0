"""Steps of a round. The signer orders (height, round, step) with these numbers."""

from __future__ import annotations

from enum import IntEnum


class Step(IntEnum):
    NEW_HEIGHT = 0  # before the first StartHeight
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    COMMIT = 4  # decided; waiting for StartHeight(height + 1)
