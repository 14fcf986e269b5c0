"""The branchnet CLI, offline commands: init, keys, genesis, input parsing, error output.

All through click's CliRunner (in-process, no node, no network).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import cli
from node.cli.parse import (
    InputError,
    offer_from_fields,
    offer_with_changes,
    parse_degrees,
    parse_fee,
    parse_hours,
    parse_hours_list,
    parse_risk,
    parse_time_ms,
    profile_body,
)
from protocol.genesis import Genesis
from protocol.keys import PrivateKey


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    r = run("init", "--home", str(h), "--moniker", "haidian", "--new-psk")
    assert r.exit_code == 0, r.output
    return h


# ---------------------------------------------------------------- init / keys


def test_init_creates_home_and_prints_identity(tmp_path: Path) -> None:
    h = tmp_path / "n"
    r = run("init", "--home", str(h), "--moniker", "haidian", "--mode", "observer", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert set(info) >= {"branch_id", "public_key", "peer_id"}
    assert (h / "node_key.json").stat().st_mode & 0o077 == 0
    assert 'mode = "observer"' in (h / "config.toml").read_text()
    assert not (h / "network.psk").exists()


def test_init_refuses_existing_key_and_conflicting_psk_flags(home: Path, tmp_path: Path) -> None:
    r = run("init", "--home", str(home), "--moniker", "again")
    assert r.exit_code == 1 and r.stderr.startswith("error: ") and "already exists" in r.stderr
    psk = home / "network.psk"
    r = run("init", "--home", str(tmp_path / "x"), "--moniker", "x", "--psk-file", str(psk), "--new-psk")
    assert r.exit_code == 2 and "not both" in r.stderr
    r = run("init", "--home", str(tmp_path / "y"), "--moniker", "y", "--psk-file", str(psk))
    assert r.exit_code == 0 and (tmp_path / "y" / "network.psk").read_text() == psk.read_text()
    r = run("init", "--home", str(tmp_path / "z"), "--moniker", "z", "--api-listen", "nope")
    assert r.exit_code == 2 and "--api-listen" in r.stderr


def test_network_key_files_standard_legacy_and_malformed(home: Path, tmp_path: Path) -> None:
    from node.home import read_psk

    written = (home / "network.psk").read_text()
    lines = written.splitlines()
    assert lines[:2] == ["/key/swarm/psk/1.0.0/", "/base16/"] and len(lines[2]) == 64  # libp2p PSK v1
    assert (home / "network.psk").stat().st_mode & 0o077 == 0
    legacy = tmp_path / "legacy.psk"
    legacy.write_text(lines[2] + "\n")  # the bare-hex form of earlier releases still reads
    r = run("init", "--home", str(tmp_path / "l"), "--moniker", "l", "--psk-file", str(legacy))
    assert r.exit_code == 0 and (tmp_path / "l" / "network.psk").read_text() == written
    assert read_psk(legacy) == read_psk(home / "network.psk") == lines[2]
    for name, data in (("garbage.psk", b"\x00\xff" * 40), ("short.psk", written[:-10].encode())):
        (tmp_path / name).write_bytes(data)
        r = run("init", "--home", str(tmp_path / name[:-4]), "--moniker", "m", "--psk-file", str(tmp_path / name))
        assert r.exit_code != 0 and str(tmp_path / name) in r.stderr, r.output
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    with pytest.raises(ValueError, match="is a directory"):
        read_psk(tmp_path)


def test_keys_show_never_prints_the_seed(home: Path) -> None:
    seed = json.loads((home / "node_key.json").read_text())["seed"]
    r = run("--home", str(home), "keys", "show", "--json")
    assert r.exit_code == 0
    info = json.loads(r.stdout)
    assert info["public_key"] == json.loads((home / "node_key.json").read_text())["public_key"]
    human = run("keys", "show", "--home", str(home))
    assert seed not in r.stdout + human.stdout and info["peer_id"] in human.stdout


def test_keys_rotate_keeps_the_new_key_pending_until_the_node_takes_it(home: Path) -> None:
    """Without a running node: the new key is written (0600, this branch's id, "rotated"),
    the command exits 3, and running it again resumes with the same pending key."""
    branch_id = json.loads((home / "node_key.json").read_text())["branch_id"]
    r = run("keys", "rotate", "--home", str(home), "--node", "http://127.0.0.1:9")
    assert r.exit_code == 3 and r.stderr.startswith("error: cannot reach the node") and "run `branchnet keys rotate` again" in r.stderr
    pending = json.loads((home / "node_key.pending.json").read_text())
    assert pending["branch_id"] == branch_id and pending["rotated"] is True
    assert stat.S_IMODE(os.stat(home / "node_key.pending.json").st_mode) == 0o600
    assert f"new key {pending['public_key']} written" in r.stdout
    r = run("keys", "rotate", "--home", str(home), "--node", "http://127.0.0.1:9")
    assert r.exit_code == 3 and f"resuming the pending rotation to key {pending['public_key']}" in r.stdout
    assert json.loads((home / "node_key.pending.json").read_text()) == pending
    info = json.loads(run("keys", "show", "--home", str(home), "--json").stdout)
    assert info["branch_id"] == branch_id and info["pending_public_key"] == pending["public_key"]
    assert info["public_key"] != pending["public_key"]
    (home / "node_key.pending.json").write_text("{}")
    r = run("keys", "rotate", "--home", str(home), "--node", "http://127.0.0.1:9")
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and "node_key.pending.json" in r.stderr


def test_home_from_environment_and_missing_key(tmp_path: Path, home: Path) -> None:
    r = run("keys", "show", "--json", env={"BRANCHNET_HOME": str(home)})
    assert r.exit_code == 0 and json.loads(r.stdout)["branch_id"]
    r = run("keys", "show", "--home", str(tmp_path / "none"))
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and "branchnet init" in r.stderr


def test_help_documents_exit_codes_and_every_command_has_help() -> None:
    r = run("--help")
    assert "3  node unreachable" in r.stdout
    for cmd in (["init"], ["keys", "show"], ["genesis", "finalize"], ["service", "publish"], ["service", "status"],
                ["branch", "profile", "set"], ["chain", "verify"], ["chain", "export"], ["proof", "verify"],
                ["store", "rebuild"], ["status"], ["run"], ["keys", "rotate"]):
        assert run(*cmd, "--help").exit_code == 0, cmd


def test_quality_list_reads_every_page(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/v1/quality answers a page at a time (at most 1,000): the list asks for the rest of
    the period the first page names, until it holds the total."""
    import contextlib

    from node.cli.common import CliContext

    quality = {"period": "2026-09", "complaints": [], "resolution_median_hours": 18, "resolution_p90_hours": 66,
               "wait_avg_minutes": 9, "wait_p90_minutes": 27, "self_service_availability_bp": 9950}
    rows = [{"branch_id": f"{i:040x}", "branch_name": f"branch-{i}", "region": None, "quality": quality, "seq": 1,
             "record_hash": "00" * 32, "height": 1} for i in range(2_345)]
    asked = []

    class Api:
        def get(self, path: str, params: dict) -> dict:
            assert path == "/v1/quality"
            asked.append(params)
            start = params.get("offset", 0)
            return {"period": "2026-09", "total": len(rows), "branches": rows[start:start + params["limit"]]}

    monkeypatch.setattr(CliContext, "client", lambda self, **kw: contextlib.nullcontext(Api()))
    r = run("branch", "quality", "list", "--home", str(home), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["branches"] == rows
    assert [(p["period"], p.get("offset", 0)) for p in asked] == [(None, 0), ("2026-09", 1000), ("2026-09", 2000)]
    r = run("branch", "quality", "list", "--home", str(home))
    assert r.exit_code == 0 and "branch-2344" in r.output


def test_unreachable_node_exits_3(tmp_path: Path) -> None:
    r = run("status", "--node", "http://127.0.0.1:9", "--json")
    assert r.exit_code == 3 and r.stderr.startswith("error: cannot reach the node")


def test_usage_error_is_one_line(home: Path) -> None:
    r = run("service", "status", "cash", "--home", str(home))
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "--open" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------- genesis


def test_genesis_build_together_and_finalize(tmp_path: Path, home: Path) -> None:
    g = tmp_path / "genesis.json"
    other = tmp_path / "other"
    assert run("init", "--home", str(other), "--moniker", "other").exit_code == 0
    assert run("genesis", "new", "--chain-id", "acme-net", "--genesis-time-ms", "1767225600000", "--out", str(g)).exit_code == 0
    r = run("genesis", "finalize", str(g))
    assert r.exit_code == 1 and "at least one validator" in r.stderr
    assert run("genesis", "add-validator", str(g), "--name", "Haidian", "--from-home", str(home), "--power", "7").exit_code == 0
    pub = json.loads(run("keys", "show", "--home", str(other), "--json").stdout)["public_key"]
    assert run("genesis", "add-member", str(g), "--name", "Other", "--public-key", pub.upper()).exit_code == 0
    r = run("genesis", "finalize", str(g), "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    genesis = Genesis.loads(g.read_bytes())
    assert summary["genesis_hash"] == genesis.hash.hex()
    assert summary["total_power"] == 7 and [m["name"] for m in summary["members"]] == ["Other"]
    assert run("genesis", "finalize", "--check", str(g)).stdout.strip().endswith(genesis.hash.hex())


def test_genesis_bad_cases(tmp_path: Path, home: Path) -> None:
    g = tmp_path / "genesis.json"
    assert run("genesis", "new", "--chain-id", "acme-net", "--out", str(g)).exit_code == 0
    r = run("genesis", "new", "--chain-id", "acme-net", "--out", str(g))
    assert r.exit_code == 2 and "already exists" in r.stderr
    r = run("genesis", "new", "--chain-id", "Bad Chain", "--out", str(tmp_path / "g2.json"))
    assert r.exit_code == 2 and "--chain-id" in r.stderr
    assert run("genesis", "add-validator", str(g), "--name", "A", "--from-home", str(home)).exit_code == 0
    before = g.read_text()
    r = run("genesis", "add-validator", str(g), "--name", "B", "--from-home", str(home))
    assert r.exit_code == 1 and "already listed" in r.stderr
    other = PrivateKey.generate().public_key.hex()
    r = run("genesis", "add-member", str(g), "--name", "A", "--public-key", other)
    assert r.exit_code == 1 and "named 'A'" in r.stderr
    r = run("genesis", "add-validator", str(g), "--name", "C", "--public-key", "xyz")
    assert r.exit_code == 2 and "64 hex" in r.stderr
    r = run("genesis", "add-validator", str(g), "--name", "C", "--public-key", "ab" * 31)
    assert r.exit_code == 2
    r = run("genesis", "add-validator", str(g), "--name", "C", "--public-key", "01" + "00" * 31)  # small order
    assert r.exit_code == 2 and "not a valid Ed25519 public key" in r.stderr
    r = run("genesis", "add-validator", str(g), "--name", "C", "--public-key", other, "--power", "0")
    assert r.exit_code == 2
    assert g.read_text() == before  # nothing written on failure
    r = run("genesis", "add-validator", str(tmp_path / "missing.json"), "--name", "C", "--public-key", other)
    assert r.exit_code == 2 and "genesis new" in r.stderr
    (tmp_path / "broken.json").write_text("{nope")
    assert run("genesis", "finalize", str(tmp_path / "broken.json")).exit_code == 1


# ---------------------------------------------------------------- parsing


def test_degrees_are_exact_micro_degrees() -> None:
    assert parse_degrees("39.983", "--lat", 90) == 39_983_000
    assert parse_degrees("-116.316001", "--lon", 180) == -116_316_001
    assert parse_degrees("0.1", "--lat", 90) == 100_000  # 0.1 is not exact as a float; it is as a Decimal
    assert parse_degrees("90", "--lat", 90) == 90_000_000
    for bad in ("39.9830001", "91", "-180.5", "abc", "nan", "inf", ""):
        with pytest.raises(InputError):
            parse_degrees(bad, "--lat", 90 if bad != "-180.5" else 180)


def test_hours_parse_into_day_minutes() -> None:
    assert parse_hours("mon-fri 09:00-17:00") == [(d, 540, 1020) for d in range(5)]
    assert parse_hours("sat,sun 10:00-12:00,13:00-24:00") == [(5, 600, 720), (5, 780, 1440), (6, 600, 720), (6, 780, 1440)]
    assert parse_hours("Daily 00:00-24:00") == [(d, 0, 1440) for d in range(7)]
    assert [h.to_array() for h in parse_hours_list(["sat 10:00-14:00", "mon 09:00-12:00"])] == [[0, 540, 720], [5, 600, 840]]
    for bad in ("mon-fri", "fri-mon 09:00-17:00", "xyz 09:00-10:00", "mon 17:00-09:00", "mon 9-17", "mon 25:00-26:00",
                "mon 09:00-12:60"):
        with pytest.raises(InputError):
            parse_hours(bad)
    with pytest.raises(InputError, match="overlap"):
        parse_hours_list(["mon-fri 09:00-17:00", "fri 16:00-18:00"])


def test_fee_amounts_are_exact_minor_units() -> None:
    assert parse_fee("express transfer=5.00 CNY per_transaction").to_array() == ["express transfer", 500, "CNY", "per_transaction"]
    assert parse_fee("card=0.1 usd per_year").amount_minor == 10
    assert parse_fee("x=1000 JPY one_time").amount_minor == 1000  # JPY has no minor unit
    assert parse_fee("x=1.234 KWD one_time").amount_minor == 1234  # 3 decimals
    assert parse_fee("margin=150 CNY percent_bp").amount_minor == 150
    assert parse_fee("standard=0 CNY free").amount_minor == 0
    for bad in ("5.00 CNY per_transaction", "x=5.001 CNY per_transaction", "x=1.5 JPY one_time", "x=1.5 CNY percent_bp",
                "x=5 CNY weekly", "x=-1 CNY one_time", "x=1 CNY free", "x=five CNY one_time", "x=1 C1Y one_time",
                "x=1 CNY"):
        with pytest.raises(InputError):
            parse_fee(bad)


def test_risk_and_time() -> None:
    assert [parse_risk(x) for x in (None, "R1", "r5", "3", "none")] == [0, 1, 5, 3, 0]
    with pytest.raises(InputError):
        parse_risk("R6")
    assert parse_time_ms("2026-01-01T00:00:00Z") == 1_767_225_600_000
    assert parse_time_ms("2026-01-01T08:00:00.250+08:00") == 1_767_225_600_250
    with pytest.raises(InputError, match="time zone"):
        parse_time_ms("2026-01-01T00:00:00")


def test_offer_body_uses_protocol_rules() -> None:
    body = offer_from_fields({"id": "fund-a", "category": "wealth", "title": "Fund A", "risk": "R4",
                              "consigned_by": "Example Fund Co.", "channels": ["online", "counter", "counter"],
                              "fees": ["subscription=150 CNY percent_bp", {"label": "custody", "amount": "12.50",
                                                                            "currency": "CNY", "basis": "per_year"}],
                              "accessibility": ["priority-counter", "wheelchair"],
                              "effective_from": "2026-03-01T00:00:00Z"}, now_ms=0)
    assert body.channels == ("counter", "online") and body.ownership == "consigned" and body.risk_level == 4
    assert body.fees[1].amount_minor == 1250 and body.accessibility == ("wheelchair", "priority_counter")
    with pytest.raises(InputError, match="risk"):
        offer_from_fields({"id": "loan-a", "category": "loan", "title": "Loan"}, now_ms=0)
    with pytest.raises(InputError, match="--id"):
        offer_from_fields({"category": "cash", "title": "Cash"}, now_ms=0)
    with pytest.raises(InputError, match="personal data"):
        offer_from_fields({"id": "c", "category": "cash", "title": "call 13800138000 now"}, now_ms=0)


def test_profile_body() -> None:
    body = profile_body(name="Haidian", address="1 Zhongguancun St", region="CN-BJ-110108", lat="39.983", lon="116.316",
                        hours=["mon-fri 09:00-17:00"], phone="+86 10 6255 0000", url="https://bank.example/h")
    assert (body.lat_micro, body.lon_micro) == (39_983_000, 116_316_000)
    with pytest.raises(InputError, match="region"):
        profile_body(name="H", address="A", region="beijing", lat="1", lon="1", hours=[], phone="", url="")


def test_bad_input_on_the_command_line_exits_2_before_contacting_the_node(home: Path, tmp_path: Path) -> None:
    node = ["--home", str(home), "--node", "http://127.0.0.1:9"]  # nothing listens: reaching it would exit 3
    r = run("branch", "profile", "set", *node, "--name", "H", "--address", "A", "--region", "CN-BJ",
            "--lat", "39.9830001", "--lon", "116")
    assert r.exit_code == 2 and "--lat" in r.stderr and "6 decimal" in r.stderr
    r = run("service", "publish", *node, "--id", "cash", "--category", "cash", "--title", "Cash",
            "--fee", "express=5.001 CNY per_transaction")
    assert r.exit_code == 2 and "decimal place" in r.stderr
    r = run("service", "publish", *node, "--id", "cash", "--category", "cash", "--title", "Cash", "--hours", "mon 9-5")
    assert r.exit_code == 2 and "HH:MM" in r.stderr
    r = run("service", "status", "cash", "--open", "--equipment", "atm-1=broken", *node)
    assert r.exit_code == 2 and "ID=up" in r.stderr
    f = tmp_path / "service.toml"
    f.write_text('id = "cash"\ncategory = "cash"\ntitle = "Cash"\ncolour = "red"\n')
    r = run("service", "publish", *node, "--file", str(f))
    assert r.exit_code == 2 and "unknown field 'colour'" in r.stderr
    r = run("service", "publish", *node, "--id", "cash", "--category", "cash", "--title", "Cash")
    assert r.exit_code == 3  # well-formed: it got as far as the (absent) node


def test_service_file_toml_and_json(tmp_path: Path) -> None:
    from node.cli.parse import load_service_file

    toml = tmp_path / "service.toml"
    toml.write_text('id = "loan-home"\ncategory = "loan"\ntitle = "Home loan"\nrisk = "R2"\n'
                    'channels = ["appointment", "counter"]\nhours = ["mon-fri 09:00-17:00"]\n'
                    'fees = ["arrangement=1000 CNY one_time", {label = "early repayment", amount = "100", currency = "CNY", basis = "percent_bp"}]\n'
                    'effective_from = "2026-03-01T00:00:00+08:00"\n')
    body = offer_from_fields(load_service_file(toml), now_ms=0)
    assert (body.risk_level, body.channels, body.fees[0].amount_minor, body.fees[1].amount_minor) == (2, ("counter", "appointment"), 100000, 100)
    js = tmp_path / "service.json"
    js.write_text(json.dumps({"service_id": "cash", "category": "cash", "title": "Cash", "fee": "atm=2 CNY per_transaction"}))
    assert offer_from_fields(load_service_file(js), now_ms=5).fees[0].amount_minor == 200
    js.write_text("[1, 2]")
    with pytest.raises(InputError, match="object"):
        load_service_file(js)


def test_terms_term_amount_and_iso_currencies() -> None:
    from node.cli.parse import format_terms, parse_amount, parse_term
    from protocol.views import body_to_json
    import factories as f

    assert [parse_term(t) for t in ("12", "12m", "12 months", "3y", "demand", "0")] == [12, 12, 12, 36, 0, 0]
    for bad in ("12w", "-1", "51y", "m", ""):
        with pytest.raises(InputError):
            parse_term(bad)
    assert parse_amount("500000 CNY") == 50_000_000 and parse_amount("1000 jpy") == 1000
    for bad in ("500000", "5 RMB", "5 XYZ", "1.234 CNY", "-1 CNY"):
        with pytest.raises(InputError):
            parse_amount(bad)
    for bad in ("Commission=15 RMB per_transaction", "x=5 XYZ one_time"):  # issue 16: committed before, refused now
        with pytest.raises(InputError, match="ISO 4217"):
            parse_fee(bad)
    text = format_terms(body_to_json(f.deposit_terms()))
    assert text.startswith("demand 0.15%, 3m 1.10%, 12m 1.45%, 36m 1.75%; from 50.00 CNY;") and "insured" in text
    assert "(not guaranteed)" in format_terms(body_to_json(f.investment_terms()))


def test_service_file_with_terms(tmp_path: Path) -> None:
    from node.cli.parse import load_service_file

    js = tmp_path / "deposit.json"
    doc = {"id": "dep-3m", "category": "deposit", "title": "Term deposit",
           "terms": {"valid_until_ms": 0, "deposit": {"rates": [{"term_months": 3, "rate_bp": 110}], "min_amount_minor": 5000,
                                                      "currency": "CNY", "early_withdrawal": "demand_rate", "insured": True}}}
    js.write_text(json.dumps(doc))
    body = offer_from_fields(load_service_file(js), now_ms=5)
    assert body.terms.deposit.rates[0].rate_bp == 110
    doc["terms"]["deposit"]["currency"] = "RMB"
    js.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="terms.deposit.currency"):
        offer_from_fields(load_service_file(js), now_ms=5)
    doc["terms"] = "3m=1.10%"
    js.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="table"):
        load_service_file(js)


def test_api_error_message_format() -> None:
    from node.cli.common import api_error_message

    doc = {"error": {"code": "seq_gap", "field": "record.seq", "message": "seq 3 for profile, expected 2"}}
    assert api_error_message(doc, 400, "POST /v1/records") == "seq 3 for profile, expected 2 (seq_gap, field record.seq)"
    assert api_error_message({"error": {"code": "not_found", "message": "no such record"}}, 404, "x") == "no such record (not_found)"
    assert "API token" in api_error_message(None, 401, "POST /v1/records/sign")


def test_service_update_changes_only_the_fields_given() -> None:
    base = offer_from_fields({"id": "fx-exchange", "category": "fx", "title": "Foreign exchange",
                              "channels": ["counter", "mobile"], "hours": ["mon-fri 09:00-16:30"],
                              "fees": ["cash=0.50 CNY per_transaction", "margin=150 CNY percent_bp"],
                              "accessibility": ["wheelchair"]}, now_ms=1000)
    changed = offer_with_changes(base, {"id": "fx-exchange", "fees": ["cash=0.40 CNY per_transaction",
                                                                       "wire=15 CNY per_transaction"]}, now_ms=2000)
    assert [(f.label, f.amount_minor) for f in changed.fees] == [("cash", 40), ("margin", 150), ("wire", 1500)]
    assert changed.effective_from_ms == 2000
    for same in ("category", "title", "channels", "hours", "accessibility", "risk_level", "ownership", "issuer"):
        assert getattr(changed, same) == getattr(base, same), same
    retitled = offer_with_changes(base, {"title": "FX", "consigned_by": "Acme Fund"}, now_ms=3000)
    assert retitled.title == "FX" and retitled.fees == base.fees and retitled.ownership == "consigned"
    with pytest.raises(InputError):
        offer_with_changes(base, {"id": "other"}, now_ms=1)
    with pytest.raises(InputError):
        offer_with_changes(base, {"channels": ["teleport"]}, now_ms=1)
