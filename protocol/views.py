"""JSON views of protocol values for APIs and CLIs (not a wire format)."""

from __future__ import annotations

import dataclasses
from typing import Any


def body_to_json(body: Any) -> Any:
    if dataclasses.is_dataclass(body):
        return {f.name: body_to_json(getattr(body, f.name)) for f in dataclasses.fields(body)}
    if isinstance(body, (tuple, list)):
        return [body_to_json(x) for x in body]
    if isinstance(body, bytes):
        return body.hex()
    return body
