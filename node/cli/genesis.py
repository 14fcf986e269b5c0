"""``branchnet genesis``: build a genesis file together, one step per branch.

A *draft* is a JSON file of the genesis shape (protocol/genesis.py) that may
still have no validators. Each step validates the whole draft with
``protocol.genesis.Genesis`` (with a placeholder validator while the list is
empty), so a duplicate key or a bad name is caught when it is added, not at
the end. ``finalize`` is the full validation and prints the genesis hash every
branch must compare.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from protocol.errors import ProtocolError
from protocol.genesis import Genesis
from protocol.keys import PrivateKey, PublicKey, branch_id_of
from protocol.validators import MAX_POWER

from .common import CliError, ConfigProblem, json_option, print_json
from ..config import Home


@click.group()
def genesis() -> None:
    """Build and check a genesis file (new -> add-validator/add-member -> finalize)."""


def read_draft(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigProblem(f"{path}: no such file (create it with `branchnet genesis new`)") from None
    except OSError as exc:
        raise ConfigProblem(f"{path}: cannot read ({exc.strerror})") from None
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise CliError(f"{path}: must be a JSON object")
    return doc


def check_draft(doc: dict[str, Any], path: Path) -> None:
    """Validate a draft as a genesis; an empty validator list is allowed (a placeholder stands in)."""
    probe = dict(doc)
    if isinstance(probe.get("validators"), list) and not probe["validators"]:
        names = {m.get("name") for m in probe.get("members") or [] if isinstance(m, dict)}
        placeholder = next(f"placeholder-{i}" for i in range(len(names) + 1) if f"placeholder-{i}" not in names)
        probe["validators"] = [{"name": placeholder, "public_key": PrivateKey.generate().public_key.hex(), "power": 1}]
    try:
        Genesis.from_json(probe)
    except ProtocolError as exc:
        raise CliError(f"{path}: {exc}") from None


def write_draft(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


@genesis.command("new")
@click.option("--chain-id", required=True, help="Network name: [a-z0-9][a-z0-9-]{0,49}.")
@click.option("--genesis-time-ms", type=click.IntRange(0, 2**53 - 1), help="Chain start, ms since the epoch (default: now).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="Draft file to create.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def genesis_new(chain_id: str, genesis_time_ms: int | None, out: Path, force: bool) -> None:
    """Start a draft genesis with no validators yet.

    \b
    Example:
      branchnet genesis new --chain-id acme-branches --out genesis.json
    """
    if out.exists() and not force:
        raise ConfigProblem(f"{out} already exists (use --force to overwrite)")
    doc = {
        "chain_id": chain_id,
        "genesis_time_ms": int(time.time() * 1000) if genesis_time_ms is None else genesis_time_ms,
        "validators": [],
        "members": [],
    }
    try:
        check_draft(doc, out)
    except CliError as exc:
        raise click.BadParameter(exc.message.split(": ", 1)[-1], param_hint="--chain-id") from None
    write_draft(out, doc)
    click.echo(f"wrote draft genesis {out} (chain {chain_id}); next: branchnet genesis add-validator {out} ...")


def read_identity(path: Path) -> dict[str, Any]:
    """The identity card ``branchnet keys show --json`` writes: public_key, peer_id, name, addresses."""
    doc = read_draft(path)
    if not isinstance(doc.get("public_key"), str):
        raise CliError(f"{path}: not an identity file (no public_key; write one with `branchnet keys show --json > FILE`)")
    return doc


def _identity(public_key: str | None, from_home: Path | None, keys_file: Path | None, name: str | None) -> tuple[str, str]:
    """(public key hex, name) from exactly one of --public-key, --from-home, --keys-file."""
    if sum(x is not None for x in (public_key, from_home, keys_file)) != 1:
        raise click.UsageError("give exactly one of --public-key HEX, --from-home DIR or --keys-file FILE")
    if keys_file is not None:
        card = read_identity(keys_file)
        public_key, name = card["public_key"], name or card.get("name")
    if not name:
        raise click.UsageError("missing --name (required unless --keys-file names the branch)")
    return _public_key_hex(public_key, from_home), name


def _public_key_hex(public_key: str | None, from_home: Path | None) -> str:
    if (public_key is None) == (from_home is None):
        raise click.UsageError("give exactly one of --public-key HEX or --from-home DIR")
    if from_home is not None:
        from ..keyfile import KeyFileError, load_key

        try:
            return load_key(Home(from_home).key).public_key.hex()
        except KeyFileError as exc:
            raise ConfigProblem(str(exc)) from None
    text = public_key.strip().lower()
    try:
        PublicKey(bytes.fromhex(text))
    except ProtocolError as exc:
        raise click.BadParameter(exc.message if exc.reason == "bad_key" else "must be 64 hex characters (an Ed25519 public key)",
                                 param_hint="--public-key") from None
    except ValueError:
        raise click.BadParameter("must be 64 hex characters (an Ed25519 public key)", param_hint="--public-key") from None
    return text


def _add(path: Path, entry: dict[str, Any], section: str) -> dict[str, Any]:
    doc = read_draft(path)
    items = doc.setdefault(section, [])
    if not isinstance(items, list):
        raise CliError(f"{path}: {section} must be a list")
    key = entry["public_key"]
    for other in (doc.get("validators") or []) + (doc.get("members") or []):
        if isinstance(other, dict) and str(other.get("public_key", "")).lower() == key:
            raise CliError(f"{path}: public key {key[:16]}... is already listed (as {other.get('name')!r})")
        if isinstance(other, dict) and other.get("name") == entry["name"]:
            raise CliError(f"{path}: a branch named {entry['name']!r} is already listed")
    items.append(entry)
    check_draft(doc, path)
    write_draft(path, doc)
    return doc


_NAME = click.option("--name", help="Branch name (1-120 characters), unique in the genesis (default: the --keys-file's name).")
_KEY = click.option("--public-key", metavar="HEX", help="The branch's public key (branchnet keys show).")
_FROM_HOME = click.option("--from-home", type=click.Path(path_type=Path, file_okay=False),
                          help="Read the public key from this node home's key file instead.")
_KEYS_FILE = click.option("--keys-file", type=click.Path(path_type=Path, dir_okay=False),
                          help="Read the name and public key from a branch's `branchnet keys show --json` output.")


@genesis.command("add-validator")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@_NAME
@_KEY
@_FROM_HOME
@_KEYS_FILE
@click.option("--power", type=click.IntRange(1, MAX_POWER), default=10, show_default=True, help="Voting power.")
def genesis_add_validator(file: Path, name: str | None, public_key: str | None, from_home: Path | None,
                          keys_file: Path | None, power: int) -> None:
    """Add a voting branch to a draft genesis.

    \b
    Examples:
      branchnet genesis add-validator genesis.json --name "Haidian" --public-key 3b6a... --power 10
      branchnet genesis add-validator genesis.json --keys-file haidian.branch.json
    """
    key, name = _identity(public_key, from_home, keys_file, name)
    entry = {"name": name, "public_key": key, "power": power, "branch_id": branch_id_of(bytes.fromhex(key)).hex()}
    doc = _add(file, entry, "validators")
    click.echo(f"added validator {name!r} (branch {entry['branch_id']}, power {power}) to {file}: "
               f"{len(doc['validators'])} validator(s), {len(doc.get('members') or [])} member(s)")


@genesis.command("add-member")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@_NAME
@_KEY
@_FROM_HOME
@_KEYS_FILE
def genesis_add_member(file: Path, name: str | None, public_key: str | None, from_home: Path | None,
                       keys_file: Path | None) -> None:
    """Add a non-voting branch or observer (it may publish records and connect, but does not vote)."""
    key, name = _identity(public_key, from_home, keys_file, name)
    entry = {"name": name, "public_key": key, "branch_id": branch_id_of(bytes.fromhex(key)).hex()}
    doc = _add(file, entry, "members")
    click.echo(f"added member {name!r} (branch {entry['branch_id']}) to {file}: "
               f"{len(doc.get('validators') or [])} validator(s), {len(doc['members'])} member(s)")


def genesis_summary(g: Genesis) -> dict[str, Any]:
    return {
        "chain_id": g.chain_id,
        "genesis_hash": g.hash.hex(),
        "genesis_time_ms": g.genesis_time_ms,
        "total_power": g.validators.total_power,
        "validators": [{"name": m.name, "branch_id": m.branch_id.hex(), "power": m.power} for m in g.members if m.power],
        "members": [{"name": m.name, "branch_id": m.branch_id.hex()} for m in g.members if not m.power],
    }


@genesis.command("finalize")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--check", is_flag=True, help="Only validate; do not rewrite FILE in canonical form.")
@json_option
def genesis_finalize(file: Path, check: bool, as_json: bool) -> None:
    """Fully validate a genesis file and print its hash.

    Rewrites FILE in canonical form (explicit params and branch ids; the hash
    does not depend on formatting) unless --check. Every branch should compare
    the printed hash before starting its node.
    """
    read_draft(file)  # clear errors for missing / non-JSON files
    try:
        g = Genesis.loads(file.read_bytes())
    except ProtocolError as exc:
        raise CliError(f"{file}: {exc}") from None
    if not check:
        write_draft(file, g.to_json())
    summary = genesis_summary(g)
    if as_json:
        print_json(summary)
        return
    click.echo(f"genesis {file} is valid: chain {g.chain_id}, {len(summary['validators'])} validator(s) "
               f"(total power {g.validators.total_power}), {len(summary['members'])} member(s)")
    click.echo(f"genesis hash: {summary['genesis_hash']}")
