"""Screening a record body for personal data (docs/PROTOCOL.md §5.3): the consensus rule,
on every body type (schema.py's, quality.py's, governance.py's), with nothing from them
but what each body offers: ``screened_text()`` (its screened fields joined, for the fast
pre-screen), ``screened_fields()``, ``URL_FIELDS`` (fields screened as URLs; none unless
a body says so) and, for a body that declares its own public numbers (a branch profile),
``declared_numbers()``. The detectors are protocol/pii.py's. :class:`ScreenedBody` is
what the body types share: ``from_array`` = parse (``_parse``) + this screen.
"""

from __future__ import annotations

from typing import Any

from . import pii


def plain(text: str) -> bool:
    """Speed only: True when the screened text of a body provably holds no personal data."""
    return text.isascii() and pii.plain_ascii(text)


def screen_body(body: Any, where: str) -> tuple[tuple[str, str], ...]:
    """Screen ``body`` for personal data (§5.3). Raises ValidationError naming the field.

    Returns the phone-like numbers its fields mention, ``(field, digits)``, that the
    branch's declared public numbers must cover (§8). A profile declares its own, so
    for a profile they are checked here and nothing is returned.
    """
    if plain(body.screened_text()):  # speed only: the usual case, nothing to find
        return ()
    numbers = pii.screen(body.screened_fields(), where, url_fields=getattr(body, "URL_FIELDS", frozenset()))
    declared = getattr(body, "declared_numbers", None)
    if numbers and declared is not None:
        pii.check_declared(numbers, declared())
        return ()
    return numbers


class ScreenedBody:
    """What a record body type shares (schema.py's, governance.py's): ``from_array`` =
    parse (``_parse``) + screen."""

    __slots__ = ()

    @classmethod
    def from_array(cls, value: Any, field: str = "body", *, screen: bool = True) -> Any:
        """Parse and check a body array (§5.5-5.8) and, unless ``screen`` is False, screen
        it for personal data (§5.3; phone-like numbers, which need the ledger state,
        are not checked here). Raises DecodeError or ValidationError naming the field."""
        body = cls._parse(value, field)
        if screen:
            screen_body(body, field)
        return body
