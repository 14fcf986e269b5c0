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
from .governance import Action, GovProposal, GovVote, KeyRotation
from .quality import ComplaintCount
from .schema import BODY_TYPES, Body, EquipmentStatus, Fee, OpeningHours
from .terms import DepositRate, DepositTerms, InvestmentTerms, LoanTerms, OfferTerms

# Fields of body dataclasses that hold a list of nested objects.
_NESTED = {"hours": OpeningHours, "fees": Fee, "equipment": EquipmentStatus, "complaints": ComplaintCount,
           "rates": DepositRate}
# Fields that hold one nested object (offer terms, §5.6.1); absent/null for an absent optional element.
_NESTED_OBJECT = {"terms": OfferTerms, "loan": LoanTerms, "deposit": DepositTerms, "investment": InvestmentTerms}
MAX_JSON_LIST = 64  # a cap before the schema's own, tighter limits apply


_PLAIN = frozenset((int, str, bool, type(None)))
# dataclass -> ((field name, whether None is left out), ...): dataclasses.fields() is slow, and
# an API answer converts thousands of bodies (PERFORMANCE.md, "Quality disclosures indexed")
_FIELDS: dict[type, tuple[tuple[str, bool], ...]] = {}


def body_to_json(body: Any) -> Any:
    cls = type(body)
    if cls in _PLAIN:
        return body
    fields = _FIELDS.get(cls)
    if fields is not None:  # optional elements that are absent (None) are left out
        return {name: body_to_json(v) for name, optional in fields
                if (v := getattr(body, name)) is not None or not optional}
    if isinstance(body, (tuple, list)):
        return [body_to_json(x) for x in body]
    if isinstance(body, bytes):
        return body.hex()
    if isinstance(body, Action):
        return action_to_json(body)
    if dataclasses.is_dataclass(body) and not isinstance(body, type):
        _FIELDS[cls] = tuple((f.name, f.default is None) for f in dataclasses.fields(body))
        return body_to_json(body)
    return body


def body_from_json(kind: Any, obj: Any) -> Body:
    """Build the body of a ``kind`` record from its ``body_to_json`` form.

    Raises ValidationError (``field="kind"``) for an unknown kind, and
    DecodeError/ValidationError naming the ``body.*`` field for anything else.
    """
    body_type = BODY_TYPES.get(kind) if isinstance(kind, str) else None
    if body_type is None:
        raise ValidationError(f"unknown record kind {kind!r} (one of {', '.join(BODY_TYPES)})", field="kind", reason="kind")
    if body_type in _GOV_FROM_JSON:
        return body_type.from_array(_GOV_FROM_JSON[body_type](_fields(obj, _GOV_FIELDS[body_type], "body")), "body")
    return body_type.from_array(_to_array(body_type, obj, "body"), "body")  # screens it (§5.3) too


# ------------------------------------------------------------------ governance bodies (§15)

# The JSON fields of each action kind, in the order of its array form after the kind.
ACTION_FIELDS = {
    "admit_member": ("name", "public_key"),
    "retire_member": ("branch_id",),
    "set_power": ("branch_id", "power"),
    "rotate_key": ("branch_id", "public_key"),
    "set_param": ("name", "value"),
}
_HEX_FIELDS = {"branch_id", "public_key", "proposal"}
_GOV_FIELDS = {GovProposal: ("name", "action", "expires_height"), GovVote: ("proposal", "yes"), KeyRotation: ("public_key",)}


def action_to_json(action: Action) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": action.kind}
    for name in ACTION_FIELDS.get(action.kind, ()):
        value = getattr(action, name)
        out[name] = value.hex() if isinstance(value, bytes) else value
    return out


def _fields(obj: Any, names: tuple[str, ...], field: str) -> list:
    """The values of exactly ``names`` from a JSON object, hex fields as bytes."""
    if not isinstance(obj, dict):
        raise DecodeError("expected an object", field=field, reason="type")
    for name in obj:
        if name not in names:
            raise ValidationError(f"unknown field {name!r}", field=f"{field}.{name}", reason="unknown_field")
    out = []
    for name in names:
        if name not in obj:
            raise DecodeError("missing", field=f"{field}.{name}", reason="missing_field")
        value = obj[name]
        if name in _HEX_FIELDS:
            try:
                value = bytes.fromhex(value) if isinstance(value, str) and len(value) <= 128 else None
            except ValueError:
                value = None
            if value is None:
                raise DecodeError("expected hex", field=f"{field}.{name}", reason="hex")
        out.append(value)
    return out


def _action_array(obj: Any) -> list:
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if kind not in ACTION_FIELDS:
        raise ValidationError(f"must be one of {', '.join(ACTION_FIELDS)}", field="body.action.kind", reason="action")
    return [kind, *_fields({k: v for k, v in obj.items() if k != "kind"}, ACTION_FIELDS[kind], "body.action")]


_GOV_FROM_JSON = {
    GovProposal: lambda values: [values[0], _action_array(values[1]), values[2]],
    GovVote: lambda values: values,
    KeyRotation: lambda values: values,
}


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
        if f.default is not dataclasses.MISSING and obj.get(name, f.default) in ([], (), None):
            continue  # an optional element, absent when empty (profile public_numbers, offer terms)
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
        elif name in _NESTED_OBJECT:
            value = _to_array(_NESTED_OBJECT[name], value, f"{field}.{name}")
        out.append(value)
    return out
