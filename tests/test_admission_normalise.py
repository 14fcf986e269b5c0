"""node/admission.py's normalisation skips its character-by-character pass for text
made only of characters that pass leaves alone (``_KEPT``: ASCII, CJK punctuation, the
unified ideographs, as this Python's Unicode has them). The skip must never change what
the detectors read."""

from __future__ import annotations

import re

from hypothesis import example, given, settings, strategies as st

from node import admission as A

RANGES = [(0x09, 0x0A), (0x20, 0x7E), (0x3000, 0x303F), (0x4E00, 0x9FFF)]


def normalise_without_skip(text: str) -> tuple[str, str]:
    kept, A._KEPT = A._KEPT, re.compile("(?!)")  # matches nothing: every text takes the pass
    try:
        return A._normalise.__wrapped__(text)
    finally:
        A._KEPT = kept


def test_every_kept_character_is_left_alone_and_every_other_one_is_not_kept():
    for lo, hi in [(0, 0x3100), (0x4D00, 0xA100), (0xFF00, 0xFFFF)]:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            if A._KEPT.fullmatch(ch):
                assert A._as_read(ch) == ch and any(a <= cp <= b for a, b in RANGES), hex(cp)
            elif any(a <= cp <= b for a, b in RANGES):
                assert A._as_read(ch) != ch, hex(cp)  # left out of the class only when the pass changes it
    # the combining marks among the CJK punctuation (U+302A-U+302D) are dropped, so not kept
    assert not A._KEPT.fullmatch("柜\u302a台") and A._KEPT.fullmatch("柜台、周一至周五。 09:00")


TOKENS = ["柜台", "办理", "一二三", "九点", "，", "。", "、", "（", "）", "：", "\u3000", "\u302a", "\u0301", "\u200b", "\ufeff",
          "\u00ad", "１２３", "٣", "²", "①", "\U0001d7d9", "Ａ", "é", "ß", "abc", "ABC", "AT", "DOT", "123", " ", "\t", "\n",
          "\x01", "\x7f", "@", ".", "double eight", "电话", "13812345678", "邮箱"]


@settings(max_examples=1500, deadline=None)
@example("在柜台和自助设备办理，周一至周五九点到五点。")
@example("柜\u302a台")
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))
def test_normalise_reads_the_same_with_and_without_the_skip(text):
    assert A._normalise.__wrapped__(text) == normalise_without_skip(text)
