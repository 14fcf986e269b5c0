"""``branchnet testnet``: every file of a local network in one command (as ``cometbft testnet``).

The homes, keys, one genesis, one network key, distinct free ports on
127.0.0.1 and each node's ``[p2p] peers`` as dialable addresses come from
:func:`node.testnet.create_network`; this command only checks its input and
prints how to start each node.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click

from protocol.errors import ProtocolError

from .common import CliError, ConfigProblem, console, json_option, print_json
from .genesis import check_draft


@click.command("testnet")
@click.option("--nodes", "validators", type=click.IntRange(1, 64), required=True, help="Number of validators.")
@click.option("--observers", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Number of observers (genesis members that sync and serve queries without voting).")
@click.option("--dir", "directory", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Directory for the homes (created; must be empty or absent).")
@click.option("--chain-id", default="branchnet-testnet", show_default=True, help="Network name: [a-z0-9][a-z0-9-]{0,49}.")
@json_option
def testnet(validators: int, observers: int, directory: Path, chain_id: str, as_json: bool) -> None:
    """Create the homes of a local network: keys, genesis, network key, ports and peers.

    Validators are branch-00, branch-01, ...; observers observer-00, ... Every
    node listens on its own free ports on 127.0.0.1; validators list every other
    validator as a peer, an observer lists two validators.

    \b
    Example:
      branchnet testnet --nodes 4 --observers 1 --dir ./testnet
      branchnet run --home ./testnet/branch-00
    """
    from protocol.genesis import Genesis

    from ..home import HomeExists
    from ..testnet import create_network, dialable_address

    directory = directory.absolute()
    if directory.exists() and any(directory.iterdir()):
        raise ConfigProblem(f"{directory} is not empty; give a new directory to --dir")
    try:  # check the chain id before writing anything
        check_draft({"chain_id": chain_id, "genesis_time_ms": 0, "validators": [], "members": []}, Path("--chain-id"))
    except CliError as exc:
        raise click.BadParameter(exc.message.split(": ", 1)[-1], param_hint="--chain-id") from None
    try:
        homes = create_network(directory, validators, chain_id=chain_id, observers=observers,
                               genesis_time_ms=int(time.time() * 1000))
    except ProtocolError as exc:  # the chain id, in practice
        raise click.BadParameter(str(exc), param_hint="--chain-id") from None
    except HomeExists as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise ConfigProblem(f"{directory}: cannot create the homes ({exc.strerror or exc})") from None
    genesis = Genesis.loads(homes[0].genesis.read_bytes())
    nodes = []
    for home in homes:
        config = home.load_config()
        nodes.append({"name": home.path.name, "role": config.node.mode, "home": str(home.path),
                      "p2p": dialable_address(home), "api": f"http://{config.api.listen}",
                      "peers": list(config.p2p.peers)})
    doc = {"dir": str(directory), "chain_id": genesis.chain_id, "genesis_hash": genesis.hash.hex(),
           "psk_file": str(homes[0].path / "network.psk"), "nodes": nodes}
    if as_json:
        print_json(doc)
        return
    from rich.table import Table

    click.echo(f"created a {validators}-validator, {observers}-observer network in {directory}")
    click.echo(f"chain id: {genesis.chain_id}")
    click.echo(f"genesis hash: {doc['genesis_hash']}")
    click.echo("every home holds the same genesis.json and network.psk\n")
    table = Table("name", "role", "api", "p2p (dialable)", box=None, pad_edge=False)
    for n in nodes:
        table.add_row(n["name"], n["role"], n["api"], n["p2p"])
    console().print(table)
    click.echo("\nstart each node (in its own terminal, or with & and a log file):")
    for n in nodes:
        click.echo(f"  branchnet run --home {shlex.quote(n['home'])}")
    click.echo(f"then: branchnet status --home {shlex.quote(nodes[0]['home'])}")
