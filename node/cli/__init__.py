"""``branchnet``: the operator's command-line tool (docs/CLI.md).

One click group; commands are split by job:

* here: ``init``, ``keys show``, ``run``, ``status``/``peers``/``validators``
* node/cli/maintenance.py: ``store rebuild``, ``signer show|reset``
* node/cli/rollback.py: ``rollback``
* node/cli/genesis.py: ``genesis new|add-validator|add-member|finalize``
* node/cli/records.py: ``branch profile set``, ``service publish|update|withdraw|status|list|show``
* node/cli/quality.py: ``branch quality publish|list``
* node/cli/chain.py:   ``chain blocks|show|verify|export``, ``proof get|verify``
* node/cli/testnet.py: ``testnet`` (every home of a local network at once)
* node/cli/config.py:  ``config add-peer``

Errors are one ``error: ...`` line on stderr with the exit code of
node/cli/common.py (0 ok, 1 failed, 2 usage/config, 3 node unreachable);
tracebacks only with ``BRANCHNET_DEBUG=1``.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from .chain import chain, proof
from .config import config_group
from .common import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    HOME_HELP,
    NODE_HELP,
    CliContext,
    CliError,
    ConfigProblem,
    cli_context,
    console,
    home_option,
    json_option,
    kv_table,
    node_option,
    print_json,
)
from .genesis import genesis
from .governance import gov
from .maintenance import signer, store
from .rollback import rollback
from .records import branch, service
from . import quality as _quality  # noqa: F401  (registers `branch quality` on the branch group)
from .testnet import testnet


class BranchnetGroup(click.Group):
    """Runs commands with uniform error output: ``error: <message>`` on stderr, no traceback."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(130)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(EXIT_FAILED)
        except Exception as exc:  # a bug: one line, traceback on request
            if os.environ.get("BRANCHNET_DEBUG"):
                raise
            click.echo(f"error: internal error: {type(exc).__name__}: {exc} (set BRANCHNET_DEBUG=1 for a traceback)", err=True)
            sys.exit(EXIT_FAILED)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=BranchnetGroup, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(path_type=Path, file_okay=False), help=HOME_HELP)
@click.option("--node", metavar="URL", help=NODE_HELP)
@click.version_option(package_name="branchnet", message="branchnet %(version)s")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, node: str | None) -> None:
    """branchnet: operate a node of the bank-branch services ledger.

    \b
    Typical first steps:
      branchnet init --home ~/.branchnet --moniker haidian
      branchnet keys show
      branchnet genesis finalize genesis.json     (after the consortium built it)
      branchnet run
      branchnet status
    """
    obj = ctx.ensure_object(CliContext)
    if home is not None and obj.home_path is None:
        obj.home_path = home
    if node is not None and obj.node_url is None:
        obj.node_url = node


for group in (genesis, branch, service, gov, chain, proof, store, signer, testnet, config_group):
    cli.add_command(group)
cli.add_command(rollback)


# ---------------------------------------------------------------- init, keys, run


@cli.command()
@click.option("--moniker", required=True, help="A name for this node in logs and the status API.")
@click.option("--mode", type=click.Choice(["validator", "observer"]), default="validator", show_default=True)
@click.option("--p2p-listen", default="/ip4/127.0.0.1/tcp/26656", show_default=True, metavar="MULTIADDR",
              help="libp2p listen address (use 0.0.0.0 only on a trusted branch LAN).")
@click.option("--api-listen", default="127.0.0.1:26657", show_default=True, metavar="HOST:PORT", help="HTTP API address.")
@click.option("--psk-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="The consortium's network key file to copy into HOME.")
@click.option("--new-psk", is_flag=True, help="Create a new network key (the first branch of a consortium).")
@home_option
@json_option
def init(moniker: str, mode: str, p2p_listen: str, api_listen: str, psk_file: Path | None, new_psk: bool,
         as_json: bool) -> None:
    """Create a node home: key (0600), config.toml, API token, network key."""
    from ..home import HomeExists, init_home, new_psk as make_psk, read_psk
    from ..peerid import peer_id_of

    if psk_file is not None and new_psk:
        raise click.UsageError("give --psk-file or --new-psk, not both")
    if not p2p_listen.startswith("/"):
        raise click.BadParameter("must be a multiaddr such as /ip4/0.0.0.0/tcp/26656", param_hint="--p2p-listen")
    host, sep, port = api_listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter("must be HOST:PORT, e.g. 127.0.0.1:26657", param_hint="--api-listen")
    psk = None
    if psk_file is not None:
        try:
            psk = read_psk(psk_file)
        except (OSError, ValueError) as exc:
            raise ConfigProblem(str(exc)) from None
    elif new_psk:
        psk = make_psk()
    path = cli_context().home.path.absolute()
    try:
        home, key = init_home(path, moniker=moniker, mode=mode, p2p_listen=p2p_listen, api_listen=api_listen, psk_hex=psk)
    except HomeExists as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise ConfigProblem(f"{path}: cannot create the home ({exc.strerror})") from None
    info = {"home": str(home.path), "branch_id": key.branch_id.hex(), "public_key": key.public_key.hex(),
            "peer_id": peer_id_of(key.public_key.raw), "mode": mode}
    if as_json:
        print_json(info)
        return
    out = console()
    out.print(kv_table([("home", info["home"]), ("branch id", info["branch_id"]), ("public key", info["public_key"]),
                        ("peer id", info["peer_id"]), ("mode", mode)], title="node home created"))
    h = f"--home {shlex.quote(str(home.path))}"
    psk_step = (f"give {home.path / 'network.psk'} to the other branches over a secure channel "
                f"(they run `branchnet init --psk-file network.psk ...`)" if new_psk
                else "network key copied" if psk_file else f"copy the consortium's network.psk to {home.path / 'network.psk'}")
    role = "add-validator" if mode == "validator" else "add-member"
    click.echo(
        "\nnext steps:\n"
        f"  1. write your identity card (name, public key, dialable address) and send it to whoever builds the genesis:\n"
        f"       branchnet keys show {h} --json > {shlex.quote(moniker.lower().replace(' ', '-'))}.branch.json\n"
        f"     they run: branchnet genesis {role} genesis.json --keys-file FILE\n"
        f"  2. {psk_step}\n"
        f"  3. put the finalized genesis in {home.genesis} and check its hash:\n"
        f"       branchnet genesis finalize --check {home.genesis}\n"
        f"  4. add the other branches as peers (their identity cards or /ip4/IP/tcp/PORT/p2p/PEER_ID addresses):\n"
        f"       branchnet config add-peer {h} OTHER.branch.json ...\n"
        f"  5. start the node: branchnet run {h}"
    )


@cli.group()
def keys() -> None:
    """This node's identity."""


@keys.command("show")
@home_option
@json_option
def keys_show(as_json: bool) -> None:
    """Print the branch id, public key, peer id and dialable address (never the private key).

    The ``--json`` output is this branch's identity card: send it to whoever
    builds the genesis (``genesis add-validator --keys-file``) and to the other
    branches (``config add-peer``).
    """
    from ..config import ConfigError
    from ..keyfile import KeyFileError
    from ..keyring import NodeKeys
    from ..peerid import peer_id_of

    home = cli_context().home
    try:
        keys = NodeKeys(home)
    except KeyFileError as exc:
        raise ConfigProblem(str(exc)) from None
    peer_id = peer_id_of(keys.current.public_key.raw)
    info = {"branch_id": keys.branch_id.hex(), "public_key": keys.current.public_key.hex(), "peer_id": peer_id}
    if keys.pending is not None:  # a rotation waiting to commit (keys rotate)
        info["pending_public_key"] = keys.pending.public_key.hex()
    if keys.retired:
        info["retired_keys"] = {str(h): k.public_key.hex() for h, k in sorted(keys.retired.items())}
    try:
        config = home.load_config()
    except ConfigError:
        config = None  # a key without a config (yet): the identity is still useful
    if config is not None:
        info["name"] = config.node.moniker
        info["mode"] = config.node.mode
        info["addresses"] = [dialable(listen, peer_id) for listen in config.p2p.listen]
    if as_json:
        print_json(info)
        return
    rows = [("branch id", info["branch_id"]), ("public key", info["public_key"]), ("peer id", peer_id)]
    if "pending_public_key" in info:
        rows.append(("pending key", f"{info['pending_public_key']} (rotation not committed yet)"))
    rows += [("retired key", f"{k} (replaced at height {h}: {home.retired_key(int(h)).name})")
             for h, k in info.get("retired_keys", {}).items()]
    if config is not None:
        rows = [("name", info["name"]), ("mode", info["mode"])] + rows
        rows += [("address", a) for a in info["addresses"]]
    console().print(kv_table(rows))


from .keyrotate import keys_install, keys_rotate  # noqa: E402  (after the group it joins)

keys.add_command(keys_rotate)
keys.add_command(keys_install)


def dialable(listen: str, peer_id: str) -> str:
    """The address other nodes dial for a listen multiaddr; a wildcard or port-0 listen
    address is shown with what the operator must fill in."""
    addr = listen.replace("/ip4/0.0.0.0/", "/ip4/THIS_HOST_IP/").replace("/ip6/::/", "/ip6/THIS_HOST_IP/")
    if addr.endswith("/tcp/0"):
        addr = addr[:-1] + "PORT_CHOSEN_AT_START"
    return f"{addr}/p2p/{peer_id}"


@cli.command()
@home_option
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the node in the foreground (SIGINT/SIGTERM stop it cleanly)."""
    from .. import daemon

    ctx.exit(daemon.main(str(cli_context().home.path)))


# ---------------------------------------------------------------- node queries


@cli.command()
@home_option
@node_option
@json_option
def status(as_json: bool) -> None:
    """The node's status: height, peers, mode, sync state."""
    with cli_context().client() as api:
        doc = api.get("/v1/status")
    if as_json:
        print_json(doc)
    else:
        console().print(kv_table(status_rows(doc) if isinstance(doc, dict) else [("status", doc)]))


STATUS_FIRST = ("moniker", "role", "chain_id", "genesis_hash", "height", "last_block_time_ms", "last_block_hash",
                "addresses", "halt_height", "peers", "mempool")


def status_rows(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    """The status document as readable lines: identity first, times as dates, one address
    per line, nested objects as ``section.key`` lines."""
    from .chain import _fmt_time

    rows: list[tuple[str, Any]] = []
    keys = [k for k in STATUS_FIRST if k in doc] + [k for k in doc if k not in STATUS_FIRST]
    for key in keys:
        value = doc[key]
        label = key.replace("_", " ")
        if key == "last_block_time_ms":
            rows.append(("last block time", _fmt_time(value) if value else "-"))
        elif key == "addresses":
            rows += [("address", a) for a in value] or [("address", "-")]
        elif key == "halt_height" and value is None:
            continue
        elif isinstance(value, dict):
            rows += [(f"{key}.{k}", v) for k, v in value.items()]
        else:
            rows.append((label, value))
    return rows


@cli.command()
@home_option
@node_option
@json_option
def peers(as_json: bool) -> None:
    """Connected peers."""
    with cli_context().client() as api:
        doc = api.get("/v1/peers")
    if as_json:
        print_json(doc)
        return
    out = console()
    rows = doc.get("peers", [])
    if rows:
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        for column in ("branch", "peer id", "address", "direction", "connected since", "last round trip", "sent", "received",
                       "link"):
            table.add_column(column)
        for p in rows:
            since = p.get("connected_since_ms")
            rtt = p.get("last_round_trip_ms")
            table.add_row(p.get("name") or "-", p.get("peer_id", ""), p.get("address") or "-", p.get("direction") or "-",
                          _local_time(since) if since is not None else "-", f"{rtt:.1f} ms" if rtt is not None else "-",
                          _size(p.get("bytes_sent")), _size(p.get("bytes_received")), p.get("link") or "-")
        out.print(table)
    out.print(f"{doc.get('count', len(rows))} peer(s)")


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _local_time(ms: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


@cli.command()
@click.argument("action", type=click.Choice(["list", "allow", "revoke"]), default="list")
@click.argument("peer_id", required=False)
@home_option
@node_option
@json_option
def observers(action: str, peer_id: str | None, as_json: bool) -> None:
    """Peers this node lets connect besides the members (auditors' observers): list them,
    allow PEER_ID from now on, or revoke it. No restart; kept in the node's store. Each
    node decides for itself: run it on every node the observer should reach."""
    if action != "list" and not peer_id:
        raise click.UsageError(f"observers {action} needs a PEER_ID (the observer's `branchnet keys show`)")
    with cli_context().client() as api:
        doc = api.get("/v1/observers") if action == "list" else api.post(
            "/v1/observers", {"peer_id": peer_id, "allow": action == "allow"})
    if as_json:
        print_json(doc)
        return
    out = console()
    for o in doc.get("observers", []):
        out.print(o["peer_id"])
    out.print(f"{len(doc.get('observers', []))} observer(s) allowed besides the members")


@cli.command()
@home_option
@node_option
@json_option
def validators(as_json: bool) -> None:
    """The current validator set."""
    with cli_context().client() as api:
        doc = api.get("/v1/validators")
    if as_json:
        print_json(doc)
        return
    from rich.table import Table

    total = doc.get("total_power") or 0
    table = Table("name", "branch id", "power", "share", "peer id", box=None)
    for v in doc.get("validators", []):
        share = f"{100 * v.get('power', 0) / total:.1f}%" if total else "-"
        table.add_row(str(v.get("name")), str(v.get("branch_id")), str(v.get("power")), share, str(v.get("peer_id")))
    out = console()
    out.print(table)
    out.print(f"total power {total}")


def main() -> None:
    cli(prog_name="branchnet")

