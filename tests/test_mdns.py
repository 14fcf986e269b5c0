"""Optional mDNS discovery ([p2p] mdns): advert checks, and real nodes finding each
other inside a network namespace this test creates (multicast never leaves it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from node.p2p.mdns import AdvertRejected, advert_properties, parse_advert

NET = "0123456789abcdef"
ME = "12D3KooWF3y2WvnDWE8MbTZJzEsczWXHBSAguNtwE5VTsE6Y5HXg"
PEER = "12D3KooWS5FUTmbCm5NRj6A1TUjiBMrTJSJxmeVo84qmwK3pVf1M"
ALLOWED = {ME, PEER}.__contains__


def test_a_good_advert_gives_dialable_ipv4_addrs():
    addrs = parse_advert(advert_properties(NET, PEER), ["10.1.2.3", "fe80::1", "192.168.0.7"], 4001,
                         network_id=NET, own_peer_id=ME, allowed=ALLOWED)
    assert addrs == [f"/ip4/10.1.2.3/tcp/4001/p2p/{PEER}", f"/ip4/192.168.0.7/tcp/4001/p2p/{PEER}"]


@pytest.mark.parametrize(
    "properties, addresses, port, reason",
    [
        (advert_properties("fedcba9876543210", PEER), ["10.0.0.1"], 4001, "other_network"),
        (advert_properties(NET, ME), ["10.0.0.1"], 4001, "self"),
        (advert_properties(NET, "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"), ["10.0.0.1"], 4001, "not_allowed"),
        (advert_properties(NET, "not a peer id/../x"), ["10.0.0.1"], 4001, "malformed"),
        ({b"net": NET.encode()}, ["10.0.0.1"], 4001, "malformed"),
        ({b"net": NET.encode(), b"peer": None}, ["10.0.0.1"], 4001, "malformed"),
        ({b"net": NET.encode(), b"peer": b"\xff" * 10}, ["10.0.0.1"], 4001, "malformed"),
        ({b"net": NET.encode(), b"peer": b"x" * 500}, ["10.0.0.1"], 4001, "malformed"),
        ({}, ["10.0.0.1"], 4001, "malformed"),
        (advert_properties(NET, PEER), ["10.0.0.1"], 0, "malformed"),
        (advert_properties(NET, PEER), ["10.0.0.1"], None, "malformed"),
        (advert_properties(NET, PEER), ["10.0.0.1"], 70000, "malformed"),
        (advert_properties(NET, PEER), [], 4001, "no_address"),
        (advert_properties(NET, PEER), ["fe80::1", "junk"], 4001, "no_address"),
    ],
)
def test_bad_adverts_are_rejected_with_a_reason(properties, addresses, port, reason):
    with pytest.raises(AdvertRejected) as info:
        parse_advert(properties, addresses, port, network_id=NET, own_peer_id=ME, allowed=ALLOWED)
    assert info.value.reason == reason


def _namespace_available() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare(1) and ip(8)"
    probe = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        return f"cannot create a network namespace here: {probe.stderr.decode().strip()}"
    return None


def test_nodes_find_each_other_by_mdns_in_a_private_network_namespace(tmp_path):
    why = _namespace_available()
    if why:
        pytest.skip(why)
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    script = "ip link set lo up && ip route add 224.0.0.0/4 dev lo && exec \"$0\" \"$1\" \"$2\""
    proc = subprocess.run(["unshare", "--net", "--", "sh", "-c", script, sys.executable,
                           str(root / "tests" / "mdns_netns.py"), str(tmp_path)],
                          capture_output=True, timeout=180, env=env, cwd=root)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert not out["timed_out"], out
    members, outsider = out["peer_ids"][:3], out["peer_ids"][3]
    for i, me in enumerate(members):  # no configured peers: each found the other two and they commit together
        assert set(out["connected"][i]) == set(members) - {me}
        assert out["mdns"][i]["peers_found"] == 2
        assert out["mdns"][i]["rejected"].get("other_network", 0) >= 1  # the other network's advert
        assert out["metrics"][i].get("mdns/other_network", 0) == out["mdns"][i]["rejected"]["other_network"]
        assert out["heights"][i] >= 2
    assert out["connected"][3] == [] and out["mdns"][3]["peers_found"] == 0  # another network: never dialled
    assert out["mdns"][3]["rejected"]["other_network"] >= 3
    assert outsider not in {p for c in out["connected"][:3] for p in c}
