"""Metrics fit for a Grafana board (issue 16, finding 9).

* what a commit adds: block interval, signed/missed per validator, evidence;
* no ``_created`` series; process, Python and build metrics in the node's registry;
* a validator process with ``[metrics] listen`` serves the same families there
  and on the API, and every query of deploy/grafana-dashboard.json names metrics
  that its /metrics exports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cluster import ProcessNetwork, make_homes
from node.metrics import NodeMetrics
from node.testnet import set_config
from protocol.keys import PrivateKey
from protocol.validators import Validator, ValidatorSet
from waiting import wait_until_blocking

DASHBOARD = Path(__file__).parent.parent / "deploy" / "grafana-dashboard.json"
# PromQL words that look like metric names but are not
PROMQL = {"sum", "max", "min", "avg", "rate", "increase", "by", "on", "and", "or", "unless", "group_left",
          "histogram_quantile", "le", "instance", "job", "direction", "source", "reason", "protocol", "validator"}


def sample_names(text: str) -> set[str]:
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "info": ("_info",),
            "summary": ("_sum", "_count")}


def declared_names(text: str) -> set[str]:
    """Sample names, and those of families declared without samples yet (a labelled
    counter such as branchnet_rejected_total before its first rejection)."""
    out = sample_names(text)
    for fam in text_string_to_metric_families(text):
        out |= {fam.name + suffix for suffix in SUFFIXES.get(fam.type, ("",))}
    return out


def dashboard_metric_names() -> dict[str, set[str]]:
    """Panel title -> the metric names its queries use."""
    doc = json.loads(DASHBOARD.read_text())
    out = {}
    for panel in doc["panels"]:
        names = set()
        for target in panel["targets"]:
            expr = re.sub(r'\{[^}]*\}', "", target["expr"])   # label matchers
            expr = re.sub(r'\[[^]]*\]', "", expr)              # range selectors
            expr = re.sub(r'\([^()]*\bby\b', "(", expr)
            expr = re.sub(r'\b(by|on)\s*\([^)]*\)', "", expr)   # grouping labels
            names |= {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr) if w not in PROMQL}
        out[panel["title"]] = names
    return out


def _validators(n: int) -> ValidatorSet:
    keys = [PrivateKey.from_seed(bytes([i + 1]) * 32) for i in range(n)]
    return ValidatorSet([Validator(k.branch_id, k.public_key, 1, name=f"branch-{i}") for i, k in enumerate(keys)])


def _block(height: int, time_ms: int, evidence=()):
    return SimpleNamespace(height=height, header=SimpleNamespace(time_ms=time_ms), evidence=evidence)


def test_a_commit_counts_interval_signatures_and_evidence():
    m = NodeMetrics()
    vs = _validators(3)
    ids = [v.branch_id for v in vs]
    m.observe_commit(_block(5, 10_000), SimpleNamespace(signatures=((ids[0], b""), (ids[1], b""))), vs)
    m.observe_commit(_block(6, 11_500, evidence=("ev",)), SimpleNamespace(signatures=tuple((i, b"") for i in ids)), vs)
    text = m.render().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert samples[("branchnet_validator_signed_blocks_total", (("validator", "branch-0"),))] == 2
    assert samples[("branchnet_validator_missed_blocks_total", (("validator", "branch-2"),))] == 1
    assert samples[("branchnet_validator_missed_blocks_total", (("validator", "branch-0"),))] == 0
    assert samples[("branchnet_block_interval_seconds_count", ())] == 1  # the first block after start has no predecessor
    assert samples[("branchnet_block_interval_seconds_sum", ())] == 1.5
    assert samples[("branchnet_evidence_committed_total", ())] == 1


def test_registry_has_runtime_and_build_metrics_and_no_created_series():
    names = sample_names(NodeMetrics().render().decode())
    assert not [n for n in names if n.endswith("_created")]
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total", "python_info",
            "python_gc_collections_total", "branchnet_build_info"} <= names


def test_metrics_listen_is_checked_like_api_listen():
    from node.config import CONFIG_TEMPLATE, Config, ConfigError

    text = CONFIG_TEMPLATE.format(moniker="a", mode="observer", listen="/ip4/127.0.0.1/tcp/1", api_listen="127.0.0.1:2")
    assert Config.from_toml(text).metrics.listen == ""  # off by default
    on = text.replace('# listen = "127.0.0.1:26660"', 'listen = "127.0.0.1:26660"')
    assert Config.from_toml(on).metrics.listen == "127.0.0.1:26660"
    with pytest.raises(ConfigError, match=r"\[metrics\] listen: must be host:port"):
        Config.from_toml(text.replace('# listen = "127.0.0.1:26660"', 'listen = "26660"'))


def test_the_dashboard_parser_finds_the_metrics_of_each_panel():
    names = dashboard_metric_names()
    assert names["Block interval (p50, p95)"] == {"branchnet_block_interval_seconds_bucket"}
    assert names["Process memory and CPU"] == {"process_resident_memory_bytes", "process_cpu_seconds_total",
                                               "branchnet_build_info"}
    for title in ("Chain height", "Consensus round and step", "Record finality (p50, p95)", "Peers and connections",
                  "Mempool", "Rejected inputs by source and reason", "Missed blocks per validator (1 h)", "Sync lag (blocks)"):
        assert names[title], title


@pytest.mark.slow
def test_every_dashboard_query_resolves_against_a_running_node(tmp_path):
    homes = make_homes(tmp_path, 1, fixed_ports=True, realtime=True, api=True)  # a sole validator commits alone
    set_config(homes[0], "metrics", "listen", "127.0.0.1:0")
    api = homes[0].load_config().api.listen
    net = ProcessNetwork(homes)
    try:
        net.start(0)
        found = {}

        def metrics_port() -> bool:
            m = re.search(r"metrics listening on http://127\.0\.0\.1:(\d+)/metrics", net.log(0))
            found["port"] = m and int(m.group(1))
            return bool(m)
        wait_until_blocking(metrics_port, 120, "the metrics listener", detail=lambda: net.log(0)[-1500:])
        wait_until_blocking(lambda: net.height(0) >= 3, 120, "height 3", detail=lambda: net.log(0)[-1500:])
        with httpx.Client(timeout=30) as client:
            separate = client.get(f"http://127.0.0.1:{found['port']}/metrics")
            on_api = client.get(f"http://{api}/metrics")
            assert client.get(f"http://127.0.0.1:{found['port']}/v1/status").status_code == 404
        assert net.stop(0) == 0, net.log(0)[-2000:]
    finally:
        net.stop_all()
    assert separate.status_code == on_api.status_code == 200
    assert separate.headers["content-type"].startswith("text/plain")
    exported = sample_names(separate.text)
    assert {fam.name for fam in text_string_to_metric_families(on_api.text)} == \
           {fam.name for fam in text_string_to_metric_families(separate.text)}
    assert not [n for n in exported if n.endswith("_created")]
    for family in ("branchnet_consensus_round", "branchnet_consensus_step", "branchnet_block_interval_seconds_bucket",
                   "branchnet_validator_signed_blocks_total", "branchnet_validator_missed_blocks_total",
                   "branchnet_evidence_committed_total", "branchnet_gossip_dropped_total",
                   "branchnet_p2p_request_timeouts_total", "branchnet_p2p_connections", "branchnet_build_info",
                   "process_resident_memory_bytes", "python_gc_objects_collected_total"):
        assert family in exported, family
    documented = (Path(__file__).parent.parent / "docs" / "CLI.md").read_text()
    undocumented = {fam.name for fam in text_string_to_metric_families(separate.text)
                    if fam.name.startswith("branchnet_") and fam.name not in documented}
    assert not undocumented, f"metric families missing from docs/CLI.md: {sorted(undocumented)}"
    # docs/CLI.md's table is generated from a node assembled in memory: it must be what a real process exports
    from tools.gen_cli_reference import node_registry_families, scraped_name

    assert {fam.name for fam in text_string_to_metric_families(separate.text)} == \
        {scraped_name(f) for f in node_registry_families()}, "regenerate: python -m tools.gen_cli_reference"
    declared = declared_names(separate.text)
    missing = {title: sorted(names - declared) for title, names in dashboard_metric_names().items() if names - declared}
    assert not missing, missing
