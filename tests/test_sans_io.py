"""Nothing under protocol/ may do I/O or read clocks: walk every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"trio", "socket", "sqlite3", "threading", "asyncio", "time", "libp2p", "node", "multiprocessing", "selectors"}
PROTOCOL = Path(__file__).resolve().parent.parent / "protocol"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            names.add("__import__")
    return names


def test_protocol_tree_is_sans_io():
    files = sorted(PROTOCOL.rglob("*.py"))
    assert any(f.parent.name == "consensus" for f in files)
    offenders = {str(f.relative_to(PROTOCOL)): sorted(_imports(f) & (FORBIDDEN | {"__import__"})) for f in files}
    assert {k: v for k, v in offenders.items() if v} == {}
