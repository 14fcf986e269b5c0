"""docs/CLI.md's reference tables are what the code says (tools/gen_cli_reference.py),
and the one config key that is bounded by the genesis file is checked against it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from node.testnet import create_network, set_config
from tools import gen_cli_reference as gen

ROOT = Path(__file__).resolve().parent.parent


def test_cli_md_tables_are_up_to_date():
    current = gen.CLI_MD.read_text()
    assert gen.render(current) == current, f"docs/CLI.md is out of date; regenerate it with: {gen.FIX}"


def test_every_config_key_and_metric_family_is_in_the_tables():
    from dataclasses import fields

    from node.config import Config

    text = gen.CLI_MD.read_text()
    for section in fields(Config):
        for f in fields(section.default_factory()):
            assert f"| `[{section.name}] {f.name}` |" in text
    families = gen.node_registry_families()
    assert {"branchnet_consensus_step", "branchnet_p2p_bytes", "branchnet_build", "process_cpu_seconds"} <= {f["name"] for f in families}
    for f in families:
        assert f"| `{gen.exported_name(f)}` |" in text


def test_a_config_key_without_a_comment_fails_the_generator(monkeypatch):
    """The meaning column comes from the template; a key added without one is refused
    (and a field missing from the template too)."""
    from node.config import CONFIG_TEMPLATE

    bare = re.sub(r"(#[^\n]*\n)+(halt_height = 0)", r"\2", CONFIG_TEMPLATE)
    assert bare != CONFIG_TEMPLATE
    monkeypatch.setattr(gen, "CONFIG_TEMPLATE", bare)
    with pytest.raises(ValueError, match=r"\[consensus\] halt_height has no comment"):
        gen.config_table()
    monkeypatch.setattr(gen, "CONFIG_TEMPLATE", CONFIG_TEMPLATE.replace("mdns = false\n", ""))
    with pytest.raises(ValueError, match=r"\[p2p\] mdns is not in node/config.py CONFIG_TEMPLATE"):
        gen.config_table()


def test_render_replaces_only_between_markers_and_needs_them():
    text = "intro\n<!-- generated:config -->\nold\n<!-- /generated:config -->\noutro\n"
    assert gen.render(text, {"config": "NEW"}) == "intro\n<!-- generated:config -->\nNEW\n<!-- /generated:config -->\noutro\n"
    with pytest.raises(ValueError, match="lacks the markers"):
        gen.render("no markers", {"config": "NEW"})


def test_check_mode_names_the_fix(tmp_path):
    stale = tmp_path / "CLI.md"
    stale.write_text(gen.CLI_MD.read_text().replace("| `[p2p] mdns` |", "| `[p2p] mDNS` |"))
    r = subprocess.run([sys.executable, "-m", "tools.gen_cli_reference", "--check", "--file", str(stale)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "python -m tools.gen_cli_reference" in r.stderr, r.stderr


def test_max_block_records_above_genesis_refuses_to_start(tmp_path):
    """[consensus] max_block_records is a local cap under the genesis parameter: above
    it, the node stops at start with one line naming both values and the file."""
    (home,) = create_network(tmp_path, 1, params={"max_block_records": 1000}, fixed_ports=False)
    r = subprocess.run([sys.executable, "-m", "node.daemon", "--home", str(home.path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"error: {home.config} [consensus] max_block_records = 5000 exceeds the genesis parameter max_block_records "
        f"= 1000 of chain branchnet-devnet (every validator refuses larger blocks); set it to at most 1000 in {home.config}"]
    assert not home.db.exists()  # refused before anything was written
    set_config(home, "consensus", "max_block_records", 1000)
    from node.node import check_against_genesis, load_genesis

    check_against_genesis(home.load_config(), load_genesis(home.genesis), home.config)  # equal is fine
