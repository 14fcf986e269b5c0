"""deploy/: the systemd unit (issue 16, finding 10) and the Grafana dashboard's shape.

The unit creates its state directory (StateDirectory=), allows AF_NETLINK (mDNS
interface enumeration), points Documentation= at the path its install notes
install CLI.md to, and passes ``systemd-analyze verify`` where systemd is
installed (with ExecStart= pointed at this checkout's branchnet, since verify
checks that the binary exists)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).parent.parent / "deploy"
UNIT = DEPLOY / "branchnet.service"


def unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_unit_creates_its_state_directory_and_allows_netlink():
    s = unit_settings()
    assert s["StateDirectory"] == ["branchnet"] and s["StateDirectoryMode"] == ["0700"]
    assert "/var/lib/branchnet" in s["ExecStart"][0]  # the directory StateDirectory=branchnet makes
    assert "AF_NETLINK" in s["RestrictAddressFamilies"][0].split()
    doc = s["Documentation"][0].removeprefix("file://")
    assert f"install -D -m 0644 /path/to/branchnet/docs/CLI.md {doc}" in UNIT.read_text()
    assert "install -d -m 0700 -o branchnet -g branchnet /var/lib/branchnet" in UNIT.read_text()


def test_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    branchnet = Path(sys.executable).parent / "branchnet"
    assert branchnet.exists(), branchnet
    unit = tmp_path / "branchnet.service"
    unit.write_text(UNIT.read_text().replace("/opt/branchnet/.venv/bin/branchnet", str(branchnet)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "branchnet.service" not in result.stderr, result.stderr


def test_dashboard_is_a_grafana_dashboard():
    doc = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    assert doc["uid"] and doc["title"] and doc["panels"]
    assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
    for panel in doc["panels"]:
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"]), panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
