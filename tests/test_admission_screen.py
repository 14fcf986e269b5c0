"""Admission's screen remembers its verdict per body (node/admission.py ``_refusal``):
what it remembers must depend on everything the verdict does — the texts and their
field names, the publishing branch's declared numbers, and where the body is — and a
remembered refusal must raise as the first one did. And the join of a number split
between two fields that are not neighbours (admission's own rule, which the consensus
rule does not have) in either order."""

from __future__ import annotations

import dataclasses

import pytest

from node import admission
from node.admission import PersonalDataRefused
from protocol.errors import ValidationError
from protocol.schema import BranchProfile, Fee, OpeningHours, ServiceOffer, ServiceWithdraw

PROFILE = BranchProfile("Jianguomen Sub-branch", "No. 18 Jianguomen Inner Street, Beijing", "CN-BJ-110101", 39_904_000,
                        116_407_000, (OpeningHours(0, 540, 1020),), "+86 10 6512 0000", "https://bank.example/jgm")
OFFER = ServiceOffer("fx-1", "fx", "Foreign exchange", "Exchange at the counter", ("counter",), (OpeningHours(0, 540, 1020),),
                     (Fee("Commission", 500, "CNY", "per_transaction"),), 0, "own", "", ("wheelchair",), 0)
LANDLINE = dataclasses.replace(OFFER, title="Desk 010 6512 0000")  # the profile's declared number
# the same, joined by "~": only admission reads it as one number (the consensus rule sees
# three short runs), so only admission's remembered verdict can say whether it is declared
LANDLINE_TILDE = dataclasses.replace(OFFER, title="Desk 010~6512~0000")


@pytest.fixture(autouse=True)
def _forget():
    admission._refusal.cache_clear()
    yield
    admission._refusal.cache_clear()


def _verdict(body, profile, where="body"):
    try:
        admission.screen_body(body, profile=profile, where=where)
    except ValidationError as exc:
        return type(exc), exc.field, exc.reason, exc.message
    return None


@pytest.mark.parametrize("first", ["declared", "undeclared"])
def test_a_remembered_verdict_is_per_declared_numbers(first):
    undeclared = dataclasses.replace(PROFILE, contact_phone="+86 10 6512 9999")
    order = [PROFILE, undeclared] if first == "declared" else [undeclared, PROFILE]
    for body in (LANDLINE, LANDLINE_TILDE):
        verdicts = {p.contact_phone: _verdict(body, p) for p in order}
        assert verdicts[PROFILE.contact_phone] is None
        assert verdicts[undeclared.contact_phone][1:3] == ("body.title", "pii_phone_number")
        assert _verdict(body, None)[1:3] == ("body.title", "pii_phone_number")  # no profile: nothing declared
    assert _verdict(LANDLINE_TILDE, None)[0] is PersonalDataRefused  # admission's finding, not the consensus rule's


def test_a_remembered_refusal_names_the_field_where_it_is_and_raises_afresh():
    first = _verdict(LANDLINE_TILDE, None, where="body")
    assert first[0] is PersonalDataRefused and first[1:3] == ("body.title", "pii_phone_number")
    assert _verdict(LANDLINE_TILDE, None, where="body") == first
    assert _verdict(LANDLINE_TILDE, None, where="record.body")[1] == "record.body.title"
    errors = []
    for _ in range(2):
        with pytest.raises(PersonalDataRefused) as info:
            admission.screen_body(LANDLINE_TILDE, profile=None)
        errors.append(info.value)
    assert errors[0] is not errors[1] and str(errors[0]) == str(errors[1])


def test_the_same_texts_in_another_kind_of_body_are_named_as_its_fields():
    reason = LANDLINE.title
    assert _verdict(ServiceWithdraw("fx-1", reason), None)[1] == "body.reason"
    assert _verdict(LANDLINE, None)[1] == "body.title"
    assert _verdict(dataclasses.replace(OFFER, description=reason), None)[1] == "body.description"


def _with_label(title: str, label: str) -> ServiceOffer:
    return dataclasses.replace(OFFER, title=title, fees=(Fee(label, 500, "CNY", "per_transaction"),))


@pytest.mark.parametrize("title, label, across", [
    ("Help desk 138 1234", "5678 fee", ("title", "fees[0].label")),
    ("5678 desk", "Fee 138 1234", ("fees[0].label", "title")),
])
def test_a_number_split_between_fields_that_are_not_neighbours_is_refused(title, label, across):
    verdict = _verdict(_with_label(title, label), PROFILE)
    assert verdict is not None and verdict[0] is PersonalDataRefused, verdict
    assert verdict[1:3] == ("body", "pii_phone_number")
    assert verdict[3].startswith(f"across {across[0]} and {across[1]}: ")


@pytest.mark.parametrize("title, label", [
    ("Help desk 138 1234", "fee 5678"),  # the second piece is not at the join
    ("Help desk 138 1234 daily", "5678 fee"),  # nor the first
])
def test_pieces_not_at_a_join_are_not_joined(title, label):
    assert _verdict(_with_label(title, label), PROFILE) is None
