"""``branchnet branch quality publish|list``: monthly service-quality disclosures (PROTOCOL.md §5.10).

``publish --file`` reads the body in the API's JSON form (a ``.json`` or ``.toml`` file:
period, complaints, resolution and waiting times, self-service availability), checks
it with the protocol's rules (exit 2 naming the field: counts below 5 must be -1) and
signs it through the local node; publishing the same period again is a correction
(the next seq: the chain keeps both). ``list`` ranks the branches' current disclosures
for a month (``GET /v1/quality``).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import click

from protocol.errors import ProtocolError
from protocol.views import body_from_json

from ..api.compare import QUALITY_SORTS
from .common import cli_context, console, home_option, json_option, node_option, print_json
from .parse import InputError
from .records import branch, submit, wait_options


@branch.group("quality")
def branch_quality() -> None:
    """Monthly service-quality disclosures: complaints, resolution and waiting times (aggregates only)."""


def quality_from_file(path: Path) -> Any:
    """The branch.quality body of a .json or .toml file, checked; raises InputError naming the field."""
    try:
        data = path.read_bytes()
        doc = tomllib.loads(data.decode("utf-8")) if path.suffix.lower() == ".toml" else json.loads(data)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})", param_hint="--file") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not valid JSON/TOML ({exc})", param_hint="--file") from None
    try:
        return body_from_json("branch.quality", doc)
    except ProtocolError as exc:
        raise InputError(str(exc), param_hint="--file") from None


@branch_quality.command("publish")
@click.option("--file", "path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The disclosure: period, complaints [{category, received, resolved}], resolution_median_hours, "
                   "resolution_p90_hours, wait_avg_minutes, wait_p90_minutes, self_service_availability_bp "
                   "(-1: fewer than 5, or not disclosed).")
@wait_options
@home_option
@node_option
@json_option
def quality_publish(path: Path, wait_commit: bool, timeout: float, as_json: bool) -> None:
    """Publish (or correct) this branch's service-quality disclosure for one month.

    \b
    Example (quality.json):
      {"period": "2026-09", "complaints": [{"category": "fees", "received": 12, "resolved": 11},
        {"category": "card", "received": -1, "resolved": -1}], "resolution_median_hours": 18,
       "resolution_p90_hours": 66, "wait_avg_minutes": 9, "wait_p90_minutes": 27,
       "self_service_availability_bp": 9950}
      branchnet branch quality publish --file quality.json
    """
    body = quality_from_file(path)
    submit(body, wait_commit=wait_commit, timeout=timeout, as_json=as_json, what=f"branch.quality {body.period}")


PAGE = 1000  # /v1/quality's largest page


def _count(n: int) -> str:
    return "<5" if n == -1 else str(n)


def _or_dash(n: int, unit: str) -> str:
    return "-" if n == -1 else f"{n}{unit}"


@branch_quality.command("list")
@click.option("--period", metavar="YYYY-MM", help="The month (default: the latest disclosed).")
@click.option("--region", help="Only this region (prefix: CN-GD matches CN-GD-440106).")
@click.option("--sort", type=click.Choice(tuple(QUALITY_SORTS)), default="resolution", show_default=True,
              help="resolution: fastest median first; wait: shortest average wait; availability: highest first.")
@home_option
@node_option
@json_option
def quality_list(period: str | None, region: str | None, sort: str, as_json: bool) -> None:
    """Rank the branches' current service-quality disclosures for a month."""
    with cli_context().client() as api:
        doc = api.get("/v1/quality", {"period": period, "region": region, "sort": sort, "limit": PAGE})
        # every page, of the period the first answer names (a new month disclosed meanwhile changes nothing)
        while len(doc["branches"]) < doc.get("total", 0):
            page = api.get("/v1/quality", {"period": doc["period"], "region": region, "sort": sort, "limit": PAGE,
                                           "offset": len(doc["branches"])})
            if not page["branches"]:  # fewer than announced now (a branch left): what there is
                break
            doc["branches"] += page["branches"]
    if as_json:
        print_json(doc)
        return
    from rich.table import Table

    table = Table("branch", "region", "complaints (received/resolved)", "resolution (median/p90)", "wait (avg/p90)",
                  "self-service", "version", box=None)
    for row in doc.get("branches", []):
        q = row["quality"]
        complaints = ", ".join(f"{c['category']} {_count(c['received'])}/{_count(c['resolved'])}" for c in q["complaints"])
        table.add_row(str(row.get("branch_name")), str(row.get("region") or "-"), complaints or "none",
                      f"{_or_dash(q['resolution_median_hours'], ' h')} / {_or_dash(q['resolution_p90_hours'], ' h')}",
                      f"{_or_dash(q['wait_avg_minutes'], ' min')} / {_or_dash(q['wait_p90_minutes'], ' min')}",
                      "-" if q["self_service_availability_bp"] == -1 else f"{q['self_service_availability_bp'] / 100:.2f}%",
                      f"seq {row.get('seq')}")
    out = console()
    out.print(f"service quality {doc.get('period') or '(none disclosed)'}")
    out.print(table)
