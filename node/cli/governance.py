"""``branchnet gov ...``: propose, vote and follow governance (PROTOCOL.md §15).

Proposals and votes are records signed by the local node's branch key through
``POST /v1/records/sign``, like ``branchnet service ...``; only a validator in
force may propose or vote. ``gov list`` and ``gov show`` read ``GET /v1/governance``.
"""

from __future__ import annotations

from typing import Any

import click

from protocol.errors import RemoteProtocolError
from protocol.genesis import ChainParams
from protocol.governance import Action, GovProposal, GovVote, KeyRotation, MAX_PROPOSAL_LIFETIME, PROPOSAL_STATUSES

from .common import CliError, cli_context, console, home_option, json_option, node_option, print_json
from .records import submit, wait_options


@click.group()
def gov() -> None:
    """Governance: admit and retire members, set validator power, rotate keys, set chain parameters."""


def _hex(value: str, what: str, size: int) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise click.BadParameter(f"{what} must be {2 * size} hex digits")
    return raw


def _current_height() -> int:
    with cli_context().client() as api:
        return int(api.get("/health")["height"])


def _propose(name: str, action: Action, lifetime: int, wait_commit: bool, timeout: float, as_json: bool) -> None:
    try:
        body = GovProposal(name, action, _current_height() + lifetime)
        body = GovProposal.from_array(body.to_array())  # the protocol's own checks, before anything is sent
    except RemoteProtocolError as exc:
        raise click.BadParameter(str(exc)) from None
    result = submit(body, wait_commit=wait_commit, timeout=timeout, as_json=as_json, what=f"proposal {name}")
    if not as_json:
        click.echo(f"proposal id {result['hash']} (vote with: branchnet gov vote {result['hash']} --yes)")


def proposal_options(f: Any) -> Any:
    f = click.option("--lifetime", type=click.IntRange(1, MAX_PROPOSAL_LIFETIME), default=1000, show_default=True,
                     help="Heights from now after which the proposal expires unless it passed.")(f)
    f = click.argument("name")(f)
    for opt in (wait_options, home_option, node_option, json_option):
        f = opt(f)
    return f


@gov.group("propose")
def propose() -> None:
    """Propose a change (NAME: lowercase letters, digits and '-', used once per proposer)."""


@propose.command("admit")
@proposal_options
@click.option("--member-name", required=True, help="The new branch's name, as the registry will show it.")
@click.option("--public-key", required=True, help="Its Ed25519 public key (64 hex digits; `branchnet keys show`).")
def propose_admit(name: str, member_name: str, public_key: str, lifetime: int, wait_commit: bool, timeout: float,
                  as_json: bool) -> None:
    """Admit a new member branch (with no voting power)."""
    _propose(name, Action("admit_member", name=member_name, public_key=_hex(public_key, "--public-key", 32)),
             lifetime, wait_commit, timeout, as_json)


@propose.command("retire")
@proposal_options
@click.option("--branch", "branch_id", required=True, help="The member's branch id (40 hex digits).")
def propose_retire(name: str, branch_id: str, lifetime: int, wait_commit: bool, timeout: float, as_json: bool) -> None:
    """Retire a member: its records are refused from then on (its history stays)."""
    _propose(name, Action("retire_member", branch_id=_hex(branch_id, "--branch", 20)), lifetime, wait_commit, timeout, as_json)


@propose.command("power")
@proposal_options
@click.option("--branch", "branch_id", required=True, help="The member's branch id (40 hex digits).")
@click.option("--power", type=click.IntRange(0), required=True, help="Its new voting power; 0 removes it from the validators.")
def propose_power(name: str, branch_id: str, power: int, lifetime: int, wait_commit: bool, timeout: float,
                  as_json: bool) -> None:
    """Set a member's voting power (make it a validator, change its weight, remove or restore it)."""
    _propose(name, Action("set_power", branch_id=_hex(branch_id, "--branch", 20), power=power), lifetime, wait_commit,
             timeout, as_json)


@propose.command("rotate-key")
@proposal_options
@click.option("--branch", "branch_id", required=True, help="The member's branch id (40 hex digits).")
@click.option("--public-key", required=True, help="Its new public key (64 hex digits).")
def propose_rotate(name: str, branch_id: str, public_key: str, lifetime: int, wait_commit: bool, timeout: float,
                   as_json: bool) -> None:
    """Replace a member's key that was lost or leaked (a member with its key uses `gov rotate-key`)."""
    _propose(name, Action("rotate_key", branch_id=_hex(branch_id, "--branch", 20), public_key=_hex(public_key, "--public-key", 32)),
             lifetime, wait_commit, timeout, as_json)


@propose.command("param")
@proposal_options
@click.option("--param", "param", type=click.Choice(list(ChainParams.__dataclass_fields__)), required=True)
@click.option("--value", type=click.IntRange(1), required=True)
def propose_param(name: str, param: str, value: int, lifetime: int, wait_commit: bool, timeout: float, as_json: bool) -> None:
    """Set a chain parameter (it takes effect two heights after the proposal passes)."""
    _propose(name, Action("set_param", name=param, value=value), lifetime, wait_commit, timeout, as_json)


@gov.command("vote")
@click.argument("proposal_id")
@click.option("--yes/--no", "yes", required=True, help="Vote for or against.")
@wait_options
@home_option
@node_option
@json_option
def vote(proposal_id: str, yes: bool, wait_commit: bool, timeout: float, as_json: bool) -> None:
    """Vote on an open proposal (a later vote replaces this one while it is open)."""
    body = GovVote(_hex(proposal_id, "PROPOSAL_ID", 32), yes)
    submit(body, wait_commit=wait_commit, timeout=timeout, as_json=as_json, what=f"vote {'yes' if yes else 'no'}")


@gov.command("rotate-key")
@click.option("--public-key", required=True, help="This branch's new public key (64 hex digits).")
@wait_options
@home_option
@node_option
@json_option
def rotate_key(public_key: str, wait_commit: bool, timeout: float, as_json: bool) -> None:
    """Announce a new key of this branch held elsewhere, signed with the current one (records
    after it must be signed with that key, so this node stops signing for the branch).
    To move this node itself to a new key, use `branchnet keys rotate`."""
    try:
        body = KeyRotation.from_array([_hex(public_key, "--public-key", 32)])
    except RemoteProtocolError as exc:
        raise click.BadParameter(str(exc)) from None
    submit(body, wait_commit=wait_commit, timeout=timeout, as_json=as_json, what="branch.key")


@gov.command("list")
@click.option("--status", type=click.Choice(PROPOSAL_STATUSES), help="Only proposals in this state.")
@home_option
@node_option
@json_option
def gov_list(status: str | None, as_json: bool) -> None:
    """Proposals (newest first) and the validator sets signing the next two heights."""
    with cli_context().client() as api:
        doc = api.get("/v1/governance", {"status": status})
    if as_json:
        print_json(doc)
        return
    from rich.table import Table

    names = {m["branch_id"]: m["name"] for m in doc.get("members", [])}
    table = Table("id", "name", "action", "status", "yes power", "height", box=None)
    power = {v["branch_id"]: v["power"] for v in doc.get("validators", [])}
    total = sum(power.values()) or 1
    for p in doc.get("proposals", []):
        yes = sum(power.get(v["branch_id"], 0) for v in p.get("votes", []) if v.get("yes"))
        action = p.get("action", {})
        what = " ".join(f"{k}={names.get(v, v) if k == 'branch_id' else v}" for k, v in action.items())
        table.add_row(p["id"][:12], p["name"], what, p["status"] + (f" ({p['reason']})" if p.get("reason") else ""),
                      f"{yes}/{total}", str(p.get("decided_height") or p.get("submitted_height")))
    out = console()
    out.print(table)
    for label, key in (("validators", "validators"), ("next block after", "next_validators")):
        out.print(f"{label}: " + ", ".join(f"{v['name'] or v['branch_id'][:12]} ({v['power']})" for v in doc.get(key, [])))


def proposal_doc(proposal_id: str) -> dict[str, Any]:
    with cli_context().client() as api:
        doc = api.get("/v1/governance")
    found = [p for p in doc.get("proposals", []) if p["id"].startswith(proposal_id.lower())]
    if len(found) != 1:
        raise CliError(f"{'no' if not found else 'more than one'} proposal matches {proposal_id!r}")
    return found[0]


@gov.command("show")
@click.argument("proposal_id")
@home_option
@node_option
@json_option
def gov_show(proposal_id: str, as_json: bool) -> None:
    """One proposal (an id prefix is enough) with its votes."""
    p = proposal_doc(proposal_id)
    if as_json:
        print_json(p)
        return
    for k in ("id", "name", "proposer", "action", "status", "reason", "submitted_height", "expires_height", "decided_height"):
        click.echo(f"{k}: {p.get(k)}")
    for v in p.get("votes", []):
        click.echo(f"  {v['branch_id']}: {'yes' if v['yes'] else 'no'}")
