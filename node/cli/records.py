"""``branchnet branch ...`` and ``branchnet service ...``: publishing and reading records.

Writes go to the local node's ``POST /v1/records/sign`` (the node signs with the
branch key, bearer token from HOME/api_token). Bodies are built and validated
here first with the protocol's own rules (node/cli/parse.py), so bad input
fails with exit 2 before anything is sent. With ``--wait-commit`` (default)
the command then polls ``GET /v1/records/{hash}`` until the record has a
height, bounded by ``--timeout``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import click

from protocol.views import body_to_json

from .common import (
    CliError,
    NodeClient,
    cli_context,
    console,
    home_option,
    json_option,
    kv_table,
    node_option,
    print_json,
)
from ..api.compare import SORTS
from .parse import (
    body_rows,
    format_bp,
    format_money,
    parse_amount,
    parse_term,
    parse_time_ms,
    load_service_file,
    offer_from_fields,
    offer_with_changes,
    profile_body,
    status_body,
    withdraw_body,
)

POLL_INTERVAL_S = 0.2


def wait_options(f: Callable) -> Callable:
    f = click.option("--timeout", type=click.FloatRange(0.1, 3600), default=30.0, show_default=True,
                     help="Seconds to wait for the commit.")(f)
    f = click.option("--wait-commit/--no-wait", "wait_commit", default=True, show_default=True,
                     help="Wait until the record is in a committed block and print its height.")(f)
    return f


def submit(body: Any, *, wait_commit: bool, timeout: float, as_json: bool, what: str) -> dict[str, Any]:
    """Sign-and-submit ``body`` through the node; optionally wait for its block."""
    ctx = cli_context()
    with ctx.client() as api:
        answer = api.post("/v1/records/sign", {"kind": body.KIND, "body": body_to_json(body)})
        record_hash = answer.get("hash") if isinstance(answer, dict) else None
        if not isinstance(record_hash, str):
            raise CliError("the node accepted the record but did not return its hash")
        result = {"hash": record_hash, "seq": answer.get("seq"), "kind": body.KIND, "height": None, "index": None,
                  "status": "pending"}
        if not as_json:
            click.echo(f"submitted {what}: record {record_hash} (seq {answer.get('seq')})")
        if wait_commit:
            found = wait_committed(api, record_hash, timeout)
            result.update(height=found.get("height"), index=found.get("index"), status="committed")
            if not as_json:
                click.echo(f"committed at height {found.get('height')}")
    result["record"] = answer.get("record")
    if as_json:
        print_json(result)
    return result


def wait_committed(api: NodeClient, record_hash: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc = api.get(f"/v1/records/{record_hash}", allow_404=True)
        if isinstance(doc, dict) and doc.get("height") is not None:
            return doc
        if isinstance(doc, dict) and doc.get("status") == "rejected":
            raise CliError(f"record {record_hash} was rejected: {doc.get('reason')}")
        if time.monotonic() >= deadline:
            state = "still pending" if doc is not None else "unknown to the node (dropped?)"
            raise CliError(f"record {record_hash} not committed within {timeout:g} s ({state}); "
                           f"check later: branchnet proof get {record_hash}")
        time.sleep(POLL_INTERVAL_S)


# ---------------------------------------------------------------- branch profile


@click.group()
def branch() -> None:
    """This branch's public profile."""


@branch.group("profile")
def branch_profile() -> None:
    """Publish the branch profile (name, address, location, hours, contact)."""


@branch_profile.command("set")
@click.option("--name", required=True, help="Branch name as customers see it.")
@click.option("--address", required=True, help="Street address (no personal data).")
@click.option("--region", required=True, help="Region code, e.g. CN-BJ-110108.")
@click.option("--lat", required=True, metavar="DEGREES", help="Latitude in decimal degrees, e.g. 39.983 (at most 6 decimals).")
@click.option("--lon", required=True, metavar="DEGREES", help="Longitude in decimal degrees, e.g. 116.316.")
@click.option("--hours", multiple=True, metavar="'DAYS HH:MM-HH:MM'", help="Opening hours, repeatable: 'mon-fri 09:00-17:00'.")
@click.option("--phone", default="", help="Branch phone number.")
@click.option("--url", default="", help="https:// page of the branch.")
@wait_options
@home_option
@node_option
@json_option
def branch_profile_set(name: str, address: str, region: str, lat: str, lon: str, hours: tuple[str, ...], phone: str,
                       url: str, wait_commit: bool, timeout: float, as_json: bool) -> None:
    """Publish (or replace) the branch profile.

    \b
    Example:
      branchnet branch profile set --name "Haidian Sub-branch" \\
        --address "1 Zhongguancun St, Beijing" --region CN-BJ-110108 \\
        --lat 39.983 --lon 116.316 --hours "mon-fri 09:00-17:00" --hours "sat 10:00-14:00" \\
        --phone "+86 10 6255 0000" --url https://bank.example/haidian
    """
    body = profile_body(name=name, address=address, region=region, lat=lat, lon=lon, hours=hours, phone=phone, url=url)
    submit(body, wait_commit=wait_commit, timeout=timeout, as_json=as_json, what="branch profile")


# ---------------------------------------------------------------- services


@click.group()
def service() -> None:
    """Publish, update, withdraw and list services."""


def offer_options(f: Callable) -> Callable:
    options = [
        click.option("--file", "service_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                     help="service.toml or service.json with the same fields (flags override it)."),
        click.option("--id", "service_id", help="Service id: [a-z0-9][a-z0-9._-]{0,63}."),
        click.option("--category", help="cash, deposit, transfer, account, loan, wealth, fx, agency, self_service, advisory."),
        click.option("--title", help="Short title (1-120 characters)."),
        click.option("--description", help="Description (up to 2000 characters, no personal data)."),
        click.option("--channel", "channels", multiple=True,
                     help="Repeatable: counter, low_counter, self_service, online, mobile, phone, appointment (default counter)."),
        click.option("--hours", multiple=True, metavar="'DAYS HH:MM-HH:MM'", help="Repeatable; none: the branch's hours."),
        click.option("--fee", "fees", multiple=True, metavar="'LABEL=AMOUNT CUR BASIS'",
                     help="Repeatable, e.g. 'express=5.00 CNY per_transaction'; basis: free, per_transaction, per_month, "
                          "per_year, one_time, percent_bp (AMOUNT in basis points)."),
        click.option("--risk", metavar="R1..R5", help="Risk level (required for loan, wealth and agency products)."),
        click.option("--consigned-by", metavar="ISSUER", help="Sold on behalf of this issuer (omit for own products)."),
        click.option("--accessibility", multiple=True,
                     help="Repeatable: wheelchair, hearing_loop, braille, sign_language, priority_counter, large_print, guide_dog."),
        click.option("--effective-from", metavar="ISO8601", help="When the offer takes effect, with a time zone (default: now)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _offer_from_args(kw: dict[str, Any]):
    return offer_from_fields(_given_fields(kw), now_ms=int(time.time() * 1000))


def _own_offer(api: NodeClient, service_id: str) -> dict[str, Any] | None | bool:
    """This branch's current offer of ``service_id``; False if the branch is unknown here (no key)."""
    from ..keyfile import KeyFileError, load_branch_key

    try:
        branch_id = load_branch_key(cli_context().home.key).branch_id.hex()  # not the key's own id once rotated
    except KeyFileError:
        return False
    doc = api.get("/v1/services", {"branch": branch_id, "limit": 1000})
    for s in doc.get("services", []):
        if s.get("service_id") == service_id and s.get("branch_id") == branch_id:
            return s
    return None


def _given_fields(kw: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = load_service_file(kw["service_file"]) if kw.get("service_file") else {}
    flags = {"id": kw["service_id"], "category": kw["category"], "title": kw["title"], "description": kw["description"],
             "risk": kw["risk"], "consigned_by": kw["consigned_by"], "effective_from": kw["effective_from"],
             "channels": kw["channels"], "hours": kw["hours"], "fees": kw["fees"], "accessibility": kw["accessibility"]}
    fields.update({k: v for k, v in flags.items() if v not in (None, ())})
    return fields


def _publish(kw: dict[str, Any], *, update: bool, replace: bool = True) -> None:
    if replace:
        body = _offer_from_args(kw)
        service_id = body.service_id
    else:  # only the fields given change: the rest comes from the committed offer
        given = _given_fields(kw)
        if not given.get("id"):
            raise click.UsageError("missing --id (the service to update)")
        service_id = str(given["id"])
    with cli_context().client() as api:
        existing = _own_offer(api, service_id)
    if update and not existing:
        raise CliError(f"service {service_id!r} is not on offer at this branch; use `branchnet service publish`")
    if not update and existing:
        raise CliError(f"service {service_id!r} is already on offer; use `branchnet service update` to change it")
    if not replace:
        from protocol.errors import ProtocolError
        from protocol.views import body_from_json

        try:
            current = body_from_json("service.offer", existing.get("offer"))
        except ProtocolError as exc:
            raise CliError(f"the node's copy of service {service_id!r} does not read back ({exc}); use --replace") from None
        body = offer_with_changes(current, given, now_ms=int(time.time() * 1000))
    submit(body, wait_commit=kw["wait_commit"], timeout=kw["timeout"], as_json=kw["as_json"],
           what=f"service.offer {service_id}")


@service.command("publish")
@offer_options
@wait_options
@home_option
@node_option
@json_option
def service_publish(**kw: Any) -> None:
    """Publish a new service offer.

    \b
    Example:
      branchnet service publish --id fx-exchange --category fx --title "Foreign exchange" \\
        --channel counter --hours "mon-fri 09:00-16:30" \\
        --fee "cash exchange=0.50 CNY per_transaction" --fee "margin=150 CNY percent_bp"
      branchnet service publish --file service.toml
    """
    _publish(kw, update=False)


@service.command("update")
@offer_options
@wait_options
@home_option
@node_option
@json_option
@click.option("--replace", is_flag=True,
              help="Publish exactly the fields given (the others take their defaults), not a change of the current offer.")
def service_update(replace: bool, **kw: Any) -> None:
    """Change an existing service: only the fields given change (a new signed offer record).

    A --fee replaces the fee with its label (or adds one); --hours, --channel
    and --accessibility given replace that list. The offer takes effect now
    unless --effective-from. With --replace, the fields given are the whole new
    offer (--category and --title required): the way to drop a fee.

    \b
    Example:
      branchnet service update --id fx-exchange --fee "Commission=12.00 CNY per_transaction"
    """
    _publish(kw, update=True, replace=replace)


@service.command("withdraw")
@click.argument("service_id")
@click.option("--reason", required=True, help="Why the service is withdrawn (no personal data).")
@wait_options
@home_option
@node_option
@json_option
def service_withdraw(service_id: str, reason: str, wait_commit: bool, timeout: float, as_json: bool) -> None:
    """Withdraw a service: it is no longer on offer."""
    body = withdraw_body(service_id, reason)
    submit(body, wait_commit=wait_commit, timeout=timeout, as_json=as_json, what=f"service.withdraw {service_id}")


@service.command("status")
@click.argument("service_id")
@click.option("--open", "state", flag_value="open", help="The service is available now.")
@click.option("--paused", "state", flag_value="paused", help="Temporarily unavailable.")
@click.option("--closed", "state", flag_value="closed", help="Closed for now.")
@click.option("--wait", "wait_minutes", type=click.IntRange(0, 1440), default=0, show_default=True, help="Current wait in minutes.")
@click.option("--equipment", multiple=True, metavar="ID=up|down", help="Repeatable: state of a machine, e.g. atm-1=down.")
@wait_options
@home_option
@node_option
@json_option
def service_status(service_id: str, state: str | None, wait_minutes: int, equipment: tuple[str, ...],
                   wait_commit: bool, timeout: float, as_json: bool) -> None:
    """Publish the live status of a service (open/paused/closed, wait, equipment)."""
    if state is None:
        raise click.UsageError("give one of --open, --paused or --closed")
    body = status_body(service_id, state, wait_minutes, equipment)
    submit(body, wait_commit=wait_commit, timeout=timeout, as_json=as_json, what=f"service.status {service_id}")


@service.command("list")
@click.option("--category", help="Only this category.")
@click.option("--branch", help="Only this branch (branch id).")
@click.option("--region", help="Only this region (prefix match as the node implements it).")
@click.option("--status", help="Only services with this live status (open, paused, closed).")
@click.option("--q", help="Full-text search in titles and descriptions.")
@click.option("--term", metavar="12m|3y|demand", help="Product terms cover this term (loan range, deposit table row, product term).")
@click.option("--amount", metavar="AMOUNT CUR", help="Within a loan's amount range, at least a deposit's or product's minimum, "
                                                      "e.g. '500000 CNY'.")
@click.option("--sort", type=click.Choice(SORTS), help="By headline rate (loan: lowest rate; deposit: rate for --term; "
                                                       "wealth/agency: highest expected yield), term or minimum amount; "
                                                       "- for descending. Offers without terms last.")
@click.option("--as-of", "as_of", metavar="ISO8601", help="What was on offer at that instant (with a time zone), from the "
                                                          "chain's history; every row's record has its proof.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@home_option
@node_option
@json_option
def service_list(category: str | None, branch: str | None, region: str | None, status: str | None, q: str | None,
                 term: str | None, amount: str | None, sort: str | None, as_of: str | None, limit: int, offset: int,
                 as_json: bool) -> None:
    """List services on offer across the network.

    \b
    Example: the lowest 12-month loan rates first
      branchnet service list --category loan --term 12m --sort rate
    """
    params = {"category": category, "branch": branch, "region": region, "status": status, "q": q, "limit": limit,
              "offset": offset or None, "term_months": parse_term(term) if term is not None else None,
              "amount": parse_amount(amount) if amount is not None else None, "sort": sort,
              "as_of": parse_time_ms(as_of, "--as-of") if as_of is not None else None}
    with cli_context().client() as api:
        doc = api.get("/v1/services", params)
    if as_json:
        print_json(doc)
        return
    from rich.table import Table

    table = Table("branch", "region", "service", "category", "title", "rate", "status", "fees", "height", box=None)
    for s in doc.get("services", []):
        offer = s.get("offer") or {}
        table.add_row(str(s.get("branch_name") or str(s.get("branch_id", ""))[:12]), str(s.get("region") or "-"),
                      str(s.get("service_id")), str(offer.get("category", "")), str(offer.get("title", "")),
                      format_bp(s.get("rate_bp")), _status_text(s.get("status")), _fees_text(offer.get("fees") or []), str(s.get("height", "")))
    out = console()
    out.print(table)
    out.print(f"{len(doc.get('services', []))} of {doc.get('total', '?')} service(s)"
              + (f" on offer at {as_of} (height {doc.get('as_of_height')})" if as_of is not None else ""))


@service.command("show")
@click.argument("branch_ref", metavar="BRANCH")
@click.argument("service_id")
@home_option
@node_option
@json_option
def service_show(branch_ref: str, service_id: str, as_json: bool) -> None:
    """Show one service of one branch (BRANCH: branch id or branch name)."""
    is_id = len(branch_ref) == 40 and all(c in "0123456789abcdef" for c in branch_ref.lower())
    with cli_context().client() as api:
        doc = api.get("/v1/services", {"branch": branch_ref.lower() if is_id else None, "limit": 1000})
    matches = [s for s in doc.get("services", []) if s.get("service_id") == service_id
               and (s.get("branch_id") == branch_ref.lower() if is_id else s.get("branch_name") == branch_ref)]
    if not matches:
        raise CliError(f"no service {service_id!r} at branch {branch_ref!r}")
    s = matches[0]
    if as_json:
        print_json(s)
        return
    rows = [("branch", f"{s.get('branch_name')} ({s.get('branch_id')})"), ("region", s.get("region")),
            ("status", _status_text(s.get("status")))]
    rows += body_rows(s.get("offer") or {})
    rows += [("record", s.get("record_hash")), ("height", s.get("height"))]
    console().print(kv_table(rows))


def _status_text(status: Any) -> str:
    if isinstance(status, dict):
        text = str(status.get("status", "-"))
        if status.get("wait_minutes"):
            text += f" ({status['wait_minutes']} min wait)"
        return text
    return "-" if status is None else str(status)


def _fees_text(fees: list[dict[str, Any]]) -> str:
    try:
        return "; ".join(f"{f['label']} {format_money(f['amount_minor'], f['currency'], f['basis'])}" for f in fees)
    except (KeyError, TypeError):
        return "?"
