"""Reading docs/PROTOCOL.md in tests: sections, prose that wraps anywhere, tables."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
PROSE = re.sub(r"<!-- vectors:begin.*?<!-- vectors:end -->", "", DOC, flags=re.S)


def section(number: str) -> str:
    """The text of '## N.' or '### N.M' up to the next heading of the same or a higher level."""
    level = "###" if "." in number else "##"
    m = re.search(rf"^{level} {re.escape(number)}[ .].*?(?=^#{{2,{len(level)}}} )", PROSE + "\n## end",
                  re.S | re.M)
    assert m, f"no section {number} in docs/PROTOCOL.md"
    return m.group(0)


def find(pattern: str, text: str = PROSE, *, raw: bool = False) -> re.Match:
    """Search ``text`` with every run of whitespace read as one space (prose wraps
    anywhere), or as it is with ``raw`` (code blocks and tables)."""
    m = re.search(pattern, text if raw else re.sub(r"\s+", " ", text), re.S)
    assert m, f"docs/PROTOCOL.md no longer says {pattern!r}: update the doc test with the doc"
    return m


def number(text: str) -> int:
    """'24 640' or '16 777 221' -> int."""
    return int(text.replace(" ", "").replace("\u202f", ""))


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows
