"""Admission screening for personal data: what a node refuses before it signs or relays.

The consensus rule (protocol/pii.py, docs/PROTOCOL.md §5.3) is deliberately narrow:
every validator must reach the same verdict forever, so it uses only frozen tables
and structures. Admission adds what that rule cannot carry, on every node, for
every record it accepts from a local client, the API or a peer:

* Unicode NFKC and the ``unicodedata`` of this Python (every digit, every format
  and combining character, not only the frozen lists);
* phone numbers judged by ``phonenumbers`` (every country's numbering plan),
  whatever separators join the groups, and any number of 7+ digits that follows a
  word like "call", "tel", 电话, "account" or 账号;
* card numbers (Luhn), IBANs and PRC resident ids (``python-stdnum``) whatever
  separators join their groups;
* spelled numbers ("double eight"), e-mail addresses in more disguises ("AT" and
  "DOT" glued in capitals, "name at example.com" after a mail word), messaging ids,
  licence plates after a vehicle word, identity documents after an id word;
* customers by name: a name after "customer"/"cardholder", or next to a birth date
  or a home address;
* pieces of one number split across any two fields, not only neighbours;
* declared public numbers (profile ``contact_phone`` and ``public_numbers``) that
  ``phonenumbers`` does not know as a valid, non-mobile number.

A difference between two nodes here (another library version, another Python)
cannot fork the chain: a record refused here is not signed or relayed by this
node, and what a block may hold is decided by the consensus rule alone. Admission
refuses everything consensus refuses (it runs the same rule first), so a record
admitted here is never one a validator would reject for personal data.

Admission also refuses a fee currency that is not an ISO 4217 code of the frozen
table (:func:`check_currencies`, reason ``currency``), for every offer. Consensus
checks it only in offers that carry terms (PROTOCOL.md §5.9): older records with
codes like "RMB" are committed on existing chains and must still replay.

Both entry points raise :class:`PersonalDataRefused`, a
:class:`~protocol.errors.ValidationError` (the client's fault), with ``field``
(``record.body.description``), ``reason`` (``pii_<kind>``) and a message that shows
at most the first few characters of what was found, never the whole value.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, Iterable, Iterator

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers.shortnumberinfo import is_valid_short_number
from stdnum import iban as stdnum_iban, luhn as stdnum_luhn
from stdnum.cn import ric as stdnum_ric

from protocol import pii, pii_detect, pii_tables as T
from protocol.currencies import ISO_4217
from protocol.errors import ValidationError
from protocol.records import Record
from protocol.schema import BranchProfile, ServiceOffer, screen_body as consensus_screen_body
from protocol.terms import currency


class PersonalDataRefused(ValidationError):
    """A record or body that looks like it carries personal data; not admitted."""

    reason = "pii"


# Field texts repeat across records (service titles, descriptions, fee labels, status
# reasons), and screening one is pure: what it gave is remembered for the last
# FIELD_CACHE distinct texts (and bodies). At saturation the screening took a third of a
# validator's time before (docs/PERFORMANCE.md); a hostile peer sending only new
# texts gets the uncached cost, never a wrong answer.
FIELD_CACHE = 2048


def screen_record(record: Record, *, profile: BranchProfile | None) -> None:
    """Admit ``record`` (already decoded, so the stateless consensus rule passed) or raise.

    ``profile`` is the publishing branch's current profile (committed, or the newest
    one waiting in the mempool), or None if it has none: the phone numbers its texts
    may mention are the ones that profile declares public. A profile record
    declares its own. Raises PersonalDataRefused (or the consensus rule's
    ValidationError for an undeclared number).
    """
    _screen(record.body, "record.body", record.numbers, profile)


def screen_body(body: Any, *, profile: BranchProfile | None, where: str = "body") -> None:
    """Admit an unsigned body before signing it (API ``/v1/records/sign``, CLI), or raise
    ValidationError/PersonalDataRefused naming ``where.<field>``."""
    _screen(body, where, consensus_screen_body(body, where), profile)


def check_currencies(body: Any, where: str) -> None:
    """Refuse an offer whose fees name a code outside the frozen ISO 4217 table (§5.9):
    ValidationError naming ``where.fees[i].currency``, reason ``currency``."""
    if isinstance(body, ServiceOffer):
        for i, fee in enumerate(body.fees):
            if fee.currency not in ISO_4217:  # the field's name only for a refusal (the common case is a good code)
                currency(fee.currency, f"{where}.fees[{i}].currency")


def _screen(body: Any, where: str, numbers: Iterable[tuple[str, str]], profile: BranchProfile | None) -> None:
    check_currencies(body, where)
    own = isinstance(body, BranchProfile)
    declared = body.declared_numbers() if own else (profile.declared_numbers() if profile is not None else ())
    pii.check_declared(numbers, declared)  # the consensus rule's state check (§8), so admission covers it
    if own:
        for name, number in [("contact_phone", body.contact_phone)] * bool(body.contact_phone) + [
                (f"public_numbers[{i}]", n) for i, n in enumerate(body.public_numbers)]:
            _check_public_number(number, f"{where}.{name}")
    refusal = _refusal(tuple(body.screened_fields()), declared, where)
    if refusal is not None:
        cls, message, field, reason = refusal
        raise cls(message, field=field, reason=reason)


@lru_cache(maxsize=FIELD_CACHE)
def _refusal(fields: tuple[tuple[str, str], ...], declared: tuple[str, ...], where: str
             ) -> tuple[type[ValidationError], str, str, str] | None:
    """What :func:`_screen` refuses in a body's ``(name, text)`` fields, as (exception
    class, message, field, reason), or None. Pure, so remembered for the last
    FIELD_CACHE bodies: a branch's statuses and re-published offers repeat their texts
    (speed only, like the caches below)."""
    try:
        _refuse_fields(fields, declared, where)
    except ValidationError as exc:
        return type(exc), exc.message, exc.field, exc.reason
    return None


def _refuse_fields(fields: tuple[tuple[str, str], ...], declared: tuple[str, ...], where: str) -> None:
    normalised = [(name, _normalise(text)) for name, text in fields]
    try:  # the consensus rule again, on the normalised texts: what only NFKC or spelled digits reveal
        numbers = pii.screen([(name, f) for name, (f, _) in normalised], where)
    except ValidationError as exc:
        raise PersonalDataRefused(exc.message, field=exc.field, reason=exc.reason) from None
    pii.check_declared(numbers, declared)
    for name, (text, cased) in normalised:
        if text:
            _refuse_first(_first_finding(text, cased, declared), where, name)
    busy = [(name, text, _join_ends(text)) for name, (text, _) in normalised if _DIGIT_OR_AT.search(text)]
    for a, ta, (a_digit, a_at, _, _) in busy:  # one number or address split between any two fields, in either order
        for b, tb, (_, _, b_digit, b_at) in busy:
            if a != b and ((a_digit and b_digit) or a_at or b_at):
                _refuse_first(next(_pair_findings(ta[-48:], tb[:48], declared), None), where, None, across=(a, b))


def _refuse_first(finding: tuple[str, str] | None, where: str, name: str | None,
                  across: tuple[str, str] | None = None) -> None:
    if finding is not None:
        kind, sample = finding
        prefix = f"across {across[0]} and {across[1]}: " if across else ""
        raise PersonalDataRefused(f"{prefix}looks like {KINDS.get(kind, kind)} ({pii.mask(kind, sample)}); personal data "
                                  "may not be published", field=where if name is None else f"{where}.{name}",
                                  reason=f"pii_{kind}")


KINDS = pii.KINDS | {"id_document": "an identity document number"}

# ---------------------------------------------------------------- normalisation

_GLUED_AT = re.compile(r"(?<=[a-z0-9])(?:AT|\(at\)|\[at\])(?=[a-z0-9])")
_GLUED_DOT = re.compile(r"(?<=[a-z0-9])DOT(?=[a-z])")
_REPEAT = re.compile(r"(?<![a-z])(double|triple)[ \-]+([0-9]|zero|oh|o|one|two|three|four|five|six|seven|eight|nine)(?![a-z])")
_WORD = re.compile(r"(?<![a-z])(zero|oh|o|nought|one|two|three|four|five|six|seven|eight|nine)(?![a-z])")
_WORD_DIGIT = {"zero": "0", "oh": "0", "o": "0", "nought": "0", "one": "1", "two": "2", "three": "3", "four": "4",
               "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_DIGIT_OR_AT = re.compile(r"[0-9@#]")
_NUMBER_WORDS = frozenset(_WORD_DIGIT) | {"double", "triple"}


def _as_read(ch: str) -> str:
    """One character of NFKC text as the detectors read it: nothing for a format, combining
    or control character (but tab and newline), the ASCII digit of one with a digit
    value, else itself (this Python's Unicode)."""
    cat = unicodedata.category(ch)
    if cat in ("Cf", "Mn", "Me") or (cat == "Cc" and ch not in "\t\n"):
        return ""
    d = unicodedata.digit(ch, None) if cat in ("Nd", "No") else None
    return str(d) if d is not None else ch


def _kept(ranges: Iterable[tuple[int, int]]) -> re.Pattern:
    """A pattern for text made only of characters of ``ranges`` that :func:`_as_read`
    leaves as they are (checked one by one, here, against this Python's Unicode)."""
    kept = [cp for lo, hi in ranges for cp in range(lo, hi + 1) if _as_read(chr(cp)) == chr(cp)]
    runs = []
    for cp in kept:
        if runs and runs[-1][1] == cp - 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    return re.compile("[" + "".join(re.escape(chr(lo)) + ("-" + re.escape(chr(hi)) if hi > lo else "") for lo, hi in runs) + "]*")


# Chinese text after NFKC: ASCII, CJK punctuation and the unified ideographs (about 21,000
# characters, checked at import in a few milliseconds) need no character-by-character pass.
_KEPT = _kept([(0x09, 0x0A), (0x20, 0x7E), (0x3000, 0x303F), (0x4E00, 0x9FFF)])


@lru_cache(maxsize=FIELD_CACHE)
def _normalise(text: str) -> tuple[str, str]:
    """``text`` as the detectors read it, and a copy that keeps capitals (for names).

    NFKC, then every format, combining and control character dropped and every
    character with a digit value made an ASCII digit (this Python's Unicode), "AT"
    and "DOT" glued between lower-case words made "@" and "."; then the consensus
    folding; then spelled digits ("double eight", "one oh one") as digits.
    """
    t = unicodedata.normalize("NFKC", text)
    if not t.isascii() and not _KEPT.fullmatch(t):  # speed only: _KEPT's characters stay as they are
        t = "".join(map(_as_read, t))
    cased = _GLUED_DOT.sub(".", _GLUED_AT.sub("@", t)) if ("AT" in t or "DOT" in t or "(at)" in t or "[at]" in t) else t
    f = pii.fold(cased)
    if not _NUMBER_WORDS.isdisjoint(pii.letter_words(f)):
        f = _REPEAT.sub(lambda m: _WORD_DIGIT.get(m.group(2), m.group(2)) * (2 if m.group(1) == "double" else 3), f)
        if len(_WORD.findall(f)) >= 3:
            f = pii.fold(_WORD.sub(lambda m: _WORD_DIGIT[m.group(1)], f))
    return f, cased


# ---------------------------------------------------------------- detectors

_CANDIDATE = re.compile(r"\+?[0-9](?:[ \t\n\-./_,()\[\]~]{0,3}[0-9])*")  # digits joined by any short punctuation
_PHONE_WORDS = re.compile(r"(?<![a-z])(?:tel|tel\.|phone|telephone|call|ring|mobile|cell|contact|whatsapp|fax|number|no\.)(?![a-z])"
                          r"|电话|手机|联系|致电|拨打|座机|号码|传真")
_ACCOUNT_WORDS = re.compile(r"(?<![a-z])(?:account|acct|a/c|sort code|card no|card number)(?![a-z])|账号|账户|卡号|户号")
_ID_WORDS = re.compile(r"(?<![a-z])(?:id card|id no|id number|national id|identity card|hkid|nric)(?![a-z])|身份证|证件号|证件号码")
_KEYWORD_HINT = re.compile(_PHONE_WORDS.pattern + "|" + _ACCOUNT_WORDS.pattern + "|" + _ID_WORDS.pattern)
_MAIL_WORDS = re.compile(r"(?<![a-z])(?:e-?mail|mail|mailbox)(?![a-z])|邮箱|邮件|电邮")
_DOMAIN_TLD = re.compile(r"[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}(?![a-z0-9])")
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._%+-")
_MESSAGING = re.compile(r"(?:(?<![a-z])(?:wechat|weixin|wx|whatsapp|telegram|skype|line id)(?: id)?|微信号|微信)[ :：号]{0,4}"
                        r"([a-z][a-z0-9_\-]{3,})|(?<![a-z])qq(?: no\.?|号)?[ :：]{0,3}([0-9]{5,11})(?![0-9])")
_VEHICLE_WORDS = re.compile(r"(?<![a-z])(?:car|vehicle|reg\.?|registration|plate)(?![a-z])|车牌|车辆")
_UK_PLATE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2} ?[A-Z]{3}(?![A-Za-z0-9])")
_HK_PLATE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2} ?[0-9]{1,4}(?![A-Za-z0-9])")
_SURNAME_ANY = "[王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤欧司诸上]"
_NAME_ZH = re.compile(rf"(?:^|[，,。；;：: ]){_SURNAME_ANY}[\u4e00-\u9fff]{{1,2}}[，,、 ]")
_CUSTOMER_ZH = re.compile(rf"(?:{'|'.join(T.CUSTOMER_WORDS_ZH)})[:： ]{{0,2}}{_SURNAME_ANY}[\u4e00-\u9fff]{{1,2}}")
_HONORIFIC_ZH = re.compile(rf"{_SURNAME_ANY}[\u4e00-\u9fff]?(?:{'|'.join(T.HONORIFICS_ZH)})")
_CUSTOMER_EN = re.compile(r"(?<![A-Za-z])(?:[Cc]ustomer|[Cc]lient|[Cc]ardholder|[Aa]ccount holder|[Dd]epositor|[Nn]ame)"
                          r"[ :]{1,3}([A-Z][a-z]+(?: [A-Z][a-z]+){1,2})")
_NOT_NAMES = frozenset("Service Services Care Centre Center Hotline Support Relations Manager Managers Experience Account "
                       "Accounts Day Days Notice Agreement Information Protection Rights Team Desk Portal Charter Line".split())
_HONORIFIC_EN = re.compile(r"(?<![A-Za-z])(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.? [A-Z][a-z]+")
_RESIDENCE_EN = re.compile(r"(?<![A-Za-z])(?:Flat|Apt|Apartment|House)\.? [0-9]|(?<![A-Za-z])of [0-9]+[A-Za-z]? [A-Z][a-z]+ "
                           r"(?:Street|Road|Avenue|Lane|Drive|Close|Court|Terrace)")


_CONTEXT_WORDS = frozenset({"mail", "mailbox", "email", "wechat", "weixin", "wx", "whatsapp", "telegram", "skype", "line", "qq",
                            "car", "vehicle", "reg", "registration", "plate", "born", "dob", "birth", "birthday", "lives",
                            "living", "resides", "residing", "home", "customer", "client", "cardholder", "holder",
                            "depositor", "name", "mr", "mrs", "ms", "miss", "mx", "dr"})
_CONTEXT_ZH = ("邮箱", "邮件", "电邮", "微信", "车牌", "车辆", *T.CUSTOMER_WORDS_ZH, *T.HONORIFICS_ZH, *T.BIRTH_OR_HOME_ZH)
_CONTEXT_ZH_ANY = re.compile("|".join(map(re.escape, _CONTEXT_ZH)))  # any of them as a substring, in one scan


@lru_cache(maxsize=FIELD_CACHE)
def _first_finding(f: str, cased: str, declared: tuple[str, ...]) -> tuple[str, str] | None:
    """The first of :func:`_findings`, or None: what admission refuses in one field."""
    return next(_findings(f, cased, declared), None)


def _findings(f: str, cased: str, declared: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """(kind, sample) of what admission refuses in one normalised field. Each group of
    checks runs only if the field holds what it needs (digits, a keyword): speed only."""
    candidates = [m for m in _CANDIDATE.finditer(f) if len(pii.number_key(m.group())) >= 6]
    if candidates:  # every number rule needs 6+ digits joined by punctuation (speed only)
        long = [m for m in candidates if len(pii.number_key(m.group())) >= 7]
        keyword = _KEYWORD_HINT.search(f) is not None
        if long or keyword:
            exempt = _exempt_spans(f)
            if keyword:
                yield from _keyword_numbers(f, exempt, declared)
            yield from _numbers(f, long, exempt)
            yield from _phones(long, exempt, declared)
    if _IBAN_CANDIDATE.search(f):
        yield from _ibans(f)
    if not _CONTEXT_WORDS.isdisjoint(pii.letter_words(f)) or (
            not f.isascii() and _CONTEXT_ZH_ANY.search(f) is not None):
        yield from _contextual(f, cased)


_EDGE = " \t\n-./_,()[]+"


def _join_ends(text: str) -> tuple[bool, bool, bool, bool]:
    """How a field can join another into one number or address (speed only: the
    pair's detectors decide): (ends in a digit, ends in an address sign, starts with a
    digit, starts with an address sign), separators skipped, over the 48 characters at
    each end. Two fields can form a number when one ends and the other starts with a
    digit, and an address when either has an "@", "#" or "at" at the join."""
    tail, head = text[-48:], text[:48]
    end, start = tail.rstrip(_EDGE)[-1:], head.lstrip(_EDGE)[:1]
    t, h = tail.rstrip(), head.lstrip()
    tail_at = "@" in t[-2:] or "#" in t[-2:] or t.endswith(("at", "at]", "at)"))
    head_at = "@" in h[:2] or "#" in h[:2] or h.startswith(("at ", "[at", "(at"))
    return end.isdigit(), tail_at, start.isdigit(), head_at


def _pair_findings(tail: str, head: str, declared: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """Findings across the end of one field and the start of another (at most 48
    characters of each: enough for any number or address)."""
    f, found = pii.findings(tail + "\x1f" + head)
    for kind, start, end in found:
        if "\x1f" in f[start:end] and (kind != "defer" or not pii.is_declared(pii.number_key(f[start:end]), declared)):
            yield ("phone_number" if kind == "defer" else kind), f[start:end]
    t = tail + " " + head
    for m in _CANDIDATE.finditer(t):
        if m.start() < len(tail) < m.end():
            kind = _phone_kind(m.group(), declared)
            if kind:
                yield kind, m.group()


def _exempt_spans(t: str) -> list[tuple[int, int]]:
    """Runs the consensus rule allows (dates, times, amounts, percentages, codes), and
    shorter amounts, percentages and time ranges."""
    spans = [(s, e) for s, e, digits in pii_detect.runs(t) if pii_detect.classify_run(t, s, e, digits) == ""]
    for m in pii_detect.RUN.finditer(t):
        run = m.group()
        if _SHORT_TIME.fullmatch(run) or (pii_detect.AMOUNT_RUN.fullmatch(run) and (
                pii_detect.CURRENCY_BEFORE.search(t, max(0, m.start() - 8), m.start()) or pii_detect.CURRENCY_AFTER.match(t, m.end())
                or pii_detect.PERCENT_AFTER.match(t, m.end()))):
            spans.append(m.span())
    return spans


_SHORT_TIME = re.compile(r"(?:[01]?[0-9]|2[0-4])[.:]?[0-5][0-9] ?[\-~] ?(?:[01]?[0-9]|2[0-4])[.:]?[0-5][0-9]")


def _overlaps(s: int, e: int, spans: list[tuple[int, int]]) -> bool:
    return any(a < e and s < b for a, b in spans)


def _phones(candidates: list[re.Match], exempt: list[tuple[int, int]], declared: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    for m in candidates:
        if len(pii.number_key(m.group())) >= 7 and not _overlaps(m.start(), m.end(), exempt):
            kind = _phone_kind(m.group(), declared)
            if kind:
                yield kind, m.group()


_IBAN_CANDIDATE = re.compile(r"(?<![a-z0-9])[a-z]{2}[0-9]{2}(?:[ \-.]?[0-9a-z]){11,30}")
_ID_CANDIDATE = re.compile(r"(?<![0-9])[0-9](?:[ \-./]?[0-9]){14}(?:(?:[ \-./]?[0-9]){2}[ \-./]?[0-9x])?(?![0-9])")


def _numbers(t: str, candidates: list[re.Match], exempt: list[tuple[int, int]]) -> Iterator[tuple[str, str]]:
    """Cards and PRC ids by their check digits, with any separators."""
    for m in candidates:
        digits = pii.number_key(m.group())
        if (13 <= len(digits) <= 19 and pii_detect.card_iin(digits) and stdnum_luhn.is_valid(digits)
                and not _overlaps(m.start(), m.end(), exempt)):
            yield "card_number", m.group()
    for m in _ID_CANDIDATE.finditer(t):
        if stdnum_ric.is_valid(re.sub(r"[ \-./]", "", m.group()).upper()):
            yield "national_id", m.group()


def _ibans(t: str) -> Iterator[tuple[str, str]]:
    """IBANs by their check digits, with any separators."""
    for m in _IBAN_CANDIDATE.finditer(t):
        compact = re.sub(r"[ \-.]", "", m.group()).upper()
        for end in range(len(compact), 14, -1):  # the candidate may run into the next word
            if stdnum_iban.is_valid(compact[:end]):
                yield "iban", m.group()
                break


def _phone_kind(candidate: str, declared: tuple[str, ...]) -> str | None:
    """"phone_number" if ``phonenumbers`` knows ``candidate`` as a personal number (a
    mobile anywhere; a fixed line written with its area or country code), unless declared."""
    digits = pii.number_key(candidate)
    if not 7 <= len(digits) <= 17 or pii.is_declared(digits, declared):
        return None
    return _personal_number(digits, candidate.startswith("+") or digits.startswith("00"))


@lru_cache(maxsize=4096)
def _personal_number(digits: str, international: bool) -> str | None:
    if international:
        tries = [("+" + digits.lstrip("0"), None)]
    else:  # only the regions whose national numbers can look like this (speed only)
        tries = [(digits, region) for region, plausible in (
            ("CN", digits[0] in "01" or digits.startswith("86")), ("GB", digits[0] == "0" or digits.startswith("44")),
            ("HK", len(digits) == 8 or digits.startswith("852"))) if plausible]
    for number, region in tries:
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(parsed):
            continue
        kind = phonenumbers.number_type(parsed)
        if kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.PERSONAL_NUMBER,
                    PhoneNumberType.PAGER):
            return "phone_number"
        if kind == PhoneNumberType.FIXED_LINE and (region is None or digits.startswith("0")):
            return "phone_number"
    return None


def _keyword_numbers(t: str, exempt: list[tuple[int, int]], declared: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """A number of 7+ digits (6+ after an account or id word) starting within 24 characters
    after a phone, account or id word, unless it is a date, time, amount or code, or declared."""
    for words, kind, least in ((_PHONE_WORDS, "phone_number", 7), (_ACCOUNT_WORDS, "account_number", 6),
                               (_ID_WORDS, "id_document", 6)):
        for w in words.finditer(t):
            for m in _CANDIDATE.finditer(t, w.end()):
                if m.start() > w.end() + 24:
                    break
                digits = pii.number_key(m.group())
                if len(digits) >= least and not pii.is_declared(digits, declared) and not _overlaps(m.start(), m.end(), exempt):
                    yield kind, m.group()


def _contextual(f: str, cased: str) -> Iterator[tuple[str, str]]:
    """E-mail after a mail word, messaging ids, plates after a vehicle word, customers by name."""
    if _MAIL_WORDS.search(f):  # "email zhang at example.com": any local part, any domain
        for at in pii_detect._AT_WORD.finditer(f):
            form = pii_detect.at_form(f, at.start(), at.end())
            domain = _DOMAIN_TLD.match(f, form[1]) if form and not form[2] else None
            if domain and form[0] >= 1 and f[form[0] - 1] in _LOCAL_CHARS:
                yield "email", f[form[0] - 1] + "@" + domain.group()
    for m in _MESSAGING.finditer(f):
        if m.group(2) or re.search(r"[0-9_]", m.group(1)):
            yield "messaging_id", m.group()
    if _VEHICLE_WORDS.search(f):
        for m in (*_UK_PLATE.finditer(cased), *_HK_PLATE.finditer(cased)):
            yield "licence_plate", m.group()
    for m in _CUSTOMER_EN.finditer(cased):
        if not set(m.group(1).split()) & _NOT_NAMES:
            yield "named_customer", m.group(1)
    m = _HONORIFIC_EN.search(cased)
    if m and (_RESIDENCE_EN.search(cased) or any(w in f for w in T.BIRTH_OR_HOME_EN)):
        yield "named_customer", m.group()
    if not cased.isascii():
        m = _CUSTOMER_ZH.search(cased)
        if m is None and any(w in cased for w in T.BIRTH_OR_HOME_ZH):
            m = _NAME_ZH.search(cased) or _HONORIFIC_ZH.search(cased)
        if m:
            yield "named_customer", m.group()


def _check_public_number(number: str, field: str) -> None:
    """A declared public number must be one ``phonenumbers`` knows, and not a mobile."""
    problem = _public_number_problem(number)
    if problem:
        raise PersonalDataRefused(problem, field=field, reason="pii_phone_number")


@lru_cache(maxsize=1024)
def _public_number_problem(number: str) -> str | None:
    """Why ``number`` cannot be declared public, or None. Cached: a branch declares the
    same few numbers in every profile it publishes."""
    try:
        parsed = phonenumbers.parse(number, None if number.startswith("+") else "CN")
    except phonenumbers.NumberParseException:
        return "is not a phone number"
    if is_valid_short_number(parsed):
        return None
    if not phonenumbers.is_valid_number(parsed):
        return f"is not a valid phone number ({pii.mask('phone_number', number)})"
    if phonenumbers.number_type(parsed) in (PhoneNumberType.MOBILE, PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.PAGER):
        return f"looks like a personal number ({pii.mask('phone_number', number)}), not a public one"
    return None
