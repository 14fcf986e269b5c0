"""The detectors of the personal-data rule (docs/PROTOCOL.md §5.3.4, §5.3.5).

Each reads text already folded by :func:`protocol.pii.fold` (lower-case ASCII,
digits as ASCII digits; U+001F marks the boundary of two joined fields) and
yields spans; protocol/pii.py decides what a span means for the record. Pure
functions over frozen tables: the same text gives the same spans forever.

* :func:`emails`: e-mail addresses, plain and obfuscated (E1-E7);
* :func:`documents`: identity documents by structure and check digits (HKID, UK
  NINO, passports), IBANs, licence plates, messaging ids and named customers
  (keyword rules N1-N4);
* :func:`runs` and :func:`classify_run`: runs of 8+ digits and what they are.
"""

from __future__ import annotations

import re
from typing import Iterator

from . import pii_tables as T

SPACES = " \t\n\x1f"  # whitespace, and U+001F: the field boundary of the joined text
_W = r"[ \t\n\x1f]"  # SPACES as a character class
# ---------------------------------------------------------------- e-mail addresses (§5.3.4)

_X = r"\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u1fff\u3040-\ud7ff\uf900-\ufdff\ufe70-\ufefe\U00010000-\U0001efff\U00020000-\U0003ffff"
_LOCAL = re.compile(rf"[a-z0-9._%+\-{_X}]")
_D = rf"[a-z0-9\-{_X}]"
_TLD = rf"(?:[a-z]{{2,}}|[{_X}]+)"
_DOT = rf"(?:{_W}*\.{_W}*|{_W}*[\[({{<]{_W}*dot{_W}*[\])}}>]{_W}*|{_W}+dot{_W}+)"
_SPACED_TLD = "(?:" + "|".join(T.SPACED_TLDS) + ")(?![a-z])"
_DOMAIN_CHARS = re.compile(f"{_D}+")  # E1
_AFTER_AT = re.compile(rf"{_W}*{_D}+(?:\.{_D}+)*\.{_TLD}")  # E2
_AFTER_AT_SPACED = re.compile(rf"{_W}*{_D}+(?:{_W}*\.{_W}*{_D}+)*{_W}*\.{_W}*{_SPACED_TLD}")  # E3
_AT_WORD = re.compile(r"(?<![a-z0-9])at(?![a-z0-9])")  # E4, E5: then extended by hand (linear time)
_AFTER_BRACKET_AT = re.compile(rf"{_D}+(?:{_DOT}{_D}+)*{_DOT}{_TLD}")  # E4
_AFTER_WORD_AT = re.compile(rf"{_D}+(?:{_DOT}{_D}+)+")  # E5
_AFTER_HASH = re.compile(rf"{_D}+(?:\.{_D}+)*\.{_TLD}")  # E6
_SPELLED_DOT = re.compile(r"(?<![a-z])dot(?![a-z])|[\[({<]")
_PLAIN_DOMAIN = re.compile(rf"{_D}+(?:\.{_D}+)*\.[a-z]{{2,}}(?![a-z0-9\-])")
_LOCAL_ASCII = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._%+-")
_GLUED_AT = re.compile(r"(?<=[a-z0-9])[._\-]at[._\-](?:" + "|".join(map(re.escape, T.MAIL_DOMAINS)) + r")(?![a-z0-9])")  # E7
_MAIL_DOMAINS = frozenset(T.MAIL_DOMAINS)


def emails(f: str) -> Iterator[tuple[int, int]]:
    """Spans of e-mail addresses in folded text (§5.3.4, E1-E6)."""
    i = f.find("@")
    while i >= 0:
        j = i - 1
        while j >= 0 and f[j] in SPACES:
            j -= 1
        if j >= 0 and _LOCAL.match(f, j):
            m = _AFTER_AT.match(f, i + 1) or _AFTER_AT_SPACED.match(f, i + 1)
            if m is None and j == i - 1:
                m = _DOMAIN_CHARS.match(f, i + 1)  # E1: "@" between two address characters
            if m:
                yield _local_start(f, j), m.end()
        i = f.find("@", i + 1)
    i = f.find("#")
    while i >= 0:
        m = _AFTER_HASH.match(f, i + 1) if i >= 1 and _LOCAL.match(f, i - 1) else None
        if m:
            yield _local_start(f, i - 1), m.end()
        i = f.find("#", i + 1)
    if "at" in f:
        for at in _AT_WORD.finditer(f):
            span = at_form(f, at.start(), at.end())
            if span is None:
                continue
            s, e, bracket = span
            if s < 1 or not _LOCAL.match(f, s - 1):
                continue
            if bracket:
                m = _AFTER_BRACKET_AT.match(f, e)
            else:
                m = _AFTER_WORD_AT.match(f, e)
                if m and not (_SPELLED_DOT.search(m.group()) or m.group() in _MAIL_DOMAINS):
                    m = _PLAIN_DOMAIN.match(f, e) if dotted_local(f, s) else None  # E5b: "zhang.wei at example.com"
            if m:
                yield _local_start(f, s - 1), m.end()
    for m in _GLUED_AT.finditer(f):
        yield _local_start(f, m.start() - 1), m.end()


def at_form(f: str, p: int, q: int) -> tuple[int, int, bool] | None:
    """The "at" of an e-mail address at f[p:q]: (start, end, bracketed) of the form around
    it, "[at]" with optional whitespace inside and around, or " at " with whitespace on
    both sides; None if it is neither."""
    i, j = p, q
    while i > 0 and f[i - 1] in SPACES:
        i -= 1
    while j < len(f) and f[j] in SPACES:
        j += 1
    if i > 0 and f[i - 1] in "[({<" and j < len(f) and f[j] in "])}>":
        i, j = i - 1, j + 1
        while i > 0 and f[i - 1] in SPACES:
            i -= 1
        while j < len(f) and f[j] in SPACES:
            j += 1
        return i, j, True
    if i < p and j > q:
        return i, j, False
    return None


def _local_start(f: str, j: int) -> int:
    """Where the local part that ends at ``f[j]`` begins (for the message only)."""
    while j > 0 and _LOCAL.match(f, j - 1):
        j -= 1
    return j


def dotted_local(f: str, end: int) -> bool:
    """The address characters right before ``end`` hold a letter and a "." or "_"."""
    j = end
    while j > 0 and f[j - 1] in _LOCAL_ASCII:
        j -= 1
    local = f[j:end]
    return any(ch.isalpha() for ch in local) and ("." in local.strip(".") or "_" in local)


# ---------------------------------------------------------------- documents (§5.3.4)

_HKID = re.compile(r"(?<![0-9a-z])([a-z]{1,2}) ?([0-9]{6}) ?(?:\(([0-9a])\)|([0-9a])(?![0-9a-z]))")
_NINO = re.compile(r"(?<![0-9a-z])([a-ceghj-pr-tw-z][a-ceghj-npr-tw-z])(?:[0-9]{6}|( |-)[0-9]{2}\2[0-9]{2}\2[0-9]{2}\2| [0-9]{6} )"
                   r"[a-d](?![0-9a-z])")
_NINO_BAD_PREFIXES = frozenset({"bg", "gb", "nk", "kn", "tn", "nt", "zz"})
_PASSPORT = re.compile(r"(?<![0-9a-z])(?:[eg][0-9]{8}|e[a-hj-np-z][0-9]{7}|[hk][0-9]{8}|[hm][0-9]{10})(?![0-9a-z])")
_IBAN = re.compile(r"(?<![0-9a-z])[a-z]{2}[0-9]{2}(?:[ \-]?[0-9a-z]{4}){2,7}(?:[ \-]?[0-9a-z]{1,3})?(?![0-9a-z])")
_PASSPORT_WORD = re.compile(r"(?<![a-z])(?:passport|travel document)(?![a-z])|护照|旅行证件")
_BIRTH_OR_HOME_EN = re.compile(r"(?<![a-z])(?:" + "|".join(T.BIRTH_OR_HOME_EN) + r")(?![a-z])")
_PASSPORT_AFTER_WORD = re.compile(r"[^0-9]{0,16}?(?<![0-9a-z])([a-z]{0,2}[0-9]{6,10})(?![0-9a-z])")
_SURNAME = f"[{T.SURNAMES}]"
_HAN = "[\u4e00-\u9fff]"
_CUSTOMER_ZH = re.compile(f"(?:{'|'.join(T.CUSTOMER_WORDS_ZH)})[:： ]{{0,2}}{_SURNAME}{_HAN}{{1,2}}")  # N1
_HONORIFIC_ZH = re.compile(f"{_SURNAME}{_HAN}?(?:{'|'.join(T.HONORIFICS_ZH)})")  # N2
_HONORIFIC_EN = re.compile(r"(?<![a-z])(?:mr|mrs|ms|miss|mx|dr)\.? [a-z]{2,}")  # N3
_CUSTOMER_EN = re.compile(r"(?<![a-z])(?:customer|client|cardholder|account holder|depositor)\.? ([a-z]{2,}) ([a-z]{2,})(?![a-z])")
_NOT_NAMES_EN = frozenset(T.NOT_NAMES_EN)
_NAME_ZH = re.compile(f"(?:^|[，,。；;：: ]){_SURNAME}{_HAN}{{1,2}}[，, ]")  # N4
_VEHICLE = re.compile("(?<![a-z])(?:" + "|".join(T.VEHICLE_WORDS[:5]) + r")(?![a-z])|" + "|".join(T.VEHICLE_WORDS[5:]))
_PLATE_UK_HK = re.compile(r"(?<![0-9a-z])(?:[a-z]{2}[0-9]{2} ?[a-z]{3}|[a-z]{2} ?[0-9]{1,4})(?![0-9a-z])")
_MESSAGING = re.compile(r"(?:(?<![a-z])(?:wechat|weixin|whatsapp|telegram|skype|line id)|微信号|微信)(?: id)?[ :：号]{0,4}"
                        r"([a-z][a-z0-9_\-]{3,})")
_PLATE = re.compile(rf"[{T.PLATE_PROVINCES}][a-z][ .\-]?(?=[a-z]*[0-9])[a-z0-9]{{5,6}}(?![a-z0-9])")


def hkid_ok(letters: str, digits: str, check: str) -> bool:
    """HKID check digit: weights 9..2 over (space=36 or letter) letter digits, mod 11."""
    values = [36 if len(letters) == 1 else ord(letters[0]) - 87, ord(letters[-1]) - 87] + [int(c) for c in digits]
    total = sum(w * v for w, v in zip((9, 8, 7, 6, 5, 4, 3, 2), values))
    return "0123456789a"[(11 - total % 11) % 11] == check


def iban_ok(compact: str) -> bool:
    """ISO 13616 check: the first four characters moved to the end, letters as 10..35, mod 97 == 1."""
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def documents(f: str) -> Iterator[tuple[str, int, int]]:
    for m in _HKID.finditer(f):
        if hkid_ok(m.group(1), m.group(2), m.group(3) or m.group(4)):
            yield "hk_id", m.start(), m.end()
    for m in _NINO.finditer(f):
        if m.group(1) not in _NINO_BAD_PREFIXES:
            yield "uk_nino", m.start(), m.end()
    for m in _PASSPORT.finditer(f):
        yield "passport", m.start(), m.end()
    for w in _PASSPORT_WORD.finditer(f):
        m = _PASSPORT_AFTER_WORD.match(f, w.end())
        if m:
            yield "passport", m.start(1), m.end(1)
    if not f.isascii():
        m = _CUSTOMER_ZH.search(f)
        if m is None and any(w in f for w in T.BIRTH_OR_HOME_ZH):
            m = _HONORIFIC_ZH.search(f)
        if m:
            yield "named_customer", m.start(), m.end()
    if _BIRTH_OR_HOME_EN.search(f):
        m = _HONORIFIC_EN.search(f)
        if m is None:
            m = next((c for c in _CUSTOMER_EN.finditer(f) if not {c.group(1), c.group(2)} & _NOT_NAMES_EN), None)
        if m:
            yield "named_customer", m.start(), m.end()
    if not f.isascii() and any(w in f for w in T.BIRTH_OR_HOME_ZH):
        m = _NAME_ZH.search(f)
        if m:
            yield "named_customer", m.start(), m.end()
    if _VEHICLE.search(f):
        for m in _PLATE_UK_HK.finditer(f):
            yield "licence_plate", m.start(), m.end()
    for m in _MESSAGING.finditer(f):
        if "_" in m.group(1) or any(ch.isdigit() for ch in m.group(1)):
            yield "messaging_id", m.start(), m.end()
    for m in _IBAN.finditer(f):
        if iban_ok(m.group().replace(" ", "").replace("-", "")):
            yield "iban", m.start(), m.end()
    if not f.isascii():
        for m in _PLATE.finditer(f):
            yield "licence_plate", m.start(), m.end()


# ---------------------------------------------------------------- digit runs (§5.3.5)

_SEP = r"(?:[._,]|[ \t\n\x1f\-/()\[\]]{1,3})"
RUN = re.compile(rf"[0-9](?:[0-9]|{_SEP}(?=[0-9]))*")  # then extended left over "(" and "+"
NON_DIGIT = re.compile(r"[^0-9]")
MOBILE = re.compile(r"(?:86)?1[3-9][0-9]{9}|852[4-9][0-9]{7}|(?:44|0)7[0-9]{9}")
_Y, _M, _D2 = r"(?:19|20)[0-9]{2}", r"(?:0?[1-9]|1[0-2])", r"(?:0?[1-9]|[12][0-9]|3[01])"
_ITEM = "|".join((
    *(f"{_Y}{s}{_M}{s}{_D2}" for s in (r"\-", "/", r"\.")),  # 2026-01-31
    *(f"{_D2}{s}{_D2}{s}{_Y}" for s in (r"\-", "/", r"\.")),  # 31.01.2026, 01/31/2026
    rf"{_Y}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])",  # 20260131
    rf"{_Y}(?:-[0-9]{{1,6}})+", rf"{_Y}[/.]{_M}", rf"{_Y}(?:0[1-9]|1[0-2])", _Y,  # 2026-0042-07, 2026/01, 202601, 2026
    r"(?:[01]?[0-9]|2[0-4])\.[0-5][0-9]", r"(?:[01][0-9]|2[0-4])[0-5][0-9]",  # 9.00, 0900
    r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]{1,4})?",  # 1,000,000.00
))
_PARTITION = re.compile(rf"(?:{_ITEM})(?:{_SEP}(?:{_ITEM}))*")
_LABEL = re.compile(r"[0-9]{1,2}[ \t\n\x1f]{1,3}")  # "Q1 2026-...": a short label glued to a letter
_AMOUNT = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,12})(?:\.[0-9]{1,4})?"
AMOUNT_RUN = re.compile(rf"{_AMOUNT}(?: ?- ?{_AMOUNT})?")
_NUMBER = re.compile(_AMOUNT)
CURRENCY_BEFORE = re.compile(
    "(?:(?<![a-z])(?:" + "|".join(T.CURRENCY_WORDS) + ")|" + "|".join(map(re.escape, T.CURRENCY_SIGNS)) + ") ?$")
CURRENCY_AFTER = re.compile(
    " ?(?:(?:" + "|".join(T.CURRENCY_WORDS) + ")(?![a-z])|" + "|".join(map(re.escape, T.CURRENCY_SIGNS)) + ")")
PERCENT_AFTER = re.compile(" ?(?:%|(?:bps?|percent)(?![a-z])|" + "|".join(T.PERCENT_MARKS[4:]) + ")")
_LETTER = re.compile(r"[a-z]")


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_iin(d: str) -> bool:
    return d[0] in "3456" or "2221" <= d[:4] <= "2720" or d[:2] == "81" or d[0] == "9"


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_SHAPE = re.compile(r"[0-9]{6}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9x]")


def prc_id_ok(id18: str) -> bool:
    """18 characters (17 digits, then a digit or x): a birth date and the ISO 7064 MOD 11-2 check."""
    if not _ID_SHAPE.fullmatch(id18):
        return False
    total = sum(w * (ord(c) - 48) for w, c in zip(_ID_WEIGHTS, id18))
    return "10x98765432"[total % 11] == id18[17]


def _glued_to_letter(f: str, start: int, end: int) -> bool:
    """A letter right before or after, directly or across one of - _ / ."""
    before = start >= 1 and (_LETTER.match(f, start - 1) or (f[start - 1] in "-_/." and start >= 2 and _LETTER.match(f, start - 2)))
    after = end < len(f) and (_LETTER.match(f, end) or (f[end] in "-_/." and _LETTER.match(f, end + 1)))
    return bool(before or after)


def classify_run(f: str, start: int, end: int, digits: str) -> str:
    """§5.3.5 for the run ``f[start:end]`` (from its first digit) of 8+ ``digits``: ""
    (allowed), "defer" (phone-like: must be declared), or the kind of a refused run."""
    n = len(digits)
    if 13 <= n <= 19 and card_iin(digits) and luhn(digits):
        return "card_number"
    if (n == 18 and prc_id_ok(digits)) or (n == 17 and f[end:end + 1] == "x" and prc_id_ok(digits + "x")):
        return "national_id"
    if MOBILE.fullmatch(digits[2:] if digits.startswith("00") else digits):
        return "phone_number"
    run = f[start:end]
    if n <= 24 and _PARTITION.fullmatch(run):
        return ""
    label = _LABEL.match(run) if start >= 1 and _LETTER.match(f, start - 1) else None
    if label and n <= 26 and _PARTITION.fullmatch(run, label.end()):
        return ""
    if AMOUNT_RUN.fullmatch(run) and (CURRENCY_BEFORE.search(f, max(0, start - 8), start) or CURRENCY_AFTER.match(f, end)):
        return ""
    if _NUMBER.fullmatch(run) and PERCENT_AFTER.match(f, end):
        return ""
    if n > 15:
        return "account_number"
    code = f[start - 1:start] not in ("+", "(") and not any(c in run for c in SPACES) and not (digits[0] == "0" and n >= 10)
    if code and _glued_to_letter(f, start, end):
        return ""
    return "defer"


def runs(f: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, digits) of every run of 8 or more digits, from its first digit."""
    for m in RUN.finditer(f):
        digits = NON_DIGIT.sub("", m.group())
        if len(digits) >= 8:
            yield m.start(), m.end(), digits
