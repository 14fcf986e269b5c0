"""Personal-data screening: the consensus rule of docs/PROTOCOL.md §5.3.

No record may carry customer personal data (DESIGN.md), and once on the
append-only ledger nothing can be erased. This module decides, exactly as §5.3
says and with nothing that varies between Python or Unicode versions, whether the
texts and identifiers of one record body may go on the ledger:

1. **fold** each field with the frozen tables of ``pii_tables``: combining marks
   dropped; every decimal digit, superscript and circled digit to an ASCII digit,
   Chinese numerals and spelled digits ("one three eight") in sequences too;
   look-alike letters and signs to ASCII; ASCII to lower case; o, l, i to 0, 1
   inside digit tokens (``138OO138OOO``); ``%XX`` decoded in URLs;
2. **detect** (protocol/pii_detect.py) e-mail addresses, plain and obfuscated
   (``[at]``, ``at``/``dot`` words, ``#``, spaces, no TLD), identity documents by
   their structure and check digits (HKID, UK NINO, passports), IBANs (mod 97),
   licence plates, messaging ids, and customers named next to a birth date or a
   home, by fixed keyword lists;
3. **classify every run of 8 or more digits** (digits joined by separators): a
   card (Luhn and IIN), a PRC resident id (ISO 7064) or a mobile number is
   refused; a date, time range, year range, grouped amount, amount with a
   currency, percentage, or a code glued to letters is allowed; more than 15
   digits is refused (no phone number is that long); anything else is a
   *phone-like number*, allowed only if the branch has declared it public
   (profile ``public_numbers``), which needs the ledger state: it is returned to
   the caller (screening.screen_body, ledger.py: §8);
4. the same on the fields **joined** (a number or address split across two
   fields): there, runs and addresses that cross a field boundary count.

What needs numbering-plan knowledge, the runtime's Unicode tables or heuristics
that are too uncertain to freeze (which numbers a country assigns to mobiles, a
7-digit number after "call", a name by its capitals) is checked at admission
only, node/admission.py: a false negative there is still caught before signing,
and a library version cannot fork the chain.

:func:`screen` raises :class:`~protocol.errors.ValidationError` with ``field``
set to the field (``record.body.description``), ``reason`` ``pii_<kind>``, and a
message naming the kind and at most the first few characters ("looks like a
phone number (+86 138 …)"), never the whole value.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator, Sequence

from . import pii_detect as D, pii_tables as T
from .errors import ValidationError
from .pii_detect import NON_DIGIT, SPACES, classify_run, dotted_local

REFUSED = re.compile("[" + T.char_class(T.REFUSED_RANGES) + "]")

KINDS = {
    "email": "an e-mail address", "national_id": "a PRC resident id number", "card_number": "a payment card number",
    "phone_number": "a phone number", "account_number": "an account number", "hk_id": "a Hong Kong id number",
    "uk_nino": "a UK National Insurance number", "passport": "a passport number", "iban": "an IBAN",
    "licence_plate": "a licence plate", "named_customer": "a customer's name with personal details",
    "messaging_id": "a messaging account id",
}
_WHY = "; personal data may not be published"

# ---------------------------------------------------------------- folding (§5.3.3)

_CJK_NUMERALS = "".join(T.CJK_DIGITS)
_CJK_FOLD = re.compile(f"[{_CJK_NUMERALS}]{{2,}}|(?<=[0-9])[{_CJK_NUMERALS}](?=[0-9])")
_CJK_TABLE = str.maketrans(T.CJK_DIGITS)
_CJK_ANY = re.compile(f"[{_CJK_NUMERALS}]")
_AT_WORD = ("艾特", "@")  # "zhang艾特qq.com"
_DOT_WORD = ("点", ".")  # "qq点com": only between a-z0-9 on both sides (_piiplain.c mirrors the rule)
_CJK_DOT = re.compile(f"(?<=[a-z0-9]){_DOT_WORD[0]}(?=[a-z0-9])")
_NUMBER_WORD = "(?:" + "|".join(T.NUMBER_WORDS) + ")"
_NUMBER_TOKEN = rf"(?:(?:double|triple)[ \-]+{_NUMBER_WORD}|{_NUMBER_WORD}|[0-9]+)"
_WORD_RUN = re.compile(rf"(?<![a-z0-9]){_NUMBER_TOKEN}(?:[ ,\-]+{_NUMBER_TOKEN}){{2,}}(?![a-z0-9])")
_WORD_TOKEN = re.compile(rf"(double|triple)[ \-]+({_NUMBER_WORD})|({_NUMBER_WORD})|([0-9]+)")
_WORD_DIGIT = {w: str(i) for i, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))} | {"oh": "0"}
_NUMBER_WORDS = frozenset(T.NUMBER_WORDS)
_GLUED_AT_CAPS = re.compile(r"(?<=[a-z0-9])AT(?=[a-z0-9])")
_GLUED_DOT_CAPS = re.compile(r"(?<=[a-z0-9])DOT(?=[a-z])")


def _spelled(m: re.Match) -> str:
    """A run of digit words and digit groups (two words at least) as its digits, joined."""
    tokens = _WORD_TOKEN.findall(m.group())
    if sum(1 for rep, word, single, digits in tokens if not digits) < 2:
        return m.group()
    return "".join(_WORD_DIGIT[word] * (2 if rep == "double" else 3) if rep else _WORD_DIGIT[single] if single else digits
                   for rep, word, single, digits in tokens)


_OLI_TOKEN = re.compile(r"(?<![0-9a-z])(?=[0-9oli]*[0-9])(?=[0-9]*[oli])[0-9oli]+(?![0-9a-z])")
_OLI = str.maketrans("oli", "011")
_PERCENT_ESCAPE = re.compile(r"%([2-7][0-9a-fA-F])")


def fold(text: str) -> str:
    """The folded form of ``text`` that the detectors read (§5.3.3). Never raises."""
    return _fold(text)[0]


def _fold(text: str) -> tuple[str, str, list[str]]:
    """The folded text, its character classes and its words (below). The words are
    those before digit words and digit tokens are folded: a superset of the keywords."""
    if "AT" in text or "DOT" in text:  # "zhangweiATqqDOTcom"
        text = _GLUED_DOT_CAPS.sub(".", _GLUED_AT_CAPS.sub("@", text))
    f = text.lower() if text.isascii() else fold_non_ascii(text)
    words = letter_words(f)
    if not _NUMBER_WORDS.isdisjoint(words):  # speed only: a spelled number needs a digit word
        f = _WORD_RUN.sub(_spelled, f)
    c = classes(f)
    if "do" in c or "od" in c:  # a token mixing digits and o/l/i
        f = _OLI_TOKEN.sub(lambda m: m.group().translate(_OLI), f)
        c = classes(f)
    return f, c, words


def _fold_non_ascii_py(text: str) -> str:
    """The folding of text that is not all ASCII, before digit words: FOLD_TABLE, then
    Chinese numerals, "艾特" and "点" (§5.3.3)."""
    f = text.translate(T.FOLD_TABLE)
    if _CJK_ANY.search(f):
        f = _CJK_FOLD.sub(lambda m: m.group().translate(_CJK_TABLE), f)
    if _AT_WORD[0] in f:
        f = f.replace(*_AT_WORD)
    if _DOT_WORD[0] in f:
        f = _CJK_DOT.sub(_DOT_WORD[1], f)
    return f


def unescape_url(url: str) -> str:
    """``url`` with every ``%XX`` (XX from 20 to 7F) replaced by its character (§5.3.1)."""
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
_CLASS = str.maketrans({chr(c): ("d" if chr(c).isdigit() else "o" if chr(c) in "oliOLI" else "s" if chr(c) in " \t\n\x1f-/)._,[]"
                                 else "p" if chr(c) == "(" else "@" if chr(c) in "@#" else " ") for c in range(128)})
_CLASS_UTF8 = bytes(ord(_CLASS[c]) if c < 128 else c for c in range(256))  # the same on UTF-8 bytes (below)
_LONG_RUN = re.compile(r"d[dsp]{6,}d")
_IBAN_HINTS = ("  dd", " odd", "o dd", "oodd")  # two letters (or other signs), two digits
_NON_LETTERS = str.maketrans({chr(c): " " for c in range(128) if not "a" <= chr(c) <= "z"})
_NON_LETTERS_UTF8 = bytes(c if c >= 128 or 97 <= c <= 122 else 32 for c in range(256))


def _ascii_translate(text: str, utf8_table: bytes, table: dict[int, str]) -> str:
    """``text.translate(table)`` for a ``table`` that maps ASCII characters to ASCII
    characters and nothing else, computed on the UTF-8 bytes with ``utf8_table`` (the
    same map, bytes 128-255 to themselves). Exact: UTF-8 writes every other character
    with bytes from 128 up, which the table leaves alone. Speed only: ``str.translate``
    looks every non-ASCII character up in the dict (7 µs against 1 for a Chinese offer's
    text; for ASCII 0.9 against 0.3)."""
    try:
        return text.encode().translate(utf8_table).decode()
    except UnicodeEncodeError:  # a lone surrogate (text from JSON) has no UTF-8 form
        return text.translate(table)


def classes(f: str) -> str:
    """The character classes of folded text ``f`` (below): ``f.translate(_CLASS)``."""
    return _ascii_translate(f, _CLASS_UTF8, _CLASS)


def letter_words(f: str) -> list[str]:
    """The words of folded text ``f``: split at every ASCII character but a-z and at
    white space (``f.translate(_NON_LETTERS).split()``)."""
    return _ascii_translate(f, _NON_LETTERS_UTF8, _NON_LETTERS).split()


_MAIL_HINT = re.compile(r"at[ \t\n\x1f._\-]+(?:" + "|".join(map(re.escape, T.MAIL_DOMAINS)) + ")")
_DOTTED_DOMAIN_HINT = re.compile(r"\.[a-z][a-z]")  # a domain with a top-level domain (E5b)
_NINO_HALF_HINT = re.compile(r"[0-9]{6} [a-d](?![0-9a-z])")  # NINO "ab 123456 c", HKID "a 123456 a"
_PLATE_HINT = re.compile(f"[{T.PLATE_PROVINCES}][a-z]")
_NAME_HINTS_ZH = T.CUSTOMER_WORDS_ZH[1:] + T.HONORIFICS_ZH
_KEYWORDS = frozenset({"passport", "travel", "born", "dob", "birth", "birthday", "lives", "living", "resides", "residing",
                       "home", *T.VEHICLE_WORDS[:5], "wechat", "weixin", "whatsapp", "telegram", "skype", "line"})
_TRIGGER_WORDS_BYTES = frozenset(k.encode() for k in _KEYWORDS | set(T.NUMBER_WORDS))
_KEYWORDS_ZH = ("护照", "旅行证件", "车牌", "车辆", "微信", *T.BIRTH_OR_HOME_ZH, *_NAME_HINTS_ZH)
_KEYWORDS_ZH_ANY = re.compile("|".join(map(re.escape, _KEYWORDS_ZH)))  # any of them as a substring: one scan, not 23


def _at_email_hint(f: str, c: str, words: list[str]) -> bool:
    """E4, E5 and E7 all need the word "at", and then a bracket, a mail domain, a spelled
    "dot", or a local part with "." or "_" before it and a dotted domain after it.
    ``words``: :func:`_hint_words`'s."""
    if "at" not in words:
        return False
    if "dot" in words or "p" in c or "[" in f or "{" in f or "<" in f:
        return True
    if (".com" in f or ".cn" in f or ".net" in f or ".me" in f) and _MAIL_HINT.search(f):
        return True
    if _DOTTED_DOMAIN_HINT.search(f) is None:
        return False
    i = f.find("at")
    while i >= 0:  # E5b: "zhang.wei at example.com"
        j = i
        while j > 0 and f[j - 1] in SPACES:
            j -= 1
        if j < i and dotted_local(f, j):
            return True
        i = f.find("at", i + 2)
    return False


_CLASS_BYTES = bytes(ord("w") if c == 32 else ord(_CLASS.get(c, " ")) if c < 128 else 32 for c in range(256))  # + w: a space
_LONG_RUN_W = re.compile(r"d[dswp]{6,}d")
_LETTERS_BYTES = bytes(c + 32 if 65 <= c <= 90 else c if 97 <= c <= 122 else 32 for c in range(256))
_GLUED_CAPS_BYTES = re.compile(rb"[a-z0-9](?:AT[a-z0-9]|DOT[a-z])")
_DOTTED_DOMAIN_BYTES = re.compile(rb"\.[a-zA-Z][a-zA-Z]")


def _nino_half(b: bytes, c: str) -> bool:
    """Six digits, a space and a letter a-d alone ("ab 123456 c"), found from the classes
    of :data:`_CLASS_BYTES` (where a space is "w")."""
    i = c.find("ddddddw ")
    while i >= 0:
        if b[i + 7:i + 8] in (b"a", b"b", b"c", b"d", b"A", b"B", b"C", b"D") and not b[i + 8:i + 9].isalnum():
            return True
        i = c.find("ddddddw ", i + 1)
    return False


def _plain_ascii_py(text: str) -> bool:
    """Speed only: True when ASCII ``text`` provably holds no finding. The conditions of
    :func:`_may_find`, cheaper (``bytes.translate`` is several times faster than
    ``str.translate``) and more conservative: any doubt returns False."""
    b = text.encode()
    c = b.translate(_CLASS_BYTES).decode()  # substring tests are cheaper on str than on bytes
    if "@" in c or "do" in c or "od" in c:
        return False
    digits = c.count("d")
    if digits >= 2 and ("  dd" in c or " odd" in c or "o dd" in c or "oodd" in c):
        return False
    if digits >= 6 and ("dddddd" in c and ("ddddddd" in c or "ddddddp" in c or "dddddd " in c or "ddddddsp" in c
                                           or "ddddddwp" in c or "ddddddwd" in c or _nino_half(b, c))
                        or "sddsddsdds" in c or "wddwddwddw" in c or (digits >= 8 and _LONG_RUN_W.search(c))):
        return False
    if ("AT" in text or "DOT" in text) and _GLUED_CAPS_BYTES.search(b):
        return False
    words = b.translate(_LETTERS_BYTES).split()
    if not _TRIGGER_WORDS_BYTES.isdisjoint(words):
        return False
    if b"at" in words and ("dot" in text.lower() or "p" in c or "[" in text or "{" in text or "<" in text
                           or _DOTTED_DOMAIN_BYTES.search(b)):  # every mail domain has a dot and letters
        return False
    return True


def _c_screen():
    """protocol/_piiplain.c given pii.py's tables (the pre-screen's above, the folding's
    at the top), or None where the extension was not built (tests/test_pii.py checks that
    its answers are the Python's)."""
    try:
        from . import _piiplain
    except ImportError:
        return None
    _piiplain.setup(_CLASS_BYTES, _LETTERS_BYTES, tuple(sorted(_TRIGGER_WORDS_BYTES)))
    _piiplain.setup_fold(T.FOLD_TABLE, dict(T.CJK_DIGITS), _AT_WORD, _DOT_WORD)
    return _piiplain


# speed only: the same answers in C, where it was built
_C = _c_screen()
plain_ascii = _C.plain_ascii if _C is not None else _plain_ascii_py
fold_non_ascii = _C.fold_non_ascii if _C is not None else _fold_non_ascii_py  # _fold's, for text not all ASCII


def _may_find(f: str, c: str, words: list[str]) -> bool:
    """Whether any detector can find anything: :func:`_needs`, stopping at the first yes."""
    if (c.count("d") >= 8 and _LONG_RUN.search(c) is not None) or "@" in c:
        return True
    words = _hint_words(f, words)
    return _documents_hint(f, c, words) or _at_email_hint(f, c, words)


_ASCII_WORD = re.compile("[a-z]+")


def _hint_words(f: str, words: list[str]) -> list[str]:
    """The words the hints test keywords against. The detectors bound a keyword by
    (?<![a-z]) and (?![a-z]), so "car" counts in "¥car"; ``words`` splits only at the
    characters _NON_LETTERS maps, which leaves "¥car" whole. For non-ASCII text the
    runs of a-z are added (speed only: a hint must never be narrower than its detector)."""
    return words if f.isascii() else words + _ASCII_WORD.findall(f)


def _documents_hint(f: str, c: str, words: list[str]) -> bool:
    """Documents and the other keyword rules: after six digits a digit, "(", a letter, or a
    space and then a digit, "(" or a-d alone; or a keyword. ``words``: :func:`_hint_words`'s."""
    return ("dddddd" in c and ("ddddddd" in c or "ddddddp" in c or "dddddd " in c or "ddddddsp" in c or "ddddddsd" in c
                               or ("dddddds " in c and _NINO_HALF_HINT.search(f) is not None))
            or "sddsddsdds" in c or any(h in c for h in _IBAN_HINTS) or not _KEYWORDS.isdisjoint(words)
            or (not f.isascii() and (_PLATE_HINT.search(f) is not None or _KEYWORDS_ZH_ANY.search(f) is not None)))


def _needs(f: str, c: str, words: list[str]) -> tuple[bool, bool, bool]:
    """Which detectors can find anything in folded text ``f`` with classes ``c`` and
    ``words`` (maximal runs of a-z): e-mail addresses, documents (and the other
    keyword rules), digit runs."""
    words = _hint_words(f, words)
    emails = "@" in c or _at_email_hint(f, c, words)
    runs = c.count("d") >= 8 and _LONG_RUN.search(c) is not None
    return emails, _documents_hint(f, c, words), runs


# ---------------------------------------------------------------- the rule


def _findings(f: str, c: str, words: list[str], *, joined: bool = False, gated: bool = True
              ) -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) of every finding in one folded text; kind "defer" marks a
    phone-like number. In the joined text only findings across a field boundary
    count, and only those refused whatever the state (phone-like numbers are not).
    ``gated``: skip the detectors that :func:`_needs` says cannot find anything."""
    emails, documents, runs = _needs(f, c, words) if gated else (True, True, True)
    if emails:
        for s, e in D.emails(f):
            if not joined or "\x1f" in f[s:e]:
                yield "email", s, e
    if documents and not joined:
        yield from D.documents(f)
    if runs:
        for s, e, digits in D.runs(f):
            if joined and "\x1f" not in f[s:e]:
                continue
            kind = classify_run(f, s, e, digits)
            if kind and not (joined and kind == "defer"):
                while s and f[s - 1] in "+(":  # report the number as written: "+86 138 …"
                    s -= 1
                yield kind, s, e


def findings(text: str) -> tuple[str, list[tuple[str, int, int]]]:
    """The folded ``text`` and every finding in it, (kind, start, end) in the folded text;
    kind "defer" marks a phone-like number. U+001F in ``text`` joins two fields. For
    admission, which applies more rules to the same findings."""
    f, c, words = _fold(text)
    return f, list(_findings(f, c, words))


def mask(kind: str, sample: str) -> str:
    """At most the first few characters of a finding: enough to find it, not to use it."""
    if kind == "email":
        local, _, domain = sample.replace(" ", "").partition("@")
        return f"{local[:1]}…@{domain[:1]}…" if domain else f"{sample[:2]}…"
    if kind in ("licence_plate", "named_customer", "messaging_id"):
        return sample[:1] + "…"
    out, seen = [], 0
    for ch in sample.strip(SPACES):
        if seen >= (5 if kind in ("phone_number", "account_number") else 4):
            break
        out.append(" " if ch in "\t\n\x1f" else ch)
        seen += ch.isdigit()
    return "".join(out[:8]).rstrip(" -./_,(") + " …"


def screen(fields: Sequence[tuple[str, str]], where: str, *, url_fields: frozenset[str] = frozenset()
           ) -> tuple[tuple[str, str], ...]:
    """Screen one body's ``(name, text)`` fields, in body order (§5.3).

    Raises ValidationError (``field`` = ``where.name``, or ``where`` for a finding
    across fields; reason ``pii_<kind>``) for the first finding refused whatever
    the state. Returns the phone-like numbers as ``(field, digits)``: each must be
    one of the branch's declared public numbers (§5.3.6), which only the caller knows.
    """
    if url_fields:
        fields = [(name, unescape_url(text) if name in url_fields else text) for name, text in fields]
    joined = "\x1f".join([t for _, t in fields])
    if joined.isascii() and plain_ascii(joined):  # speed only: nothing in any field, nor across
        return ()
    f, c, words = _fold(joined)
    if not _may_find(f, c, words):  # speed only
        return ()
    return _screen(fields, where, gated=True)


def screen_all(fields: Sequence[tuple[str, str]], where: str) -> tuple[tuple[str, str], ...]:
    """:func:`screen` without any shortcut for text that cannot hold a finding (and
    without URL decoding): every detector on every field. For tests."""
    return _screen(fields, where, gated=False)


def _screen(fields: Sequence[tuple[str, str]], where: str, *, gated: bool) -> tuple[tuple[str, str], ...]:
    folded = [_fold(text) for _, text in fields]
    deferred = []
    for (name, _), (f, c, words) in zip(fields, folded):
        for kind, s, e in _findings(f, c, words, gated=gated):
            if kind != "defer":
                raise ValidationError(f"looks like {KINDS[kind]} ({mask(kind, f[s:e])}){_WHY}", field=f"{where}.{name}",
                                      reason=f"pii_{kind}")
            deferred.append((f"{where}.{name}", NON_DIGIT.sub("", f[s:e])))
    if len(fields) > 1:
        j = "\x1f".join(f for f, _, _ in folded)
        words = [w for _, _, ws in folded for w in ws]
        for kind, s, e in _findings(j, "s".join(c for _, c, _ in folded), words, joined=True, gated=gated):
            first = j.count("\x1f", 0, s)
            names = [fields[k][0] for k in range(first, first + j.count("\x1f", s, e) + 1)]
            raise ValidationError(f"across {' and '.join(names)}: looks like {KINDS[kind]} ({mask(kind, j[s:e])}){_WHY}",
                                  field=where, reason=f"pii_{kind}")
    return tuple(deferred)


# ---------------------------------------------------------------- declared public numbers (§5.3.6)


def number_key(number: str) -> str:
    """The digits of a phone number, as compared by :func:`is_declared`."""
    return NON_DIGIT.sub("", number)


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
    return is_mobile_digits(number_key(number))


def is_mobile_digits(d: str) -> bool:
    return D.MOBILE.fullmatch(d[2:] if d.startswith("00") else d) is not None


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
