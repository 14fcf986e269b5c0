"""Generate tests/data/pii_corpus.json: disguised personal data and legitimate branch texts.

    python -m tools.gen_pii_corpus > tests/data/pii_corpus.json

Every entry is one record body to screen: its ``kind`` and the ``fields`` that
differ from a plain, valid body of that kind (tests/test_pii_corpus.py fills in
the rest), labelled ``pii`` (true: must be refused), ``category`` (what it is),
``disguise`` (how it is written) and ``lang``. ``context`` is the publishing
branch's profile: the numbers it declares public (a legitimate text may mention
them). All personal data here is made up: test card numbers, example ids with
valid check digits, numbers from reserved or example ranges where they exist.

Check digits are computed here with python-stdnum (PRC id, IBAN, Luhn), not with
the code under test. The output is deterministic; tests/test_pii_corpus.py checks
that the committed JSON is what this prints.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

from stdnum import iban as stdnum_iban, luhn
from stdnum.cn import ric

CONTEXT = {
    "contact_phone": "+86 10 6512 0000",
    "public_numbers": ["400-820-8888", "95588", "+852 2233 3000", "+44 345 740 4404"],
}

# ---------------------------------------------------------------- digit disguises


def _digits(base: int) -> Callable[[str], str]:
    return lambda s: "".join(chr(base + int(c)) if c.isdigit() else c for c in s)


FULLWIDTH, ARABIC_INDIC, PERSIAN, DEVANAGARI, MATH_BOLD, BENGALI, THAI = (
    _digits(0xFF10), _digits(0x0660), _digits(0x06F0), _digits(0x0966), _digits(0x1D7CE), _digits(0x09E6), _digits(0x0E50))
CIRCLED = lambda s: "".join("⓪①②③④⑤⑥⑦⑧⑨"[int(c)] if c.isdigit() else c for c in s)  # noqa: E731
SUPERSCRIPT = lambda s: "".join("⁰¹²³⁴⁵⁶⁷⁸⁹"[int(c)] if c.isdigit() else c for c in s)  # noqa: E731
CJK = lambda s: "".join("零一二三四五六七八九"[int(c)] if c.isdigit() else c for c in s)  # noqa: E731
CJK_ZERO = lambda s: "".join("〇一二三四五六七八九"[int(c)] if c.isdigit() else c for c in s)  # noqa: E731
CJK_FINANCIAL = lambda s: "".join("零壹贰叁肆伍陆柒捌玖"[int(c)] if c.isdigit() else c for c in s)  # noqa: E731
CJK_YAO = lambda s: "".join("洞幺两三四五六拐八九"[int(c)] if c.isdigit() else c for c in s).replace("洞", "零").replace("拐", "七")  # noqa: E731
WORDS = lambda s: " ".join(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"][int(c)] for c in s if c.isdigit())  # noqa: E731
OL = lambda s: s.replace("0", "O").replace("1", "l")  # noqa: E731
OI = lambda s: s.replace("0", "o").replace("1", "I")  # noqa: E731
STRIKE = lambda s: "".join(c + "\u0336" if c.isdigit() else c for c in s)  # noqa: E731
KEYCAP = lambda s: "".join(c + "\ufe0f\u20e3" if c.isdigit() else c for c in s)  # noqa: E731


def _groups(number: str, sizes: tuple[int, ...]) -> list[str]:
    out, i = [], 0
    for n in sizes:
        out.append(number[i:i + n])
        i += n
    if i < len(number):
        out.append(number[i:])
    return out


def joined(number: str, sep: str, sizes: tuple[int, ...] = (3, 4, 4)) -> str:
    return sep.join(_groups(number, sizes))


# ---------------------------------------------------------------- made-up personal data

CN_MOBILES = ["13800138000", "13912345678", "15012345678", "18612345678", "17712345678", "19912345678", "13687654321", "15811112222"]


def _prc_id(prefix17: str) -> str:
    return prefix17 + ric.calc_check_digit(prefix17 + "0")  # stdnum expects a placeholder check digit


PRC_IDS = [_prc_id(p) for p in ("11010119900307123", "11010519491231002", "44030419851224123", "31010419780512345",
                                "51010720000229876", "11010219650815432")]


def _hkid(letters: str, digits: str) -> str:
    values = [36 if len(letters) == 1 else ord(letters[0]) - 55, ord(letters[-1]) - 55] + [int(c) for c in digits]
    check = (11 - sum(w * v for w, v in zip(range(9, 1, -1), values)) % 11) % 11
    return f"{letters}{digits}({'0123456789A'[check]})"


HKIDS = [_hkid("A", "123456"), _hkid("Z", "683365"), _hkid("K", "246813"), _hkid("XA", "987654"), _hkid("C", "668668")]


def _card(prefix: str, length: int) -> str:
    body = prefix + "0123456789012345678"[: length - len(prefix) - 1]
    return body + luhn.calc_check_digit(body)


CARDS = ["4111111111111111", "5500000000000004", "378282246310005", _card("622202", 19), "6011111111111117",
         "3530111333300000", _card("621700", 16), _card("4539", 16)]
IBANS = ["GB82WEST12345698765432", "DE89370400440532013000", "FR1420041010050500013M02606", "NL91ABNA0417164300"]
assert all(stdnum_iban.is_valid(i) for i in IBANS) and all(luhn.is_valid(c) for c in CARDS)
assert all(ric.is_valid(i) for i in PRC_IDS)


def _spaced_iban(i: str) -> str:
    return " ".join(i[k:k + 4] for k in range(0, len(i), 4))


# ---------------------------------------------------------------- entries


class Corpus:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def add(self, pii: bool, category: str, disguise: str, lang: str, fields: dict[str, str], kind: str = "service.offer") -> None:
        n = sum(1 for e in self.entries if e["category"] == category and e["disguise"] == disguise)
        self.entries.append({"id": f"{category}/{disguise}/{n}", "pii": pii, "category": category, "disguise": disguise,
                             "lang": lang, "kind": kind, "fields": fields})

    def desc(self, pii: bool, category: str, disguise: str, lang: str, text: str) -> None:
        self.add(pii, category, disguise, lang, {"description": text})


def personal(c: Corpus) -> None:
    P = lambda *a, **k: c.add(True, *a, **k)  # noqa: E731
    D = lambda *a: c.desc(True, *a)  # noqa: E731
    en = ["Customer asked us to call {} about the loan.", "Call back on {} after 17:00.", "Client mobile: {}",
          "Refund confirmed, contact {}."]
    zh = ["客户手机号码{}，请回电。", "请联系张先生：{}", "客户留下的电话 {} 已核实。", "回访电话：{}"]

    def phone(category: str, number: str, disguise: str, fmt: Callable[[str], str], i: int) -> None:
        tpl = (en + zh)[i % 8]
        D(category, disguise, "zh" if i % 8 >= 4 else "en", tpl.format(fmt(number)))

    # PRC mobiles: every disguise the issue lists, and more
    mobile_disguises: list[tuple[str, Callable[[str], str]]] = [
        ("plain", str), ("grouped", lambda s: joined(s, " ")), ("plus86", lambda s: "+86 " + joined(s, " ")),
        ("0086", lambda s: "0086-" + joined(s, "-")), ("paren86", lambda s: "(+86)" + s), ("86", lambda s: "86 " + s),
        ("fullwidth", FULLWIDTH), ("fullwidth_grouped", lambda s: FULLWIDTH(joined(s, " "))),
        ("arabic_indic", ARABIC_INDIC), ("persian", PERSIAN), ("devanagari", DEVANAGARI), ("math_bold", MATH_BOLD),
        ("bengali", BENGALI), ("thai", THAI), ("circled", CIRCLED), ("superscript", SUPERSCRIPT),
        ("double_space", lambda s: joined(s, "  ")), ("slash", lambda s: joined(s, "/")), ("underscore", lambda s: joined(s, "_")),
        ("middle_dot", lambda s: joined(s, "·")), ("comma", lambda s: joined(s, ",")), ("dot", lambda s: joined(s, ".")),
        ("spaced_dash", lambda s: joined(s, " - ")), ("spaced_slash", lambda s: joined(s, " / ")),
        ("zero_width_space", lambda s: joined(s, "\u200b")), ("word_joiner", lambda s: joined(s, "\u2060")),
        ("zwnj", lambda s: joined(s, "\u200c")), ("soft_hyphen", lambda s: joined(s, "\u00ad")), ("bidi", lambda s: "\u202e" + s + "\u202c"),
        ("nbsp", lambda s: joined(s, "\u00a0")), ("narrow_nbsp", lambda s: joined(s, "\u202f")), ("thin_space", lambda s: joined(s, "\u2009")),
        ("ideographic_space", lambda s: joined(s, "\u3000")), ("tab", lambda s: joined(s, "\t")), ("newline", lambda s: joined(s, "\n")),
        ("line_separator", lambda s: joined(s, "\u2028")), ("en_dash", lambda s: joined(s, "\u2013")), ("em_dash", lambda s: joined(s, "\u2014")),
        ("letters_OL", OL), ("letters_oI", OI), ("letters_OL_grouped", lambda s: OL(joined(s, " "))),
        ("strikethrough", STRIKE), ("keycap", KEYCAP), ("cjk", CJK), ("cjk_ling", CJK_ZERO), ("cjk_financial", CJK_FINANCIAL),
        ("cjk_yao", CJK_YAO), ("cjk_mixed", lambda s: s[:3] + CJK(s[3:5]) + s[5:7] + CJK(s[7:])),
        ("mixed_scripts", lambda s: FULLWIDTH(s[:4]) + ARABIC_INDIC(s[4:8]) + s[8:]), ("parens", lambda s: f"({s[:3]}) {s[3:7]}-{s[7:]}"),
        ("fullwidth_parens", lambda s: f"（{s[:3]}）{FULLWIDTH(s[3:])}"), ("spaced_digits", lambda s: " ".join(s)),
    ]
    for i, (name, fmt) in enumerate(mobile_disguises):
        phone("phone_cn_mobile", CN_MOBILES[i % len(CN_MOBILES)], name, fmt, i)
    D("phone_cn_mobile", "words", "en", "Customer phone: " + WORDS("13800138000"))
    D("phone_cn_mobile", "words_dashed", "en", "Ring " + WORDS("13912345678").replace(" ", "-"))
    D("phone_cn_mobile", "words_double", "en", "Mobile one three eight double zero one three eight triple zero")
    D("phone_cn_mobile", "words_mixed", "en", "call 138 zero zero one three eight 000")
    D("phone_cn_mobile", "words_oh", "en", "number is one five oh one two three four five six seven eight")
    D("phone_cn_mobile", "words_caps", "en", "CALL ONE EIGHT SIX ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT")
    D("phone_cn_mobile", "glued_han", "zh", "联系电话13800138000谢谢")
    D("phone_cn_mobile", "glued_latin", "en", "tel13912345678")
    # split across fields, and fields that used never to be screened
    P("phone_cn_mobile", "split_title_description", "en", {"title": "Call 138", "description": "0013 8000 for details"})
    P("phone_cn_mobile", "split_title_description", "zh", {"title": "贵宾理财 客户电话139", "description": "1234 5678"})
    P("phone_cn_mobile", "split_description_fee", "en", {"description": "Loan officer: 150 1234", "fees": ["5678 direct line"]})
    P("phone_cn_mobile", "split_fee_fee", "zh", {"fees": ["电话186", "1234 5678"]})
    P("phone_cn_mobile", "split_title_issuer", "en", {"title": "Fund 177 1234", "issuer": "5678 Asset Management", "ownership": "consigned", "category": "wealth"})
    P("phone_cn_mobile", "service_id", "en", {"service_id": "cust-zhangwei-13800138000"})
    P("phone_cn_mobile", "service_id", "en", {"service_id": "vip-139.1234.5678"})
    P("phone_cn_mobile", "service_id_letters", "en", {"service_id": "cb-l38ool38ooo"})
    P("phone_cn_mobile", "fee_label", "zh", {"fees": ["客户13800138000专享"]})
    P("phone_cn_mobile", "issuer", "en", {"issuer": "Agent Wang 13912345678", "ownership": "consigned", "category": "wealth"})
    P("phone_cn_mobile", "equipment_id", "en", {"equipment": ["atm-13800138000"]}, kind="service.status")
    P("phone_cn_mobile", "status_service_id", "en", {"service_id": "call-15012345678"}, kind="service.status")
    P("phone_cn_mobile", "withdraw_reason", "zh", {"reason": "客户要求撤销，电话18612345678"}, kind="service.withdraw")
    P("phone_cn_mobile", "profile_name", "zh", {"name": "张经理13800138000"}, kind="branch.profile")
    P("phone_cn_mobile", "profile_address", "en", {"address": "Ask for Li, 139 1234 5678, No. 8 Main St"}, kind="branch.profile")
    P("phone_cn_mobile", "profile_region", "en", {"region": "CN-138001-38000"}, kind="branch.profile")
    P("phone_cn_mobile", "profile_url", "en", {"contact_url": "https://bank.example/u/13800138000"}, kind="branch.profile")
    P("phone_cn_mobile", "profile_url_percent", "en", {"contact_url": "https://bank.example/u/%31%33%38%30%30%31%33%38%30%30%30"}, kind="branch.profile")
    P("phone_cn_mobile", "profile_contact_phone", "en", {"contact_phone": "+86 138 0013 8000"}, kind="branch.profile")
    P("phone_cn_mobile", "profile_public_number", "en", {"public_numbers": ["13912345678"]}, kind="branch.profile")

    # PRC landlines, Hong Kong, UK and other numbers
    landlines = [("010-6512 3456", "plain"), ("(021) 6888 1234", "parens"), ("0755-8888-1234", "dashes"),
                 ("+86 10 6512 3456", "plus86"), ("+86 (0)20 8765 4321", "plus86_trunk"), ("02087654321", "compact"),
                 (FULLWIDTH("010-65123456"), "fullwidth"), (CJK("01065123456"), "cjk"), ("O1O-65l2-3456", "letters"),
                 ("010 - 6512 - 3456", "spaced_dash"), ("010\u00a06512\u00a03456", "nbsp")]
    for i, (text, name) in enumerate(landlines):
        phone("phone_cn_landline", text, name, str, i)
    D("phone_cn_landline", "glued_han", "zh", "家庭电话01065123456")
    D("phone_cn_landline", "local_keyword", "zh", "客户座机 6512 3456")
    D("phone_cn_landline", "local_7_digits_keyword", "en", "call him at home on 651 2345")
    D("phone_cn_landline", "in_code", "en", "Ref zhangwei-010-6512-3456 pending")
    P("phone_cn_landline", "profile_address", "zh", {"address": "北京市朝阳区建国路88号 客户电话010-6512 3456"}, kind="branch.profile")
    hk = [("+852 9123 4567", "plus852_mobile"), ("9123 4567", "bare_mobile"), ("2123 4567", "bare_landline"),
          ("852-6123-4567", "852_dashes"), (FULLWIDTH("5123 4567"), "fullwidth"), ("(852) 5123 4567", "parens"),
          ("9l23 4567", "letters")]
    for i, (text, name) in enumerate(hk):
        phone("phone_hk", text, name, str, i)
    uk = [("07911 123456", "mobile"), ("+44 7911 123456", "plus44_mobile"), ("020 7946 0018", "london"),
          ("+44 (0)161 496 0000", "plus44_trunk"), ("0161 496 0000", "manchester"), ("07700 900123", "drama_range"),
          ("0７911 １２３４５６", "half_fullwidth")]
    for i, (text, name) in enumerate(uk):
        phone("phone_uk", text, name, str, i)
    intl = [("+1 415 555 2671", "us"), ("+65 9123 4567", "singapore"), ("+49 30 901820", "germany"),
            ("001-415-555-2671", "us_00"), ("+81 3 1234 5678", "japan")]
    for i, (text, name) in enumerate(intl):
        phone("phone_intl", text, name, str, i)
    D("messaging_id", "qq", "zh", "客户QQ 12345678")
    D("messaging_id", "qq_long", "en", "QQ: 2345678901")
    D("messaging_id", "wechat", "zh", "客户微信号 zhangwei_1990，已加好友")
    D("messaging_id", "wechat_en", "en", "Client WeChat ID: wxid_abc123xyz")

    # PRC resident ids
    id_disguises: list[tuple[str, Callable[[str], str]]] = [
        ("plain", str), ("spaced", lambda s: f"{s[:6]} {s[6:14]} {s[14:]}"), ("fullwidth", FULLWIDTH),
        ("arabic_indic", ARABIC_INDIC), ("lowercase_x", lambda s: s.lower()), ("dashes", lambda s: f"{s[:6]}-{s[6:14]}-{s[14:]}"),
        ("letters_O", lambda s: s.replace("0", "O")), ("cjk", CJK), ("zero_width", lambda s: s[:9] + "\u200b" + s[9:]),
        ("double_space", lambda s: f"{s[:6]}  {s[6:14]}  {s[14:]}"), ("circled", CIRCLED), ("math_bold", MATH_BOLD),
    ]
    id_tpl = ["ID card {} on file", "客户身份证号：{}", "Holder's national ID {}", "身份证{}已复印"]
    for i, (name, fmt) in enumerate(id_disguises):
        D("national_id", name, "zh" if i % 2 else "en", id_tpl[i % 4].format(fmt(PRC_IDS[i % len(PRC_IDS)])))
    D("national_id", "x_suffix", "zh", "身份证 11010519491231002X")
    D("national_id", "old_15_digits", "zh", "旧身份证号 110101900307123")
    D("national_id", "bad_checksum", "en", "ID 110101199003071234")
    P("national_id", "split_fields", "zh", {"title": "开户 110101 1990", "description": "0307 1233 已核验"})
    P("national_id", "service_id", "en", {"service_id": "id-11010519491231002x"})
    P("national_id", "fee_label", "zh", {"fees": ["证件11010119900307123" + PRC_IDS[0][-1]]})

    # Hong Kong ids, UK NI numbers, passports
    for i, h in enumerate(HKIDS):
        D("hk_id", "plain", "en", f"HKID {h} verified")
    D("hk_id", "fullwidth_parens", "zh", "香港身份证 " + HKIDS[0].replace("(", "（").replace(")", "）"))
    D("hk_id", "lowercase", "en", "hkid " + HKIDS[1].lower())
    D("hk_id", "no_parens", "en", "HK ID " + HKIDS[2].replace("(", "").replace(")", ""))
    D("hk_id", "fullwidth_digits", "zh", "身份证 " + FULLWIDTH(HKIDS[3]))
    D("hk_id", "spaced", "en", "HKID " + HKIDS[4][0] + " " + HKIDS[4][1:7] + " " + HKIDS[4][7:])
    ninos = ["AB 12 34 56 C", "JG103759A", "ZR 83 92 11 D", "ce 12 34 56 b", "TW-98-76-54-A", "PW 123456 B"]
    for i, n in enumerate(ninos):
        D("uk_nino", ["plain", "compact", "spaced", "lowercase", "dashes", "half_spaced"][i], "en", f"NI number {n} on file")
    D("uk_nino", "fullwidth", "en", "NINO " + FULLWIDTH("AB 12 34 56 C").replace("AB", "ＡＢ").replace("C", "Ｃ"))
    passports = [("E12345678", "cn_e"), ("EA1234567", "cn_ea"), ("G23456789", "cn_g"), ("K12345678", "hk_k"),
                 ("H87654321", "hk_h"), ("M1234567890", "mainland_permit")]
    for i, (p, name) in enumerate(passports):
        D("passport", name, "zh" if i % 2 else "en", ["Passport {} scanned", "护照号码 {}"][i % 2].format(p))
    D("passport", "uk_9_digits", "en", "UK passport 533380006 copied")
    D("passport", "us_letter", "en", "US passport A12345678 copied")
    D("passport", "fullwidth", "zh", "护照 " + FULLWIDTH("E12345678").replace("E", "Ｅ"))
    D("passport", "keyword_only", "en", "Passport no. X1234567 held at counter")

    # payment cards, IBANs, account numbers
    card_disguises: list[tuple[str, Callable[[str], str]]] = [
        ("plain", str), ("spaced", lambda s: " ".join(s[k:k + 4] for k in range(0, len(s), 4))),
        ("double_space", lambda s: "  ".join(s[k:k + 4] for k in range(0, len(s), 4))),
        ("slashes", lambda s: "/".join(s[k:k + 4] for k in range(0, len(s), 4))),
        ("fullwidth", FULLWIDTH), ("zero_width", lambda s: "\u200b".join(s[k:k + 4] for k in range(0, len(s), 4))),
        ("dashes", lambda s: "-".join(s[k:k + 4] for k in range(0, len(s), 4))), ("letters_O", lambda s: s.replace("0", "O")),
        ("arabic_indic", ARABIC_INDIC), ("cjk", CJK), ("dots", lambda s: ".".join(s[k:k + 4] for k in range(0, len(s), 4))),
        ("nbsp", lambda s: "\u00a0".join(s[k:k + 4] for k in range(0, len(s), 4))),
    ]
    card_tpl = ["Card {} blocked", "客户银行卡号{}挂失", "Refund to card {}", "卡号：{}"]
    for i, (name, fmt) in enumerate(card_disguises):
        D("card_number", name, "zh" if i % 2 else "en", card_tpl[i % 4].format(fmt(CARDS[i % len(CARDS)])))
    P("card_number", "service_id", "en", {"service_id": "card-4111-1111-1111-1111"})
    P("card_number", "split_fields", "en", {"title": "Card 4111 1111", "description": "1111 1111 replaced"})
    P("card_number", "amex_grouping", "en", {"description": "Amex 3782 822463 10005 on file"})
    for i, b in enumerate(IBANS):
        D("iban", "spaced" if i % 2 else "compact", "en", f"Pay to IBAN {_spaced_iban(b) if i % 2 else b}")
    D("iban", "lowercase", "en", "iban " + IBANS[0].lower())
    D("iban", "fullwidth", "en", "IBAN " + FULLWIDTH(IBANS[1]).replace("DE", "ＤＥ"))
    accounts = [("账号 6217 0012 3456 7890 123", "cn_spaced"), ("acct 1100 1234 5678 9012", "cn_acct"),
                ("HSBC account 012-345678-001", "hk_dashes"), ("sort code 20-00-00 account 55779911", "uk_sort_code"),
                ("户名张伟 账号6222021234567890", "cn_name_and_account"), ("A/C no. 0123 4567 8901", "a_c"),
                ("收款账户：１１００ １２３４ ５６７８ ９０１", "fullwidth"), ("account one one zero zero one two three four five six seven eight", "words"),
                ("账户尾号 1234，全号 622848 0012 3456 7890", "partial_and_full"), ("acct 12345678", "short_8")]
    for text, name in accounts:
        D("account_number", name, "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en", text)

    # e-mail addresses
    emails = [
        ("plain", "en", "write to zhang.wei@example.com"), ("at_words", "en", "zhangwei at qq dot com"),
        ("bracket_at", "en", "zhangwei[at]qq.com"), ("paren_at_dot", "en", "zhangwei(at)qq(dot)com"),
        ("brace_at", "en", "li.na{at}163{dot}com"), ("angle_at", "en", "wangfang<at>gmail<dot>com"),
        ("caps_words", "en", "ZHANGWEI AT EXAMPLE DOT COM"), ("fullwidth_at", "zh", "邮箱 zhangwei＠qq.com"),
        ("small_at", "en", "mail zhangwei﹫qq.com"), ("cyrillic", "en", "zhаngwei@qq.com"),
        ("cyrillic_domain", "en", "li@gmаil.соm"), ("greek", "en", "lina@οutlook.com"), ("idn", "zh", "张伟@例子.中国"),
        ("idn_local", "zh", "联系 张伟@qq.com"), ("spaces", "en", "zhang wei @ qq.com"), ("spaced_dots", "en", "zhangwei @ qq . com"),
        ("homoglyph_dot", "en", "zhangwei@qq․com"), ("ideographic_dot", "zh", "邮箱zhangwei@qq。com"),
        ("no_tld", "en", "zhangwei@qqmail"), ("hash", "zh", "邮箱 zhangwei#163.com"), ("provider_word_at", "en", "email zhangwei at 163.com"),
        ("name_word_at", "en", "mail zhang.wei at example.com"), ("aite", "zh", "邮箱 zhangwei艾特qq点com"),
        ("fullwidth_all", "zh", "邮箱：ｚｈａｎｇｗｅｉ＠ｑｑ．ｃｏｍ"), ("math_letters", "en", "𝐳𝐡𝐚𝐧𝐠@𝐪𝐪.𝐜𝐨𝐦"),
        ("zero_width", "en", "zhang\u200bwei@qq.com"), ("glued_caps", "en", "zhangweiATqqDOTcom"),
        ("combining", "en", "z\u0301hangwei@qq.com"), ("uk", "en", "j.smith@btinternet.com"), ("hk", "en", "chan.taiman@netvigator.com"),
        ("dot_word_only", "en", "lina at outlook dot com"), ("bracket_dot", "en", "lina@outlook[dot]com"),
    ]
    for name, lang, text in emails:
        D("email", name, lang, text)
    P("email", "split_title_description", "en", {"title": "Reply to zhangwei", "description": "@qq.com today"})
    P("email", "service_id", "en", {"service_id": "zhangwei.at.qq.com.vip"})
    P("email", "profile_url", "en", {"contact_url": "https://bank.example/u/zhang.wei@qq.com"}, kind="branch.profile")
    P("email", "profile_url_percent", "en", {"contact_url": "https://bank.example/u/zhang.wei%40qq.com"}, kind="branch.profile")
    P("email", "issuer", "en", {"issuer": "Agent li.na@163.com", "ownership": "consigned", "category": "wealth"})
    P("email", "withdraw_reason", "zh", {"reason": "客户邮箱 wangfang@126.com 要求撤销"}, kind="service.withdraw")

    # licence plates
    for text, name, lang in [("京A·12345", "cn_dot", "zh"), ("粤B·D12345", "cn_new_energy", "zh"), ("沪A 12345", "cn_space", "zh"),
                             ("苏E-12345", "cn_dash", "zh"), ("浙A１２３４５", "cn_fullwidth", "zh"), ("川A一二三四五", "cn_numerals", "zh"),
                             ("customer car AB12 CDE parked in bay 3", "uk", "en"), ("vehicle reg. XY 8888 blocked the ramp", "hk", "en"),
                             ("客户车牌 京N·A1234", "cn_keyword", "zh")]:
        D("licence_plate", name, lang, text)

    # more numbers in more places and shapes
    more = [
        ("phone_cn_mobile", "fullwidth_plus", "zh", "客户电话：＋８６ １３８ ００１３ ８０００"),
        ("phone_cn_mobile", "en_dash_plus", "en", "Mobile +86–139–1234–5678"),
        ("phone_cn_mobile", "dots_plus", "en", "Tel. +86.186.1234.5678"),
        ("phone_cn_mobile", "slash_spaces", "en", "Client: 177 / 1234 / 5678"),
        ("phone_cn_mobile", "hyphen_pairs", "en", "contact 13-80-01-38-00-0"),
        ("phone_cn_mobile", "brackets_cn", "zh", "手机【138】0013【8000】"),
        ("phone_cn_mobile", "cjk_spaced", "zh", "客户号码 一三八 零零一三 八零零零"),
        ("phone_cn_mobile", "cjk_fullwidth_mix", "zh", "电话１３８零零１３８０００"),
        ("phone_cn_mobile", "arabic_indic_grouped", "en", "Mobile ١٣٨ ٠٠١٣ ٨٠٠٠"),
        ("phone_cn_mobile", "devanagari_grouped", "en", "Phone १३९ १२३४ ५६७८"),
        ("phone_cn_mobile", "superscript_grouped", "en", "ph ¹³⁸ ⁰⁰¹³ ⁸⁰⁰⁰"),
        ("phone_cn_mobile", "subscript", "en", "ph ₁₃₈₀₀₁₃₈₀₀₀"),
        ("phone_cn_mobile", "paren_digits", "en", "ph ⑴⑶⑻⑴⑵⑶⑷⑸⑹⑺⑻"),
        ("phone_cn_mobile", "dingbat_circled", "en", "ph ➊➌➑➊➋➌➍➎➏➐➑"),
        ("phone_cn_mobile", "math_monospace", "en", "ph 𝟷𝟹𝟾𝟶𝟶𝟷𝟹𝟾𝟶𝟶𝟶"),
        ("phone_cn_mobile", "words_with_digits", "en", "Customer: one 3 eight 0 zero 1 three 8 zero 0 zero"),
        ("phone_cn_mobile", "words_commas", "en", "Ring one, three, eight, zero, zero, one, three, eight, zero, zero, zero"),
        ("phone_cn_mobile", "in_sentence_zh", "zh", "张女士请于明日拨打18612345678确认贷款"),
        ("phone_cn_mobile", "url_style", "en", "see wa.me/8613800138000"),
        ("phone_cn_landline", "cjk_financial", "zh", "座机 零壹零 陆伍壹贰 叁肆伍陆"),
        ("phone_cn_landline", "plus_glued", "en", "tel+862165123456"),
        ("phone_cn_landline", "extension", "en", "Home phone 020-8765 4321 ext. 12"),
        ("phone_hk", "glued_han", "zh", "客户香港电话91234567"),
        ("phone_hk", "words", "en", "HK mobile nine one two three four five six seven"),
        ("phone_uk", "spaced_groups", "en", "UK mobile 07911  123  456"),
        ("phone_uk", "words", "en", "ring oh seven nine one one one two three four five six"),
        ("phone_intl", "fullwidth_plus", "en", "＋１ ４１５ ５５５ ２６７１"),
        ("phone_intl", "whatsapp", "en", "WhatsApp +65 9123 4567"),
        ("card_number", "comma_space", "en", "card 4111, 1111, 1111, 1111"),
        ("card_number", "mastercard_2", "en", "Mastercard 2221 0000 0000 0009"),
        ("card_number", "diners_14", "en", "Diners 3622 720627 1667"),
        ("card_number", "cjk_spaced", "zh", "卡号 六二二二 零二一二 三四五六 七八九零 一二八"),
        ("card_number", "words", "en", "card four one one one one one one one one one one one one one one one"),
        ("iban", "dashes", "en", "IBAN GB82-WEST-1234-5698-7654-32"),
        ("iban", "dots", "en", "IBAN NL91.ABNA.0417.1643.00"),
        ("national_id", "fee_words_zh", "zh", "身份证号码：一一零一零五 一九四九一二三一 零零二X"),
        ("national_id", "superscript", "en", "ID ¹¹⁰¹⁰¹¹⁹⁹⁰⁰³⁰⁷¹²³³"),
        ("hk_id", "two_letters", "en", "HKID " + HKIDS[3]),
        ("hk_id", "in_sentence", "zh", "客户以香港身份证" + HKIDS[1] + "开户"),
        ("uk_nino", "lowercase_compact", "en", "nino jg103759a"),
        ("passport", "travel_permit", "zh", "港澳通行证 H1234567890"),
        ("passport", "lowercase", "en", "passport e12345678"),
        ("account_number", "uk_iban_like", "en", "sort code 40-47-84 a/c 70872490"),
        ("account_number", "hk_bank_acct", "zh", "客户账户 004-123-456789-001"),
        ("email", "mailto", "en", "reply mailto:li.na@example.org"),
        ("email", "upper", "en", "LI.NA@EXAMPLE.ORG"),
        ("email", "dot_words_both", "en", "wang dot fang at gmail dot com"),
        ("email", "bracket_spaced", "en", "wang.fang [at] hotmail [dot] com"),
        ("email", "sina", "zh", "邮箱 zhang_wei(at)sina.cn"),
        ("email", "idn_domain", "zh", "用户lina@邮件.中国"),
        ("email", "fullwidth_dot", "zh", "lina@163．com"),
        ("email", "hash_fullwidth", "zh", "邮箱 lina＃163.com"),
        ("licence_plate", "cn_shandong", "zh", "鲁B·12345"),
        ("licence_plate", "cn_new_energy_glued", "zh", "车辆京AD12345已登记"),
        ("licence_plate", "uk_compact", "en", "registration KM12AKK, silver car"),
        ("messaging_id", "line", "en", "Line ID: chan_tm88"),
        ("messaging_id", "qq_zh", "zh", "QQ号 987654321"),
    ]
    for category, name, lang, text in more:
        D(category, name, lang, text)
    P("phone_cn_mobile", "split_three_fees", "zh", {"fees": ["客户138", "0013", "8000"]})
    P("phone_cn_mobile", "split_service_id_title", "en", {"service_id": "vip-138", "title": "0013 8000 direct"})
    P("phone_cn_mobile", "split_title_fee", "en", {"title": "Agent 150", "fees": ["1234 5678 line"]})
    P("phone_cn_mobile", "profile_name_address", "zh", {"name": "客户经理 186", "address": "1234 5678 北京市东城区"}, kind="branch.profile")
    P("national_id", "issuer", "zh", {"issuer": "代理人身份证" + PRC_IDS[2], "ownership": "consigned", "category": "wealth"})
    P("card_number", "fee_label", "en", {"fees": ["refund to 5500 0000 0000 0004"]})
    P("email", "fee_label", "en", {"fees": ["statements to li.na@163.com"]})
    P("email", "equipment_id", "en", {"equipment": ["kiosk-zhangwei.at.163.com"]}, kind="service.status")
    P("email", "profile_name", "en", {"name": "Branch (manager zhang.wei@qq.com)"}, kind="branch.profile")
    P("phone_cn_landline", "profile_public_number_unknown", "en", {"address": "Call 021-6888 1234"}, kind="branch.profile")

    # names next to birth dates or addresses, customers by name
    for text, name, lang in [
        ("Customer Wang Fang, born 1985-06-12, opened a deposit.", "name_born", "en"),
        ("Mr Chan Tai Man DOB 12/03/1978 requested a callback", "name_dob", "en"),
        ("张伟，1990年3月7日出生，已开户。", "zh_name_birth", "zh"),
        ("客户李娜生日：1988-08-08", "zh_customer_birthday", "zh"),
        ("Ms Li Na (date of birth 8 August 1988) visited", "name_date_of_birth", "en"),
        ("王先生 出生日期 1975.10.01", "zh_honorific_birth", "zh"),
        ("Deliver statements to Mr Li Lei, Flat 12B, 8 Harbour Road, Wan Chai", "name_flat", "en"),
        ("客户王芳住朝阳区建国路88号3单元502室", "zh_customer_lives", "zh"),
        ("Mrs Smith of 221B Baker Street, London asked for a refund", "name_street", "en"),
        ("陈女士家住海淀区中关村大街1号院5号楼", "zh_honorific_home", "zh"),
        ("客户姓名：刘洋", "zh_customer_named", "zh"),
        ("Account holder: John Smith", "account_holder_named", "en"),
        ("Cardholder Chan Siu Ming requested a new card", "cardholder_named", "en"),
        ("储户赵敏于2026-01-05办理挂失", "zh_depositor_named", "zh"),
        ("Dr Wong, date of birth 1960-02-29, requested a statement", "dr_birth", "en"),
        ("借款人孙丽，家住天河区", "zh_borrower_home", "zh"),
    ]:
        D("named_customer", name, lang, text)


def legitimate(c: Corpus) -> None:
    L = lambda category, lang, text, disguise="plain": c.desc(False, category, disguise, lang, text)  # noqa: E731
    F = lambda category, lang, fields, kind="service.offer", disguise="plain": c.add(False, category, disguise, lang, fields, kind)  # noqa: E731
    # the texts the issue measured as wrongly refused
    for text in ("2026-01-01", "2026-01-01 to 2026-03-31", "31.12.2026", "20260101", "0900-1700", "09.00-17.00",
                 "1000000.00 CNY", "20000-50000 CNY", "50000000 CNY", "Hotline 400-820-8888", "Product code WM-2026-0042-A"):
        L("issue_measured", "en", text)
    # dates and periods
    dates = ["Promotion runs 2026-01-01 to 2026-03-31.", "Valid until 31.12.2026.", "Effective 20260101.",
             "Subscription period 2026/01/01-2026/06/30.", "From 01/02/2026 the fee changes.", "Rates reviewed on 2026.03.31.",
             "Term: 2026-01-15 - 2027-01-14.", "Maturity date 20270115; value date 20260115.", "Offer valid 1.1.2026-31.3.2026.",
             "2025-2026 annual report available at the counter.", "Fiscal year 2025/2026.", "Applies to contracts signed 2024-07-01 or later.",
             "Closed on 2026-02-16 and 2026-02-17 for the Spring Festival.", "Next review: 2026-06-30, then 2026-12-31.",
             "Q1 2026 (2026-01-01 - 2026-03-31)", "Issue date 2026-03-01 ~ 2026-03-07.", "Period 202601-202612.",
             "Dates: 2026-05-01, 2026-05-02, 2026-05-03.", "Events 2026-01-10 2026-01-17 2026-01-24."]
    for d in dates:
        L("date", "en", d)
    zh_dates = ["活动时间：2026年1月1日至2026年3月31日", "有效期至2026-12-31", "起息日20260115，到期日20270115",
                "募集期2026/03/01-2026/03/07", "二〇二六年一月一日起执行新费率", "春节期间（2026-02-16至2026-02-22）暂停营业",
                "本产品成立日为2026.01.15", "2025—2026年度业绩报告", "适用于2024年7月1日后签订的合同", "每月1日、15日发放",
                "第一季度（2026-01-01 - 2026-03-31）", "认购期：2026年3月1日—2026年3月7日", "封闭期 2026/01/15 至 2026/07/14"]
    for d in zh_dates:
        L("date", "zh", d)
    # hours
    hours = ["Open 0900-1700 Monday to Friday.", "Counter hours 09.00-17.00, Saturday 10.00-15.00.", "Hours: 0830-1200 1330-1700.",
             "ATM service 0000-2400.", "Opening hours 09:00-17:00, Saturday 10:00-15:00", "Safe deposit access 1000-1600 weekdays.",
             "Lunch break 1200-1330.", "Mon-Fri 9.00-17.30; Sat 9.30-12.30", "Evening counter 1800-2100 on Thursdays.",
             "Appointments 0930 - 1130 and 1400 - 1630."]
    for h in hours:
        L("hours", "en", h)
    zh_hours = ["营业时间：周一至周五 9:00-17:00", "对公业务 0900-1630", "营业时间09.00-17.00，周六10.00-15.00",
                "午休时间12:00-13:30", "自助银行 0000-2400 全天开放", "周末及节假日 1000-1600 营业", "夜间柜台 1800-2100（每周四）"]
    for h in zh_hours:
        L("hours", "zh", h)
    # amounts
    amounts = ["Minimum investment 1000000.00 CNY.", "Deposits of 20000-50000 CNY earn 2.15%.", "Daily limit 50000000 CNY.",
               "Minimum 1,000,000.00.", "Up to CNY 10,000,000 per customer.", "RMB 5,000,000 minimum subscription.",
               "HK$ 1,000,000 minimum balance.", "USD 1,000,000.00 and above.", "GBP 250,000 cap per account.",
               "Loans from 100000 to 5000000 CNY.", "Fee CNY 1,234,567.89 per year", "Amount up to 9999999",
               "Single transfers above ¥50000000 need approval.", "Credit line 30000000 RMB.", "Limit 2,000,000.00 USD per day.",
               "Threshold EUR 1 000 000", "Deposits CNY 1,000,000-5,000,000: 2.35% p.a.", "Premium tier from 10000000 HKD.",
               "Balance 12345678.90 CNY required for the private bank.", "Cheques up to $ 25,000,000 cleared same day.",
               "50000000yuan facility for SMEs", "Loan amount 3000000.00-8000000.00 CNY"]
    for a in amounts:
        L("amount", "en", a)
    zh_amounts = ["起购金额50,000,000元", "单笔限额人民币5000000元", "最低存款 1000000.00 元", "贷款额度 20000-50000 元",
                  "私人银行门槛：金融资产600万元以上", "单日累计转账限额人民币10,000,000元", "起存金额50000元，利率2.15%",
                  "大额存单起点金额 200,000 元", "授信额度 30000000 元", "年费 ¥300，首年免年费", "跨行转账手续费每笔 2 元",
                  "保证金 ￥10,000,000.00", "港币 5,000,000 起", "美元 1,000,000.00 以上"]
    for a in zh_amounts:
        L("amount", "zh", a)
    # rates and percentages
    for t in ("Rate 3.85% p.a. for deposits of CNY 50,000 or more.", "Annualised yield 2.1500%.", "Management fee 0.60% per year.",
              "Spread 150 bp over LPR.", "Performance fee 20% above 6%.", "Benchmark 3.10%-3.90%."):
        L("percentage", "en", t)
    for t in ("年化收益率3.85%", "业绩比较基准 2.60%-3.20%", "管理费率0.50%/年", "利率上浮50个基点", "赎回费 0.125%"):
        L("percentage", "zh", t)
    # product codes, licences and registration numbers
    codes = ["Product code WM-2026-0042-A.", "Registration code Z7001021000123 (China wealth management registry).",
             "Financial licence B0001H111000001.", "ISIN CNE100000296.", "Fund code 000001.", "Product CWFXJ2026A, risk R3.",
             "Issuer USCC 91310000MA1FL5XY2K.", "Series FX-2026-Q1-0005.", "Scheme ref LN2026-00042.", "SKU CRD-GOLD-2026-001.",
             "Plan SAV-12M-2026-03.", "Code R2-WM-20260042-B.", "Contract template LOAN/2026/0042.", "Batch 2026-0042-07.",
             "Notice No. 2026-014.", "Circular CBIRC [2023] No. 12.", "Model ATM-NCR-6684, firmware 3.2.1.", "Ticket INC-20260042",
             "Form ZH-KH-2026-001 required.", "Certificate ISO 9001:2015."]
    for t in codes:
        L("product_code", "en", t)
    for t in ("产品代码：WM-2026-0042-A", "理财产品登记编码 Z7001021000123", "金融许可证号 B0001H111000001", "基金代码 000001",
              "产品编号CWFXJ2026A，风险等级R3", "发行机构统一社会信用代码 91310000MA1FL5XY2K", "批次号 2026-0042-07",
              "银保监发〔2023〕12号文", "合同编号 LOAN/2026/0042", "产品系列 FX-2026-Q1-0005"):
        L("product_code", "zh", t)
    # the bank's own published numbers (declared in the profile)
    for t in ("Call our hotline 400-820-8888.", "Hotline 400 820 8888, 24 hours.", "Card services: 95588.",
              "Branch switchboard +86 10 6512 0000.", "Call 010-6512 0000 to book.", "Hong Kong hotline +852 2233 3000.",
              "HK customers call 2233 3000.", "UK customers: 0345 740 4404.", "From abroad dial +86 400 820 8888.",
              "Report a lost card: 4008208888 or 95588.", "Hotline (010) 6512-0000, Monday to Friday."):
        L("public_number", "en", t)
    for t in ("客服热线400-820-8888", "全国统一客服电话95588", "咨询电话：010-6512 0000", "预约请致电 (010) 65120000",
              "境外请拨打 +86-400-820-8888", "香港客户服务热线 2233 3000", "挂失电话：4008208888"):
        L("public_number", "zh", t)
    # addresses and places
    for t in ("No. 1 Zhongguancun Street, Haidian District, Beijing 100080", "Building 3, Room 1205, 88 Jianguo Road",
              "Shop 12, G/F, 88 Queen's Road Central, Hong Kong", "1 Churchill Place, London E14 5HP",
              "Unit 1205-1208, 12/F, Tower 2, Times Square", "Postal code 100080", "Floor 2, No. 18 Jianguomen Inner Street",
              "Nearest metro: Line 1 and Line 2, exit B.", "Parking on levels B1-B3.", "Counters 1-12 on the ground floor."):
        L("address", "en", t)
    for t in ("北京市海淀区中关村大街1号", "上海市浦东新区陆家嘴环路1000号恒生银行大厦1楼", "广州市天河区珠江新城花城大道85号",
              "深圳市福田区深南大道7088号", "邮编100080", "地铁1号线、2号线建国门站B口", "一楼大厅设有无障碍通道",
              "香港中环皇后大道中88号地下12号铺"):
        L("address", "zh", t)
    # ordinary service texts
    en_texts = [
        "Cash withdrawal at the counter and ATMs; larger amounts by appointment.", "Foreign exchange for 18 currencies.",
        "Personal loans with terms of 12, 24 or 36 months.", "Fixed deposits: 3-month, 6-month, 1-year, 2-year and 3-year terms.",
        "Wealth management products rated R1 to R5; suitability assessment required.", "Email us via the mobile app.",
        "Follow us @BankExample on Weibo for updates.", "Details at www.bank.example.com/wealth.", "Free Wi-Fi in the lobby.",
        "Wheelchair access via the side entrance.", "Priority counter for seniors over 60.", "Sign language service on Tuesdays.",
        "Safe deposit boxes in 3 sizes: S, M and L.", "Cheque clearing within 1 business day.", "Open an account with your ID card or passport.",
        "Bring your passport and visa when opening an account.", "Customer service is available in English and Cantonese.",
        "Large-print statements on request.", "Guide dogs welcome.", "Insurance sold on behalf of Example Life Insurance Co., Ltd.",
        "Gold bars of 10 g, 20 g, 50 g, 100 g and 1 kg.", "See item 1, 2, 3 and 4 of the fee schedule.", "Version 1.2.3 of the terms applies.",
        "Queue number shown on screen 2.", "Mortgage pre-approval within 5 working days.", "Student accounts: no fee until age 25.",
        "Call us or visit the branch to book.", "We are closed on public holidays.", "Contact your relationship manager at the branch.",
        "The hotline number is printed on the back of your card.", "Room 101 is the quiet room for advisory meetings.",
        "Our ATMs accept UnionPay, Visa and Mastercard.", "Three counters for business customers, two for personal customers.",
        "One-to-one advisory by appointment.", "Two free withdrawals per month, then CNY 2 each.", "Interest paid on the 21st of each month.",
        "Retail bonds: 3-year and 5-year, coupon 2.5% and 2.8%.", "SWIFT code BKCHCNBJ110.", "Please take a ticket at the entrance.",
        "Foreign currency cash: USD, EUR, GBP, JPY, HKD, AUD.", "Online banking token replacement costs CNY 20.",
        "Minors need a guardian to open an account.", "Remittance to Hong Kong arrives within 1-2 working days.",
        "Lockers 1 to 48 for customers' belongings.", "Wi-Fi network BANK-GUEST, no password.", "QR code payments at all counters.",
    ]
    for t in en_texts:
        L("service_text", "en", t)
    zh_texts = [
        "柜台及自助设备均可办理现金取款，大额请提前预约。", "外币兑换，支持18种货币。", "个人贷款期限12个月、24个月或36个月。",
        "定期存款：三个月、六个月、一年、二年、三年。", "理财产品风险等级R1至R5，购买前须进行风险评估。", "请通过手机银行联系我们。",
        "大堂提供免费无线网络。", "侧门设有无障碍通道。", "60岁以上老年客户可使用爱心窗口。", "周二提供手语服务。",
        "保管箱有大、中、小三种规格。", "支票1个工作日内清算。", "凭本人有效身份证件开户。", "代销保险产品，由示例人寿保险股份有限公司承保。",
        "金条规格：10克、20克、50克、100克、1千克。", "一对一理财顾问服务，需预约。", "每月前两笔取款免费，之后每笔2元。",
        "每月21日付息。", "储蓄国债：三年期和五年期，票面利率2.5%和2.8%。", "星期一至星期五营业，节假日休息。",
        "第一、二、三号窗口办理对公业务。", "五一假期期间正常营业。", "二楼为贵宾理财中心。", "请在入口处取号。",
        "未成年人开户需监护人陪同。", "汇款至香港1-2个工作日到账。", "扫码支付适用于所有柜台。", "三个柜台办理对公业务，两个办理个人业务。",
        "发行机构：易方达基金管理有限公司", "本行客服热线印在银行卡背面。", "请携带护照和签证办理开户。", "支持银联、Visa及万事达卡。",
        "提供中英文及粤语服务。", "新客户首年免年费。", "网银盾更换费20元。", "本产品为非保本浮动收益型。",
    ]
    for t in zh_texts:
        L("service_text", "zh", t)
    more_en = [
        "Q2 2026 results published on 2026-08-28.", "H1 2026 dividend: CNY 0.25 per share.", "Offer for 2026/27 academic year.",
        "Open 9:00 a.m. - 5:00 p.m., 24/7 ATM.", "Deposit rates from 1.35% to 2.15% depending on term.",
        "Minimum CNY 1,000 for the 3-month term; CNY 50,000 for 5 years.", "Early withdrawal: 0.25% interest on the amount withdrawn.",
        "Wire transfers before 15:30 settle the same day.", "Coins exchanged up to 500 pieces per day.",
        "The branch moved on 2025-11-03 to No. 20 Jianguo Road.", "New card fee waived until 2026-06-30.",
        "Loan-to-value up to 70%; term up to 30 years.", "Fund A (000001) and Fund B (110022) available at the counter.",
        "Bond 2026 Series 3, code 019547, coupon 2.35%.", "Transfers above 50,000 CNY require a second signature.",
        "Foreign exchange quotes updated every 10 minutes from 09:30 to 16:30.", "Open on Saturdays from 2026-03-07.",
        "Appointment slots 09:00, 10:30, 14:00 and 15:30.", "Travel insurance from CNY 30 per trip.",
        "Phone banking is available 24 hours.", "The ATM accepts notes of 10, 20, 50 and 100 yuan.",
        "Maximum 5 transactions per day, CNY 200,000 in total.", "Currency pairs: USD/CNY, EUR/CNY, HKD/CNY, GBP/CNY.",
        "Our SWIFT code is BKCHHKHHXXX.", "Office hours 0900 - 1730, lunch 1200 - 1300.",
        "Rates valid 2026-01-01 ~ 2026-06-30.", "Product WM2026-Q3-017, 182 days, R2.", "Terms and conditions v2026.1 apply.",
        "Branch code 0042, region code CN-BJ.", "Queue tickets A001-A999 for counters 1-6.",
        "Safe deposit box rent: CNY 300, 500 or 800 a year.", "Free parking for 2 hours with validation.",
        "Card replacement within 7 working days.", "Housing provident fund loans up to CNY 1,200,000.",
        "Annual percentage rate 4.35%-4.90%.", "Founded in 1912; this branch opened in 1998.",
    ]
    for t in more_en:
        L("service_text", "en", t, disguise="more")
    more_zh = [
        "2026年第二季度业绩于2026年8月28日发布。", "2026/27学年留学贷款开放申请。", "营业时间上午9:00至下午5:00，自助银行7x24小时。",
        "定期存款利率1.35%至2.15%，按期限不同。", "三个月期起存1000元，五年期起存5万元。", "提前支取按活期利率0.25%计息。",
        "15:30前汇出的款项当日到账。", "硬币兑换每日限500枚。", "本网点已于2025年11月3日迁至建国路20号。",
        "新卡工本费减免至2026年6月30日。", "贷款成数最高七成，期限最长30年。", "基金A（000001）、基金B（110022）在柜台发售。",
        "2026年第三期储蓄国债，代码019547，票面利率2.35%。", "单笔转账超过5万元需双人复核。", "外汇牌价09:30至16:30每10分钟更新。",
        "自2026年3月7日起周六营业。", "预约时段：09:00、10:30、14:00、15:30。", "境外旅行保险每次30元起。",
        "电话银行24小时服务。", "存取款一体机支持10元、20元、50元、100元面额。", "每日最多5笔交易，累计20万元。",
        "货币对：美元/人民币、欧元/人民币、港币/人民币。", "网点编号0042。", "叫号范围A001-A999，对应1-6号柜台。",
        "保管箱年租金300元、500元、800元三档。", "凭小票免费停车2小时。", "补卡7个工作日内办结。",
        "公积金贷款额度最高120万元。", "贷款年利率4.35%-4.90%。", "本行创立于1912年，本网点开业于1998年。",
        "依据《中华人民共和国个人信息保护法》第十三条处理信息。", "二〇二五年度消费者权益保护工作报告。",
        "每周一、三、五下午提供理财咨询。", "第三季度（7月1日至9月30日）暂停办理该业务。", "九折优惠活动截止到十二月三十一日。",
    ]
    for t in more_zh:
        L("service_text", "zh", t, disguise="more")
    F("public_number", "en", {"title": "Lost card", "description": "Call 400-820-8888 or, abroad, +86 10 6512 0000"})
    F("public_number", "zh", {"fees": ["热线400-820-8888", "挂失95588"]})
    F("identifiers", "en", {"service_id": "q1-2026-0900-1700"})
    F("identifiers", "en", {"equipment": ["atm-2026-001", "atm-2026-002", "crs-0042"]}, kind="service.status")
    F("fields", "en", {"reason": "Replaced by WM-2026-0042-B from 2026-04-01."}, kind="service.withdraw")

    # every field of every kind, with digits where branches put them
    F("identifiers", "en", {"service_id": "wealth-2026-q1"})
    F("identifiers", "en", {"service_id": "fx-usd-cny"})
    F("identifiers", "en", {"service_id": "term-deposit-20260101"})
    F("identifiers", "en", {"service_id": "loan-20000-50000"})
    F("identifiers", "en", {"service_id": "wm-2026-0042-a"})
    F("identifiers", "en", {"service_id": "z7001021000123"})
    F("identifiers", "en", {"equipment": ["atm-1", "atm-2", "crs-2026-01", "vtm-0042"]}, kind="service.status")
    F("identifiers", "en", {"service_id": "safe-box-2026", "equipment": ["locker-01-48"]}, kind="service.status")
    F("identifiers", "en", {"region": "CN-BJ-110105"}, kind="branch.profile")
    F("identifiers", "en", {"region": "HK-HCW"}, kind="branch.profile")
    F("identifiers", "en", {"region": "GB-LND"}, kind="branch.profile")
    F("identifiers", "en", {"contact_url": "https://www.bank.example/branches/110105/20260101"}, kind="branch.profile")
    F("identifiers", "en", {"contact_url": "https://bank.example/wealth/WM-2026-0042-A"}, kind="branch.profile")
    F("identifiers", "en", {"contact_url": "https://mastodon.example/@bankexample"}, kind="branch.profile")
    F("fields", "en", {"fees": ["Annual fee 2026", "Transfer above CNY 50,000", "Express (within 2 hours)"]})
    F("fields", "zh", {"fees": ["年费", "跨行转账手续费", "加急费（2小时内）", "账户管理费"]})
    F("fields", "en", {"issuer": "Example Asset Management Co., Ltd. (USCC 91310000MA1FL5XY2K)", "ownership": "consigned", "category": "wealth"})
    F("fields", "zh", {"issuer": "示例基金管理有限公司", "ownership": "consigned", "category": "wealth"})
    F("fields", "en", {"reason": "Product matured on 2026-03-31."}, kind="service.withdraw")
    F("fields", "zh", {"reason": "产品已于2026年3月31日到期"}, kind="service.withdraw")
    F("fields", "en", {"name": "Jianguomen Sub-branch 2", "address": "No. 18 Jianguomen Inner Street, Dongcheng District, Beijing 100005"}, kind="branch.profile")
    F("fields", "zh", {"name": "建国门支行", "address": "北京市东城区建国门内大街18号 邮编100005 电话010-6512 0000"}, kind="branch.profile")
    F("fields", "en", {"title": "Term deposit 2026", "description": "2026-01-01 to 2026-12-31, CNY 50,000 minimum."})
    F("fields", "en", {"service_id": "savings-2026", "title": "2026 Spring Savings Plan"})
    F("fields", "zh", {"title": "2026年第一期大额存单", "description": "20260101起售，起存金额200000元"})
    F("fields", "en", {"title": "Hotline", "description": "400-820-8888, 24 hours"})


def generate() -> dict[str, Any]:
    corpus = Corpus()
    personal(corpus)
    legitimate(corpus)
    entries = corpus.entries
    return {
        "about": "Disguised personal data (pii: true, must be refused) and legitimate branch texts (pii: false). "
                 "Made up; generated by tools/gen_pii_corpus.py. See tests/test_pii_corpus.py.",
        "context": CONTEXT,
        "counts": {"personal": sum(e["pii"] for e in entries), "legitimate": sum(not e["pii"] for e in entries)},
        "entries": entries,
    }


def dumps(corpus: dict[str, Any]) -> str:
    head = {k: v for k, v in corpus.items() if k != "entries"}
    lines = json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "entries": [\n'
    return lines + ",\n".join("  " + json.dumps(e, ensure_ascii=False) for e in corpus["entries"]) + "\n ]\n}\n"


def main() -> None:
    sys.stdout.write(dumps(generate()))


if __name__ == "__main__":
    main()
