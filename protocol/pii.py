"""Personal-data screening: the consensus rule of docs/PROTOCOL.md §5.3.

No record may carry customer personal data (DESIGN.md), and once on the
append-only ledger nothing can be erased. This module decides, exactly as §5.3
says and with nothing that varies between Python or Unicode versions, whether the
texts and identifiers of one record body may go on the ledger:

1. **fold** each field with the frozen tables of ``pii_tables``: combining marks
   dropped; every decimal digit, superscript, circled digit and Chinese numeral to
   an ASCII digit; look-alike letters and signs to ASCII; ASCII to lower case; o,
   l, i to 0, 1 inside digit tokens (``138OO138OOO``); ``%XX`` decoded in URLs;
2. **detect** e-mail addresses, plain and obfuscated (``[at]``, ``at``/``dot``
   words, ``#``, spaces, no TLD), identity documents by their structure and check
   digits (HKID, UK NINO, passports), IBANs (mod 97) and Chinese licence plates;
3. **classify every run of 8 or more digits** (digits joined by separators): a
   card (Luhn and IIN), a PRC resident id (ISO 7064) or a mobile number is
   refused; a date, time range, year range, grouped amount, amount with a
   currency, percentage, or a code glued to letters is allowed; more than 15
   digits is refused (no phone number is that long); anything else is a
   *phone-like number*, allowed only if the branch has declared it public
   (profile ``public_numbers``), which needs the ledger state: it is returned to
   the caller (schema.screen_body, ledger.py: §8);
4. the same on the fields **joined** (a number or address split across two
   fields): there, runs and addresses that cross a field boundary count.

What needs language or numbering-plan knowledge (English number words, names
next to birth dates, which numbers a country assigns to mobiles) is checked at
admission only, node/admission.py: a false negative there is still caught before
signing, and a library version cannot fork the chain.

:func:`screen` raises :class:`~protocol.errors.ValidationError` with ``field``
set to the field (``record.body.description``), ``reason`` ``pii_<kind>``, and a
message naming the kind and at most the first few characters ("looks like a
phone number (+86 138 …)"), never the whole value.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator, Sequence

from . import pii_tables as T
from .errors import ValidationError

REFUSED = re.compile("[" + T.char_class(T.REFUSED_RANGES) + "]")

KINDS = {
    "email": "an e-mail address", "national_id": "a PRC resident id number", "card_number": "a payment card number",
    "phone_number": "a phone number", "account_number": "an account number", "hk_id": "a Hong Kong id number",
    "uk_nino": "a UK National Insurance number", "passport": "a passport number", "iban": "an IBAN",
    "licence_plate": "a licence plate", "named_customer": "a customer's name with personal details",
}
_WHY = "; personal data may not be published"

# ---------------------------------------------------------------- folding (§5.3.3)

_CJK_NUMERALS = "".join(T.CJK_DIGITS)
_CJK_FOLD = re.compile(f"[{_CJK_NUMERALS}]{{2,}}|(?<=[0-9])[{_CJK_NUMERALS}](?=[0-9])")
_CJK_TABLE = str.maketrans(T.CJK_DIGITS)
_CJK_ANY = re.compile(f"[{_CJK_NUMERALS}]")
_CJK_DOT = re.compile("(?<=[a-z0-9])点(?=[a-z0-9])")
_NUMBER_WORD = "(?:" + "|".join(T.NUMBER_WORDS) + ")"
_WORD_RUN = re.compile(rf"(?<![a-z]){_NUMBER_WORD}(?:[ ,\-]+{_NUMBER_WORD}){{2,}}(?![a-z])")
_WORD_DIGITS = re.compile(_NUMBER_WORD)
_WORD_DIGIT = {w: str(i) for i, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))} | {"oh": "0"}
_OLI_TOKEN = re.compile(r"(?<![0-9a-z])(?=[0-9oli]*[0-9])(?=[0-9]*[oli])[0-9oli]+(?![0-9a-z])")
_OLI = str.maketrans("oli", "011")
_PERCENT_ESCAPE = re.compile(r"%([2-7][0-9a-fA-F])")


def fold(text: str) -> str:
    """The folded form of ``text`` that the detectors read (§5.3.3). Never raises."""
    return _fold(text)[0]


def _fold(text: str) -> tuple[str, str]:
    """The folded text and its character classes (below)."""
    if text.isascii():
        f = text.lower()
    else:
        f = text.translate(T.FOLD_TABLE)
        if _CJK_ANY.search(f):
            f = _CJK_FOLD.sub(lambda m: m.group().translate(_CJK_TABLE), f)
        if "艾特" in f:
            f = f.replace("艾特", "@")
        if "点" in f:
            f = _CJK_DOT.sub(".", f)
    if sum(map(f.count, T.NUMBER_WORDS)) >= 3:  # speed only: three words are needed
        f = _WORD_RUN.sub(lambda m: _WORD_DIGITS.sub(lambda w: _WORD_DIGIT[w.group()], m.group()), f)
    c = f.translate(_CLASS)
    if "do" in c or "od" in c:  # a token mixing digits and o/l/i
        f = _OLI_TOKEN.sub(lambda m: m.group().translate(_OLI), f)
        c = f.translate(_CLASS)
    return f, c


def _unescape_url(url: str) -> str:
    return _PERCENT_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), url) if "%" in url else url


# ---------------------------------------------------------------- speed only: character classes
# Each folded ASCII character gets a class: d digit, o one of o/l/i, s run separator,
# p "(", @ for "@" or "#", a space for anything else; other characters stay as they
# are. Every detector needs some pattern of classes or characters: once o/l/i in
# digit tokens are folded, a run of 8+ digits has 8+ d joined by s/p; a passport 7
# adjacent digits or a passport word, an HKID 6 and a check character, a NINO 6 and
# a letter or three separated pairs; an IBAN two letters then two digits; a named
# customer one of its words; an e-mail "@", "#", "dot", a bracketed "at", or "at"
# with a mail domain or a dotted name. Text without any of them holds no finding
# and skips the scans. These are necessary conditions only: the detectors decide.
_CLASS = str.maketrans({chr(c): ("d" if chr(c).isdigit() else "o" if chr(c) in "oliOLI" else "s" if chr(c) in " \t\n\x1f-/)._,"
                                 else "p" if chr(c) == "(" else "@" if chr(c) in "@#" else " ") for c in range(128)})
_LONG_RUN = re.compile(r"d[dsp]{6,}d")
_IBAN_HINTS = ("  dd", " odd", "o dd", "oodd")  # two letters (or other signs), two digits
_BRACKET_AT_HINT = re.compile(r"[\[({<][ \t\n\x1f]*at")
_MAIL_HINT = re.compile(r"at[ \t\n\x1f._\-]+(?:" + "|".join(map(re.escape, T.MAIL_DOMAINS)) + ")")
_DOTTED_AT_HINT = re.compile(r"[._][a-z0-9]+[ \t\n\x1f]+at[ \t\n\x1f]+[a-z0-9]")
_NINO_HALF_HINT = re.compile(r"[0-9]{6} [a-d](?![0-9a-z])")
_NAME_HINTS_ZH = T.CUSTOMER_WORDS_ZH[1:] + T.HONORIFICS_ZH
_PLATE_HINT = re.compile(f"[{T.PLATE_PROVINCES}][a-z]")


def _needs(f: str, c: str) -> tuple[bool, bool, bool]:
    """Which detectors can find anything in folded text ``f`` with classes ``c``:
    e-mail addresses, documents, digit runs."""
    emails = ("@" in c or "dot" in f or _BRACKET_AT_HINT.search(f) is not None or _MAIL_HINT.search(f) is not None
              or _DOTTED_AT_HINT.search(f) is not None)
    documents = ("dddddd" in c and ("ddddddd" in c or "ddddddp" in c or "dddddd " in c or "ddddddsp" in c
                                    or ("dddddds" in c and _NINO_HALF_HINT.search(f) is not None))
                 or "sddsddsdds" in c or any(h in c for h in _IBAN_HINTS) or any(w in f for w in T.PASSPORT_WORDS)
                 or any(w in f for w in T.BIRTH_OR_HOME_EN)
                 or (not f.isascii() and (_PLATE_HINT.search(f) is not None or any(w in f for w in _NAME_HINTS_ZH))))
    runs = c.count("d") >= 8 and _LONG_RUN.search(c) is not None
    return emails, documents, runs


# ---------------------------------------------------------------- e-mail addresses (§5.3.4)

_W = r"[ \t\n\x1f]"  # whitespace, and U+001F: the field boundary of the joined text
_SPACES = " \t\n\x1f"
_X = r"\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u1fff\u3040-\ud7ff\uf900-\ufdff\ufe70-\ufefe\U00010000-\U0001efff\U00020000-\U0003ffff"
_LOCAL = re.compile(rf"[a-z0-9._%+\-{_X}]")
_D = rf"[a-z0-9\-{_X}]"
_TLD = rf"(?:[a-z]{{2,}}|[{_X}]+)"
_DOT = rf"(?:{_W}*\.{_W}*|{_W}*[\[({{<]{_W}*dot{_W}*[\])}}>]{_W}*|{_W}+dot{_W}+)"
_SPACED_TLD = "(?:" + "|".join(T.SPACED_TLDS) + ")(?![a-z])"
_DOMAIN_CHARS = re.compile(f"{_D}+")  # E1
_AFTER_AT = re.compile(rf"{_W}*{_D}+(?:\.{_D}+)*\.{_TLD}")  # E2
_AFTER_AT_SPACED = re.compile(rf"{_W}*{_D}+(?:{_W}*\.{_W}*{_D}+)*{_W}*\.{_W}*{_SPACED_TLD}")  # E3
_AT_FORM = re.compile(rf"(?P<bracket>{_W}*[\[({{<]{_W}*at{_W}*[\])}}>]{_W}*)|{_W}+at{_W}+")  # E4, E5
_AFTER_BRACKET_AT = re.compile(rf"{_D}+(?:{_DOT}{_D}+)*{_DOT}{_TLD}")  # E4
_AFTER_WORD_AT = re.compile(rf"{_D}+(?:{_DOT}{_D}+)+")  # E5
_AFTER_HASH = re.compile(rf"{_D}+(?:\.{_D}+)*\.{_TLD}")  # E6
_SPELLED_DOT = re.compile(r"(?<![a-z])dot(?![a-z])|[\[({<]")
_PLAIN_DOMAIN = re.compile(rf"{_D}+(?:\.{_D}+)*\.[a-z]{{2,}}(?![a-z0-9\-])")
_LOCAL_ASCII = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._%+-")
_GLUED_AT = re.compile(r"(?<=[a-z0-9])[._\-]at[._\-](?:" + "|".join(map(re.escape, T.MAIL_DOMAINS)) + r")(?![a-z0-9])")  # E7
_MAIL_DOMAINS = frozenset(T.MAIL_DOMAINS)


def _emails(f: str) -> Iterator[tuple[int, int]]:
    """Spans of e-mail addresses in folded text (§5.3.4, E1-E6)."""
    i = f.find("@")
    while i >= 0:
        j = i - 1
        while j >= 0 and f[j] in _SPACES:
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
        for at in _AT_FORM.finditer(f):
            s, e = at.span()
            if s < 1 or not _LOCAL.match(f, s - 1):
                continue
            if at.group("bracket"):
                m = _AFTER_BRACKET_AT.match(f, e)
            else:
                m = _AFTER_WORD_AT.match(f, e)
                if m and not (_SPELLED_DOT.search(m.group()) or m.group() in _MAIL_DOMAINS):
                    m = _PLAIN_DOMAIN.match(f, e) if _dotted_local(f, s) else None  # E5b: "zhang.wei at example.com"
            if m:
                yield _local_start(f, s - 1), m.end()
    for m in _GLUED_AT.finditer(f):
        yield _local_start(f, m.start() - 1), m.end()


def _local_start(f: str, j: int) -> int:
    """Where the local part that ends at ``f[j]`` begins (for the message only)."""
    while j > 0 and _LOCAL.match(f, j - 1):
        j -= 1
    return j


def _dotted_local(f: str, end: int) -> bool:
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
_IBAN = re.compile(r"(?<![0-9a-z])[a-z]{2}[0-9]{2}(?: ?[0-9a-z]{4}){2,7}(?: ?[0-9a-z]{1,3})?(?![0-9a-z])")
_PASSPORT_WORD = re.compile("|".join(T.PASSPORT_WORDS))
_PASSPORT_AFTER_WORD = re.compile(r"[^0-9]{0,16}?(?<![0-9a-z])([a-z]{0,2}[0-9]{6,10})(?![0-9a-z])")
_SURNAME = f"[{T.SURNAMES}]"
_HAN = "[\u4e00-\u9fff]"
_CUSTOMER_ZH = re.compile(f"(?:{'|'.join(T.CUSTOMER_WORDS_ZH)})[:： ]{{0,2}}{_SURNAME}{_HAN}{{1,2}}")  # N1
_HONORIFIC_ZH = re.compile(f"{_SURNAME}{_HAN}?(?:{'|'.join(T.HONORIFICS_ZH)})")  # N2
_HONORIFIC_EN = re.compile(r"(?<![a-z])(?:mr|mrs|ms|miss|mx|dr)\.? [a-z]{2,}")  # N3
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


def _documents(f: str) -> Iterator[tuple[str, int, int]]:
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
    if any(w in f for w in T.BIRTH_OR_HOME_EN):
        m = _HONORIFIC_EN.search(f)
        if m:
            yield "named_customer", m.start(), m.end()
    for m in _IBAN.finditer(f):
        if iban_ok(m.group().replace(" ", "")):
            yield "iban", m.start(), m.end()
    if not f.isascii():
        for m in _PLATE.finditer(f):
            yield "licence_plate", m.start(), m.end()


# ---------------------------------------------------------------- digit runs (§5.3.5)

_SEP = r"(?:[._,]|[ \t\n\x1f\-/()]{1,3})"
_RUN = re.compile(rf"[0-9](?:[0-9]|{_SEP}(?=[0-9]))*")  # then extended left over "(" and "+"
_NON_DIGIT = re.compile(r"[^0-9]")
_MOBILE = re.compile(r"(?:86)?1[3-9][0-9]{9}|852[4-9][0-9]{7}|(?:44|0)7[0-9]{9}")
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
_AMOUNT_RUN = re.compile(rf"{_AMOUNT}(?: ?- ?{_AMOUNT})?")
_NUMBER = re.compile(_AMOUNT)
_CURRENCY_BEFORE = re.compile(
    "(?:(?<![a-z])(?:" + "|".join(T.CURRENCY_WORDS) + ")|" + "|".join(map(re.escape, T.CURRENCY_SIGNS)) + ") ?$")
_CURRENCY_AFTER = re.compile(
    " ?(?:(?:" + "|".join(T.CURRENCY_WORDS) + ")(?![a-z])|" + "|".join(map(re.escape, T.CURRENCY_SIGNS)) + ")")
_PERCENT_AFTER = re.compile(" ?(?:%|(?:bps?|percent)(?![a-z])|" + "|".join(T.PERCENT_MARKS[4:]) + ")")
_LETTER = re.compile(r"[a-z]")


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_iin(d: str) -> bool:
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
    if 13 <= n <= 19 and _card_iin(digits) and luhn(digits):
        return "card_number"
    if (n == 18 and prc_id_ok(digits)) or (n == 17 and f[end:end + 1] == "x" and prc_id_ok(digits + "x")):
        return "national_id"
    if _MOBILE.fullmatch(digits[2:] if digits.startswith("00") else digits):
        return "phone_number"
    run = f[start:end]
    if n <= 24 and _PARTITION.fullmatch(run):
        return ""
    label = _LABEL.match(run) if start >= 1 and _LETTER.match(f, start - 1) else None
    if label and n <= 26 and _PARTITION.fullmatch(run, label.end()):
        return ""
    if _AMOUNT_RUN.fullmatch(run) and (_CURRENCY_BEFORE.search(f, max(0, start - 8), start) or _CURRENCY_AFTER.match(f, end)):
        return ""
    if _NUMBER.fullmatch(run) and _PERCENT_AFTER.match(f, end):
        return ""
    if n > 15:
        return "account_number"
    code = f[start - 1:start] not in ("+", "(") and not any(c in run for c in _SPACES) and not (digits[0] == "0" and n >= 10)
    if code and _glued_to_letter(f, start, end):
        return ""
    return "defer"


def _runs(f: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, digits) of every run of 8 or more digits, from its first digit."""
    for m in _RUN.finditer(f):
        digits = _NON_DIGIT.sub("", m.group())
        if len(digits) >= 8:
            yield m.start(), m.end(), digits


# ---------------------------------------------------------------- the rule


def _findings(f: str, c: str, *, joined: bool = False, gated: bool = True) -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) of every finding in one folded text; kind "defer" marks a
    phone-like number. In the joined text only findings across a field boundary
    count, and only those refused whatever the state (phone-like numbers are not).
    ``gated``: skip the detectors that :func:`_needs` says cannot find anything."""
    emails, documents, runs = _needs(f, c) if gated else (True, True, True)
    if emails:
        for s, e in _emails(f):
            if not joined or "\x1f" in f[s:e]:
                yield "email", s, e
    if documents and not joined:
        yield from _documents(f)
    if runs:
        for s, e, digits in _runs(f):
            if joined and "\x1f" not in f[s:e]:
                continue
            kind = classify_run(f, s, e, digits)
            if kind and not (joined and kind == "defer"):
                while s and f[s - 1] in "+(":  # report the number as written: "+86 138 …"
                    s -= 1
                yield kind, s, e


def mask(kind: str, sample: str) -> str:
    """At most the first few characters of a finding: enough to find it, not to use it."""
    if kind == "email":
        local, _, domain = sample.replace(" ", "").partition("@")
        return f"{local[:1]}…@{domain[:1]}…" if domain else f"{sample[:2]}…"
    if kind in ("licence_plate", "named_customer"):
        return sample[:1] + "…"
    out, seen = [], 0
    for ch in sample.strip(_SPACES):
        if seen >= (5 if kind in ("phone_number", "account_number") else 4):
            break
        out.append(" " if ch in "\t\n\x1f" else ch)
        seen += ch.isdigit()
    return "".join(out).rstrip(" -./_,(") + " …"


def screen(fields: Sequence[tuple[str, str]], where: str, *, url_fields: frozenset[str] = frozenset()
           ) -> tuple[tuple[str, str], ...]:
    """Screen one body's ``(name, text)`` fields, in body order (§5.3).

    Raises ValidationError (``field`` = ``where.name``, or ``where`` for a finding
    across fields; reason ``pii_<kind>``) for the first finding refused whatever
    the state. Returns the phone-like numbers as ``(field, digits)``: each must be
    one of the branch's declared public numbers (§5.3.6), which only the caller knows.
    """
    if url_fields:
        fields = [(name, _unescape_url(text) if name in url_fields else text) for name, text in fields]
    if not any(_needs(*_fold("\x1f".join(t for _, t in fields)))):  # speed only: nothing in any field, nor across
        return ()
    return _screen(fields, where, gated=True)


def screen_all(fields: Sequence[tuple[str, str]], where: str) -> tuple[tuple[str, str], ...]:
    """:func:`screen` without any shortcut for text that cannot hold a finding (and
    without URL decoding): every detector on every field. For tests."""
    return _screen(fields, where, gated=False)


def _screen(fields: Sequence[tuple[str, str]], where: str, *, gated: bool) -> tuple[tuple[str, str], ...]:
    folded = [_fold(text) for _, text in fields]
    deferred = []
    for (name, _), (f, c) in zip(fields, folded):
        for kind, s, e in _findings(f, c, gated=gated):
            if kind != "defer":
                raise ValidationError(f"looks like {KINDS[kind]} ({mask(kind, f[s:e])}){_WHY}", field=f"{where}.{name}",
                                      reason=f"pii_{kind}")
            deferred.append((f"{where}.{name}", _NON_DIGIT.sub("", f[s:e])))
    if len(fields) > 1:
        j = "\x1f".join(f for f, _ in folded)
        for kind, s, e in _findings(j, "s".join(c for _, c in folded), joined=True, gated=gated):
            first = j.count("\x1f", 0, s)
            names = [fields[k][0] for k in range(first, first + j.count("\x1f", s, e) + 1)]
            raise ValidationError(f"across {' and '.join(names)}: looks like {KINDS[kind]} ({mask(kind, j[s:e])}){_WHY}",
                                  field=where, reason=f"pii_{kind}")
    return tuple(deferred)


# ---------------------------------------------------------------- declared public numbers (§5.3.6)


def number_key(number: str) -> str:
    """The digits of a phone number, as compared by :func:`is_declared`."""
    return _NON_DIGIT.sub("", number)


def is_declared(digits: str, declared: Iterable[str]) -> bool:
    """True when ``digits`` is one of the ``declared`` digit strings, written with or
    without its country code (1-3 digits) and leading zeros."""
    a = digits.lstrip("0")
    for p in declared:
        b = p.lstrip("0")
        long, short = (a, b) if len(a) >= len(b) else (b, a)
        if long == short or (len(short) >= 7 and len(long) - len(short) <= 3 and long.endswith(short)):
            return True
    return False


def is_mobile(number: str) -> bool:
    """True when ``number`` has the shape of a mobile number (§5.3.5), which is never public."""
    d = number_key(number)
    return bool(_MOBILE.fullmatch(d[2:] if d.startswith("00") else d))


def check_declared(numbers: Iterable[tuple[str, str]], declared: Iterable[str]) -> None:
    """Raise ValidationError (reason ``pii_phone_number``, naming the field) for the first
    phone-like number that is not among the ``declared`` digit strings."""
    declared = tuple(declared)
    for field, digits in numbers:
        if not is_declared(digits, declared):
            raise ValidationError(f"looks like a phone number ({mask('phone_number', digits)}) that the branch has not "
                                  f"declared public in its profile's public_numbers{_WHY}", field=field, reason="pii_phone_number")


def find_personal_data(text: str) -> str | None:
    """The kind of personal data in one text on its own, or None; a phone-like number
    counts ("phone_number"), as no number is declared here."""
    try:
        numbers = screen([("text", text)], "")
    except ValidationError as exc:
        return exc.reason[4:]
    return "phone_number" if numbers else None
