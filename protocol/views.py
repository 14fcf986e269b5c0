"""JSON views of protocol values for APIs and CLIs (not a wire format).

``body_to_json`` turns a record body into plain JSON (objects for dataclasses,
lists for tuples, hex for bytes); ``body_from_json`` is its inverse. The inverse
rebuilds the canonical array form and goes through the schema's ``from_array``,
so a body built from JSON obeys exactly the rules a body decoded from the wire
does. Every problem raises DecodeError (wrong shape or type) or ValidationError
(a rule is broken) naming the field, e.g. ``body.fees[1].currency``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import DecodeError, ValidationError
from .schema import BODY_TYPES, Body, EquipmentStatus, Fee, OpeningHours

# Fields of body dataclasses that hold a list of nested objects.
_NESTED = {"hours": OpeningHours, "fees": Fee, "equipment": EquipmentStatus}
MAX_JSON_LIST = 64  # a cap before the schema's own, tighter limits apply


def body_to_json(body: Any) -> Any:
    if dataclasses.is_dataclass(body):
        return {f.name: body_to_json(getattr(body, f.name)) for f in dataclasses.fields(body)}
    if isinstance(body, (tuple, list)):
        return [body_to_json(x) for x in body]
    if isinstance(body, bytes):
        return body.hex()
    return body


def body_from_json(kind: Any, obj: Any) -> Body:
    """Build the body of a ``kind`` record from its ``body_to_json`` form.

    Raises ValidationError (``field="kind"``) for an unknown kind, and
    DecodeError/ValidationError naming the ``body.*`` field for anything else.
    """
    body_type = BODY_TYPES.get(kind) if isinstance(kind, str) else None
    if body_type is None:
        raise ValidationError(f"unknown record kind {kind!r} (one of {', '.join(BODY_TYPES)})", field="kind", reason="kind")
    return body_type.from_array(_to_array(body_type, obj, "body"), "body")  # screens it (§5.3) too


def _to_array(cls: type, obj: Any, field: str) -> list:
    if not isinstance(obj, dict):
        raise DecodeError("expected an object", field=field, reason="type")
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    for name in obj:
        if name not in names:
            raise ValidationError(f"unknown field {name!r}", field=f"{field}.{name}", reason="unknown_field")
    out = []
    for f in fields:
        name = f.name
        if f.default is not dataclasses.MISSING and obj.get(name, f.default) in ([], ()):
            continue  # an optional trailing element, absent when empty (profile public_numbers)
        if name not in obj:
            raise DecodeError("missing", field=f"{field}.{name}", reason="missing_field")
        value = obj[name]
        nested = _NESTED.get(name)
        if nested is not None:
            if not isinstance(value, list):
                raise DecodeError("expected an array", field=f"{field}.{name}", reason="type")
            if len(value) > MAX_JSON_LIST:
                raise DecodeError(f"at most {MAX_JSON_LIST} elements allowed", field=f"{field}.{name}", reason="too_long")
            value = [_to_array(nested, item, f"{field}.{name}[{i}]") for i, item in enumerate(value)]
        out.append(value)
    return out
