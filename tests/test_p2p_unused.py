"""node/p2p/unused.py: the daemon leaves out what libp2p imports for QUIC, AutoTLS and (mDNS off) mDNS."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from node.p2p.unused import MDNS, UNUSED

ROOT = Path(__file__).parent.parent

# Where libp2p (the pinned version) imports the left-out packages: features a node never runs,
# and mDNS discovery (which a node runs only with [p2p] mdns on, with its own node/p2p/mdns.py).
FEATURES = {"transport/quic/": UNUSED, "transport/webtransport/": UNUSED, "security/tls/autotls/": UNUSED,
            "observability/": UNUSED, "discovery/mdns/": MDNS}
ALL = UNUSED + MDNS

PROBE = """
import json, sys
from node.p2p.unused import MDNS, UNUSED, leave_out
leave = sys.argv[1] == "leave"
assert leave_out(UNUSED + MDNS) if leave else True
before = set(sys.modules)
import libp2p
from libp2p import new_host
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.security.noise.transport import Transport
from libp2p.stream_muxer.yamux.yamux import Yamux
out = {"modules": len(set(sys.modules) - before),
       "loaded": sorted({m.split(".")[0] for m in sys.modules if getattr(sys.modules[m], "__file__", None)} & set(sys.argv[2:]))}
if leave:
    from node.p2p.unused import NotLoaded, leave_out, left_out
    import aioquic.quic.connection as quic
    try:
        quic.QuicConnection(configuration=None)
    except NotLoaded as exc:
        out["error"] = str(exc)
    try:
        raise ValueError("x")
    except quic.QuicConnectionError:  # a placeholder in an except clause: valid, never matches
        out["caught"] = "placeholder"
    except ValueError:
        out["caught"] = "ValueError"
    out["same"] = quic.QuicConnection.close is quic.QuicConnection.close and quic.QuicConnection is quic.QuicConnection
    out["again"] = leave_out()
    out["left_out"] = sorted(left_out())
print(json.dumps(out))
"""


def probe(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, mode, *ALL], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_libp2p_imports_without_the_left_out_packages():
    full, lean = probe("full"), probe("leave")
    assert full["loaded"] == sorted(ALL)  # libp2p does load them all when nothing is left out
    assert lean["loaded"] == []
    assert lean["modules"] < full["modules"] - 100
    assert lean["error"].startswith("aioquic.quic.connection.QuicConnection: aioquic is not loaded")
    assert lean["caught"] == "ValueError"
    assert lean["same"] is True
    assert lean["again"] is False  # once per process
    assert lean["left_out"] == sorted(ALL)


def test_leave_out_changes_nothing_once_a_package_is_loaded():
    code = "import json, sys, requests\nfrom node.p2p.unused import leave_out, left_out\nprint(json.dumps([leave_out(), sorted(left_out())]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == [False, []]


def _imported_packages(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.partition(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def test_only_features_a_node_never_runs_import_the_left_out_packages():
    """If a libp2p upgrade imports one of them from its core (swarm, Noise, Yamux, gossipsub),
    leaving it out would break a node: this fails first."""
    base = Path(find_spec("libp2p").submodule_search_locations[0])
    users = {str(p.relative_to(base)): _imported_packages(p) & set(ALL) for p in base.rglob("*.py")}
    users = {p: names for p, names in users.items() if names}
    assert users, "libp2p no longer imports any of them: drop node/p2p/unused.py"
    outside = [(p, names) for p, names in users.items()
               if not any(p.startswith(where) and names <= set(which) for where, which in FEATURES.items())]
    assert outside == []
    # and the node itself imports them only in the CLI's HTTP client and its own mDNS
    ours = {str(p.relative_to(ROOT)): _imported_packages(p) & set(ALL)
            for d in ("node", "protocol") for p in (ROOT / d).rglob("*.py")}
    assert {p: sorted(names) for p, names in ours.items() if names} == {
        "node/cli/common.py": ["httpx"], "node/p2p/mdns.py": ["zeroconf"]}
