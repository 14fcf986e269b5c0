"""body_from_json is the exact inverse of body_to_json and names the bad field; body_to_json
gives what the plain dataclass walk gives (its per-class field cache changes nothing)."""

import dataclasses
import json

import pytest

from protocol.errors import DecodeError, ProtocolError, ValidationError
from protocol.governance import Action, GovProposal, GovVote, KeyRotation
from protocol.views import action_to_json, body_from_json, body_to_json

import factories as f


@pytest.mark.parametrize("body", f.sample_bodies() + [f.status(equipment=()), f.profile(hours=(), contact_phone="", contact_url="")],
                         ids=lambda b: type(b).__name__)
def test_round_trip(body):
    doc = json.loads(json.dumps(body_to_json(body)))  # through real JSON: tuples become lists
    assert body_from_json(body.KIND, doc) == body


def _walk(body):
    """body_to_json as it was before the field cache: dataclasses.fields() at every value."""
    if isinstance(body, Action):
        return action_to_json(body)
    if dataclasses.is_dataclass(body):
        return {fd.name: _walk(v) for fd in dataclasses.fields(body)
                if (v := getattr(body, fd.name)) is not None or fd.default is not None}
    if isinstance(body, (tuple, list)):
        return [_walk(x) for x in body]
    if isinstance(body, bytes):
        return body.hex()
    return body


EVERY_BODY = f.sample_bodies() + [
    f.status(equipment=()), f.profile(hours=(), contact_phone="", contact_url=""), f.profile(public_numbers=("95588",)),
    f.offer("loan-a", "loan", terms=f.loan_terms()), f.offer("dep-a", "deposit", terms=f.deposit_terms()),
    f.offer("fund-b", "investment", terms=f.investment_terms()), f.quality(), f.quality(resolution_median_hours=-1,
                                                                                       resolution_p90_hours=-1),
    GovProposal("m0", Action("set_power", branch_id=bytes(20), power=10), 50), GovVote(bytes(32), False),
    KeyRotation(bytes(32)),
]


@pytest.mark.parametrize("body", EVERY_BODY, ids=lambda b: type(b).__name__)
def test_json_is_the_plain_walk_in_the_same_key_order(body):
    for _ in range(2):  # the first call fills the cache, the second reads it
        assert json.dumps(body_to_json(body)) == json.dumps(_walk(body))


def _offer_json(**changes):
    doc = body_to_json(f.offer())
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    "kind, doc, field, reason",
    [
        ("nope", {}, "kind", "kind"),
        (None, {}, "kind", "kind"),
        ("service.offer", [], "body", "type"),
        ("service.offer", {k: v for k, v in _offer_json().items() if k != "title"}, "body.title", "missing_field"),
        ("service.offer", _offer_json(extra=1), "body.extra", "unknown_field"),
        ("service.offer", _offer_json(title=""), "body.title", "length"),
        ("service.offer", _offer_json(risk_level=1.0), "body.risk_level", "type"),
        ("service.offer", _offer_json(risk_level=True), "body.risk_level", "type"),
        ("service.offer", _offer_json(category="casino"), "body.category", "enum"),
        ("service.offer", _offer_json(channels=["online", "counter"]), "body.channels", "order"),
        ("service.offer", _offer_json(fees={}), "body.fees", "type"),
        ("service.offer", _offer_json(fees=[{"label": "x", "amount_minor": 1, "currency": "cny", "basis": "one_time"}]),
         "body.fees[0].currency", "format"),
        ("service.offer", _offer_json(fees=[{"label": "x", "amount_minor": 1, "currency": "CNY"}]), "body.fees[0].basis", "missing_field"),
        ("service.offer", _offer_json(hours=[{"day": 0, "open_minute": 600, "close_minute": 500}]), "body.hours[0]", "hours"),
        ("service.offer", _offer_json(hours=[{"day": 0, "open_minute": 1, "close_minute": 2}] * 65), "body.hours", "too_long"),
        ("service.offer", _offer_json(description="call 13812345678"), "body.description", "pii_phone_number"),
        ("service.status", {"service_id": "x", "status": "open", "wait_minutes": 1, "equipment": [{"equipment_id": "a", "up": 1}]},
         "body.equipment[0].up", "type"),
        ("service.withdraw", {"service_id": "Bad Id", "reason": ""}, "body.service_id", "format"),
    ],
)
def test_bad_json_names_field(kind, doc, field, reason):
    with pytest.raises(ProtocolError) as info:
        body_from_json(kind, doc)
    assert isinstance(info.value, (DecodeError, ValidationError))
    assert (info.value.field, info.value.reason) == (field, reason)
