"""The data of the personal-data screening rule (docs/PROTOCOL.md §5.3), frozen.

Everything a validator needs to fold text before screening is listed here by code
point, so the rule never depends on the ``unicodedata`` of the running Python
(its tables change with each Unicode version, and a validity rule that changed
with the interpreter could fork the chain). The lists were taken from Unicode
14.0 (Python 3.11's ``unicodedata.unidata_version``); tests/test_pii.py checks
them against ``unicodedata`` when it is that version. A later Unicode version
changes nothing here unless docs/PROTOCOL.md §5.3 and this file change together.

``python -m tools.gen_vectors --pii-tables`` prints these tables as they appear in
the spec; tests/test_vectors.py checks that the spec shows exactly these.
"""

from __future__ import annotations

UNICODE_VERSION = "14.0.0"

# Refused anywhere in a text (§5.2): C0 controls except tab and line feed, DEL and
# the C1 controls, every format character (general category Cf), and the other
# default-ignorable code points that render as nothing (fillers, unassigned
# default-ignorables, the tag block). Inclusive ranges.
REFUSED_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x0008), (0x000B, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x034F, 0x034F),
    (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891),
    (0x08E2, 0x08E2), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F),
    (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE00FF), (0xE01F0, 0xE0FFF),
)

# Removed before screening (they may decorate a digit or a letter, "1̶" or "1⃣"):
# the combining-mark blocks and the variation selectors. U+034F is refused above.
IGNORED_RANGES: tuple[tuple[int, int], ...] = (
    (0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE00, 0xFE0F),
    (0xFE20, 0xFE2F), (0xE0100, 0xE01EF),
)

# Every decimal digit of Unicode 14.0 (general category Nd): the zero of each set of
# ten. ``zero + k`` is the digit k; all fold to the ASCII digit k.
DIGIT_ZEROS: tuple[int, ...] = (
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66,
    0x0CE6, 0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946,
    0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0,
    0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0,
    0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50,
    0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140,
    0x1E2F0, 0x1E950, 0x1FBF0,
)

# Other digit forms: (first code point, its digit, how many consecutive code points
# continue the sequence one digit up). Superscripts, subscripts, circled,
# parenthesised and dotted digits.
DIGIT_SEQUENCES: tuple[tuple[int, int, int], ...] = (
    (0x00B2, 2, 2), (0x00B9, 1, 1), (0x2070, 0, 1), (0x2074, 4, 6), (0x2080, 0, 10),
    (0x2460, 1, 9), (0x2474, 1, 9), (0x2488, 1, 9), (0x24EA, 0, 1), (0x24F5, 1, 9),
    (0x24FF, 0, 1), (0x2776, 1, 9), (0x2780, 1, 9), (0x278A, 1, 9), (0x1F100, 0, 1),
    (0x1F101, 0, 10),
)

# Chinese numerals, each character one digit (as when a number is read out digit by
# digit). Not 十百千万: those are multipliers, not digits. Folded only two or more in a
# row, or one between two digits (§5.3.3), so that 周六 (Saturday) stays a word.
CJK_DIGITS: dict[str, str] = {
    "〇": "0", "零": "0",
    "一": "1", "壹": "1", "幺": "1", "弌": "1",
    "二": "2", "贰": "2", "貳": "2", "两": "2", "兩": "2", "弍": "2",
    "三": "3", "叁": "3", "叄": "3", "弎": "3",
    "四": "4", "肆": "4",
    "五": "5", "伍": "5",
    "六": "6", "陆": "6", "陸": "6",
    "七": "7", "柒": "7",
    "八": "8", "捌": "8",
    "九": "9", "玖": "9",
}

# Look-alike letters folded to the ASCII letter they imitate (Cyrillic, Greek, and
# a few Latin forms), and look-alike punctuation folded to the ASCII sign.
CONFUSABLE_LETTERS: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "һ": "h",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ɡ": "g",
    "А": "a", "В": "b", "Е": "e", "Ё": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p",
    "С": "c", "Т": "t", "У": "y", "Х": "x", "Ѕ": "s", "І": "i", "Ї": "i", "Ј": "j", "Һ": "h",
    "Ԁ": "d", "Ԛ": "q", "Ԝ": "w", "Ӏ": "l",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k",
    "Μ": "m", "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
    # Latin look-alikes
    "ı": "i", "ȷ": "j", "ℓ": "l", "ⅼ": "l", "Ⅰ": "i", "ⅰ": "i", "Ɩ": "l", "ǀ": "l",
}

CONFUSABLE_SIGNS: dict[str, str] = {
    # spaces and line breaks
    "\u00a0": " ", "\u1680": " ", "\u2000": " ", "\u2001": " ", "\u2002": " ", "\u2003": " ",
    "\u2004": " ", "\u2005": " ", "\u2006": " ", "\u2007": " ", "\u2008": " ", "\u2009": " ",
    "\u200a": " ", "\u202f": " ", "\u205f": " ", "\u3000": " ", "\u2028": "\n", "\u2029": "\n",
    # dots (full stops, leaders, middle dots)
    "\u2024": ".", "\ufe52": ".", "\u3002": ".", "\uff61": ".", "\u00b7": ".", "\u2022": ".",
    "\u2027": ".", "\u30fb": ".", "\uff65": ".", "\u2219": ".", "\u22c5": ".", "\u0701": ".",
    "\u06d4": ".",
    # hyphens, dashes, minus
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\ufe58": "-", "\ufe63": "-", "\u2043": "-", "\u2e3a": "-", "\u2e3b": "-",
    # other signs
    "\ufe6b": "@", "\ufe5f": "#", "\u066a": "%", "\u2030": "%", "\u060c": ",", "\ufe50": ",",
    "\u2044": "/", "\u2215": "/", "\u29f8": "/", "\u207a": "+", "\u208a": "+", "\ufe62": "+",
    "\u3010": "[", "\u3011": "]", "\u3014": "(", "\u3015": ")", "\ufe59": "(", "\ufe5a": ")",
    "\u207d": "(", "\u207e": ")", "\u208d": "(", "\u208e": ")", "\uffe5": "¥", "\uffe1": "£",
    "\uffe0": "¢", "\u301c": "~",
}

# English digit words, folded to digits three or more in a row (§5.3.3).
NUMBER_WORDS: tuple[str, ...] = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Top-level domains an e-mail written with spaced dots must end in (§5.3.4, E3).
SPACED_TLDS: tuple[str, ...] = (
    "com", "cn", "net", "org", "edu", "gov", "hk", "uk", "io", "info", "biz", "top", "xyz", "mo", "tw", "sg",
)

# Mail domains that make "name at <domain>" an e-mail address without a spelled "dot".
MAIL_DOMAINS: tuple[str, ...] = (
    "qq.com", "163.com", "126.com", "139.com", "188.com", "yeah.net", "sina.com", "sina.cn", "sohu.com",
    "foxmail.com", "aliyun.com", "gmail.com", "hotmail.com", "outlook.com", "live.com", "yahoo.com",
    "icloud.com", "msn.com", "proton.me", "protonmail.com", "netvigator.com", "btinternet.com",
)

# Currency markers that make a number an amount when written right before or after it
# (§5.3.5). Alphabetic ones must not touch another letter.
CURRENCY_WORDS: tuple[str, ...] = (
    "cny", "rmb", "hkd", "usd", "eur", "gbp", "jpy", "aud", "cad", "sgd", "chf", "nzd", "mop", "twd",
    "krw", "yuan", "dollar", "dollars", "pound", "pounds", "euro", "euros",
)
CURRENCY_SIGNS: tuple[str, ...] = (
    "¥", "$", "£", "€", "₩", "元", "万元", "亿元", "万", "亿", "人民币", "美元", "港币", "港元", "欧元", "英镑", "日元",
)
PERCENT_MARKS: tuple[str, ...] = ("%", "bp", "bps", "percent", "个基点", "基点")

# First characters of Chinese licence plates: the province abbreviations.
PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"

# Named customers (§5.3.4, N1-N3). Common Chinese surnames, without those that
# also begin common words after 客户 (周 week, 金 funds, 余 balance, 付 pay, ...).
SURNAMES = ("王李张刘陈杨黄赵吴徐孙朱胡郭林罗郑梁宋唐韩冯邓曹彭肖田董袁潘蒋蔡杜叶苏魏吕丁沈姚卢姜崔钟谭汪廖贾夏韦"
            "邹孟熊秦邱江尹薛闫雷侯龙陶黎贺郝龚邵覃武戴孔汤")
CUSTOMER_WORDS_ZH = ("客户姓名", "客户", "储户", "户名", "持卡人", "姓名", "借款人", "申请人")
HONORIFICS_ZH = ("先生", "女士", "小姐", "太太")
BIRTH_OR_HOME_ZH = ("出生", "生日", "生于", "家住", "住址", "住在", "居住")
HONORIFICS_EN = ("mr", "mrs", "ms", "miss", "mx", "dr", "customer", "client", "cardholder", "depositor")
BIRTH_OR_HOME_EN = ("born", "dob", "date of birth", "birthday", "birth date", "lives at", "living at", "resides",
                    "residing", "home address")
NOT_NAMES_EN = ("born", "who", "with", "and", "was", "is", "are", "of", "at", "in", "on", "from", "after", "before", "since",
                "service", "services", "care", "centre", "center", "account", "accounts", "manager", "the", "a", "an")
VEHICLE_WORDS = ("vehicle", "registration", "plate", "car", "reg", "车牌", "车辆")



def _build_fold_table() -> dict[int, str | None]:
    """The per-character folding of §5.3.3 as a ``str.translate`` table."""
    table: dict[int, str | None] = {}
    for lo, hi in IGNORED_RANGES:
        for cp in range(lo, hi + 1):
            table[cp] = None
    for zero in DIGIT_ZEROS:
        for k in range(10):
            table[zero + k] = str(k)
    for first, digit, count in DIGIT_SEQUENCES:
        for k in range(count):
            table[first + k] = str(digit + k)
    for cp in range(0xFF01, 0xFF5F):  # full-width ASCII
        table[cp] = chr(cp - 0xFEE0).lower()
    for cp in range(0x41, 0x5B):  # ASCII upper case
        table[cp] = chr(cp + 32)
    for mapping in (CONFUSABLE_LETTERS, CONFUSABLE_SIGNS):
        for ch, to in mapping.items():
            table[ord(ch)] = to
    return table


FOLD_TABLE = _build_fold_table()


def char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    """A regex character class (without brackets) for inclusive code-point ranges."""
    return "".join(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges)
