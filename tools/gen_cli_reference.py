"""The reference tables of docs/CLI.md, generated from the code so they cannot drift.

    python -m tools.gen_cli_reference           # rewrite the tables in docs/CLI.md
    python -m tools.gen_cli_reference --check   # exit 1 if docs/CLI.md is out of date

Each table sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``
in docs/CLI.md; everything else in the file is prose and left alone.

* ``config`` — every key of ``config.toml``: its type and default from the
  dataclasses of node/config.py, its meaning from the comments above it in
  ``CONFIG_TEMPLATE`` (the file ``branchnet init`` writes). A key without a
  comment, or a dataclass field missing from the template, is an error here.
* ``genesis-params`` — the genesis ``params`` (protocol/genesis.py ``ChainParams``),
  the meaning from the comment after each field.
* ``record-kinds`` — protocol/schema.py ``BODY_TYPES``, the meaning from each
  body class's docstring.
* ``enumerations`` — the allowed values of every enumerated field, read from the
  protocol's tuples (:data:`ENUMERATIONS` says where each is used).
* ``metrics`` — every metric family a validator exports: a ``BranchNode`` is
  assembled on an in-memory network (nothing runs; its metric registry is what
  ``/metrics`` renders) and each family's name, type, labels and HELP text listed.
  tests/test_metrics.py checks a running process exports exactly these families.

tests/test_cli_reference.py fails when docs/CLI.md differs from what this renders.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import tempfile
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Callable, Iterable

from node.config import CONFIG_TEMPLATE, REQUIRED, Config
from protocol import field_types, governance, quality, terms
from protocol.currencies import ISO_4217
from protocol.genesis import ChainParams
from protocol.schema import BODY_TYPES

CLI_MD = Path(__file__).resolve().parent.parent / "docs" / "CLI.md"
FIX = "python -m tools.gen_cli_reference"

# (name, values, where it is used). The values come from the protocol; only the
# third column is written here.
ENUMERATIONS: tuple[tuple[str, Callable[[], Iterable[str]], str], ...] = (
    ("service category", lambda: field_types.CATEGORIES,
     "`service.offer` `category` (`service publish --category`); "
     f"{', '.join(f'`{c}`' for c in sorted(field_types.RISK_RATED_CATEGORIES))} also need `--risk R1..R5`"),
    ("channel", lambda: field_types.CHANNELS, "`service.offer` `channels` (`--channel`, repeatable)"),
    ("fee basis", lambda: field_types.FEE_BASES,
     "the BASIS of `--fee 'LABEL=AMOUNT CUR BASIS'`; `percent_bp`: AMOUNT in basis points"),
    ("ownership", lambda: field_types.OWNERSHIP, "`service.offer` `ownership`: `consigned` with `--consigned-by ISSUER`"),
    ("accessibility", lambda: field_types.ACCESSIBILITY, "`service.offer` `accessibility` (`--accessibility`, repeatable)"),
    ("service status", lambda: field_types.STATUSES, "`service.status` `status` (`service status`)"),
    ("loan rate type", lambda: terms.RATE_TYPES, "loan terms `rate_type`"),
    ("loan rate reference", lambda: terms.RATE_REFERENCES, "loan terms `rate_reference` (`none` if and only if fixed)"),
    ("repayment method", lambda: terms.REPAYMENT_METHODS, "loan terms `repayment_methods` (one or more)"),
    ("collateral kind", lambda: terms.COLLATERAL_KINDS, "loan terms `collateral_kinds` (if collateral is required)"),
    ("early withdrawal", lambda: terms.EARLY_WITHDRAWAL, "deposit terms `early_withdrawal`"),
    ("redemption", lambda: terms.REDEMPTION, "investment terms `redemption`"),
    ("complaint category", lambda: quality.COMPLAINT_CATEGORIES, "`branch.quality` `complaints` (`branch quality publish`)"),
    ("governance action", lambda: governance.ACTIONS, "`gov.proposal` `action` (`gov propose ...`)"),
    ("chain parameter", lambda: (f.name for f in fields(ChainParams)), "`set_param` (`gov propose param`); see the genesis parameters"),
    ("proposal status", lambda: governance.PROPOSAL_STATUSES, "a proposal's state (`/v1/governance`)"),
)

_TYPES = {"str": "string", "int": "integer", "bool": "boolean", "tuple[str, ...]": "list of strings"}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def template_keys() -> dict[tuple[str, str], str]:
    """(section, key) -> the comment lines above it in CONFIG_TEMPLATE, joined. A key
    shown commented out (``# listen = ...``: off unless set) counts as a key."""
    known = {s.name: {f.name for f in fields(s.default_factory())} for s in fields(Config)}  # type: ignore[misc]
    out: dict[tuple[str, str], str] = {}
    section, comment = None, []
    for line in CONFIG_TEMPLATE.splitlines():
        line = line.strip()
        header = re.fullmatch(r"\[(\w+)\]", line)
        key = re.match(r"^#?\s*(\w+)\s*=", line)
        if header:
            section, comment = header.group(1), []
        elif section and key and key.group(1) in known.get(section, ()):
            if not comment:
                raise ValueError(f"CONFIG_TEMPLATE: [{section}] {key.group(1)} has no comment saying what it means")
            out[(section, key.group(1))] = " ".join(comment)
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("#").strip())
        elif not line:
            comment = []
    return out


def config_table() -> str:
    meanings = template_keys()
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for section in fields(Config):
        for f in fields(section.default_factory()):  # type: ignore[misc]
            if (section.name, f.name) not in meanings:
                raise ValueError(f"[{section.name}] {f.name} is not in node/config.py CONFIG_TEMPLATE")
            if f.name in REQUIRED.get(section.name, ()):
                default = "written by `init`"
            elif f.default is MISSING:
                raise ValueError(f"[{section.name}] {f.name} has no default")
            elif f.default == "":
                default = "unset (off)"
            else:
                default = f"`{_toml(f.default)}`"
            rows.append(f"| `[{section.name}] {f.name}` | {_TYPES.get(str(f.type), str(f.type))} | {default} | "
                        f"{_cell(meanings[(section.name, f.name)])} |")
    return "\n".join(rows)


def genesis_params_table() -> str:
    source = inspect.getsource(ChainParams)
    comments = dict(re.findall(r"^\s+(\w+): int = [^#\n]+#\s*(.+)$", source, re.M))
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    for f in fields(ChainParams):
        if f.name not in comments:
            raise ValueError(f"protocol/genesis.py ChainParams.{f.name} has no comment saying what it means")
        rows.append(f"| `{f.name}` | {f.default} | {_cell(comments[f.name])} |")
    return "\n".join(rows)


def record_kinds_table() -> str:
    rows = ["| kind | what it says |", "|---|---|"]
    for kind, body in BODY_TYPES.items():
        doc = body.__doc__ or ""
        if doc.startswith(body.__name__ + "("):  # dataclass's generated signature: no docstring of its own
            raise ValueError(f"{body.__module__}.{body.__name__} ({kind}) has no docstring saying what it is")
        rows.append(f"| `{kind}` | {_cell(doc.strip().split(chr(10) + chr(10))[0])} |")
    return "\n".join(rows)


def enumerations_table() -> str:
    rows = ["| enumeration | values | where |", "|---|---|---|"]
    for name, values, where in ENUMERATIONS:
        rows.append(f"| {name} | {', '.join(f'`{v}`' for v in values())} | {_cell(where)} |")
    rows.append(f"| currency | {len(ISO_4217)} ISO 4217 codes (protocol/currencies.py), e.g. `CNY`, `EUR`, `USD` | "
                "fee and terms amounts, written with the currency's exponent (`15.00 CNY`, `500 JPY`) |")
    return "\n".join(rows)


# ------------------------------------------------------------------ metrics


def node_registry_families() -> list[dict]:
    """Every family a validator's registry renders: name as exported, type, labels, help.

    A one-validator network is created in a temporary directory and a BranchNode
    assembled on an in-memory transport (inside trio: the driver reads trio's
    clock); nothing is started."""
    import trio
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from node.node import BranchNode
    from node.p2p.memory import MemoryHub
    from node.testnet import create_network

    async def assemble(base: Path) -> list[dict]:
        (home,) = create_network(base, 1, fixed_ports=False)
        node = BranchNode(home, api=False, transport=MemoryHub().network)
        try:
            registry = node.metrics.registry
            labels: dict[str, list[str]] = {}
            for collector, names in registry._collector_to_names.items():  # labels of families with no child yet
                for name in names:
                    labels.setdefault(name, list(getattr(collector, "_labelnames", ())))
            families = []
            node.metrics.render()  # the scrape hooks
            for metric in registry.collect():
                names = list(labels.get(metric.name, ())) + list(getattr(metric, "_labelnames", ()))
                for sample in metric.samples:
                    names += [k for k in sample.labels if k != "le"]
                families.append({"name": metric.name, "type": metric.type, "help": metric.documentation,
                                 "labels": list(dict.fromkeys(names))})
            scraped = {f.name for f in text_string_to_metric_families(generate_latest(registry).decode())}
            if scraped != {scraped_name(f) for f in families}:
                raise AssertionError(f"the registry's families and what it renders differ: {scraped ^ {scraped_name(f) for f in families}}")
            return families
        finally:
            node.store.close()
            if node.wal is not None:
                node.wal.close()

    with tempfile.TemporaryDirectory() as tmp:
        return trio.run(assemble, Path(tmp))


def scraped_name(family: dict) -> str:
    """The family name prometheus_client's text parser gives it (an info is a gauge ``_info``)."""
    return family["name"] + ("_info" if family["type"] == "info" else "")


def exported_name(family: dict) -> str:
    """The sample name a scraper queries (``_total`` on counters, ``_info`` on infos)."""
    suffix = {"counter": "_total", "info": "_info"}.get(family["type"], "")
    return family["name"] + suffix


def metrics_table(families: list[dict] | None = None) -> str:
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for f in families if families is not None else node_registry_families():
        kind = f["type"] + (" (`_bucket`, `_sum`, `_count`)" if f["type"] == "histogram" else "")
        labels = ", ".join(f"`{label}`" for label in f["labels"])
        rows.append(f"| `{exported_name(f)}` | {kind} | {labels} | {_cell(f['help'])} |")
    return "\n".join(rows)


# ------------------------------------------------------------------ the file

TABLES: dict[str, Callable[[], str]] = {
    "config": config_table,
    "genesis-params": genesis_params_table,
    "record-kinds": record_kinds_table,
    "enumerations": enumerations_table,
    "metrics": metrics_table,
}


def render(text: str, tables: dict[str, str] | None = None) -> str:
    """``text`` with every generated block replaced by the current table. Raises
    ValueError if a block's markers are missing."""
    tables = tables if tables is not None else {name: make() for name, make in TABLES.items()}
    for name, table in tables.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"docs/CLI.md lacks the markers <!-- generated:{name} --> ... <!-- /generated:{name} -->")
        text = pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.gen_cli_reference", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/CLI.md is out of date; change nothing")
    ap.add_argument("--file", type=Path, default=CLI_MD)
    args = ap.parse_args(argv)
    current = args.file.read_text()
    fresh = render(current)
    if fresh == current:
        print(f"{args.file}: up to date")
        return 0
    if args.check:
        print(f"{args.file} is out of date; run: {FIX}", file=sys.stderr)
        return 1
    args.file.write_text(fresh)
    print(f"{args.file}: tables regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
